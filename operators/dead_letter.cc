#include "operators/dead_letter.h"

#include <cstring>

#include "operators/json_text.h"

namespace sluice {

const char* to_string(DeadLetterReason r) {
  switch (r) {
    case DeadLetterReason::parse_error: return "parse_error";
    case DeadLetterReason::schema_error: return "schema_error";
    case DeadLetterReason::line_too_long: return "line_too_long";
    case DeadLetterReason::late: return "late";
    case DeadLetterReason::partial_line: return "partial_line";
    case DeadLetterReason::corrupt_batch: return "corrupt_batch";
    case DeadLetterReason::future: return "future";
  }
  return "?";
}

size_t dead_letter_bytes_max(const DeadLetter& d) {
  return 128 + json_escaped_bytes_max(d.detail.size()) + json_escaped_bytes_max(d.source.size()) +
         json_escaped_bytes_max(d.origin.size()) + json_escaped_bytes_max(d.raw.size()) +
         kNumberBytesMax;
}

namespace {
// A truncated prefix may end inside a UTF-8 sequence; cut before that
// sequence so the prefix stays text rather than turning into base64.
std::string_view trim_partial_utf8(std::string_view s) {
  size_t n = s.size();
  size_t back = 0;
  while (back < 4 && back < n && (static_cast<unsigned char>(s[n - 1 - back]) & 0xC0) == 0x80) {
    ++back;
  }
  if (back < n) {
    unsigned char lead = static_cast<unsigned char>(s[n - 1 - back]);
    size_t need = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 0;
    if (need != back + 1) return s.substr(0, n - 1 - back);
  }
  return s;
}
}  // namespace

size_t encode_dead_letter(const DeadLetter& d, char* out) {
  char* p = out;
  std::string_view raw = d.raw_truncated ? trim_partial_utf8(d.raw) : d.raw;
  auto lit = [&](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  lit("{\"reason\":\"");
  lit(to_string(d.reason));
  lit("\",\"detail\":");
  p += json_quote(d.detail, p);
  lit(",\"source\":");
  p += json_quote(d.source, p);
  if (!d.origin.empty()) {
    lit(",\"origin\":");
    p += json_quote(d.origin, p);
  }
  if (is_valid_utf8(raw)) {
    lit(",\"raw\":");
    p += json_quote(raw, p);
  } else {
    lit(",\"raw_base64\":\"");
    p += base64_encode(raw, p);
    *p++ = '"';
  }
  if (d.raw_truncated) {
    lit(",\"raw_truncated\":true,\"raw_bytes\":");
    p += write_int64(int64_t(d.raw_bytes), p);
  }
  lit("}\n");
  return size_t(p - out);
}

}  // namespace sluice
