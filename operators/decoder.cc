#include "operators/decoder.h"

// XXH3 inlined: keys are a few bytes, so the call is most of the cost.
#define XXH_INLINE_ALL
// Keys over 240 bytes take XXH3's long path; its AVX-512 kernel, inlined,
// trips GCC 12's -Wmaybe-uninitialized inside <avx512fintrin.h>. AVX2 gives
// the same hash values (every XXH3 kernel does).
#if defined(__AVX512F__)
#define XXH_VECTOR XXH_AVX2
#endif
#include <xxhash.h>

#include <algorithm>
#include <charconv>
#include <new>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "core/assert.h"
#include "core/clock.h"
#include "core/timestamp.h"
#include "operators/framing.h"
#include "operators/json_text.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice {

uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

using simdjson::error_code;
namespace od = simdjson::ondemand;

namespace {

// The first '"' or '\\' at or after p: the end of a JSON string's raw bytes
// when it holds no escape. Stage 1 has already checked that the string is
// closed, and the line is padded (kLinePadding), so 16-byte loads from inside
// it stay inside the buffer.
inline const char* string_end(const char* p) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (;; p += 16) {
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    unsigned m = unsigned(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(b, quote), _mm_cmpeq_epi8(b, backslash))));
    if (m != 0) return p + __builtin_ctz(m);
  }
#else
  while (*p != '"' && *p != '\\') ++p;
  return p;
#endif
}

