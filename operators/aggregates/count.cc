// count: events per window and key; with a field, the events that have it
// (the same unless the field is optional). Its state is the entry's event
// count (slot 0) less the events that lacked its field, both kept by the
// layout, so it has none of its own.
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
        [](const Value*, int64_t values, FieldType) {
          AggValue r;
          r.kind = AggValue::Kind::int64;
          r.v.i = values;
          return r;
        },
    .serialized_bytes_max = [](FieldType) -> uint32_t { return 0; },
    .serialize = [](const Value*, FieldType, char*) -> size_t { return 0; },
    .deserialize = [](Value*, FieldType, const char*, size_t len) { return len == 0; },
    .destroy = nullptr,
    .inline_op = [](FieldType) { return AggOp::count; },
};

}  // namespace sluice
