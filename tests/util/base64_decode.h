// Test helper: strict RFC 4648 base64 decoding (padding only at the end), to
// check the engine's raw_base64 dead-letter fields. Written for the tests,
// independent of the engine's encoder.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::testing_util {

inline std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int j = 0; j < 4; ++j) {
      if (in[i + j] == '=' && i + 4 == in.size() && j >= 2) {
        v[j] = 0;
        ++pad;
      } else {
        if (pad) return std::nullopt;  // data after padding
        v[j] = value(in[i + j]);
        if (v[j] < 0) return std::nullopt;
      }
    }
    uint32_t n = uint32_t(v[0]) << 18 | uint32_t(v[1]) << 12 | uint32_t(v[2]) << 6 | uint32_t(v[3]);
    out.push_back(char(n >> 16));
    if (pad < 2) out.push_back(char((n >> 8) & 0xff));
    if (pad < 1) out.push_back(char(n & 0xff));
  }
  return out;
}

}  // namespace sluice::testing_util
