// JSON line -> Event, following the pipeline's [schema].
//
// One Decoder per shard (it owns simdjson parsers sized for line_bytes_max).
// decode() is the per-event path: no allocation, no exception. Errors are
// classified into the dead-letter reasons: parse_error (not valid JSON) and
// schema_error (valid JSON that does not match the schema).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_model.h"
#include "core/timestamp.h"
#include "operators/event.h"

namespace sluice {

enum class DecodeStatus : uint8_t {
  ok,
  parse_error,   ///< the line is not valid JSON
  schema_error,  ///< valid JSON, but not an object, or a field is missing/mistyped, or a bad timestamp
};

class Decoder {
 public:
  // REQUIRES: schema validated by the config loader. carried_strings: bit
  // i set = value field i is a string an aggregate reads, carried in
  // Event::text (operators/event.h).
  Decoder(const SchemaConfig& schema, uint32_t line_bytes_max, uint64_t carried_strings = 0);
  // Not movable: slot_names_ points into slots_' strings.
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes one line. On ok, `out` holds the event; its key view points into
  // this decoder and stays valid until the next decode(). On error, detail()
  // says what was wrong. `meta` supplies "@kafka.key", "@kafka.timestamp" and
  // "@kafka.header.<name>" when the schema uses them (a missing meta, a null
  // key, or a missing or null header the schema requires is a schema_error;
  // so is a key or header that is not UTF-8).
  // REQUIRES: line.data()[line.size() .. + kLinePadding) readable.
  DecodeStatus decode(std::string_view line, Event& out, const RecordMeta* meta = nullptr);

  std::string_view detail() const { return {detail_, detail_len_}; }

  size_t value_fields() const { return fields_.size(); }

 private:
  enum class SlotKind : uint8_t { key, time, value };
  struct Slot {
    std::string name;
    SlotKind kind;
    FieldType type;  // for value slots
    uint32_t index;  // key position, or value field index
    bool optional;   // a value field that may be absent or null (optional or defaulted)
  };

  DecodeStatus try_decode(std::string_view line, Event& out, const RecordMeta* meta);
  DecodeStatus apply_meta(Event& out, const RecordMeta* meta);
  DecodeStatus apply_headers(Event& out, const RecordMeta* meta);
  // The event's slots not all seen, or some null: a missing required field
  // is an error; optional ones become absent or take their defaults.
  DecodeStatus not_all_present(uint64_t seen, uint64_t nulls, Event& out);
  // Value field `field` has no value in this event.
  DecodeStatus absent_value(uint32_t field, Event& out);
  DecodeStatus fail(DecodeStatus status, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
  DecodeStatus classify(std::string_view line, DecodeStatus suggested);
  int find_slot(std::string_view name, size_t position);
  int find_slot_by_scan(std::string_view name, size_t position);
  bool put_key(uint32_t key_index, simdjson::ondemand::value& v);

  std::vector<Slot> slots_;  // fields read from the JSON object
  uint64_t all_slots_ = 0;       // a bit per slot
  uint64_t required_slots_ = 0;  // the slots every event must have
  // slots_[i].name's bytes and length, in one array for the per-field check.
  struct SlotName {
    const char* data;
    size_t size;
  };
  std::vector<SlotName> slot_names_;
  // order_hint_[i]: the slot the i-th field of the previous event matched (-1: none).
  static constexpr size_t kOrderHintMax = 32;
  int8_t order_hint_[kOrderHintMax];
  uint64_t carried_strings_;
  char text_[kEventTextBytesMax];  // this event's carried strings
  size_t text_len_ = 0;
  int kafka_key_index_ = -1;  // key position filled from RecordMeta::key, or -1
  bool kafka_time_ = false;   // event time from RecordMeta::timestamp_ms
  // Fields from record headers (RecordMeta::headers[header]): key parts and
  // value fields.
  struct HeaderField {
    uint32_t header;  // index into RecordMeta::headers
    uint32_t index;   // key position, or value field index
  };
  std::vector<HeaderField> header_keys_;
  std::vector<HeaderField> header_values_;
  std::vector<std::string> header_names_;  // SchemaConfig::header_names()
  bool uses_meta_ = false;  // some field comes from RecordMeta
  std::vector<FieldConfig> fields_;
  size_t key_count_;
  TimeFormat time_format_;
  simdjson::ondemand::parser parser_;
  simdjson::dom::parser validator_;  // error path only: tells parse_error from schema_error

  // Encoded keys of one event: each key field is encoded into its own part,
  // then concatenated in schema order (fields may come in any order).
  static constexpr size_t kKeyPartsMax = 8;
  char key_parts_[kKeyPartsMax][kKeyBytesMax];
  uint32_t key_part_len_[kKeyPartsMax];
  char key_buf_[kKeyBytesMax];

  Rfc3339DayCache day_cache_;
  // Where an escaped timestamp (rare) is unescaped; sized for the longest line.
  std::unique_ptr<uint8_t[]> unescape_buf_;

  char detail_[256];
  size_t detail_len_ = 0;
};

}  // namespace sluice
