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
#include <vector>

#include "core/config_model.h"
#include "operators/event.h"

namespace sluice {

struct AggSpec {
  AggFn fn;
  FieldType type;       // of the field; int64 for count
  int field_index;      // -1 for count
  uint32_t slot;        // first accumulator slot of this aggregate
};

// The final value of one aggregate for one entry, as written to the output.
struct AggValue {
  enum class Kind : uint8_t { null, int64, float64 } kind = Kind::null;
  Value v{};
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

class AggLayout {
 public:
  explicit AggLayout(const std::vector<AggregateConfig>& aggregates, const SchemaConfig& schema);

  uint32_t slots() const { return slots_; }
  const std::vector<AggSpec>& specs() const { return specs_; }

  // Initialises a fresh entry's accumulators (before its first update).
  void init(Value* acc) const;
  // Folds one event into an entry.
  void update(Value* acc, const Value* values) const;
  // Final value of aggregate `a` of an entry.
  AggValue result(const Value* acc, size_t a) const;

 private:
  std::vector<AggSpec> specs_;
  uint32_t slots_ = 1;
};

inline void AggLayout::update(Value* acc, const Value* values) const {
  acc[0].i += 1;
  for (const AggSpec& s : specs_) {
    Value* a = acc + s.slot;
    switch (s.fn) {
      case AggFn::count:
        break;  // slot 0 is the count
      case AggFn::sum:
        if (s.type == FieldType::int64) {
          // Exact: a 128-bit sum over two slots cannot overflow (2^64 events
          // of any int64), so only a final sum outside int64 is null.
          int128_add(a, values[s.field_index].i);
        } else {
          neumaier_add(a, values[s.field_index].f);
        }
        break;
      case AggFn::min:
        if (s.type == FieldType::int64) {
          if (values[s.field_index].i < a[0].i) a[0].i = values[s.field_index].i;
        } else if (values[s.field_index].f < a[0].f) {
          a[0].f = values[s.field_index].f;
        }
        break;
      case AggFn::max:
        if (s.type == FieldType::int64) {
          if (values[s.field_index].i > a[0].i) a[0].i = values[s.field_index].i;
        } else if (values[s.field_index].f > a[0].f) {
          a[0].f = values[s.field_index].f;
        }
        break;
      case AggFn::avg:
        if (s.type == FieldType::int64) {
          int128_add(a, values[s.field_index].i);  // exact; divided once at the end
        } else {
          neumaier_add(a, values[s.field_index].f);
        }
        break;
    }
  }
}

}  // namespace sluice
