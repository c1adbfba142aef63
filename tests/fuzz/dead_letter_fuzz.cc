// Dead-letter records: any raw bytes give one valid JSON line, within the
// declared size bound, whose raw (or raw_base64) gives the bytes back.
#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "operators/dead_letter.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/util/base64_decode.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  bool truncated = size > 0 && data[0] == 't';
  DeadLetter d{DeadLetterReason(size % kDeadLetterReasons), "detail \"x\"", "src", "127.0.0.1:1", raw,
               truncated, size};
  std::vector<char> out(dead_letter_bytes_max(d));
  size_t n = encode_dead_letter(d, out.data());
  FUZZ_CHECK(n <= out.size());
  FUZZ_CHECK(n > 0 && out[n - 1] == '\n');
  FUZZ_CHECK(std::memchr(out.data(), '\n', n - 1) == nullptr);  // one line
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  FUZZ_CHECK(parser.parse(out.data(), n - 1).get(doc) == simdjson::SUCCESS);
  std::string_view text;
  if (doc["raw"].get(text) == simdjson::SUCCESS) {
    if (truncated) {
      FUZZ_CHECK(raw.substr(0, text.size()) == text);  // a prefix, cut at a UTF-8 boundary
      FUZZ_CHECK(raw.size() - text.size() <= 5);  // at most one cut UTF-8 sequence
    } else {
      FUZZ_CHECK(text == raw);
    }
  } else {
    FUZZ_CHECK(doc["raw_base64"].get(text) == simdjson::SUCCESS);
    std::optional<std::string> bytes = testing_util::base64_decode(text);
    FUZZ_CHECK(bytes.has_value());
    FUZZ_CHECK(truncated ? raw.substr(0, bytes->size()) == *bytes : *bytes == raw);
  }

  // The same bytes as an event's key (any encoding, consistent or not): the
  // rebuilt JSON of a late cross-shard event stays inside its buffer and is
  // one valid JSON object.
  SchemaConfig schema;
  schema.key = {"a", "b\"", "c"};
  schema.time_field = "ts";
  schema.fields = {{"n", FieldType::int64}, {"s", FieldType::string}, {"x", FieldType::float64}};
  Event e;
  e.key = raw;
  e.time_ns = size > 8 ? int64_t(data[1]) * 1'000'000'007 : 0;
  e.values[0].i = int64_t(size);
  e.values[2].f = size % 3 == 0 ? 1.0 / 0.0 : double(size) / 7;
  e.absent = size > 2 ? data[2] & 0b101 : 0;  // optional fields n and x, absent or not
  const size_t cap = kRebuiltEventBytesMin + (size > 0 ? data[0] : 0) * 16;
  std::vector<char> rebuilt(cap + 64, '#');
  const size_t m = rebuild_event_json(schema, e, rebuilt.data(), cap);
  FUZZ_CHECK(m <= cap);
  for (size_t i = cap; i < rebuilt.size(); ++i) FUZZ_CHECK(rebuilt[i] == '#');
  FUZZ_CHECK(parser.parse(rebuilt.data(), m).get(doc) == simdjson::SUCCESS);
  return 0;
}
