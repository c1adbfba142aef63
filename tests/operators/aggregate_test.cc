#include "operators/aggregate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/config_model.h"

namespace sluice {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Fields sorted by name, as the config loader produces them.
SchemaConfig schema() {
  SchemaConfig s;
  s.key = {"k"};
  s.time_field = "t";
  s.fields = {{"a", FieldType::int64}, {"b", FieldType::float64}};
  return s;
}
constexpr int kA = 0;  // int64 field
constexpr int kB = 1;  // float64 field

AggregateConfig agg(std::string name, AggFn fn, int field_index = -1) {
  AggregateConfig a;
  a.name = std::move(name);
  a.fn = fn;
  a.field = field_index == kA ? "a" : field_index == kB ? "b" : "";
  a.field_index = field_index;
  return a;
}

// One entry's accumulators, driven through the layout.
class Entry {
 public:
  Entry(const std::vector<AggregateConfig>& aggs) : layout_(aggs, schema()), acc_(layout_.slots()) {
    layout_.init(acc_.data());
  }
  void add(int64_t a, double b) {
    Value v[2];
    v[kA].i = a;
    v[kB].f = b;
    layout_.update(acc_.data(), v);
  }
  AggValue result(size_t i) const { return layout_.result(acc_.data(), i); }

 private:
  AggLayout layout_;
  std::vector<Value> acc_;
};

void expect_int(const AggValue& v, int64_t want, const std::string& what) {
  ASSERT_EQ(v.kind, AggValue::Kind::int64) << what;
  EXPECT_EQ(v.v.i, want) << what;
}
void expect_float(const AggValue& v, double want, const std::string& what) {
  ASSERT_EQ(v.kind, AggValue::Kind::float64) << what;
  EXPECT_EQ(v.v.f, want) << what;
}
void expect_null(const AggValue& v, const std::string& what) { EXPECT_EQ(v.kind, AggValue::Kind::null) << what; }

// Exact sum of doubles of similar magnitude (113-bit significand), rounded once.
double exact_sum(const std::vector<double>& xs) {
  __float128 s = 0;
  for (double x : xs) s += x;
  return double(s);
}

TEST(AggLayout, CountOnlyUsesTheCountSlot) {
  AggLayout layout({agg("n", AggFn::count)}, schema());
  EXPECT_EQ(layout.slots(), 1u);
  ASSERT_EQ(layout.specs().size(), 1u);
  EXPECT_EQ(layout.specs()[0].field_index, -1);
}

TEST(AggLayout, EveryFunctionOverIntAndFloatFields) {
  std::vector<AggregateConfig> aggs = {
      agg("n", AggFn::count),        agg("sum_a", AggFn::sum, kA), agg("min_a", AggFn::min, kA),
      agg("max_a", AggFn::max, kA),  agg("avg_a", AggFn::avg, kA), agg("sum_b", AggFn::sum, kB),
      agg("min_b", AggFn::min, kB),  agg("max_b", AggFn::max, kB), agg("avg_b", AggFn::avg, kB),
  };
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    Entry e(aggs);
    int n = 1 + int(rng() % 50);
    int64_t sum_a = 0, min_a = kMax, max_a = kMin;
    double sum_b = 0, min_b = INFINITY, max_b = -INFINITY;
    for (int i = 0; i < n; ++i) {
      int64_t a = int64_t(rng() % 2001) - 1000;
      double b = double(int64_t(rng() % 801) - 400) / 4;  // quarters: every sum here is exact
      e.add(a, b);
      sum_a += a;
      min_a = std::min(min_a, a);
      max_a = std::max(max_a, a);
      sum_b += b;
      min_b = std::min(min_b, b);
      max_b = std::max(max_b, b);
    }
    std::string t = "trial " + std::to_string(trial);
    expect_int(e.result(0), n, "count " + t);
    expect_int(e.result(1), sum_a, "sum_a " + t);
    expect_int(e.result(2), min_a, "min_a " + t);
    expect_int(e.result(3), max_a, "max_a " + t);
    expect_float(e.result(4), double(sum_a) / n, "avg_a " + t);
    expect_float(e.result(5), sum_b, "sum_b " + t);
    expect_float(e.result(6), min_b, "min_b " + t);
    expect_float(e.result(7), max_b, "max_b " + t);
    expect_float(e.result(8), sum_b / n, "avg_b " + t);
    if (HasFailure()) return;
  }
}

