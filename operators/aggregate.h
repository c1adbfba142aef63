// Aggregate functions over a window's events for one key.
//
// Every (window, key) entry holds a fixed block of 8-byte accumulator slots:
// slot 0 is the entry's event count, then each aggregate's own slots. The
// layout is computed once from the config; update() is the per-event path.
//
// Float sums (sum and avg) use Neumaier's compensated summation: a second
// slot carries the rounding error of each addition. The result is then the
// correctly rounded sum in practice, independent of the order events arrive
// in (which differs between runs once several connections or shards feed a
// key), and prints as 59.97 rather than 59.970000000000006.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include "core/config_kinds.h"
#include "core/config_model.h"
#include "operators/event.h"

namespace sluice {

// The final value of one aggregate for one entry, as written to the output.
struct AggValue {
  enum class Kind : uint8_t { null, int64, float64 } kind = Kind::null;
  Value v{};
};

// The update of a built-in function, inlined by AggLayout::update (the
// per-event path); `call` goes through the function table.
enum class AggOp : uint8_t { count, sum_int, sum_float, min_int, min_float, max_int, max_float, call };

// One aggregate function: a table of functions over its state for one
// (window, key) entry. The state is `slots` 8-byte Values inline in the
// entry, right after the entry's event count (slot 0, kept by the layout).
// State that is larger (a sketch of kilobytes) lives out of line: its inline
// slot holds the owner of memory that init() leaves empty, update() and
// merge() fill, and destroy() gives back when the entry is dropped, so a
// large state never sits in the 64-byte entry.
//
// Adding one: a file in operators/aggregates/ that defines an
// AggregateFunction, plus its line in operators/aggregates/aggregates.cc.
struct AggregateFunction {
  // Its part of the config: its name (`fn = "..."`), whether it needs a field
  // and of which types, its own keys (params) and how to read them.
  AggregateConfigKind config;
  AggFn name() const { return AggFn{config.name}; }
  uint32_t (*slots)(FieldType);
  // params: the aggregate's own (AggregateConfig::params, read by config.parse).
  void (*init)(Value* state, FieldType, const AggParams& params);
  // A string field's value arrives as the address of its std::string_view
  // (value.i; valid during the call).
  void (*update)(Value* state, Value value, FieldType);
  // Folds `from` (the same function's state over other events of the same
  // window and key) into `into`.
  void (*merge)(Value* into, const Value* from, FieldType);
  // The output value. values: how many events it was given (update() calls,
  // merged ones included): the entry's event count, less the events whose
  // (optional) field was absent. 0 only over an optional field: no value at
  // all, which the built-ins write as null (count and distinct counts as 0).
  AggValue (*finalize)(const Value* state, int64_t values, FieldType);
  // State as bytes and back (checkpoints). serialize() writes at most
  // serialized_bytes_max() bytes; deserialize() returns false on bytes it
  // did not write (a corrupt checkpoint), leaving the state initialised.
  uint32_t (*serialized_bytes_max)(FieldType);
  size_t (*serialize)(const Value* state, FieldType, char* out);
  bool (*deserialize)(Value* state, FieldType, const char* in, size_t len);
  // Out-of-line state: give it back (nullptr when the state is inline only).
  void (*destroy)(Value* state, FieldType);
  // The inlined update of a built-in, for the per-event path; the op for a
  // field of type `type` (AggOp::call for functions without one).
  AggOp (*inline_op)(FieldType type);
};

// The function registered under `name`, or nullptr.
const AggregateFunction* find_aggregate_function(AggFn name);
// Adds a function to the registry (start-up, before configs are built; the
// built-ins are in operators/aggregates/aggregates.cc). A test or a plugin
// registers its own this way.
void register_aggregate_function(const AggregateFunction* function);
// Every registered function, built-ins first.
const std::vector<const AggregateFunction*>& aggregate_functions();

struct AggSpec {
  const AggregateFunction* fn;
  AggOp op;
  FieldType type;       // of the field; int64 for count
  int field_index;      // -1 for count
  uint32_t slot;        // first accumulator slot of this aggregate
  AggParams params;
  // Over an optional field (count's too, when it names one): the bit of that
  // field in Event::absent (an event without it is skipped), and the slot
  // counting the entry's events that lacked it. 0 and 0 otherwise.
  uint32_t absent_bit = 0;
  uint32_t absent_slot = 0;
};

// a[0]: low 64 bits, a[1]: high 64 bits of a 128-bit integer sum.
inline void int128_add(Value* a, int64_t x) {
  __int128 sum = (__int128(a[1].i) << 64) | __int128(uint64_t(a[0].i));
  sum += x;
  a[0].i = int64_t(uint64_t(sum));
  a[1].i = int64_t(sum >> 64);
}
inline __int128 int128_value(const Value* a) {
  return (__int128(a[1].i) << 64) | __int128(uint64_t(a[0].i));
}

// a[0]: running sum, a[1]: running compensation.
inline void neumaier_add(Value* a, double x) {
  double sum = a[0].f;
  double t = sum + x;
  if (__builtin_fabs(sum) >= __builtin_fabs(x)) {
    a[1].f += (sum - t) + x;
  } else {
    a[1].f += (x - t) + sum;
  }
  a[0].f = t;
}

// The accumulators of one (window, key) entry for a pipeline's aggregates:
// slot 0 is the entry's event count, then each aggregate's state, then, per
// optional field some aggregate reads, the count of the entry's events that
// lacked it (absent or null; see Event::absent). Computed once from the
// config; update() is the per-event path.
//
// An aggregate over an optional field skips an event without it; every
// other aggregate of the event still takes it. What each one was given is
// the event count less its field's absent count, so an event with every
// field present costs nothing more than before optional fields existed.
class AggLayout {
 public:
  explicit AggLayout(const std::vector<AggregateConfig>& aggregates, const SchemaConfig& schema);

