// count: events per window and key. Its state is the entry's own event count
// (slot 0, kept by the layout), so it has none of its own.
#include "operators/aggregate.h"

namespace sluice {

extern const AggregateFunction kCountFunction = {
    .config = {.name = AggFn::count.name,
               .verb = "count",
               .needs_field = false,
               .accepts = [](FieldType) { return true; }},
    .slots = [](FieldType) -> uint32_t { return 0; },
    .init = [](Value*, FieldType, const AggParams&) {},
    .update = [](Value*, Value, FieldType) {},
    .merge = [](Value*, const Value*, FieldType) {},
    .finalize =
        [](const Value*, int64_t events, FieldType) {
          AggValue r;
          r.kind = AggValue::Kind::int64;
          r.v.i = events;
          return r;
        },
    .serialized_bytes_max = [](FieldType) -> uint32_t { return 0; },
    .serialize = [](const Value*, FieldType, char*) -> size_t { return 0; },
    .deserialize = [](Value*, FieldType, const char*, size_t len) { return len == 0; },
    .destroy = nullptr,
    .inline_op = [](FieldType) { return AggOp::count; },
};

}  // namespace sluice
