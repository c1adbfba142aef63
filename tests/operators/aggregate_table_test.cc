// The aggregate function table: merge, serialize and out-of-line state,
// for the built-ins and for a test-only function added as a plugin.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/config_model.h"
#include "operators/aggregate.h"
#include "operators/event.h"
#include "operators/window_table.h"
#include "tests/plugins/plugins.h"

namespace sluice {
namespace {

SchemaConfig schema() {
  SchemaConfig s;
  s.key = {"k"};
  s.time_field = "t";
  s.fields = {{"a", FieldType::int64}, {"b", FieldType::float64}};
  return s;
}

AggregateConfig agg(AggFn fn, int field) {
  AggregateConfig a;
  a.name = std::string(fn.name) + std::to_string(field);
  a.fn = fn;
  a.field = field == 0 ? "a" : field == 1 ? "b" : "";
  a.field_index = field;
  return a;
}

std::vector<AggregateConfig> every_builtin() {
  std::vector<AggregateConfig> v{agg(AggFn::count, -1)};
  for (AggFn fn : {AggFn::sum, AggFn::min, AggFn::max, AggFn::avg}) {
    v.push_back(agg(fn, 0));
    v.push_back(agg(fn, 1));
  }
  return v;
}

void add(const AggLayout& layout, std::vector<Value>& acc, int64_t a, double b) {
  Value v[2];
  v[0].i = a;
  v[1].f = b;
  layout.update(acc.data(), v);
}

void expect_same_results(const AggLayout& layout, const std::vector<Value>& x, const std::vector<Value>& y) {
  for (size_t i = 0; i < layout.specs().size(); ++i) {
    const AggValue rx = layout.result(x.data(), i), ry = layout.result(y.data(), i);
    ASSERT_EQ(rx.kind, ry.kind) << i;
    if (rx.kind == AggValue::Kind::int64) {
      EXPECT_EQ(rx.v.i, ry.v.i) << i;
    } else if (rx.kind == AggValue::Kind::float64) {
      EXPECT_DOUBLE_EQ(rx.v.f, ry.v.f) << i;
    }
  }
}

// Merging the states of two halves of the events gives what one state over
// all of them gives (the float sums to the last bit or so: compensation).
TEST(AggregateTable, MergeOfTwoHalvesEqualsOneStateOverAll) {
  AggLayout layout(every_builtin(), schema());
  std::mt19937_64 rng(3);
  for (int round = 0; round < 50; ++round) {
    std::vector<Value> all(layout.slots()), left(layout.slots()), right(layout.slots());
    layout.init(all.data());
    layout.init(left.data());
    layout.init(right.data());
    const int n = 1 + int(rng() % 200);
    for (int i = 0; i < n; ++i) {
      const int64_t a = int64_t(rng() % 2000001) - 1000000;
      const double b = double(int64_t(rng() % 2000001) - 1000000) / 128.0;
      add(layout, all, a, b);
      add(layout, i % 3 == 0 ? left : right, a, b);
    }
    layout.merge(left.data(), right.data());
    expect_same_results(layout, all, left);
  }
}

// approx_count_distinct through the table: an int64 field at two precisions
// and a string field; merged halves give the sketch of all events, bytes
// round-trip, and the sketches are given back.
TEST(AggregateTable, ApproxCountDistinctMergesRoundTripsAndGivesBack) {
  SchemaConfig sch = schema();
  sch.fields.push_back({"s", FieldType::string});
  std::vector<AggregateConfig> aggs;
  for (uint32_t p : {10u, 14u}) {
    AggregateConfig a = agg(AggFn{"approx_count_distinct"}, 0);
    a.name += "p" + std::to_string(p);
    a.params.precision = p;
    aggs.push_back(a);
  }
  AggregateConfig on_string = agg(AggFn{"approx_count_distinct"}, 0);
  on_string.name = "strings";
  on_string.field = "s";
  on_string.field_index = 2;
  aggs.push_back(on_string);
  AggLayout layout(aggs, sch);
  ASSERT_TRUE(layout.has_out_of_line_state());
  std::mt19937_64 rng(17);
  for (int n : {1, 40, 3000}) {
    std::vector<Value> all(layout.slots()), left(layout.slots()), right(layout.slots()), back(layout.slots());
    layout.init(all.data());
    layout.init(left.data());
    layout.init(right.data());
    std::set<int64_t> distinct;
    for (int i = 0; i < n; ++i) {
      const int64_t a = int64_t(rng() % 100000);
      distinct.insert(a);
      const std::string text = "id-" + std::to_string(a);
      Value v[3];
      v[0].i = a;
      v[2] = text_ref(0, uint32_t(text.size()));
      layout.update(all.data(), v, text);
      layout.update((i % 3 == 0 ? left : right).data(), v, text);
    }
    layout.merge(left.data(), right.data());
    expect_same_results(layout, all, left);
    // Small sets are counted exactly at p = 14 (one register each, almost surely).
    if (n <= 40) {
      EXPECT_EQ(layout.result(all.data(), 1).v.i, int64_t(distinct.size()));
      EXPECT_EQ(layout.result(all.data(), 2).v.i, int64_t(distinct.size()));
    }
    std::vector<char> bytes(layout.serialized_bytes_max());
    const size_t len = layout.serialize(all.data(), bytes.data());
    ASSERT_TRUE(layout.deserialize(back.data(), bytes.data(), len));
    expect_same_results(layout, all, back);
    layout.destroy(right.data());  // deserialize() starts from an entry without state
    EXPECT_FALSE(layout.deserialize(right.data(), bytes.data(), len - 1));
    for (auto* acc : {&all, &left, &right, &back}) layout.destroy(acc->data());
  }
}

TEST(AggregateTable, SerializeRoundTripsAndRefusesBytesItDidNotWrite) {
  AggLayout layout(every_builtin(), schema());
  std::vector<Value> acc(layout.slots()), back(layout.slots());
  layout.init(acc.data());
  for (int i = 0; i < 100; ++i) add(layout, acc, i * 7 - 300, i * 0.25);
  std::vector<char> bytes(layout.serialized_bytes_max());
  const size_t n = layout.serialize(acc.data(), bytes.data());
  ASSERT_LE(n, bytes.size());
  ASSERT_TRUE(layout.deserialize(back.data(), bytes.data(), n));
  expect_same_results(layout, acc, back);
  // Truncated, or with trailing bytes, or a length that lies: refused.
  EXPECT_FALSE(layout.deserialize(back.data(), bytes.data(), n - 1));
  std::vector<char> longer(bytes.begin(), bytes.begin() + long(n));
  longer.push_back(0);
  EXPECT_FALSE(layout.deserialize(back.data(), longer.data(), longer.size()));
  std::vector<char> lying(bytes.begin(), bytes.begin() + long(n));
  lying[8] = char(0x7f);  // the first aggregate's length
  EXPECT_FALSE(layout.deserialize(back.data(), lying.data(), lying.size()));
}

// The test-only distinct count (out-of-line state) through the window
// tables: results equal an independent std::set per (window, key), and every
// state is given back when windows fire and when the tables go away.
TEST(AggregateTable, OutOfLineStateOfAPluginFunctionThroughTheWindowTables) {
  test_plugins::register_test_plugins();
  std::vector<AggregateConfig> aggs{agg(AggFn::count, -1), agg(test_plugins::kTestDistinct, 0), agg(AggFn::sum, 0)};
  AggLayout layout(aggs, schema());
  ASSERT_TRUE(layout.has_out_of_line_state());
  std::map<std::pair<int64_t, std::string>, std::set<int64_t>> ref;
  {
    WindowSet windows(layout);
    std::mt19937_64 rng(5);
    for (int i = 0; i < 20000; ++i) {
      const int64_t start = int64_t(rng() % 6) * 10;
      const std::string key = "k" + std::to_string(rng() % 50);
      Event e;
      e.key = key;
      e.key_hash = std::hash<std::string>{}(key) * 0x9E3779B97F4A7C15ull;
      e.values[0].i = int64_t(rng() % 40);
      windows.apply_pipelined(start, e);
      ref[{start, key}].insert(e.values[0].i);
    }
    windows.flush();
    EXPECT_EQ(test_plugins::live_distinct_states(), int64_t(ref.size()));
    // Fire three of the six windows; the rest go with the tables.
    for (int w = 0; w < 3; ++w) {
      const int64_t start = windows.oldest_start();
      const KeyTable& t = windows.oldest();
      for (size_t i = 0; i < t.size(); ++i) {
        const std::string key(t.key(i));
        const AggValue d = layout.result(t.acc(i), 1);
        ASSERT_EQ(d.kind, AggValue::Kind::int64);
        EXPECT_EQ(d.v.i, int64_t(ref[{start, key}].size())) << start << " " << key;
      }
      windows.pop_oldest();
    }
    EXPECT_LT(test_plugins::live_distinct_states(), int64_t(ref.size()));
  }
  EXPECT_EQ(test_plugins::live_distinct_states(), 0);
}

TEST(AggregateTable, PluginStateMergesAndRoundTrips) {
  test_plugins::register_test_plugins();
  AggLayout layout({agg(test_plugins::kTestDistinct, 0)}, schema());
  std::vector<Value> x(layout.slots()), y(layout.slots()), back(layout.slots());
  layout.init(x.data());
  layout.init(y.data());
  layout.init(back.data());
  for (int64_t v : {1, 2, 3, 3}) add(layout, x, v, 0);
  for (int64_t v : {3, 4, 4, 5}) add(layout, y, v, 0);
  layout.merge(x.data(), y.data());
  EXPECT_EQ(layout.result(x.data(), 0).kind, AggValue::Kind::int64);
  EXPECT_EQ(layout.result(x.data(), 0).v.i, 5);
  std::vector<char> bytes(layout.serialized_bytes_max());
  const size_t n = layout.serialize(x.data(), bytes.data());
  ASSERT_TRUE(layout.deserialize(back.data(), bytes.data(), n));
  EXPECT_EQ(layout.result(back.data(), 0).v.i, 5);
  for (auto* acc : {&x, &y, &back}) layout.destroy(acc->data());
  EXPECT_EQ(test_plugins::live_distinct_states(), 0);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// The window tables' state leaves through for_each_entry() and
// AggLayout::serialize() and comes back through restore_entry() and
// deserialize(): the restored tables give the same results, entry for entry,
// out-of-line state included.
TEST(AggregateTable, WindowStateRoundTripsThroughItsBytes) {
  test_plugins::register_test_plugins();
  std::vector<AggregateConfig> aggs{agg(AggFn::count, -1), agg(AggFn::sum, 1), agg(AggFn::max, 0),
                                    agg(test_plugins::kTestDistinct, 0), agg(AggFn::avg, 0)};
  AggLayout layout(aggs, schema());
  struct Record {
    int64_t start;
    std::string key;
    std::vector<char> bytes;
  };
  std::vector<Record> saved;
  {
    WindowSet windows(layout);
    std::mt19937_64 rng(12);
    for (int i = 0; i < 5000; ++i) {
      const std::string key = "key-" + std::to_string(rng() % 300);  // some longer than the inline 16 bytes
      Event e;
      e.key = key;
      e.key_hash = hash_key(key);
      e.values[0].i = int64_t(rng() % 1000) - 500;
      e.values[1].f = double(rng() % 1000) / 8;
      windows.apply_pipelined(int64_t(rng() % 4) * 60, e);
    }
    windows.flush();
    std::vector<char> scratch(layout.serialized_bytes_max());
    windows.for_each_entry([&](int64_t start, std::string_view key, const Value* acc) {
      const size_t n = layout.serialize(acc, scratch.data());
      saved.push_back({start, std::string(key), std::vector<char>(scratch.begin(), scratch.begin() + long(n))});
    });
    ASSERT_GT(saved.size(), 300u);

    WindowSet restored(layout);
    for (const Record& r : saved) {
      Value* acc = restored.restore_entry(r.start, hash_key(r.key), r.key);
      layout.destroy(acc);  // restore_entry initialised it; deserialize does again
      ASSERT_TRUE(layout.deserialize(acc, r.bytes.data(), r.bytes.size()));
    }
    ASSERT_EQ(restored.open_windows(), windows.open_windows());
    ASSERT_EQ(restored.entries(), windows.entries());
    while (!windows.empty()) {
      ASSERT_EQ(restored.oldest_start(), windows.oldest_start());
      const KeyTable& a = windows.oldest();
      const KeyTable& b = restored.oldest();
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a.key(i), b.key(i));
        const Value* found = b.find(hash_key(a.key(i)), a.key(i));
        ASSERT_NE(found, nullptr);
        for (size_t g = 0; g < aggs.size(); ++g) {
          const AggValue x = layout.result(a.acc(i), g), y = layout.result(found, g);
          ASSERT_EQ(x.kind, y.kind);
          ASSERT_EQ(x.v.i, y.v.i) << g;  // bit-identical, floats included
        }
      }
      windows.pop_oldest();
      restored.pop_oldest();
    }
  }
  EXPECT_EQ(test_plugins::live_distinct_states(), 0);
}

}  // namespace
}  // namespace sluice
