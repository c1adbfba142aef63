// Dead-letter records: one NDJSON line per input line that did not become
// part of a result, saying why.
//
//   {"reason":"schema_error","detail":"missing field \"quantity\"","source":"pos",
//    "origin":"127.0.0.1:51234","raw":"{\"product_id\":1}"}
//
// `raw` is the original line as a JSON string. A line that is not valid UTF-8
// is given as `raw_base64` instead, byte for byte. An over-long line carries
// only its first bytes, with `"raw_truncated":true` and `"raw_bytes":<full length>`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config_model.h"
#include "operators/event.h"

namespace sluice {

enum class DeadLetterReason : uint8_t {
  parse_error,    ///< not valid JSON
  schema_error,   ///< valid JSON that does not match [schema]
  line_too_long,  ///< longer than the source's line_bytes_max
  late,           ///< its window had closed for its source (or had already been written)
  partial_line,   ///< a TCP peer disconnected in the middle of this line
  corrupt_batch,  ///< a Kafka record batch failed its CRC (or was malformed) twice; raw is empty
  future,         ///< its event time is more than [schema] time future_limit ahead of the wall clock
};
constexpr size_t kDeadLetterReasons = 7;

const char* to_string(DeadLetterReason r);

struct DeadLetter {
  DeadLetterReason reason;
  std::string_view detail;
  std::string_view source;  // the source's configured name
  std::string_view origin;  // peer address, or file path and line number
  std::string_view raw;     // the line, or its first bytes when truncated
  bool raw_truncated = false;
  uint64_t raw_bytes = 0;   // full length when truncated
};

// Worst-case encoded size of a record whose strings have these lengths.
size_t dead_letter_bytes_max(const DeadLetter& d);
// Writes the record and its trailing newline; returns bytes written.
// REQUIRES: out has dead_letter_bytes_max(d) bytes; detail/source/origin are valid UTF-8.
size_t encode_dead_letter(const DeadLetter& d, char* out);

// An event's JSON rebuilt from its decoded form, for the dead letter of an
// event whose raw line stayed on another shard: the key fields, the time
// (RFC 3339) and the numeric fields it has (absent optional ones are left
// out), in schema order. Written into out, at
// most cap bytes (cap >= kRebuiltEventBytesMin): a piece that would not fit
// is left out, and a key string longer than kRebuiltKeyPartBytesMax is cut,
// so hostile keys (every byte escaped six times over) cannot overflow it.
// Returns the bytes written; the text is always one valid JSON object.
constexpr size_t kRebuiltKeyPartBytesMax = 512;
constexpr size_t kRebuiltEventBytesMin = 256;
size_t rebuild_event_json(const SchemaConfig& schema, const Event& e, char* out, size_t cap);

}  // namespace sluice