  uint32_t slots() const { return slots_; }
  const std::vector<AggSpec>& specs() const { return specs_; }
  // Some aggregate keeps state out of line: entries must be destroyed.
  bool has_out_of_line_state() const { return out_of_line_; }

  // Initialises a fresh entry's accumulators (before its first update).
  void init(Value* acc) const;
  // Folds one event into an entry (text: its carried strings, see event.h;
  // absent: Event::absent, its optional fields that it lacks).
  void update(Value* acc, const Value* values, std::string_view text = {}, uint32_t absent = 0) const;
  // Bit i set: value field i is a string some aggregate reads (the decoder
  // carries it to the owning shard).
  uint64_t strings_read() const { return strings_read_; }
  // Folds entry `from` (same window and key, other events) into `into`.
  void merge(Value* into, const Value* from) const;
  // Final value of aggregate `a` of an entry.
  AggValue result(const Value* acc, size_t a) const;
  // How many of the entry's events aggregate `a` took (all of them unless
  // its field is optional).
  int64_t values_of(const Value* acc, size_t a) const {
    const AggSpec& s = specs_[a];
    return s.absent_slot == 0 ? acc[0].i : acc[0].i - acc[s.absent_slot].i;
  }
  // Gives back out-of-line state; the entry must be init()ed before reuse.
  void destroy(Value* acc) const;
  // Aggregate a's state alone as bytes (a sink that writes the state
  // itself): at most state_bytes_max(a).
  size_t state_bytes_max(size_t a) const { return specs_[a].fn->serialized_bytes_max(specs_[a].type); }
  size_t serialize_state(const Value* acc, size_t a, char* out) const {
    return specs_[a].fn->serialize(acc + specs_[a].slot, specs_[a].type, out);
  }
  // The entry as bytes (checkpoints): at most serialized_bytes_max().
  // The event count, each absent count, then per aggregate a u32 length and
  // the function's own bytes.
  size_t serialized_bytes_max() const { return serialized_max_; }
  size_t serialize(const Value* acc, char* out) const;
  // False on bytes serialize() did not produce; acc is then initialised.
  bool deserialize(Value* acc, const char* in, size_t len) const;

 private:
  void apply(const AggSpec& s, Value* acc, const Value* values, std::string_view text) const;
  void update_without(Value* acc, const Value* values, std::string_view text, uint32_t absent) const;

  std::vector<AggSpec> specs_;
  uint32_t slots_ = 1;
  // The absent counts: per optional field read, its bit in Event::absent and
  // its slot. absent_read_: the union of those bits.
  struct AbsentCount {
    uint32_t bit;
    uint32_t slot;
  };
  std::vector<AbsentCount> absent_counts_;
  uint32_t absent_read_ = 0;
  bool out_of_line_ = false;
  uint64_t strings_read_ = 0;
  size_t serialized_max_ = 8;
};

// One aggregate's share of an event (inline: the built-ins' updates are the
// per-event path).
[[gnu::always_inline]] inline void AggLayout::apply(const AggSpec& s, Value* acc, const Value* values,
                                                     std::string_view text) const {
  Value* a = acc + s.slot;
  switch (s.op) {
    case AggOp::count:
      break;  // slot 0 is the count
    case AggOp::sum_int:
      // Exact: a 128-bit sum over two slots cannot overflow (2^64 events
      // of any int64), so only a final sum outside int64 is null. avg too.
      int128_add(a, values[s.field_index].i);
      break;
    case AggOp::sum_float:
      neumaier_add(a, values[s.field_index].f);
      break;
    case AggOp::min_int:
      if (values[s.field_index].i < a[0].i) a[0].i = values[s.field_index].i;
      break;
    case AggOp::min_float:
      if (values[s.field_index].f < a[0].f) a[0].f = values[s.field_index].f;
      break;
    case AggOp::max_int:
      if (values[s.field_index].i > a[0].i) a[0].i = values[s.field_index].i;
      break;
    case AggOp::max_float:
      if (values[s.field_index].f > a[0].f) a[0].f = values[s.field_index].f;
      break;
    case AggOp::call:
      if (s.type == FieldType::string) {
        std::string_view str = text_of(text, values[s.field_index]);
        Value v;
        v.i = int64_t(reinterpret_cast<intptr_t>(&str));
        s.fn->update(a, v, s.type);
      } else {
        s.fn->update(a, s.field_index >= 0 ? values[s.field_index] : Value{}, s.type);
      }
      break;
  }
}

inline void AggLayout::update(Value* acc, const Value* values, std::string_view text, uint32_t absent) const {
  acc[0].i += 1;
  // An event that lacks an optional field some aggregate reads (rare, and
  // never without optional fields) takes the longer way.
  if ((absent & absent_read_) != 0) [[unlikely]] {
    update_without(acc, values, text, absent);
    return;
  }
  for (const AggSpec& s : specs_) apply(s, acc, values, text);
}

}  // namespace sluice
