#include "operators/aggregate.h"

#include <algorithm>
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
    // Over an optional field (count names one only to count its values).
    if (a.field_index >= 0 && schema.fields[size_t(a.field_index)].presence == FieldPresence::optional) {
      SLUICE_ASSERT(a.field_index < int(kValueFieldsMax));
      s.absent_bit = uint32_t(1) << a.field_index;
    }
    specs_.push_back(s);
  }
  // One absent count per optional field read, after every aggregate's slots.
  for (AggSpec& s : specs_) {
    if (s.absent_bit == 0) continue;
    auto it = std::ranges::find(absent_counts_, s.absent_bit, &AbsentCount::bit);
    if (it == absent_counts_.end()) {
      absent_counts_.push_back({s.absent_bit, slots_++});
      absent_read_ |= s.absent_bit;
      serialized_max_ += 8;
      it = absent_counts_.end() - 1;
    }
    s.absent_slot = it->slot;
  }
}

void AggLayout::update_without(Value* acc, const Value* values, std::string_view text, uint32_t absent) const {
  for (const AbsentCount& c : absent_counts_) {
    if ((absent & c.bit) != 0) acc[c.slot].i += 1;
  }
  for (const AggSpec& s : specs_) {
    if ((absent & s.absent_bit) == 0) apply(s, acc, values, text);
  }
}

void AggLayout::init(Value* acc) const {
  for (uint32_t i = 0; i < slots_; ++i) acc[i].i = 0;
  for (const AggSpec& s : specs_) s.fn->init(acc + s.slot, s.type, s.params);
}

void AggLayout::merge(Value* into, const Value* from) const {
  into[0].i += from[0].i;
  for (const AbsentCount& c : absent_counts_) into[c.slot].i += from[c.slot].i;
  for (const AggSpec& s : specs_) s.fn->merge(into + s.slot, from + s.slot, s.type);
}

AggValue AggLayout::result(const Value* acc, size_t index) const {
  const AggSpec& s = specs_[index];
  return s.fn->finalize(acc + s.slot, values_of(acc, index), s.type);
}

void AggLayout::destroy(Value* acc) const {
  if (!out_of_line_) return;
  for (const AggSpec& s : specs_) {
    if (s.fn->destroy != nullptr) s.fn->destroy(acc + s.slot, s.type);
  }
}

// The event count, each absent count, then per aggregate: u32 length, its bytes.
size_t AggLayout::serialize(const Value* acc, char* out) const {
  char* p = out;
  std::memcpy(p, &acc[0].i, 8);
  p += 8;
  for (const AbsentCount& c : absent_counts_) {
    std::memcpy(p, &acc[c.slot].i, 8);
    p += 8;
  }
  for (const AggSpec& s : specs_) {
    const uint32_t n = uint32_t(s.fn->serialize(acc + s.slot, s.type, p + 4));
    std::memcpy(p, &n, 4);
    p += 4 + n;
  }
  return size_t(p - out);
}

bool AggLayout::deserialize(Value* acc, const char* in, size_t len) const {
  init(acc);
  const size_t counts = 8 * (1 + absent_counts_.size());
  if (len < counts) return false;
  std::memcpy(&acc[0].i, in, 8);
  size_t off = 8;
  for (const AbsentCount& c : absent_counts_) {
    std::memcpy(&acc[c.slot].i, in + off, 8);
    // No more events lacked the field than there were events.
    if (acc[c.slot].i < 0 || acc[c.slot].i > acc[0].i) {
      init(acc);
      return false;
    }
    off += 8;
  }
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
