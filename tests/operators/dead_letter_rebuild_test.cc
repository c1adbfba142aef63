// The JSON rebuilt for a late event from another shard stays inside its
// buffer and is valid JSON, whatever the key holds.
//
// Regression: the rebuild wrote into a 4096-byte stack buffer with no bound:
// two string key parts of 512 bytes, each byte escaped as \u00XX (6 bytes),
// need over 6 KiB; a peer sending such keys in a late, cross-shard event
// overflowed the shard's stack.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstring>
#include <string>
#include <vector>

#include "operators/dead_letter.h"
#include "operators/json_text.h"

namespace sluice {
namespace {

std::string string_key_part(const std::string& s) {
  std::string k = "s";
  const uint32_t len = uint32_t(s.size());
  k.append(reinterpret_cast<const char*>(&len), 4);
  return k + s;
}

bool valid_json(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  return parser.parse(text.data(), text.size()).get(doc) == simdjson::SUCCESS && doc.is_object();
}

TEST(RebuildEventJson, HostileKeysStayInsideTheBufferAndGiveValidJson) {
  SchemaConfig schema;
  schema.key = {"a", "b", "c"};
  schema.time_field = "ts";
  schema.fields = {{"n", FieldType::int64}, {"x", FieldType::float64}};
  const std::string control(500, '\x01');  // every byte escaped as \u0001
  const std::string key = string_key_part(control) + string_key_part(control) + string_key_part("ok");
  Event e;
  e.key = key;
  e.time_ns = 1'700'000'000'000'000'000;
  e.values[0].i = -42;
  e.values[1].f = 2.5;
  for (size_t cap : {size_t(256), size_t(1024), size_t(4096), size_t(16384)}) {
    // A guard zone after cap: nothing may be written there.
    std::vector<char> buf(cap + 64, '#');
    const size_t n = rebuild_event_json(schema, e, buf.data(), cap);
    ASSERT_LE(n, cap) << cap;
    for (size_t i = cap; i < buf.size(); ++i) ASSERT_EQ(buf[i], '#') << "written past cap " << cap;
    const std::string text(buf.data(), n);
    EXPECT_TRUE(valid_json(text)) << cap << ": " << text.substr(0, 200);
    EXPECT_NE(text.find("\"ts\":"), std::string::npos) << cap;
    if (cap >= 16384) {
      // Room for everything: both long parts (cut at 512 bytes: all 500 here), the short one, the values.
      EXPECT_NE(text.find("\"c\":\"ok\""), std::string::npos);
      EXPECT_NE(text.find("\"n\":-42"), std::string::npos);
      EXPECT_NE(text.find("\"x\":2.5"), std::string::npos);
    }
  }
}

// Found by the coverage-guided fuzzer: a key part cut at 512 bytes in the
// middle of a UTF-8 sequence, or one that is not UTF-8 at all (and a tag that
// is neither), made the rebuilt text invalid JSON.
TEST(RebuildEventJson, KeyPartsAreCutAtCharacterBoundariesAndNonUtf8IsLeftOut) {
  SchemaConfig schema;
  schema.key = {"a", "b", "c"};
  schema.time_field = "ts";
  std::string euros;
  for (int i = 0; i < 300; ++i) euros += "\xe2\x82\xac";  // 900 bytes of 3-byte characters
  const std::string key = string_key_part(euros) + string_key_part("bad \xff byte") + string_key_part("ok");
  Event e;
  e.key = key;
  std::vector<char> buf(16384);
  const size_t n = rebuild_event_json(schema, e, buf.data(), buf.size());
  const std::string text(buf.data(), n);
  ASSERT_TRUE(valid_json(text)) << text.substr(0, 200);
  EXPECT_NE(text.find("\"a\":\"\xe2\x82\xac"), std::string::npos);
  EXPECT_EQ(text.find("\"b\":"), std::string::npos);  // not UTF-8: left out
  EXPECT_NE(text.find("\"c\":\"ok\""), std::string::npos);
  const std::string bogus_tag = "x" + std::string(12, 'y');
  e.key = bogus_tag;
  const size_t m = rebuild_event_json(schema, e, buf.data(), buf.size());
  EXPECT_TRUE(valid_json(std::string(buf.data(), m)));
}

// An absent optional field is left out of the rebuilt event (its value
// holds nothing), present ones are written.
TEST(RebuildEventJson, AbsentOptionalFieldsAreLeftOut) {
  SchemaConfig schema;
  schema.key = {"k"};
  schema.time_field = "ts";
  schema.fields = {{"n", FieldType::int64, FieldPresence::optional},
                   {"x", FieldType::float64, FieldPresence::optional},
                   {"y", FieldType::int64}};
  const std::string key = string_key_part("p");
  Event e;
  e.key = key;
  e.values[0].i = 12345;
  e.values[1].f = 0.25;
  e.values[2].i = 7;
  e.absent = 1u << 0;
  std::vector<char> buf(4096);
  const std::string text(buf.data(), rebuild_event_json(schema, e, buf.data(), buf.size()));
  ASSERT_TRUE(valid_json(text)) << text;
  EXPECT_EQ(text.find("\"n\":"), std::string::npos) << text;
  EXPECT_NE(text.find("\"x\":0.25"), std::string::npos) << text;
  EXPECT_NE(text.find("\"y\":7"), std::string::npos) << text;
}

}  // namespace
}  // namespace sluice
