// approx_count_distinct: the number of distinct values of a string or int64
// field, estimated by a HyperLogLog sketch that Redis would build from the
// same values (operators/hyperloglog.h): a string counts by its UTF-8 bytes,
// an integer by its decimal text, as PFADD receives them.
//
// State: two inline slots, the sketch (out of line, made on the first value)
// and the precision (`precision = 4..18`, default 14). Over no value at all
// (an optional field every event lacked) the sketch was never made: 0.
#include "core/config_reader.h"
#include "operators/aggregate.h"
#include "operators/hyperloglog.h"

namespace sluice {

namespace {

constexpr AggFn kApproxCountDistinct{"approx_count_distinct"};
constexpr std::string_view kKeys[] = {"precision"};

hll::Sketch*& sketch_of(Value* state) { return *reinterpret_cast<hll::Sketch**>(&state[0]); }
const hll::Sketch* sketch_of(const Value* state) { return *reinterpret_cast<hll::Sketch* const*>(&state[0]); }
uint32_t precision_of(const Value* state) { return uint32_t(state[1].i); }

hll::Sketch*& ensure(Value* state) {
  hll::Sketch*& s = sketch_of(state);
  if (s == nullptr) s = hll::create(precision_of(state));
  return s;
}

void parse(TableReader& r, AggregateConfig& aggregate) {
  int64_t p = hll::kPrecisionDefault;
  r.integer("precision", p, hll::kPrecisionMin, hll::kPrecisionMax);
  aggregate.params.precision = uint32_t(p);
}

}  // namespace

extern const AggregateFunction kApproxCountDistinctFunction = {
    .config = {.name = kApproxCountDistinct.name,
               .verb = "count the distinct values of",
               .needs_field = true,
               .accepts = [](FieldType t) { return t == FieldType::int64 || t == FieldType::string; },
               .keys = kKeys,
               .parse = parse},
    .slots = [](FieldType) -> uint32_t { return 2; },
    .init =
        [](Value* state, FieldType, const AggParams& params) {
          sketch_of(state) = nullptr;
          state[1].i = params.precision != 0 ? params.precision : hll::kPrecisionDefault;
        },
    .update =
        [](Value* state, Value v, FieldType t) {
          const uint64_t hash = t == FieldType::string
                                    ? hll::hash_bytes(*reinterpret_cast<const std::string_view*>(intptr_t(v.i)))
                                    : hll::hash_int(v.i);
          hll::add(ensure(state), hash);
        },
    .merge =
        [](Value* into, const Value* from, FieldType) {
          if (sketch_of(from) != nullptr) hll::merge(ensure(into), sketch_of(from));
        },
    .finalize =
        [](const Value* state, int64_t, FieldType) {
          AggValue r;
          r.kind = AggValue::Kind::int64;
          r.v.i = sketch_of(state) == nullptr ? 0 : int64_t(hll::count(sketch_of(state)));
          return r;
        },
    // The largest precision's: the layout sizes its scratch once for all.
    .serialized_bytes_max = [](FieldType) -> uint32_t {
      return uint32_t(hll::serialized_bytes_max(hll::kPrecisionMax));
    },
    .serialize =
        [](const Value* state, FieldType, char* out) -> size_t {
          return sketch_of(state) == nullptr ? 0 : hll::serialize(sketch_of(state), out);
        },
    .deserialize =
        [](Value* state, FieldType, const char* in, size_t len) {
          if (len == 0) return true;  // no value yet
          hll::Sketch* s = hll::deserialize(precision_of(state), in, len);
          if (s == nullptr) return false;
          sketch_of(state) = s;
          return true;
        },
    .destroy =
        [](Value* state, FieldType) {
          if (sketch_of(state) == nullptr) return;
          hll::destroy(sketch_of(state));
          sketch_of(state) = nullptr;
        },
    .inline_op = [](FieldType) { return AggOp::call; },
};

}  // namespace sluice