// Equality of short byte strings without a call to memcmp (field names are a
// few bytes): overlapping loads from inside both strings.
inline bool bytes_equal(const char* a, const char* b, size_t n) {
  if (n >= 8) {
    if (n > 16) return std::memcmp(a, b, n) == 0;
    uint64_t a0, b0, a1, b1;
    std::memcpy(&a0, a, 8);
    std::memcpy(&b0, b, 8);
    std::memcpy(&a1, a + n - 8, 8);
    std::memcpy(&b1, b + n - 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  if (n >= 4) {
    uint32_t a0, b0, a1, b1;
    std::memcpy(&a0, a, 4);
    std::memcpy(&b0, b, 4);
    std::memcpy(&a1, a + n - 4, 4);
    std::memcpy(&b1, b + n - 4, 4);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
  }
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

Decoder::Decoder(const SchemaConfig& schema, uint32_t line_bytes_max, uint64_t carried_strings)
    : carried_strings_(carried_strings),
      fields_(schema.fields),
      key_count_(schema.key.size()),
      time_format_(schema.time_format) {
  SLUICE_ASSERT(key_count_ >= 1);
  SLUICE_ASSERT(key_count_ <= kKeyPartsMax);
  SLUICE_ASSERT(fields_.size() <= kValueFieldsMax);
  static_assert(kRecordHeadersMax == limits::header_fields_max);
  header_names_ = schema.header_names();
  SLUICE_ASSERT(header_names_.size() <= kRecordHeadersMax);  // refused by the config loader
  auto header_of = [&](std::string_view name) {
    name.remove_prefix(kKafkaHeaderPrefix.size());
    return uint32_t(std::find(header_names_.begin(), header_names_.end(), name) - header_names_.begin());
  };
  for (uint32_t i = 0; i < schema.key.size(); ++i) {
    if (schema.key[i] == kKafkaKeyField) {
      kafka_key_index_ = int(i);
    } else if (schema.key[i].starts_with(kKafkaHeaderPrefix)) {
      header_keys_.push_back({header_of(schema.key[i]), i});
    } else {
      slots_.push_back({schema.key[i], SlotKind::key, FieldType::string, i, false});
    }
  }
  if (schema.time_field == kKafkaTimestampField) {
    kafka_time_ = true;
  } else {
    slots_.push_back({schema.time_field, SlotKind::time, FieldType::string, 0, false});
  }
  for (uint32_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name.starts_with(kKafkaHeaderPrefix)) {
      SLUICE_ASSERT(fields_[i].type == FieldType::string);  // refused by the config loader
      header_values_.push_back({header_of(fields_[i].name), i});
      continue;
    }
    slots_.push_back({fields_[i].name, SlotKind::value, fields_[i].type, i,
                      fields_[i].presence != FieldPresence::required});
  }
  uses_meta_ = kafka_key_index_ >= 0 || kafka_time_ || !header_keys_.empty() || !header_values_.empty();
  SLUICE_ASSERT(slots_.size() <= 64);  // the seen-mask below is 64 bits
  for (size_t i = 0; i < slots_.size(); ++i) {
    all_slots_ |= uint64_t(1) << i;
    if (!slots_[i].optional) required_slots_ |= uint64_t(1) << i;
  }
  for (const Slot& slot : slots_) slot_names_.push_back({slot.name.data(), slot.name.size()});
  // Size both parsers for the longest line now, so decode() never allocates.
  // Out of memory here is a start-up error the caller reports (std::bad_alloc,
  // like every other start-up allocation), not an assertion.
  if (parser_.allocate(line_bytes_max + kLinePadding) != simdjson::SUCCESS ||
      validator_.allocate(line_bytes_max + kLinePadding) != simdjson::SUCCESS) {
    throw std::bad_alloc();
  }
  unescape_buf_.reset(new uint8_t[line_bytes_max + kLinePadding]);
  std::fill(std::begin(order_hint_), std::end(order_hint_), int8_t(-1));
}

// Events of one stream nearly always list their fields in the same order, so
// the slot found at this position last time is tried first (inline: this runs
// for every field of every event).
inline int Decoder::find_slot(std::string_view name, size_t position) {
  if (position < kOrderHintMax) {
    int hint = order_hint_[position];
    if (hint >= 0) {
      const SlotName& n = slot_names_[size_t(hint)];
      if (n.size == name.size() && bytes_equal(n.data, name.data(), name.size())) return hint;
    }
  }
  return find_slot_by_scan(name, position);
}

int Decoder::find_slot_by_scan(std::string_view name, size_t position) {
  for (size_t i = 0; i < slot_names_.size(); ++i) {
    const SlotName& n = slot_names_[i];
    if (n.size == name.size() && bytes_equal(n.data, name.data(), name.size())) {
      if (position < kOrderHintMax) order_hint_[position] = int8_t(i);
      return int(i);
    }
  }
  if (position < kOrderHintMax) order_hint_[position] = -1;
  return -1;
}

DecodeStatus Decoder::fail(DecodeStatus status, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(detail_, sizeof detail_, fmt, ap);
  va_end(ap);
  detail_len_ = n < 0 ? 0 : std::min(size_t(n), sizeof detail_ - 1);
  return status;
}

// On-Demand parsing validates only what it touches, so when it reports a
// problem we ask a full validating parse whether the line is JSON at all.
// This runs on the error path only.
DecodeStatus Decoder::classify(std::string_view line, DecodeStatus suggested) {
  simdjson::dom::element root;
  error_code err = validator_.parse(line.data(), line.size(), false).get(root);
  if (err != simdjson::SUCCESS) {
    return fail(DecodeStatus::parse_error, "invalid JSON: %s", simdjson::error_message(err));
  }
  return suggested;
}

DecodeStatus Decoder::decode(std::string_view line, Event& out, const RecordMeta* meta) {
  text_len_ = 0;
  DecodeStatus status = try_decode(line, out, meta);
  out.text = std::string_view(text_, text_len_);
  if (status == DecodeStatus::ok) return status;
  return classify(line, status);
}

DecodeStatus Decoder::apply_meta(Event& out, const RecordMeta* meta) {
  if (kafka_key_index_ >= 0) {
    if (meta == nullptr || meta->key_null) {
      return fail(DecodeStatus::schema_error, "the record has no key (the schema key uses %.*s)",
                  int(kKafkaKeyField.size()), kKafkaKeyField.data());
    }
    if (meta->key.size() + 5 > kKeyBytesMax) {
      return fail(DecodeStatus::schema_error, "record key longer than %zu bytes", kKeyBytesMax - 5);
    }
    // Output keys are JSON strings, so the record key must be text.
    if (!is_valid_utf8(meta->key)) {
      return fail(DecodeStatus::schema_error, "record key is not valid UTF-8");
    }
    char* part = key_parts_[kafka_key_index_];
    part[0] = kKeyString;
    uint32_t n = uint32_t(meta->key.size());
    std::memcpy(part + 1, &n, 4);
    std::memcpy(part + 5, meta->key.data(), n);
    key_part_len_[kafka_key_index_] = n + 5;
  }
  if (kafka_time_) {
    if (meta == nullptr || __builtin_mul_overflow(meta->timestamp_ms, kNsPerMs, &out.time_ns)) {
      return fail(DecodeStatus::schema_error, "record timestamp missing or outside int64 nanoseconds");
    }
  }
  if (header_keys_.empty() && header_values_.empty()) return DecodeStatus::ok;
  return apply_headers(out, meta);
}

// Header values are bytes; as fields they are strings, so they must be UTF-8.
// A header missing or null is no value: an error for a key part or a required
// field, absent (or the default) for an optional one.
DecodeStatus Decoder::apply_headers(Event& out, const RecordMeta* meta) {
  const uint32_t found = meta == nullptr ? 0 : meta->headers_found;
  const uint32_t null = meta == nullptr ? 0 : meta->headers_null;
  auto name_of = [&](uint32_t h) { return header_names_[h].c_str(); };
  auto no_value = [&](uint32_t h, const char* role) {
    return fail(DecodeStatus::schema_error,
                (found >> h & 1) ? "the record's header \"%.64s\" is null (%s %.64s%s)"
                                 : "the record has no header \"%.64s\" (%s %.64s%s)",
                name_of(h), role, kKafkaHeaderPrefix.data(), name_of(h));
  };
  for (const HeaderField& k : header_keys_) {
    if (!(found >> k.header & 1) || (null >> k.header & 1)) return no_value(k.header, "the schema key uses");
    const std::string_view v = meta->headers[k.header];
    if (v.size() + 5 > kKeyBytesMax) {
      return fail(DecodeStatus::schema_error, "header \"%.64s\" longer than %zu bytes (a key part)", name_of(k.header),
                  kKeyBytesMax - 5);
    }
    if (!is_valid_utf8(v)) {
      return fail(DecodeStatus::schema_error, "header \"%.64s\" is not valid UTF-8", name_of(k.header));
    }
    char* part = key_parts_[k.index];
    part[0] = kKeyString;
    uint32_t n = uint32_t(v.size());
    std::memcpy(part + 1, &n, 4);
    std::memcpy(part + 5, v.data(), n);
    key_part_len_[k.index] = n + 5;
  }
  for (const HeaderField& f : header_values_) {
    if (!(found >> f.header & 1) || (null >> f.header & 1)) {
      if (fields_[f.index].presence == FieldPresence::required) return no_value(f.header, "the schema's field");
      if (DecodeStatus st = absent_value(f.index, out); st != DecodeStatus::ok) return st;
      continue;
    }
    const std::string_view v = meta->headers[f.header];
    if (!is_valid_utf8(v)) {
      return fail(DecodeStatus::schema_error, "header \"%.64s\" is not valid UTF-8", name_of(f.header));
    }
    if (carried_strings_ >> f.index & 1) {
      if (v.size() > kEventTextBytesMax - text_len_) {
        return fail(DecodeStatus::schema_error,
                    "header \"%.64s\": the strings aggregates read are longer than %zu bytes", name_of(f.header),
                    kEventTextBytesMax);
      }
      std::memcpy(text_ + text_len_, v.data(), v.size());
      out.values[f.index] = text_ref(uint32_t(text_len_), uint32_t(v.size()));
      text_len_ += v.size();
    }
  }
  return DecodeStatus::ok;
}

DecodeStatus Decoder::not_all_present(uint64_t seen, uint64_t nulls, Event& out) {
  if (const uint64_t missing = required_slots_ & ~seen; missing != 0) {
    const Slot& slot = slots_[size_t(__builtin_ctzll(missing))];
    return fail(DecodeStatus::schema_error, "missing field \"%s\"", slot.name.c_str());
  }
  for (uint64_t absent = (all_slots_ & ~seen) | nulls; absent != 0; absent &= absent - 1) {
    const Slot& slot = slots_[size_t(__builtin_ctzll(absent))];
    if (DecodeStatus st = absent_value(slot.index, out); st != DecodeStatus::ok) return st;
  }
  return DecodeStatus::ok;
}

DecodeStatus Decoder::absent_value(uint32_t field, Event& out) {
  const FieldConfig& f = fields_[field];
  if (f.presence != FieldPresence::defaulted) {
    out.absent |= uint32_t(1) << field;
    return DecodeStatus::ok;
  }
  switch (f.type) {
    case FieldType::int64: out.values[field].i = f.default_int; break;
    case FieldType::float64: out.values[field].f = f.default_float; break;
    case FieldType::string:
      if (carried_strings_ >> field & 1) {
        const std::string& s = f.default_string;
        if (s.size() > kEventTextBytesMax - text_len_) {
          return fail(DecodeStatus::schema_error,
                      "string field \"%s\" (its default): the strings aggregates read are longer than %zu bytes",
                      f.name.c_str(), kEventTextBytesMax);
        }
        std::memcpy(text_ + text_len_, s.data(), s.size());
        out.values[field] = text_ref(uint32_t(text_len_), uint32_t(s.size()));
        text_len_ += s.size();
      }
      break;
  }
  return DecodeStatus::ok;
}

bool Decoder::put_key(uint32_t key_index, od::value& v) {
  char* part = key_parts_[key_index];
  od::json_type type;
  if (v.type().get(type) != simdjson::SUCCESS) return false;
  if (type == od::json_type::string) {
    std::string_view s;
    od::raw_json_string rs;
    if (v.get_raw_json_string().get(rs) != simdjson::SUCCESS) return false;
    const char* end = string_end(rs.raw());
    if (*end == '"') {
      s = std::string_view(rs.raw(), size_t(end - rs.raw()));
    } else if (uint8_t* dst = unescape_buf_.get(); parser_.unescape(rs, dst).get(s) != simdjson::SUCCESS) {
      return false;
    }
    if (s.size() + 5 > kKeyBytesMax) return false;
    part[0] = kKeyString;
    uint32_t n = uint32_t(s.size());
    std::memcpy(part + 1, &n, 4);
    std::memcpy(part + 5, s.data(), s.size());
    key_part_len_[key_index] = n + 5;
    return true;
  }
  if (type == od::json_type::number) {
    int64_t i;
    if (v.get_int64().get(i) != simdjson::SUCCESS) return false;
    // Tag and value in one 16-byte store: the hash reads the key back right
    // away, and a load spanning two smaller stores cannot be forwarded.
    uint64_t w[2] = {uint64_t(uint8_t(kKeyInt)) | (uint64_t(i) << 8), uint64_t(i) >> 56};
    std::memcpy(part, w, 16);
    key_part_len_[key_index] = 9;
    return true;
  }
  return false;
}

namespace {

// Walks a value we do not need so that On-Demand checks it. The recursion
// stops at kSkipDepthMax levels with DEPTH_ERROR: simdjson's own limit (1024)
// is deeper than a thread's stack allows for these frames in every build.
constexpr int kSkipDepthMax = 128;

error_code validate_skip(od::value& v, int depth = 1) {
  if (depth > kSkipDepthMax) return simdjson::DEPTH_ERROR;
  od::json_type type;
  error_code err = v.type().get(type);
  if (err) return err;
  switch (type) {
    case od::json_type::object: {
      od::object o;
      if ((err = v.get_object().get(o))) return err;
      for (auto f : o) {
        if ((err = f.error())) return err;
        od::field field = f.value_unsafe();
        std::string_view k;
        if ((err = field.unescaped_key().get(k))) return err;
        od::value inner = field.value();
        if ((err = validate_skip(inner, depth + 1))) return err;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::array: {
      od::array a;
      if ((err = v.get_array().get(a))) return err;
      for (auto e : a) {
        if ((err = e.error())) return err;
        od::value inner = e.value_unsafe();
        if ((err = validate_skip(inner, depth + 1))) return err;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number: {
      // get_double accepts integers beyond 64 bits (valid JSON); it refuses
      // malformed numbers and ones no double can hold (1e400), as the DOM does.
      double d;
      return v.get_double().get(d);
    }
    case od::json_type::string: return v.get_string().error();
    case od::json_type::boolean: return v.get_bool().error();
    case od::json_type::null: {
      bool is_null = false;
      if ((err = v.is_null().get(is_null))) return err;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

// A JSON number as a double, correctly rounded. simdjson 3.0's On-Demand
// get_double returns a wrong value, with SUCCESS, for "0." or "-0." followed
// by 19 or more digits (it accumulates them in a uint64 that overflows;
// simdjson issue #2093): 0.12345678901234567890123 read as 4.8e-05. Such
// tokens are parsed again with std::from_chars (exact); every other number
// keeps the fast path. Found by the decoder fuzz target's DOM oracle.
simdjson::error_code get_double_exact(od::value& v, double& out) {
  const std::string_view tok = v.raw_json_token();
  simdjson::error_code err = v.get_double().get(out);
  if (err != simdjson::SUCCESS) return err;
  const size_t sign = !tok.empty() && tok[0] == '-' ? 1 : 0;
  if (tok.size() >= sign + 2 + 19 && tok[sign] == '0' && tok[sign + 1] == '.') {
    double exact = 0;
    auto [end, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), exact);
    if (ec == std::errc()) out = exact;
  }
  return simdjson::SUCCESS;
}

// Epoch number -> ns, with the unit's multiplier; false when it does not fit.
bool epoch_to_ns(od::value& v, int64_t unit_ns, int64_t& out) {
  od::number_type nt;
  if (v.get_number_type().get(nt) != simdjson::SUCCESS) return false;
  if (nt == od::number_type::signed_integer) {
    int64_t i;
    if (v.get_int64().get(i) != simdjson::SUCCESS) return false;
    return !__builtin_mul_overflow(i, unit_ns, &out);
  }
  double d;
  if (get_double_exact(v, d) != simdjson::SUCCESS) return false;
  double ns = d * double(unit_ns);
  // Doubles at 2^63 and beyond do not convert; stay strictly inside.
  if (!(ns > -9.2e18 && ns < 9.2e18)) return false;
  out = int64_t(ns);
  return true;
}

int64_t unit_ns(TimeFormat f) {
  switch (f) {
    case TimeFormat::epoch_s: return kNsPerS;
    case TimeFormat::epoch_ms: return kNsPerMs;
    case TimeFormat::epoch_us: return kNsPerUs;
    case TimeFormat::epoch_ns: return 1;
    case TimeFormat::rfc3339: break;
  }
  return 0;
}

const char* type_name(FieldType t) {
  switch (t) {
    case FieldType::int64: return "an integer (int64)";
    case FieldType::float64: return "a number (float64)";
    case FieldType::string: return "a string";
  }
  return "?";
}

}  // namespace

DecodeStatus Decoder::try_decode(std::string_view line, Event& out, const RecordMeta* meta) {
  od::document doc;
  error_code err = parser_.iterate(line.data(), line.size(), line.size() + kLinePadding).get(doc);
  if (err) return fail(DecodeStatus::parse_error, "invalid JSON: %s", simdjson::error_message(err));
  od::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) {
    return fail(DecodeStatus::schema_error, "not a JSON object");
  }
  uint64_t seen = 0;
  uint64_t nulls = 0;  // optional slots that were null
  size_t position = 0;
  for (auto field_result : obj) {
    if ((err = field_result.error())) {
      return fail(DecodeStatus::parse_error, "invalid JSON: %s", simdjson::error_message(err));
    }
    // References, not copies: copying these small structs piecewise and
    // reading them back whole stalls store-to-load forwarding.
    od::field& field = field_result.value_unsafe();
    // Field names are matched on their raw bytes (no copy) unless they hold
    // an escape; stage 1 has already checked that the string is closed.
    std::string_view name;
    const char* raw = field.key().raw();
    const char* end = string_end(raw);
    if (*end == '"') {
      name = std::string_view(raw, size_t(end - raw));
    } else if ((err = field.unescaped_key().get(name))) {
      return fail(DecodeStatus::parse_error, "invalid JSON: %s", simdjson::error_message(err));
    }
    int slot_index = find_slot(name, position++);
    if (slot_index < 0) {
      // Other fields are ignored, but must still be valid JSON: On-Demand
      // skips what it is not asked about without checking it.
      od::value& v = field.value();
      if ((err = validate_skip(v)) == simdjson::DEPTH_ERROR) {
        return fail(DecodeStatus::parse_error, "field \"%.*s\" nests deeper than %d levels (the decoder's limit)",
                    int(std::min<size_t>(name.size(), 64)), name.data(), kSkipDepthMax);
      }
      if (err) {
        return fail(DecodeStatus::parse_error, "invalid JSON in field \"%.*s\": %s",
                    int(std::min<size_t>(name.size(), 64)), name.data(), simdjson::error_message(err));
      }
      continue;
    }
    const Slot& slot = slots_[size_t(slot_index)];
    uint64_t bit = uint64_t(1) << slot_index;
    if (seen & bit) {
      return fail(DecodeStatus::schema_error, "duplicate field \"%s\"", slot.name.c_str());
    }
    seen |= bit;
    od::value& v = field.value();
    switch (slot.kind) {
      case SlotKind::key:
        if (!put_key(slot.index, v)) {
          return fail(DecodeStatus::schema_error,
                      "key field \"%s\" must be a string or an int64 integer (keys are at most "
                      "%zu bytes)",
                      slot.name.c_str(), kKeyBytesMax);
        }
        break;
      case SlotKind::time: {
        if (time_format_ == TimeFormat::rfc3339) {
          // A timestamp has no escapes: read its raw bytes; only a string
          // with a backslash goes through unescaping.
          std::string_view s;
          simdjson::ondemand::raw_json_string rs;
          if (v.get_raw_json_string().get(rs) != simdjson::SUCCESS) {
            return fail(DecodeStatus::schema_error, "time field \"%s\" must be an RFC 3339 string",
                        slot.name.c_str());
          }
          const char* t = rs.raw();
          const char* t_end = string_end(t);
          if (*t_end == '"') {
            s = std::string_view(t, size_t(t_end - t));
          } else if (uint8_t* dst = unescape_buf_.get();
                     parser_.unescape(rs, dst).get(s) != simdjson::SUCCESS) {
            return fail(DecodeStatus::schema_error, "time field \"%s\" must be an RFC 3339 string",
                        slot.name.c_str());
          }
          TimestampError te = parse_rfc3339(s, out.time_ns, day_cache_);
          if (te != TimestampError::ok) {
            return fail(DecodeStatus::schema_error, "time field \"%s\": %s: \"%.*s\"",
                        slot.name.c_str(), to_string(te), int(std::min<size_t>(s.size(), 64)),
                        s.data());
          }
        } else if (!epoch_to_ns(v, unit_ns(time_format_), out.time_ns)) {
          return fail(DecodeStatus::schema_error,
                      "time field \"%s\" must be an epoch number within int64 nanoseconds",
                      slot.name.c_str());
        }
        break;
      }
      case SlotKind::value: {
        bool ok = false;
        switch (slot.type) {
          case FieldType::int64: ok = v.get_int64().get(out.values[slot.index].i) == simdjson::SUCCESS; break;
          case FieldType::float64: ok = get_double_exact(v, out.values[slot.index].f) == simdjson::SUCCESS; break;
          case FieldType::string: {
            // Stage 1 has checked UTF-8 and control characters, so a string
            // without a backslash is valid as it stands. Unless an aggregate
            // reads it, only its type and validity matter.
            od::raw_json_string rs;
            ok = v.get_raw_json_string().get(rs) == simdjson::SUCCESS;
            if (!ok) break;
            const char* end = string_end(rs.raw());
            std::string_view s(rs.raw(), size_t(end - rs.raw()));
            if (*end != '"') {
              uint8_t* dst = unescape_buf_.get();
              ok = parser_.unescape(rs, dst).get(s) == simdjson::SUCCESS;
            }
            if (ok && (carried_strings_ >> slot.index & 1)) {
              if (s.size() > kEventTextBytesMax - text_len_) {
                return fail(DecodeStatus::schema_error,
                            "string field \"%s\": the strings aggregates read are longer than %zu bytes",
                            slot.name.c_str(), kEventTextBytesMax);
              }
              std::memcpy(text_ + text_len_, s.data(), s.size());
              out.values[slot.index] = text_ref(uint32_t(text_len_), uint32_t(s.size()));
              text_len_ += s.size();
            }
            break;
          }
        }
        if (!ok) {
          // null is no value: an optional field is then absent (the error
          // path of the field's type check: present fields pay nothing).
          bool is_null = false;
          if (v.is_null().get(is_null) != simdjson::SUCCESS) is_null = false;
          if (is_null && slot.optional) {
            nulls |= bit;
            break;
          }
          return fail(DecodeStatus::schema_error, "field \"%s\" must be %s%s", slot.name.c_str(),
                      type_name(slot.type), is_null ? ", not null (it is a required field)" : "");
        }
        break;
      }
    }
  }
  // simdjson 3.0 has no document::at_end(); past the last token it reports OUT_OF_BOUNDS.
  if (doc.current_location().error() != simdjson::OUT_OF_BOUNDS) {
    return fail(DecodeStatus::parse_error, "invalid JSON: trailing content after the object");
  }
  out.absent = 0;
  if ((seen ^ all_slots_) != 0 || nulls != 0) [[unlikely]] {
    if (DecodeStatus st = not_all_present(seen, nulls, out); st != DecodeStatus::ok) return st;
  }
  if (uses_meta_) {
    if (DecodeStatus st = apply_meta(out, meta); st != DecodeStatus::ok) return st;
  }
  if (key_count_ == 1) {
    out.key = {key_parts_[0], key_part_len_[0]};
    out.key_hash = XXH3_64bits(key_parts_[0], key_part_len_[0]);
    return DecodeStatus::ok;
  }
  size_t key_len = 0;
  for (size_t k = 0; k < key_count_; ++k) {
    if (key_len + key_part_len_[k] > kKeyBytesMax) {
      return fail(DecodeStatus::schema_error, "key longer than %zu bytes", kKeyBytesMax);
    }
    std::memcpy(key_buf_ + key_len, key_parts_[k], key_part_len_[k]);
    key_len += key_part_len_[k];
  }
  out.key = {key_buf_, key_len};
  out.key_hash = XXH3_64bits(key_buf_, key_len);
  return DecodeStatus::ok;
}

}  // namespace sluice
