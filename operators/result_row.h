// Result rows in their binary form, as shards hand them to the gatherer:
//
//   int64 window_start | uint16 key_len | key bytes | per aggregate: uint8 kind, 8-byte value
//   | per exported state: uint32 length, the aggregate's state bytes
//
// (little-endian, unaligned). The gatherer decodes them to sort and to
// encode into each sink's text format. Exported states are the serialized
// states (AggregateFunction::serialize) of the aggregates some sink writes as
// such (a Redis sink's HyperLogLog `sketches`), in the order of
// exported_states(config); most pipelines export none.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "operators/aggregate.h"

namespace sluice {

constexpr size_t result_row_bytes(size_t key_len, size_t aggregates) {
  return 8 + 2 + key_len + aggregates * 9;
}

// Bytes of a row with exported states of `states_bytes` bytes in all.
constexpr size_t result_row_bytes(size_t key_len, size_t aggregates, size_t states, size_t states_bytes) {
  return result_row_bytes(key_len, aggregates) + 4 * states + states_bytes;
}

inline size_t write_result_row(int64_t window_start, std::string_view key, const AggValue* values,
                               size_t n, char* out, const std::string_view* states = nullptr,
                               size_t nstates = 0) {
  char* p = out;
  std::memcpy(p, &window_start, 8);
  uint16_t key_len = uint16_t(key.size());
  std::memcpy(p + 8, &key_len, 2);
  std::memcpy(p + 10, key.data(), key.size());
  p += 10 + key.size();
  for (size_t i = 0; i < n; ++i) {
    *p = char(values[i].kind);
    std::memcpy(p + 1, &values[i].v, 8);
    p += 9;
  }
  for (size_t i = 0; i < nstates; ++i) {
    const uint32_t len = uint32_t(states[i].size());
    std::memcpy(p, &len, 4);
    std::memcpy(p + 4, states[i].data(), len);
    p += 4 + len;
  }
  return size_t(p - out);
}

// A decoded view of one row. REQUIRES: `row` was written by write_result_row.
struct ResultRowView {
  int64_t window_start;
  std::string_view key;
  const char* aggs;  // n * 9 bytes
  size_t bytes;      // total encoded length
  const char* states_at = nullptr;
  size_t states = 0;

  static ResultRowView parse(const char* row, size_t aggregates, size_t states = 0) {
    ResultRowView v;
    std::memcpy(&v.window_start, row, 8);
    uint16_t key_len;
    std::memcpy(&key_len, row + 8, 2);
    v.key = {row + 10, key_len};
    v.aggs = row + 10 + key_len;
    v.bytes = result_row_bytes(key_len, aggregates);
    v.states_at = row + v.bytes;
    v.states = states;
    for (size_t i = 0; i < states; ++i) {
      uint32_t len;
      std::memcpy(&len, row + v.bytes, 4);
      v.bytes += 4 + len;
    }
    return v;
  }
  // Exported state i (see the top of this file).
  std::string_view state(size_t i) const {
    const char* p = states_at;
    for (;;) {
      uint32_t len;
      std::memcpy(&len, p, 4);
      if (i-- == 0) return {p + 4, len};
      p += 4 + len;
    }
  }
  AggValue agg(size_t i) const {
    AggValue a;
    a.kind = AggValue::Kind(uint8_t(aggs[i * 9]));
    std::memcpy(&a.v, aggs + i * 9 + 1, 8);
    return a;
  }
};

// Orders encoded keys for `order = "key"`: field by field in schema order,
// integers before strings, integers numerically, strings bytewise.
int compare_keys(std::string_view a, std::string_view b);

}  // namespace sluice
