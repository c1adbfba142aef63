// The compact form of one decoded event, as it travels from the shard that
// parsed it to the shard that owns its key.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice {

// Typed field values; which member is valid follows the schema's FieldType.
union Value {
  int64_t i;
  double f;
};

// Schema fields beyond this are refused by the decoder's constructor: the
// event record has a fixed size so it can be built without allocation.
constexpr size_t kValueFieldsMax = 32;
// Encoded key bytes beyond this make the event a schema_error: keys are
// identifiers, and a bound keeps cross-shard records small and fixed-size.
constexpr size_t kKeyBytesMax = 1024;

// Key encoding, one entry per key field in schema order:
//   'i' + 8-byte little-endian int64                (JSON integer)
//   's' + 4-byte little-endian length + UTF-8 bytes (JSON string, unescaped)
// Equal keys have equal bytes, so hashing and comparing the bytes is enough.
enum KeyTag : char { kKeyInt = 'i', kKeyString = 's' };

// Record headers a schema may use (limits::header_fields_max).
constexpr size_t kRecordHeadersMax = 8;

// What a source knows about an event beyond its JSON text: for Kafka, the
// record's key and timestamp, which the schema can use as "@kafka.key" and
// "@kafka.timestamp", and the headers it uses ("@kafka.header.<name>").
struct RecordMeta {
  int64_t timestamp_ms = 0;
  std::string_view key;
  bool key_null = true;
  // The headers of SchemaConfig::header_names(), in that order: bit i of
  // headers_found set: headers[i] is the value of the last header of that
  // name; bit i of headers_null set too: that value is null. The views point
  // into the record's bytes, valid during the call they are passed to.
  uint32_t headers_found = 0;
  uint32_t headers_null = 0;
  std::string_view headers[kRecordHeadersMax];
};

// String field values an event carries to the shard that owns its key,
// when an aggregate reads them (a distinct count over customer_id): the
// strings, unescaped, one after another in Event::text, at most this many
// bytes in all (more is a schema_error); such a field's Value holds its
// offset (high 32 bits) and length (low 32 bits) there. String fields no
// aggregate reads are only validated, never copied.
constexpr size_t kEventTextBytesMax = 1024;

inline Value text_ref(uint32_t offset, uint32_t length) {
  Value v;
  v.i = int64_t(uint64_t(offset) << 32 | length);
  return v;
}
inline std::string_view text_of(std::string_view text, Value ref) {
  const uint64_t r = uint64_t(ref.i);
  return text.substr(size_t(r >> 32), size_t(r & 0xffffffffu));
}

// The hash of an encoded key, as the decoder computes it (XXH3-64): it
// picks the owning shard and the window-table slot.
uint64_t hash_key(std::string_view key);

struct Event {
  int64_t time_ns = 0;
  uint64_t key_hash = 0;
  std::string_view key;  // encoded key bytes (points into decoder or batch memory)
  std::string_view text;  // carried string values (see kEventTextBytesMax), often empty
  // Bit i set: optional value field i is absent (or was JSON null), and
  // values[i] means nothing; aggregates over it skip the event. 0 for every
  // event of a schema without optional fields.
  uint32_t absent = 0;
  Value values[kValueFieldsMax];
};
static_assert(kValueFieldsMax <= 32, "Event::absent has a bit per value field");

}  // namespace sluice
