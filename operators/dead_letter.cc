#include "operators/dead_letter.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/timestamp.h"
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

size_t rebuild_event_json(const SchemaConfig& schema, const Event& e, char* out, size_t cap) {
  char* p = out;
  char* const end = out + cap - 1;  // room kept for the closing brace
  // Room for `,"name":` plus a value of at most value_max bytes.
  auto fits = [&](std::string_view name, size_t value_max) {
    return size_t(end - p) >= 2 + json_escaped_bytes_max(name.size()) + value_max;
  };
  bool first = true;
  auto open_field = [&](std::string_view name) {
    if (!first) *p++ = ',';
    first = false;
    p += json_quote(name, p);
    *p++ = ':';
  };
  *p++ = '{';
  // The key's encoding (operators/event.h) is read defensively: a part that
  // would run past the key's bytes ends the key fields.
  size_t i = 0;
  for (size_t k = 0; k < schema.key.size() && i < e.key.size(); ++k) {
    const size_t left = e.key.size() - i;
    if (e.key[i] == kKeyInt) {
      if (left < 9) break;
      int64_t v;
      std::memcpy(&v, e.key.data() + i + 1, 8);
      i += 9;
      if (!fits(schema.key[k], kNumberBytesMax)) continue;
      open_field(schema.key[k]);
      p += write_int64(v, p);
    } else {
      if (e.key[i] != kKeyString || left < 5) break;
      uint32_t len;
      std::memcpy(&len, e.key.data() + i + 1, 4);
      if (len > left - 5) break;
      // Cut at a character boundary; a part that is not UTF-8 is left out.
      std::string_view sv = trim_partial_utf8(
          std::string_view(e.key.data() + i + 5, std::min<size_t>(len, kRebuiltKeyPartBytesMax)));
      i += 5 + len;
      if (!is_valid_utf8(sv)) continue;
      if (!fits(schema.key[k], json_escaped_bytes_max(sv.size()))) continue;
      open_field(schema.key[k]);
      p += json_quote(sv, p);
    }
  }
  if (fits(schema.time_field, kRfc3339BytesMax + 2)) {
    open_field(schema.time_field);
    *p++ = '"';
    p += format_rfc3339(e.time_ns, p);
    *p++ = '"';
  }
  for (size_t f = 0; f < schema.fields.size(); ++f) {
    if (schema.fields[f].type == FieldType::string || (e.absent >> f & 1) != 0 ||
        !fits(schema.fields[f].name, kNumberBytesMax)) {
      continue;
    }
    open_field(schema.fields[f].name);
    if (schema.fields[f].type == FieldType::int64) {
      p += write_int64(e.values[f].i, p);
    } else if (std::isfinite(e.values[f].f)) {
      p += write_double(e.values[f].f, p);
    } else {
      std::memcpy(p, "null", 4);
      p += 4;
    }
  }
  *p++ = '}';
  return size_t(p - out);
}

}  // namespace sluice