TEST(AggLayout, SingleEvent) {
  Entry e({agg("n", AggFn::count), agg("min_a", AggFn::min, kA), agg("max_b", AggFn::max, kB),
           agg("avg_a", AggFn::avg, kA), agg("sum_a", AggFn::sum, kA)});
  e.add(-7, -0.5);
  expect_int(e.result(0), 1, "count");
  expect_int(e.result(1), -7, "min");
  expect_float(e.result(2), -0.5, "max of a negative float");
  expect_float(e.result(3), -7.0, "avg");
  expect_int(e.result(4), -7, "sum");
}

TEST(AggLayout, ExtremeIntsForMinAndMax) {
  Entry e({agg("min_a", AggFn::min, kA), agg("max_a", AggFn::max, kA)});
  e.add(kMax, 0);
  expect_int(e.result(0), kMax, "min of {max}");
  expect_int(e.result(1), kMax, "max of {max}");
  e.add(kMin, 0);
  expect_int(e.result(0), kMin, "min");
  expect_int(e.result(1), kMax, "max");
}

TEST(AggLayout, AvgOfIntsIsAFloat) {
  Entry e({agg("avg_a", AggFn::avg, kA)});
  e.add(2, 0);
  e.add(2, 0);
  expect_float(e.result(0), 2.0, "avg of 2, 2");
  e.add(3, 0);
  expect_float(e.result(0), 7.0 / 3.0, "avg of 2, 2, 3");
  Entry big({agg("avg_a", AggFn::avg, kA)});
  big.add(kMax, 0);
  big.add(kMax, 0);  // the int sum would overflow; the average does not
  expect_float(big.result(0), 9223372036854775807.0, "avg of two INT64_MAX");
}

TEST(AggLayout, IntSumOverflowIsNull) {
  std::vector<AggregateConfig> aggs = {agg("n", AggFn::count), agg("sum_a", AggFn::sum, kA),
                                       agg("max_a", AggFn::max, kA), agg("sum_a2", AggFn::sum, kA)};
  Entry up(aggs);
  up.add(kMax, 0);
  expect_int(up.result(1), kMax, "INT64_MAX alone");
  up.add(1, 0);
  expect_null(up.result(1), "INT64_MAX + 1");
  expect_null(up.result(3), "the same sum, twice");
  expect_int(up.result(0), 2, "count is unaffected");
  expect_int(up.result(2), kMax, "max is unaffected");
  up.add(5, 0);
  expect_null(up.result(1), "stays null");

  Entry down(aggs);
  down.add(kMin, 0);
  down.add(-1, 0);
  expect_null(down.result(1), "INT64_MIN - 1");

  Entry edge(aggs);
  edge.add(kMax - 10, 0);
  edge.add(10, 0);
  expect_int(edge.result(1), kMax, "exactly INT64_MAX");
  Entry low(aggs);
  low.add(kMin + 10, 0);
  low.add(-10, 0);
  expect_int(low.result(1), kMin, "exactly INT64_MIN");
}

TEST(AggLayout, FloatSumOverflowIsNull) {
  std::vector<AggregateConfig> aggs = {agg("sum_b", AggFn::sum, kB), agg("avg_b", AggFn::avg, kB),
                                       agg("max_b", AggFn::max, kB), agg("min_b", AggFn::min, kB)};
  Entry e(aggs);
  e.add(0, 1e308);
  expect_float(e.result(0), 1e308, "one value");
  e.add(0, 1e308);
  expect_null(e.result(0), "1e308 + 1e308 is inf");
  expect_null(e.result(1), "its average");
  expect_float(e.result(2), 1e308, "max is still finite");
  expect_float(e.result(3), 1e308, "min is still finite");

  Entry neg(aggs);
  neg.add(0, -1.5e308);
  neg.add(0, -1.5e308);
  expect_null(neg.result(0), "-inf");

  Entry ok(aggs);
  ok.add(0, std::numeric_limits<double>::max());
  ok.add(0, -std::numeric_limits<double>::max());
  expect_float(ok.result(0), 0.0, "max + -max");
}

