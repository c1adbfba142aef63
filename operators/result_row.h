// Result rows in their binary form, as shards hand them to the gatherer:
//
//   int64 window_start | uint16 key_len | key bytes | per aggregate: uint8 kind, 8-byte value
//
// (little-endian, unaligned). The gatherer decodes them to sort and to
// encode into each sink's text format.
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

inline size_t write_result_row(int64_t window_start, std::string_view key, const AggValue* values,
                               size_t n, char* out) {
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
  return size_t(p - out);
}

// A decoded view of one row. REQUIRES: `row` was written by write_result_row.
struct ResultRowView {
  int64_t window_start;
  std::string_view key;
  const char* aggs;  // n * 9 bytes
  size_t bytes;      // total encoded length

  static ResultRowView parse(const char* row, size_t aggregates) {
    ResultRowView v;
    std::memcpy(&v.window_start, row, 8);
    uint16_t key_len;
    std::memcpy(&key_len, row + 8, 2);
    v.key = {row + 10, key_len};
    v.aggs = row + 10 + key_len;
    v.bytes = result_row_bytes(key_len, aggregates);
    return v;
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
