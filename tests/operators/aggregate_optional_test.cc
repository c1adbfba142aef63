// Aggregates over optional fields: an event that lacks the field (Event::absent)
// is skipped by the aggregates over it and taken by every other; each
// aggregate's result is over the values it was given, and over none at all it
// is null (count and approx_count_distinct: 0). Expectations are computed
// here from the values themselves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/config_model.h"
#include "operators/aggregate.h"
#include "operators/event.h"
#include "operators/window_table.h"

namespace sluice {
namespace {

const AggFn kDistinct{"approx_count_distinct"};

// Fields sorted by name, as the config loader produces them: a and b are
// optional, c is required (and never read by an aggregate below but count).
SchemaConfig schema() {
  SchemaConfig s;
  s.key = {"k"};
  s.time_field = "t";
  s.fields = {{"a", FieldType::int64, FieldPresence::optional},
              {"b", FieldType::float64, FieldPresence::optional},
              {"c", FieldType::int64}};
  return s;
}
constexpr int kA = 0;
constexpr int kB = 1;
constexpr int kC = 2;

AggregateConfig agg(std::string name, AggFn fn, int field_index = -1) {
  AggregateConfig a;
  a.name = std::move(name);
  a.fn = fn;
  a.field = field_index < 0 ? "" : std::string(1, char('a' + field_index));
  a.field_index = field_index;
  return a;
}

std::vector<AggregateConfig> every_aggregate() {
  return {agg("n", AggFn::count),         agg("n_a", AggFn::count, kA), agg("n_b", AggFn::count, kB),
          agg("n_c", AggFn::count, kC),   agg("sum_a", AggFn::sum, kA), agg("min_a", AggFn::min, kA),
          agg("max_a", AggFn::max, kA),   agg("avg_a", AggFn::avg, kA), agg("sum_b", AggFn::sum, kB),
          agg("min_b", AggFn::min, kB),   agg("max_b", AggFn::max, kB), agg("avg_b", AggFn::avg, kB),
          agg("distinct_a", kDistinct, kA), agg("sum_c", AggFn::sum, kC)};
}

// One event: a and b when present.
struct In {
  std::optional<int64_t> a;
  std::optional<double> b;
  int64_t c = 0;
};

void add(const AggLayout& layout, Value* acc, const In& in) {
  Value v[3];
  uint32_t absent = 0;
  if (in.a) {
    v[kA].i = *in.a;
  } else {
    v[kA].i = 999'999;  // must not be read
    absent |= 1u << kA;
  }
  if (in.b) {
    v[kB].f = *in.b;
  } else {
    v[kB].f = -1e300;
    absent |= 1u << kB;
  }
  v[kC].i = in.c;
  layout.update(acc, v, {}, absent);
}

// The results over `events`, written from the documented semantics.
std::vector<AggValue> expected(const std::vector<In>& events) {
  std::vector<int64_t> as;
  std::vector<double> bs;
  int64_t sum_c = 0;
  for (const In& e : events) {
    if (e.a) as.push_back(*e.a);
    if (e.b) bs.push_back(*e.b);
    sum_c += e.c;
  }
  auto integer = [](int64_t i) {
    AggValue v;
    v.kind = AggValue::Kind::int64;
    v.v.i = i;
    return v;
  };
  auto floating = [](double f) {
    AggValue v;
    v.kind = AggValue::Kind::float64;
    v.v.f = f;
    return v;
  };
  const AggValue null;
  int64_t sum_a = 0;
  double sum_b = 0;
  for (int64_t a : as) sum_a += a;
  for (double b : bs) sum_b += b;  // quarters: exact
  const std::set<int64_t> distinct(as.begin(), as.end());
  return {integer(int64_t(events.size())),
          integer(int64_t(as.size())),
          integer(int64_t(bs.size())),
          integer(int64_t(events.size())),
          as.empty() ? null : integer(sum_a),
          as.empty() ? null : integer(*std::min_element(as.begin(), as.end())),
          as.empty() ? null : integer(*std::max_element(as.begin(), as.end())),
          as.empty() ? null : floating(double(sum_a) / double(as.size())),
          bs.empty() ? null : floating(sum_b),
          bs.empty() ? null : floating(*std::min_element(bs.begin(), bs.end())),
          bs.empty() ? null : floating(*std::max_element(bs.begin(), bs.end())),
          bs.empty() ? null : floating(sum_b / double(bs.size())),
          integer(int64_t(distinct.size())),
          integer(sum_c)};
}

::testing::AssertionResult same(const AggLayout& layout, const Value* acc, const std::vector<AggValue>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    const AggValue got = layout.result(acc, i);
    const bool equal = got.kind == want[i].kind &&
                       (got.kind == AggValue::Kind::null ||
                        (got.kind == AggValue::Kind::int64 && got.v.i == want[i].v.i) ||
                        (got.kind == AggValue::Kind::float64 && got.v.f == want[i].v.f));
    if (!equal) {
      return ::testing::AssertionFailure()
             << "aggregate " << i << " (" << every_aggregate()[i].name << "): kind " << int(got.kind) << " value "
             << (got.kind == AggValue::Kind::float64 ? got.v.f : double(got.v.i)) << ", expected kind "
             << int(want[i].kind) << " value "
             << (want[i].kind == AggValue::Kind::float64 ? want[i].v.f : double(want[i].v.i));
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<In> random_events(std::mt19937_64& rng, int n, int absent_percent) {
  std::vector<In> out;
  for (int i = 0; i < n; ++i) {
    In e;
    if (int(rng() % 100) >= absent_percent) e.a = int64_t(rng() % 41) - 20;
    if (int(rng() % 100) >= absent_percent) e.b = double(int64_t(rng() % 401) - 200) / 4;
    e.c = int64_t(rng() % 10);
    out.push_back(e);
  }
  return out;
}

TEST(AggOptional, AggregatesOverAnOptionalFieldSkipEventsWithoutIt) {
  const AggLayout layout(every_aggregate(), schema());
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    const std::vector<In> events = random_events(rng, 1 + int(rng() % 40), int(rng() % 101));
    std::vector<Value> acc(layout.slots());
    layout.init(acc.data());
    for (const In& e : events) add(layout, acc.data(), e);
    ASSERT_TRUE(same(layout, acc.data(), expected(events))) << "trial " << trial;
    EXPECT_EQ(layout.values_of(acc.data(), 0), int64_t(events.size()));
    layout.destroy(acc.data());
  }
}

// Every value skipped: what a window writes for an aggregate that got none.
TEST(AggOptional, NoValueAtAllIsNullOrZero) {
  const AggLayout layout(every_aggregate(), schema());
  std::vector<Value> acc(layout.slots());
  layout.init(acc.data());
  const std::vector<In> events = {In{std::nullopt, std::nullopt, 3}, In{std::nullopt, std::nullopt, 4}};
  for (const In& e : events) add(layout, acc.data(), e);
  const std::vector<AggValue> want = expected(events);
  ASSERT_TRUE(same(layout, acc.data(), want));
  // Spelled out: counts 2, 0, 0, 2; sums, extremes and averages null; distinct 0.
  EXPECT_EQ(layout.result(acc.data(), 1).v.i, 0);
  EXPECT_EQ(layout.result(acc.data(), 4).kind, AggValue::Kind::null);
  EXPECT_EQ(layout.result(acc.data(), 5).kind, AggValue::Kind::null);
  EXPECT_EQ(layout.result(acc.data(), 7).kind, AggValue::Kind::null);
  EXPECT_EQ(layout.result(acc.data(), 12).v.i, 0);
  EXPECT_EQ(layout.result(acc.data(), 13).v.i, 7);
  layout.destroy(acc.data());
}

// avg divides by the values it took, not by the events of the entry.
TEST(AggOptional, AvgDividesByItsOwnCount) {
  const AggLayout layout({agg("n", AggFn::count), agg("avg_a", AggFn::avg, kA)}, schema());
  std::vector<Value> acc(layout.slots());
  layout.init(acc.data());
  add(layout, acc.data(), In{10, 0.0, 0});
  add(layout, acc.data(), In{std::nullopt, 0.0, 0});
  add(layout, acc.data(), In{std::nullopt, 0.0, 0});
  add(layout, acc.data(), In{20, 0.0, 0});
  EXPECT_EQ(layout.result(acc.data(), 0).v.i, 4);
  ASSERT_EQ(layout.result(acc.data(), 1).kind, AggValue::Kind::float64);
  EXPECT_EQ(layout.result(acc.data(), 1).v.f, 15.0);
}

// Without aggregates over optional fields the entry is as it was: no
// absent counts, and an absent bit of a field nobody reads changes nothing.
TEST(AggOptional, OnlyOptionalFieldsThatAreReadCostASlot) {
  const AggLayout plain({agg("n", AggFn::count), agg("sum_c", AggFn::sum, kC)}, schema());
  EXPECT_EQ(plain.slots(), 1u + 2u);
  EXPECT_EQ(plain.serialized_bytes_max(), 8u + (4 + 0) + (4 + 16));
  std::vector<Value> acc(plain.slots());
  plain.init(acc.data());
  add(plain, acc.data(), In{std::nullopt, std::nullopt, 5});
  add(plain, acc.data(), In{1, 2.0, 6});
  EXPECT_EQ(plain.result(acc.data(), 0).v.i, 2);
  EXPECT_EQ(plain.result(acc.data(), 1).v.i, 11);

  // Two aggregates over a share one absent count; b gets its own.
  const AggLayout shared({agg("sum_a", AggFn::sum, kA), agg("max_a", AggFn::max, kA), agg("n_b", AggFn::count, kB)},
                         schema());
  EXPECT_EQ(shared.slots(), 1u + 2 + 1 + 0 + 2);
  EXPECT_EQ(shared.specs()[0].absent_slot, shared.specs()[1].absent_slot);
  EXPECT_NE(shared.specs()[0].absent_slot, shared.specs()[2].absent_slot);
}

// Entries merge (absent counts add up) and survive their bytes, and bytes
// whose absent count exceeds the event count are refused.
TEST(AggOptional, MergeAndBytesKeepTheAbsentCounts) {
  const AggLayout layout(every_aggregate(), schema());
  std::mt19937_64 rng(9);
  for (int trial = 0; trial < 50; ++trial) {
    const std::vector<In> events = random_events(rng, 2 + int(rng() % 30), int(rng() % 101));
    std::vector<Value> all(layout.slots()), left(layout.slots()), right(layout.slots()), back(layout.slots());
    for (auto* acc : {&all, &left, &right}) layout.init(acc->data());
    for (size_t i = 0; i < events.size(); ++i) {
      add(layout, all.data(), events[i]);
      add(layout, (i % 2 == 0 ? left : right).data(), events[i]);
    }
    layout.merge(left.data(), right.data());
    ASSERT_TRUE(same(layout, left.data(), expected(events))) << "merged, trial " << trial;

    std::vector<char> bytes(layout.serialized_bytes_max());
    const size_t n = layout.serialize(all.data(), bytes.data());
    ASSERT_TRUE(layout.deserialize(back.data(), bytes.data(), n));
    ASSERT_TRUE(same(layout, back.data(), expected(events))) << "restored, trial " << trial;
    layout.destroy(back.data());

    // The first absent count (right after the event count) above the event count.
    std::vector<char> lying(bytes.begin(), bytes.begin() + std::ptrdiff_t(n));
    const int64_t too_many = int64_t(events.size()) + 1;
    std::memcpy(lying.data() + 8, &too_many, 8);
    EXPECT_FALSE(layout.deserialize(back.data(), lying.data(), lying.size()));
    for (auto* acc : {&all, &left, &right}) layout.destroy(acc->data());
  }
}

// Through the window tables, as the engine applies events (pipelined, with
// the absent bits staged beside the values).
TEST(AggOptional, WindowSetCarriesTheAbsentBits) {
  const AggLayout layout(every_aggregate(), schema());
  WindowSet windows(layout);
  std::mt19937_64 rng(13);
  const std::vector<In> events = random_events(rng, 200, 40);
  std::vector<In> per_key[2];
  const char keys[2][9] = {{'i', 1, 0, 0, 0, 0, 0, 0, 0}, {'i', 2, 0, 0, 0, 0, 0, 0, 0}};
  for (size_t i = 0; i < events.size(); ++i) {
    const In& in = events[i];
    Event e;
    e.key = std::string_view(keys[i % 2], 9);
    e.key_hash = hash_key(e.key);
    e.time_ns = 0;
    if (in.a) e.values[kA].i = *in.a; else e.absent |= 1u << kA;
    if (in.b) e.values[kB].f = *in.b; else e.absent |= 1u << kB;
    e.values[kC].i = in.c;
    windows.apply_pipelined(0, e);
    per_key[i % 2].push_back(in);
  }
  windows.flush();
  const KeyTable& t = windows.oldest();
  ASSERT_EQ(t.size(), 2u);
  for (size_t entry = 0; entry < 2; ++entry) {
    const int k = t.key(entry)[1] - 1;
    EXPECT_TRUE(same(layout, t.acc(entry), expected(per_key[k]))) << "key " << k;
  }
  windows.pop_oldest();
}

}  // namespace
}  // namespace sluice
