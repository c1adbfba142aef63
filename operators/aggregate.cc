#include "operators/aggregate.h"

#include <cstring>

#include "core/assert.h"

namespace sluice {

AggLayout::AggLayout(const std::vector<AggregateConfig>& aggregates, const SchemaConfig& schema) {
  for (const AggregateConfig& a : aggregates) {
    const AggregateFunction* fn = find_aggregate_function(a.fn);
    SLUICE_ASSERT(fn != nullptr);  // the config loader accepts registered functions only
    AggSpec s{fn, AggOp::call, FieldType::int64, fn->config.needs_field ? a.field_index : -1, slots_,
              a.params};
    if (s.field_index >= 0) {
      s.type = schema.fields[size_t(s.field_index)].type;
      SLUICE_ASSERT(fn->config.accepts(s.type));  // refused by the config loader
      if (s.type == FieldType::string) strings_read_ |= uint64_t(1) << s.field_index;
    }
    s.op = fn->inline_op(s.type);
    slots_ += fn->slots(s.type);
    out_of_line_ |= fn->destroy != nullptr;
    serialized_max_ += 4 + fn->serialized_bytes_max(s.type);
    specs_.push_back(s);
  }
}

void AggLayout::init(Value* acc) const {
  for (uint32_t i = 0; i < slots_; ++i) acc[i].i = 0;
  for (const AggSpec& s : specs_) s.fn->init(acc + s.slot, s.type, s.params);
}

void AggLayout::merge(Value* into, const Value* from) const {
  into[0].i += from[0].i;
  for (const AggSpec& s : specs_) s.fn->merge(into + s.slot, from + s.slot, s.type);
}

AggValue AggLayout::result(const Value* acc, size_t index) const {
  const AggSpec& s = specs_[index];
  return s.fn->finalize(acc + s.slot, acc[0].i, s.type);
}

void AggLayout::destroy(Value* acc) const {
  if (!out_of_line_) return;
  for (const AggSpec& s : specs_) {
    if (s.fn->destroy != nullptr) s.fn->destroy(acc + s.slot, s.type);
  }
}

// The event count, then per aggregate: u32 length, its bytes.
size_t AggLayout::serialize(const Value* acc, char* out) const {
  char* p = out;
  std::memcpy(p, &acc[0].i, 8);
  p += 8;
  for (const AggSpec& s : specs_) {
    const uint32_t n = uint32_t(s.fn->serialize(acc + s.slot, s.type, p + 4));
    std::memcpy(p, &n, 4);
    p += 4 + n;
  }
  return size_t(p - out);
}

bool AggLayout::deserialize(Value* acc, const char* in, size_t len) const {
  init(acc);
  if (len < 8) return false;
  std::memcpy(&acc[0].i, in, 8);
  size_t off = 8;
  for (const AggSpec& s : specs_) {
    uint32_t n;
    if (len - off < 4) return false;
    std::memcpy(&n, in + off, 4);
    off += 4;
    if (n > len - off || n > s.fn->serialized_bytes_max(s.type) ||
        !s.fn->deserialize(acc + s.slot, s.type, in + off, n)) {
      destroy(acc);
      init(acc);
      return false;
    }
    off += n;
  }
  if (off != len) {
    destroy(acc);
    init(acc);
    return false;
  }
  return true;
}

}  // namespace sluice
