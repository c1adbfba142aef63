// Aggregates at the edges of their types, and windows before 1970, through
// the real binary: int64 sums near the limits (null only when the total does
// not fit), float sums that overflow (null), epoch times below zero (floor).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

// `with_avg`: averages of values near the limits of int64 or double lose
// precision or overflow in ways the documentation leaves open, so the tests
// about sums leave them out.
PipelineSpec edge_spec(bool with_avg) {
  PipelineSpec spec;
  spec.key_fields = {"k"};
  spec.time_field = "t";
  spec.time_format = "epoch_ms";
  spec.fields = {{"v", FieldKind::int64}, {"x", FieldKind::float64}};
  spec.window_ns = kNsPerMin;
  spec.delay_ns = 0;
  spec.aggregates = {{"n", AggFn::count, ""},
                     {"v_sum", AggFn::sum, "v"},
                     {"v_min", AggFn::min, "v"},
                     {"v_max", AggFn::max, "v"},
                     {"x_sum", AggFn::sum, "x"}};
  if (with_avg) {
    spec.aggregates.push_back({"v_avg", AggFn::avg, "v"});
    spec.aggregates.push_back({"x_avg", AggFn::avg, "x"});
  }
  return spec;
}

Event edge_event(int64_t time_ms, std::string key, int64_t v, double x) {
  Event e;
  e.time_ns = time_ms * kNsPerMs;
  e.key = {std::move(key)};
  e.values = {{"v", v}, {"x", x}};
  return e;
}

// An int64 sum is null when the total does not fit int64, as documented. A
// sum whose running total leaves the range and comes back is exact: otherwise
// the output would depend on the order events arrive in, which differs
// between runs once several connections or shards feed a key.
TEST(AggregateEdgeTest, IntSumOverflowDoesNotDependOnEventOrder) {
  const PipelineSpec spec = edge_spec(false);
  constexpr int64_t kBig = 9'000'000'000'000'000'000;
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const std::vector<std::pair<std::string, std::vector<int64_t>>> sums = {
      {"up-down-up", {kBig, -kBig, kBig}},  // stays in range: 9e18
      {"up-up-down", {kBig, kBig, -kBig}},  // the same values in another order: 9e18
      {"overflow", {kBig, kBig}},           // 1.8e19 does not fit: null
      {"underflow", {-kBig, -kBig}},        // nor does -1.8e19: null
      {"min-then-back", {kMin, -1, 1}},     // INT64_MIN
      {"max-then-back", {kMax, 1, -1}},     // INT64_MAX
      {"extremes", {kMin, kMax}},           // -1
  };
  std::mt19937_64 rng(11);
  std::vector<InputLine> lines;
  int64_t t = 1000;
  for (const auto& [key, values] : sums) {
    for (int64_t v : values) {
      const Event e = edge_event(t++, key, v, 1.5);
      lines.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
    }
  }
  run_lines_file_and_expect(spec, lines, 1);
}

TEST(AggregateEdgeTest, FloatSumThatOverflowsIsNull) {
  const PipelineSpec spec = edge_spec(false);
  std::mt19937_64 rng(12);
  std::vector<InputLine> lines;
  for (double x : {1e308, 1e308, -1.5}) {
    const Event e = edge_event(2000, "huge", 1, x);
    lines.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
  }
  const Event e = edge_event(2000, "small", 1, 2.25);
  lines.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
  run_lines_file_and_expect(spec, lines, 2);
}

// window_start = floor(t / size) * size also below zero: -1 ms is in the
// window [-60 s, 0), not in [0, 60 s).
TEST(AggregateEdgeTest, WindowsBeforeTheEpochUseFloor) {
  const PipelineSpec spec = edge_spec(true);
  std::mt19937_64 rng(13);
  std::vector<InputLine> lines;
  for (int64_t ms : {-120'001, -120'000, -60'001, -60'000, -1, 0, 59'999, 60'000}) {
    for (const char* key : {"a", "b"}) {
      const Event e = edge_event(ms, key, ms, double(ms) / 8);
      lines.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
    }
  }
  run_lines_file_and_expect(spec, lines, 2);
}

}  // namespace
}  // namespace sluice::integration
