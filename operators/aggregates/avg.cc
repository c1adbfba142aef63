// avg: the sum as `sum` keeps it, divided by the event count once, at the end.
#include "operators/aggregates/inline_state.h"

namespace sluice {

using namespace aggregates;

extern const AggregateFunction kAvgFunction = {
    .name = AggFn::avg,
    .verb = "average",
    .needs_field = true,
    .accepts = numeric,
    .slots = fixed_slots<2>,
    .init = init_sum,
    .update = update_sum,
    .merge = merge_sum,
    .finalize =
        [](const Value* a, int64_t events, FieldType t) {
          if (t == FieldType::int64) {
            // long double keeps the quotient exact enough that e.g. the mean of
            // INT64_MIN and INT64_MAX comes out as -0.5.
            return float_value(
                double(static_cast<long double>(int128_value(a)) / static_cast<long double>(events)));
          }
          return float_value((a[0].f + a[1].f) / double(events));
        },
    .serialized_bytes_max = fixed_bytes<2>,
    .serialize = copy_out<2>,
    .deserialize = copy_in<2>,
    .destroy = nullptr,
    .inline_op = sum_op,
};

}  // namespace sluice
