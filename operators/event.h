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

// What a source knows about an event beyond its JSON text: for Kafka, the
// record's key and timestamp, which the schema can use as "@kafka.key" and
// "@kafka.timestamp".
struct RecordMeta {
  int64_t timestamp_ms = 0;
  std::string_view key;
  bool key_null = true;
};

struct Event {
  int64_t time_ns = 0;
  uint64_t key_hash = 0;
  std::string_view key;  // encoded key bytes (points into decoder or batch memory)
  Value values[kValueFieldsMax];
};

}  // namespace sluice
