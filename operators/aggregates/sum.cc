// sum: exact for int64 fields (a 128-bit sum; null when the total is outside
// int64), compensated (Neumaier) for float64 fields, so the result does not
// depend on the order events arrive in. Over no value at all: null.
#include <limits>

#include "operators/aggregates/inline_state.h"

namespace sluice {

namespace {
// No value at all (every event lacked an optional field): null, as SQL's SUM.
AggValue sum_result(const Value* a, int64_t values, FieldType t) {
  if (values == 0) return AggValue{};
  if (t == FieldType::float64) return aggregates::float_value(a[0].f + a[1].f);
  AggValue r;
  const __int128 sum = int128_value(a);
  if (sum >= std::numeric_limits<int64_t>::min() && sum <= std::numeric_limits<int64_t>::max()) {
    r.kind = AggValue::Kind::int64;
    r.v.i = int64_t(sum);
  }
  return r;
}
}  // namespace

extern const AggregateFunction kSumFunction = aggregates::sum_like(AggFn::sum, "sum", sum_result);

}  // namespace sluice
