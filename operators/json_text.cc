#include "operators/json_text.h"

#include <simdjson.h>

#include <charconv>
#include <cstring>

namespace sluice {

size_t json_quote(std::string_view s, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  char* p = out;
  *p++ = '"';
  for (unsigned char c : s) {
    if (c >= 0x20 && c != '"' && c != '\\') {
      *p++ = char(c);
      continue;
    }
    *p++ = '\\';
    switch (c) {
      case '"': *p++ = '"'; break;
      case '\\': *p++ = '\\'; break;
      case '\n': *p++ = 'n'; break;
      case '\r': *p++ = 'r'; break;
      case '\t': *p++ = 't'; break;
      case '\b': *p++ = 'b'; break;
      case '\f': *p++ = 'f'; break;
      default:
        *p++ = 'u';
        *p++ = '0';
        *p++ = '0';
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 15];
    }
  }
  *p++ = '"';
  return size_t(p - out);
}

size_t csv_field(std::string_view s, char* out) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    std::memcpy(out, s.data(), s.size());
    return s.size();
  }
  char* p = out;
  *p++ = '"';
  for (char c : s) {
    if (c == '"') *p++ = '"';
    *p++ = c;
  }
  *p++ = '"';
  return size_t(p - out);
}

size_t write_int64(int64_t v, char* out) {
  return size_t(std::to_chars(out, out + kNumberBytesMax, v).ptr - out);
}

size_t write_double(double v, char* out) {
  char* end = std::to_chars(out, out + kNumberBytesMax, v).ptr;
  size_t n = size_t(end - out);
  if (std::memchr(out, '.', n) == nullptr && std::memchr(out, 'e', n) == nullptr) {
    // An integral value. Large ones can come out in fixed notation with every
    // digit (to_chars prefers fixed on a length tie); the ".0" we add would
    // then make scientific notation the shorter form.
    char sci[kNumberBytesMax];
    size_t m = size_t(std::to_chars(sci, sci + kNumberBytesMax, v, std::chars_format::scientific).ptr - sci);
    if (m < n + 2) {
      std::memcpy(out, sci, m);
      return m;
    }
    out[n++] = '.';
    out[n++] = '0';
  }
  return n;
}

bool is_valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

size_t base64_encode(std::string_view s, char* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* in = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), o = 0, i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = uint32_t(in[i]) << 16 | uint32_t(in[i + 1]) << 8 | in[i + 2];
    out[o++] = kAlphabet[v >> 18];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = kAlphabet[(v >> 6) & 63];
    out[o++] = kAlphabet[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t(in[i]) << 16 | (i + 1 < n ? uint32_t(in[i + 1]) << 8 : 0);
    out[o++] = kAlphabet[v >> 18];
    out[o++] = kAlphabet[(v >> 12) & 63];
    out[o++] = i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  return o;
}

}  // namespace sluice
