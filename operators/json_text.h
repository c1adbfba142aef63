// Writing JSON and CSV text: string escaping, numbers. No allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice {

// Worst case of json_escape for n input bytes (every byte as \u00XX), plus quotes.
constexpr size_t json_escaped_bytes_max(size_t n) { return n * 6 + 2; }

// Writes `s` as a quoted JSON string. REQUIRES: s is valid UTF-8 and `out`
// has json_escaped_bytes_max(s.size()) bytes. Returns bytes written.
size_t json_quote(std::string_view s, char* out);

// Worst case of csv_field for n bytes (every byte a quote, doubled), plus quotes.
constexpr size_t csv_field_bytes_max(size_t n) { return n * 2 + 2; }
// Writes `s` as a CSV field (RFC 4180: quoted only when it holds , " CR or LF).
size_t csv_field(std::string_view s, char* out);

// Longest output of write_int64 / write_double.
constexpr size_t kNumberBytesMax = 32;
size_t write_int64(int64_t v, char* out);
// Shortest text that reads back as the same double; always shows it is a
// float ("3.0", not "3"). REQUIRES: finite.
size_t write_double(double v, char* out);

bool is_valid_utf8(std::string_view s);

// Base64 (RFC 4648, with padding) for bytes that are not UTF-8.
constexpr size_t base64_bytes(size_t n) { return (n + 2) / 3 * 4; }
size_t base64_encode(std::string_view s, char* out);

}  // namespace sluice
