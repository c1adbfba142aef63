// Helpers for aggregate functions whose state is a few inline 8-byte slots
// and whose bytes (for checkpoints) are those slots as they are.
#pragma once

#include <cstring>

#include "operators/aggregate.h"

namespace sluice::aggregates {

template <uint32_t kSlots>
uint32_t fixed_slots(FieldType) {
  return kSlots;
}

template <uint32_t kSlots>
uint32_t fixed_bytes(FieldType) {
  return kSlots * sizeof(Value);
}

template <uint32_t kSlots>
size_t copy_out(const Value* state, FieldType, char* out) {
  std::memcpy(out, state, kSlots * sizeof(Value));
  return kSlots * sizeof(Value);
}

template <uint32_t kSlots>
bool copy_in(Value* state, FieldType, const char* in, size_t len) {
  if (len != kSlots * sizeof(Value)) return false;
  std::memcpy(state, in, len);
  return true;
}

inline bool numeric(FieldType t) { return t == FieldType::int64 || t == FieldType::float64; }

// JSON has no inf/nan: a float that is not finite is reported as null.
inline AggValue float_value(double f) {
  AggValue r;
  if (__builtin_isfinite(f)) {
    r.kind = AggValue::Kind::float64;
    r.v.f = f;
  }
  return r;
}

// A compensated (Neumaier) or 128-bit integer sum in two slots, as sum and
// avg keep it.
inline void init_sum(Value* a, FieldType t, const AggParams&) {
  if (t == FieldType::float64) {
    a[0].f = 0.0;
    a[1].f = 0.0;
  } else {
    a[0].i = 0;
    a[1].i = 0;
  }
}
inline void update_sum(Value* a, Value v, FieldType t) {
  if (t == FieldType::int64) {
    int128_add(a, v.i);
  } else {
    neumaier_add(a, v.f);
  }
}
inline void merge_sum(Value* into, const Value* from, FieldType t) {
  if (t == FieldType::int64) {
    const __int128 sum = int128_value(into) + int128_value(from);
    into[0].i = int64_t(uint64_t(sum));
    into[1].i = int64_t(sum >> 64);
  } else {
    neumaier_add(into, from[0].f);
    into[1].f += from[1].f;
  }
}
inline AggOp sum_op(FieldType t) { return t == FieldType::int64 ? AggOp::sum_int : AggOp::sum_float; }

// A function whose state is a sum in two slots (sum, avg): they differ in
// their result only.
constexpr AggregateFunction sum_like(AggFn name, const char* verb,
                                     AggValue (*finalize)(const Value*, int64_t, FieldType)) {
  return AggregateFunction{
      .config = {.name = name.name, .verb = verb, .needs_field = true, .accepts = numeric},
      .slots = fixed_slots<2>,
      .init = init_sum,
      .update = update_sum,
      .merge = merge_sum,
      .finalize = finalize,
      .serialized_bytes_max = fixed_bytes<2>,
      .serialize = copy_out<2>,
      .deserialize = copy_in<2>,
      .destroy = nullptr,
      .inline_op = sum_op,
  };
}

}  // namespace sluice::aggregates