TEST(AggLayout, SeveralAggregatesOverTheSameField) {
  std::vector<AggregateConfig> aggs = {agg("s1", AggFn::sum, kA), agg("lo", AggFn::min, kA), agg("hi", AggFn::max, kA),
                                       agg("s2", AggFn::sum, kA), agg("m", AggFn::avg, kA), agg("n", AggFn::count),
                                       agg("sb1", AggFn::sum, kB), agg("sb2", AggFn::sum, kB)};
  Entry e(aggs);
  for (int64_t v : {5, -3, 12, 0, 7}) e.add(v, double(v) / 2);
  expect_int(e.result(0), 21, "s1");
  expect_int(e.result(1), -3, "lo");
  expect_int(e.result(2), 12, "hi");
  expect_int(e.result(3), 21, "s2");
  expect_float(e.result(4), 21.0 / 5, "m");
  expect_int(e.result(5), 5, "n");
  expect_float(e.result(6), 10.5, "sb1");
  expect_float(e.result(7), 10.5, "sb2");
}

TEST(AggLayout, EntriesAreIndependent) {
  std::vector<AggregateConfig> aggs = {agg("sum_a", AggFn::sum, kA), agg("min_b", AggFn::min, kB)};
  AggLayout layout(aggs, schema());
  std::vector<Value> acc(layout.slots() * 2);
  layout.init(acc.data());
  layout.init(acc.data() + layout.slots());
  Value v[2];
  v[kA].i = 4;
  v[kB].f = 1.25;
  layout.update(acc.data(), v);
  v[kA].i = 6;
  v[kB].f = -2.0;
  layout.update(acc.data() + layout.slots(), v);
  layout.update(acc.data() + layout.slots(), v);
  expect_int(layout.result(acc.data(), 0), 4, "first sum");
  expect_float(layout.result(acc.data(), 1), 1.25, "first min");
  expect_int(layout.result(acc.data() + layout.slots(), 0), 12, "second sum");
  expect_float(layout.result(acc.data() + layout.slots(), 1), -2.0, "second min");
}

// The header promises a float sum that is the correctly rounded sum in
// practice, whatever order the events come in.
TEST(AggLayout, FloatSumIsCorrectlyRoundedAndOrderIndependent) {
  std::vector<AggregateConfig> aggs = {agg("sum_b", AggFn::sum, kB), agg("avg_b", AggFn::avg, kB)};
  {
    Entry e(aggs);
    for (int i = 0; i < 3; ++i) e.add(0, 19.99);
    expect_float(e.result(0), 59.97, "3 x 19.99");
    Entry tenth(aggs);
    for (int i = 0; i < 10; ++i) tenth.add(0, 0.1);
    expect_float(tenth.result(0), exact_sum(std::vector<double>(10, 0.1)), "10 x 0.1");
    expect_float(tenth.result(0), 1.0, "10 x 0.1 rounds to 1.0");
  }
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<double> xs(1 + rng() % 400);
    for (double& x : xs) {
      x = double(int64_t(rng() % 100000)) / 100;  // prices in cents
      if (rng() % 4 == 0) x = -x;
    }
    double want = exact_sum(xs);
    for (int order = 0; order < 3; ++order) {
      Entry e(aggs);
      for (double x : xs) e.add(0, x);
      expect_float(e.result(0), want, "trial " + std::to_string(trial));
      expect_float(e.result(1), want / double(xs.size()), "avg, trial " + std::to_string(trial));
      std::shuffle(xs.begin(), xs.end(), rng);
    }
    if (HasFailure()) return;
  }
}

// Regression: an int64 sum that overflowed part-way stayed null even when
// later events brought the total back into range, so the result depended on
// the order events arrived in.
TEST(AggLayout, IntSumTransientOverflowIsExact) {
  Entry e({agg("sum", AggFn::sum, kA)});
  e.add(kMax, 0.0);
  e.add(1, 0.0);   // past INT64_MAX here
  e.add(-1, 0.0);  // back to INT64_MAX
  expect_int(e.result(0), kMax, "INT64_MAX + 1 - 1");
  Entry f({agg("sum", AggFn::sum, kA)});
  f.add(kMin, 0.0);
  f.add(-1, 0.0);
  f.add(1, 0.0);
  expect_int(f.result(0), kMin, "INT64_MIN - 1 + 1");
}

// Regression: the average of int64 values was summed in doubles, so the mean
// of INT64_MIN and INT64_MAX (true value -0.5) came out as 0.0.
TEST(AggLayout, AvgOfExtremeIntsIsExact) {
  Entry e({agg("avg", AggFn::avg, kA)});
  e.add(kMin, 0.0);
  e.add(kMax, 0.0);
  AggValue v = e.result(0);
  ASSERT_EQ(v.kind, AggValue::Kind::float64);
  EXPECT_EQ(v.v.f, -0.5);
}

}  // namespace
}  // namespace sluice
