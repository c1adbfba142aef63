// A test-only aggregate function with out-of-line state: the exact number of
// distinct int64 values (or strings, by hash), kept in a sorted heap array the entry's one inline
// slot points to. It proves the aggregate seam: one file, registered with one
// line (register_aggregate_function(&kTestDistinctFunction)), used by
// AggLayout and WindowSet without either knowing it, its state merged,
// serialised and given back (live_states() counts what is held).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <string_view>
#include <vector>

#include "tests/plugins/plugins.h"

namespace sluice::test_plugins {

namespace {

// Shards update their own entries on their own threads: a shared count.
std::atomic<int64_t> g_live{0};

std::vector<int64_t>*& set_of(Value* state) { return *reinterpret_cast<std::vector<int64_t>**>(state); }
const std::vector<int64_t>* set_of(const Value* state) {
  return *reinterpret_cast<std::vector<int64_t>* const*>(state);
}
// Out of line: allocated on the first value, not at init.
std::vector<int64_t>& ensure(Value* state) {
  if (set_of(state) == nullptr) {
    set_of(state) = new std::vector<int64_t>();
    ++g_live;
  }
  return *set_of(state);
}
void insert(std::vector<int64_t>& set, int64_t v) {
  auto it = std::lower_bound(set.begin(), set.end(), v);
  if (it == set.end() || *it != v) set.insert(it, v);
}

constexpr uint32_t kValuesMax = 1024;  // serialised size bound

}  // namespace

int64_t live_distinct_states() { return g_live.load(); }

extern const AggregateFunction kTestDistinctFunction = {
    .config = {.name = kTestDistinct.name,
               .verb = "count the distinct values of",
               .needs_field = true,
               .accepts = [](FieldType t) { return t == FieldType::int64 || t == FieldType::string; }},
    .slots = [](FieldType) -> uint32_t { return 1; },
    .init = [](Value* state, FieldType, const AggParams&) { set_of(state) = nullptr; },
    // A string counts by a 64-bit hash of its bytes (no collision among the
    // few hundred values a test uses).
    .update =
        [](Value* state, Value v, FieldType t) {
          if (t == FieldType::string) {
            const auto* s = reinterpret_cast<const std::string_view*>(intptr_t(v.i));
            insert(ensure(state), int64_t(std::hash<std::string_view>{}(*s)));
          } else {
            insert(ensure(state), v.i);
          }
        },
    .merge =
        [](Value* into, const Value* from, FieldType) {
          if (set_of(from) == nullptr) return;
          for (int64_t v : *set_of(from)) insert(ensure(into), v);
        },
    .finalize =
        [](const Value* state, int64_t, FieldType) {
          AggValue r;
          r.kind = AggValue::Kind::int64;
          r.v.i = set_of(state) == nullptr ? 0 : int64_t(set_of(state)->size());
          return r;
        },
    .serialized_bytes_max = [](FieldType) -> uint32_t { return 8 * kValuesMax; },
    .serialize =
        [](const Value* state, FieldType, char* out) -> size_t {
          if (set_of(state) == nullptr) return 0;
          const size_t n = std::min<size_t>(set_of(state)->size(), kValuesMax);
          std::memcpy(out, set_of(state)->data(), 8 * n);
          return 8 * n;
        },
    .deserialize =
        [](Value* state, FieldType, const char* in, size_t len) {
          if (len % 8 != 0) return false;
          for (size_t i = 0; i < len; i += 8) {
            int64_t v;
            std::memcpy(&v, in + i, 8);
            insert(ensure(state), v);
          }
          return true;
        },
    .destroy =
        [](Value* state, FieldType) {
          if (set_of(state) == nullptr) return;
          delete set_of(state);
          set_of(state) = nullptr;
          --g_live;
        },
    .inline_op = [](FieldType) { return AggOp::call; },
};

}  // namespace sluice::test_plugins
