// min and max: one slot, starting at the type's far end, so the first event
// always replaces it. Over no value at all: null (not the far end).
#include <limits>

#include "operators/aggregates/inline_state.h"

namespace sluice {

using namespace aggregates;

namespace {

template <bool kMin>
void init_extreme(Value* a, FieldType t, const AggParams&) {
  if (t == FieldType::int64) {
    a[0].i = kMin ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  } else {
    a[0].f = kMin ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
  }
}

template <bool kMin>
void update_extreme(Value* a, Value v, FieldType t) {
  if (t == FieldType::int64) {
    if (kMin ? v.i < a[0].i : v.i > a[0].i) a[0].i = v.i;
  } else if (kMin ? v.f < a[0].f : v.f > a[0].f) {
    a[0].f = v.f;
  }
}

template <bool kMin>
void merge_extreme(Value* into, const Value* from, FieldType t) {
  update_extreme<kMin>(into, from[0], t);
}

AggValue finalize_extreme(const Value* a, int64_t values, FieldType t) {
  if (values == 0) return AggValue{};
  if (t == FieldType::float64) return float_value(a[0].f);
  AggValue r;
  r.kind = AggValue::Kind::int64;
  r.v.i = a[0].i;
  return r;
}

template <bool kMin>
AggOp extreme_op(FieldType t) {
  if (kMin) return t == FieldType::int64 ? AggOp::min_int : AggOp::min_float;
  return t == FieldType::int64 ? AggOp::max_int : AggOp::max_float;
}

template <bool kMin>
constexpr AggregateFunction extreme(AggFn name, const char* verb) {
  return AggregateFunction{
      .config = {.name = name.name, .verb = verb, .needs_field = true, .accepts = numeric},
      .slots = fixed_slots<1>,
      .init = init_extreme<kMin>,
      .update = update_extreme<kMin>,
      .merge = merge_extreme<kMin>,
      .finalize = finalize_extreme,
      .serialized_bytes_max = fixed_bytes<1>,
      .serialize = copy_out<1>,
      .deserialize = copy_in<1>,
      .destroy = nullptr,
      .inline_op = extreme_op<kMin>,
  };
}

}  // namespace

extern const AggregateFunction kMinFunction = extreme<true>(AggFn::min, "take the min of");
extern const AggregateFunction kMaxFunction = extreme<false>(AggFn::max, "take the max of");

}  // namespace sluice
