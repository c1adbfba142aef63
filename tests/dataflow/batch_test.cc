// Event batches carry what the owning shard needs: key, time, values, which
// optional fields are absent and, when an aggregate reads string fields, the
// strings themselves.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "dataflow/batch.h"
#include "operators/decoder.h"

namespace sluice {
namespace {

TEST(EventBatch, RecordsWithAndWithoutCarriedStringsReadBackWhole) {
  auto b = std::make_unique<EventBatch>();
  b->reset();
  // The longest key and the most text an event may have, too.
  std::string longest_key = "s" + std::string("\xfb\x03\0\0", 4) + std::string(kKeyBytesMax - 5, 'k');
  const std::string keys[] = {std::string("\x69\x01\0\0\0\0\0\0\0", 9), std::string("s\x03\0\0\0abc", 8),
                              longest_key};
  const std::string texts[] = {"", "alice", "b\xc3\xb6" "b", std::string(kEventTextBytesMax, 'x')};
  // Which optional fields each event lacks: none, some, the last of 32.
  auto absent_of = [](int n) { return n % 3 == 0 ? 0u : n % 3 == 1 ? 0x80000001u : uint32_t(n) << 2; };
  int n = 0;
  for (const std::string& k : keys) {
    for (const std::string& t : texts) {
      Event e;
      e.key = k;
      e.key_hash = 77 + uint64_t(n);
      e.time_ns = 1000 * n;
      e.text = t;
      e.values[0] = text_ref(0, uint32_t(t.size()));
      e.values[1].i = n;
      e.absent = absent_of(n);
      ASSERT_TRUE(b->fits(e, 2));
      b->append(e, 2);
      ++n;
    }
  }
  size_t off = 0;
  n = 0;
  for (const std::string& k : keys) {
    for (const std::string& t : texts) {
      Event e;
      off = b->read(off, e, 2);
      EXPECT_EQ(e.key, k);
      EXPECT_EQ(e.key_hash, 77 + uint64_t(n));
      EXPECT_EQ(e.time_ns, 1000 * n);
      EXPECT_EQ(e.text, t);
      EXPECT_EQ(text_of(e.text, e.values[0]), t);
      EXPECT_EQ(e.values[1].i, n);
      EXPECT_EQ(e.absent, absent_of(n));
      ++n;
    }
  }
  EXPECT_EQ(off, b->used);
}

TEST(Decoder, CarriesTheStringsAggregatesReadUnescapedAndBounded) {
  SchemaConfig schema;
  schema.key = {"k"};
  schema.time_field = "t";
  schema.time_format = TimeFormat::epoch_s;
  schema.fields = {{"a", FieldType::string}, {"b", FieldType::string}, {"n", FieldType::int64}};
  Decoder carried(schema, 4096, /*carried_strings*/ 0b011);
  Decoder plain(schema, 4096);
  auto decode = [](Decoder& d, const std::string& line, Event& e) {
    std::string padded = line + std::string(64, '\0');
    return d.decode(std::string_view(padded.data(), line.size()), e);
  };
  Event e;
  ASSERT_EQ(decode(carried, R"({"k":1,"t":5,"a":"caf\u00e9","b":"plain","n":3})", e), DecodeStatus::ok);
  EXPECT_EQ(text_of(e.text, e.values[0]), "caf\xc3\xa9");
  EXPECT_EQ(text_of(e.text, e.values[1]), "plain");
  EXPECT_EQ(e.values[2].i, 3);
  EXPECT_EQ(e.text, "caf\xc3\xa9plain");
  // Not read by an aggregate: validated, not carried.
  ASSERT_EQ(decode(plain, R"({"k":1,"t":5,"a":"caf\u00e9","b":"plain","n":3})", e), DecodeStatus::ok);
  EXPECT_TRUE(e.text.empty());
  // Longer than kEventTextBytesMax in all: a schema error that says so.
  const std::string big(kEventTextBytesMax - 2, 'y');
  ASSERT_EQ(decode(carried, R"({"k":1,"t":5,"a":")" + big + R"(","b":"zzz","n":3})", e),
            DecodeStatus::schema_error);
  EXPECT_NE(std::string(carried.detail()).find("longer than 1024 bytes"), std::string::npos) << carried.detail();
  ASSERT_EQ(decode(plain, R"({"k":1,"t":5,"a":")" + big + R"(","b":"zzz","n":3})", e), DecodeStatus::ok);
}

}  // namespace
}  // namespace sluice
