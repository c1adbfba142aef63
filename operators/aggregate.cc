#include "operators/aggregate.h"

#include <cmath>

#include "core/assert.h"

namespace sluice {

AggLayout::AggLayout(const std::vector<AggregateConfig>& aggregates, const SchemaConfig& schema) {
  for (const AggregateConfig& a : aggregates) {
    AggSpec s{a.fn, FieldType::int64, a.fn == AggFn::count ? -1 : a.field_index, slots_};
    if (s.field_index >= 0) {
      s.type = schema.fields[size_t(s.field_index)].type;
      SLUICE_ASSERT(s.type != FieldType::string);  // refused by the config loader
    }
    switch (a.fn) {
      case AggFn::count: break;
      case AggFn::sum:  // int64: 128-bit sum; float64: sum + compensation
      case AggFn::avg:  // int64: 128-bit sum; float64: sum + compensation
        slots_ += 2;
        break;
      case AggFn::min:
      case AggFn::max: slots_ += 1; break;
    }
    specs_.push_back(s);
  }
}

void AggLayout::init(Value* acc) const {
  for (uint32_t i = 0; i < slots_; ++i) acc[i].i = 0;
  for (const AggSpec& s : specs_) {
    Value* a = acc + s.slot;
    switch (s.fn) {
      case AggFn::sum:
      case AggFn::avg:
        if (s.type == FieldType::float64) {
          a[0].f = 0.0;
          a[1].f = 0.0;
        }
        break;
      case AggFn::min:
        if (s.type == FieldType::int64) {
          a[0].i = std::numeric_limits<int64_t>::max();
        } else {
          a[0].f = std::numeric_limits<double>::infinity();
        }
        break;
      case AggFn::max:
        if (s.type == FieldType::int64) {
          a[0].i = std::numeric_limits<int64_t>::min();
        } else {
          a[0].f = -std::numeric_limits<double>::infinity();
        }
        break;
      case AggFn::count: break;
    }
  }
}

AggValue AggLayout::result(const Value* acc, size_t index) const {
  const AggSpec& s = specs_[index];
  const Value* a = acc + s.slot;
  AggValue r;
  auto as_float = [&](double f) {
    // JSON has no inf/nan: an overflowing float sum is reported as null.
    if (std::isfinite(f)) {
      r.kind = AggValue::Kind::float64;
      r.v.f = f;
    }
  };
  switch (s.fn) {
    case AggFn::count:
      r.kind = AggValue::Kind::int64;
      r.v.i = acc[0].i;
      break;
    case AggFn::sum:
      if (s.type == FieldType::int64) {
        __int128 sum = int128_value(a);
        if (sum >= std::numeric_limits<int64_t>::min() && sum <= std::numeric_limits<int64_t>::max()) {
          r.kind = AggValue::Kind::int64;
          r.v.i = int64_t(sum);
        }
      } else {
        as_float(a[0].f + a[1].f);
      }
      break;
    case AggFn::min:
    case AggFn::max:
      if (s.type == FieldType::int64) {
        r.kind = AggValue::Kind::int64;
        r.v.i = a[0].i;
      } else {
        as_float(a[0].f);
      }
      break;
    case AggFn::avg:
      if (s.type == FieldType::int64) {
        // long double keeps the quotient exact enough that e.g. the mean of
        // INT64_MIN and INT64_MAX comes out as -0.5.
        as_float(double(static_cast<long double>(int128_value(a)) / static_cast<long double>(acc[0].i)));
      } else {
        as_float((a[0].f + a[1].f) / double(acc[0].i));
      }
      break;
  }
  return r;
}

}  // namespace sluice
