// avg: the sum as `sum` keeps it, divided once, at the end, by the number of
// values it took (the event count less the events that lacked an optional
// field). Over no value at all: null.
#include "operators/aggregates/inline_state.h"

namespace sluice {

namespace {
AggValue avg_result(const Value* a, int64_t values, FieldType t) {
  if (values == 0) return AggValue{};
  if (t == FieldType::int64) {
    // long double keeps the quotient exact enough that e.g. the mean of
    // INT64_MIN and INT64_MAX comes out as -0.5.
    return aggregates::float_value(
        double(static_cast<long double>(int128_value(a)) / static_cast<long double>(values)));
  }
  return aggregates::float_value((a[0].f + a[1].f) / double(values));
}
}  // namespace

extern const AggregateFunction kAvgFunction = aggregates::sum_like(AggFn::avg, "average", avg_result);

}  // namespace sluice
