#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

#include "core/config_model.h"
#include "operators/decoder.h"
#include "operators/event.h"
#include "operators/framing.h"

namespace sluice {

// Readable test output (static: each test file has its own).
static std::ostream& operator<<(std::ostream& os, DecodeStatus s) {
  switch (s) {
    case DecodeStatus::ok: return os << "ok";
    case DecodeStatus::parse_error: return os << "parse_error";
    case DecodeStatus::schema_error: return os << "schema_error";
  }
  return os << "DecodeStatus(" << int(s) << ")";
}

namespace {

// A line with kLinePadding readable bytes after it (see decoder_test.cc).
class PaddedLine {
 public:
  explicit PaddedLine(std::string_view text, char pad)
      : size_(text.size()), buf_(new char[text.size() + kLinePadding]) {
    std::memcpy(buf_.get(), text.data(), text.size());
    std::memset(buf_.get() + text.size(), pad, kLinePadding);
  }
  std::string_view view() const { return {buf_.get(), size_}; }

 private:
  size_t size_;
  std::unique_ptr<char[]> buf_;
};

SchemaConfig sales_schema(TimeFormat tf = TimeFormat::rfc3339) {
  SchemaConfig s;
  s.key = {"product_id"};
  s.time_field = "timestamp";
  s.time_format = tf;
  s.fields = {{"customer_id", FieldType::string}, {"quantity", FieldType::int64}, {"revenue", FieldType::float64}};
  return s;
}

const std::string kGood =
    R"({"product_id":1,"customer_id":"c","quantity":2,"revenue":3.5,"timestamp":"2024-01-01T00:00:00Z"})";

// The line with one field's JSON value replaced.
std::string with(std::string_view field, std::string_view value) {
  std::string line = kGood;
  std::string needle = "\"" + std::string(field) + "\":";
  size_t at = line.find(needle);
  EXPECT_NE(at, std::string::npos) << field;
  size_t start = at + needle.size();
  size_t end = start;
  if (line[end] == '"') {
    end = line.find('"', end + 1) + 1;
  } else {
    while (line[end] != ',' && line[end] != '}') ++end;
  }
  return line.substr(0, start) + std::string(value) + line.substr(end);
}

struct Result {
  DecodeStatus status;
  std::string detail;
};

// Decodes with two different paddings: the result must not depend on them.
Result decode(Decoder& d, std::string_view line) {
  Event e;
  PaddedLine braces(line, '}');
  DecodeStatus s1 = d.decode(braces.view(), e);
  std::string detail(d.detail());
  PaddedLine spaces(line, ' ');
  DecodeStatus s2 = d.decode(spaces.view(), e);
  EXPECT_EQ(s1, s2) << "result depends on the bytes after the line: " << line;
  return {s1, detail};
}

void expect_error(Decoder& d, std::string_view line, DecodeStatus want, std::string_view mention = {}) {
  Result r = decode(d, line);
  EXPECT_EQ(r.status, want) << line << "\n  detail: " << r.detail;
  EXPECT_FALSE(r.detail.empty()) << line;
  if (!mention.empty()) {
    EXPECT_NE(r.detail.find(mention), std::string::npos)
        << "detail \"" << r.detail << "\" does not mention " << mention << " for " << line;
  }
}

TEST(DecoderError, TheBaseLineIsGood) {
  Decoder d(sales_schema(), 4096);
  EXPECT_EQ(decode(d, kGood).status, DecodeStatus::ok);
  EXPECT_EQ(decode(d, with("quantity", "-4")).status, DecodeStatus::ok);  // the helper works
}

TEST(DecoderError, TruncatedJsonIsParseError) {
  Decoder d(sales_schema(), 4096);
  // Every proper prefix of a good line (other than blank ones) is invalid JSON.
  for (size_t n = 1; n < kGood.size(); ++n) {
    expect_error(d, std::string_view(kGood).substr(0, n), DecodeStatus::parse_error);
  }
}

TEST(DecoderError, EmptyOrBlankLineIsParseError) {
  Decoder d(sales_schema(), 4096);
  expect_error(d, "", DecodeStatus::parse_error);
  expect_error(d, "   \t ", DecodeStatus::parse_error);
}

TEST(DecoderError, TrailingContentIsParseError) {
  Decoder d(sales_schema(), 4096);
  expect_error(d, kGood + "x", DecodeStatus::parse_error);
  expect_error(d, kGood + "}", DecodeStatus::parse_error);
  expect_error(d, kGood + "{}", DecodeStatus::parse_error);
  expect_error(d, kGood + " " + kGood, DecodeStatus::parse_error);
  expect_error(d, kGood + ",", DecodeStatus::parse_error);
  expect_error(d, kGood + " 1", DecodeStatus::parse_error);
}

TEST(DecoderError, BadLiteralIsParseError) {
  Decoder d(sales_schema(), 4096);
  expect_error(d, with("quantity", "tru"), DecodeStatus::parse_error);
  expect_error(d, with("revenue", "nul"), DecodeStatus::parse_error);
  expect_error(d, with("revenue", "1.2.3"), DecodeStatus::parse_error);
  expect_error(d, with("quantity", "01"), DecodeStatus::parse_error);
  expect_error(d, with("quantity", "+1"), DecodeStatus::parse_error);
  expect_error(d, with("product_id", "NaN"), DecodeStatus::parse_error);
  expect_error(d, with("product_id", "'a'"), DecodeStatus::parse_error);
}

TEST(DecoderError, BadLiteralInAnUnknownFieldIsParseError) {
  // The line is not JSON, whichever field holds the bad token.
  Decoder d(sales_schema(), 4096);
  std::string base = kGood.substr(0, kGood.size() - 1);
  expect_error(d, base + R"(,"extra":tru})", DecodeStatus::parse_error);
  expect_error(d, base + R"(,"extra":nulll})", DecodeStatus::parse_error);
  expect_error(d, base + R"(,"extra":1e400x0})", DecodeStatus::parse_error);
  expect_error(d, base + R"(,"extra":[1,2,}})", DecodeStatus::parse_error);
  expect_error(d, base + R"(,"extra":{"a" 1}})", DecodeStatus::parse_error);
  expect_error(d, R"({"extra":-,)" + kGood.substr(1), DecodeStatus::parse_error);
}

TEST(DecoderError, UnclosedStringIsParseError) {
  Decoder d(sales_schema(), 4096);
  expect_error(d, R"({"product_id":"abc,"customer_id":"c"})", DecodeStatus::parse_error);
  expect_error(d, R"({"product_id":1,"customer_id":"c)", DecodeStatus::parse_error);
  expect_error(d, R"({"product_id)", DecodeStatus::parse_error);
  expect_error(d, with("customer_id", R"("bad \x escape")"), DecodeStatus::parse_error);
  expect_error(d, with("customer_id", "\"raw\ncontrol\""), DecodeStatus::parse_error);
}

// String values and keys are read from their raw bytes when they hold no
// backslash: what makes them invalid must still be caught, in every field.
TEST(DecoderError, BadStringsAreParseErrorsInEveryField) {
  Decoder d(sales_schema(), 4096);
  for (const char* field : {"customer_id", "product_id", "timestamp"}) {
    for (std::string bad : {std::string("\"a\x01b\""), std::string("\"tab\there\""), std::string("\"\x1f\""),
                            std::string(R"("bad \q escape")"), std::string(R"("short \u12 escape")"),
                            std::string(R"("lone \ud800 surrogate")"), std::string(R"("trailing \\\")")}) {
      expect_error(d, with(field, bad), DecodeStatus::parse_error, "invalid JSON");
    }
  }
}

// Unknown fields are walked to check them; deep nesting there is bounded
// (the fuzzer found a stack overflow at simdjson's 1024 levels under ASan).
TEST(DecoderError, DeepNestingInAnUnknownFieldIsBounded) {
  Decoder d(sales_schema(), 1 << 16);
  auto nested = [](int levels, bool objects) {
    std::string v;
    for (int i = 0; i < levels; ++i) v += objects ? "{\"a\":" : "[";
    v += "1";
    for (int i = 0; i < levels; ++i) v += objects ? "}" : "]";
    return kGood.substr(0, kGood.size() - 1) + ",\"deep\":" + v + "}";
  };
  for (bool objects : {false, true}) {
    Result ok = decode(d, nested(100, objects));
    EXPECT_EQ(ok.status, DecodeStatus::ok) << ok.detail;
    expect_error(d, nested(200, objects), DecodeStatus::parse_error, "deeper than");
    expect_error(d, nested(5000, objects), DecodeStatus::parse_error);
  }
}

TEST(DecoderError, InvalidUtf8IsParseError) {
  Decoder d(sales_schema(), 4096);
  for (std::string_view bad : {std::string_view("\xff"), std::string_view("\xc3"), std::string_view("\x80"),
                               std::string_view("\xc0\xaf"), std::string_view("\xed\xa0\x80"),
                               std::string_view("\xf4\x90\x80\x80")}) {
    std::string in_value = with("customer_id", "\"a" + std::string(bad) + "b\"");
    expect_error(d, in_value, DecodeStatus::parse_error);
    std::string in_key = with("product_id", "\"" + std::string(bad) + "\"");
    expect_error(d, in_key, DecodeStatus::parse_error);
    std::string in_unknown = kGood.substr(0, kGood.size() - 1) + ",\"x\":\"" + std::string(bad) + "\"}";
    expect_error(d, in_unknown, DecodeStatus::parse_error);
  }
}

TEST(DecoderError, TopLevelNonObjectIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  for (const char* line : {"[1,2,3]", "[]", "[" R"({"product_id":1})" "]", "42", "-1.5", R"("a string")", "true",
                           "null"}) {
    expect_error(d, line, DecodeStatus::schema_error);
  }
}

TEST(DecoderError, MissingFieldIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  for (const char* field : {"product_id", "customer_id", "quantity", "revenue", "timestamp"}) {
    // Rename the field so it is no longer there.
    std::string line = kGood;
    size_t at = line.find("\"" + std::string(field) + "\"");
    line.insert(at + 1, "x_");
    expect_error(d, line, DecodeStatus::schema_error, field);
  }
  expect_error(d, "{}", DecodeStatus::schema_error, "product_id");
}

TEST(DecoderError, MistypedValueFieldIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  expect_error(d, with("quantity", R"("3")"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("quantity", "1.5"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("quantity", "1e2"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("quantity", "true"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("quantity", "null"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("quantity", "[1]"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("revenue", R"({"v":1})"), DecodeStatus::schema_error, "revenue");
  expect_error(d, with("revenue", R"("1.5")"), DecodeStatus::schema_error, "revenue");
  expect_error(d, with("revenue", "[]"), DecodeStatus::schema_error, "revenue");
  expect_error(d, with("revenue", "false"), DecodeStatus::schema_error, "revenue");
  expect_error(d, with("customer_id", "5"), DecodeStatus::schema_error, "customer_id");
  expect_error(d, with("customer_id", "null"), DecodeStatus::schema_error, "customer_id");
  expect_error(d, with("customer_id", R"(["c"])"), DecodeStatus::schema_error, "customer_id");
}

// An optional field may be absent or null, not of another type; a required
// one stays required beside it.
TEST(DecoderError, OptionalFieldsOfTheWrongTypeAndMissingRequiredOnes) {
  SchemaConfig schema = sales_schema();
  schema.fields[0].presence = FieldPresence::optional;  // customer_id
  schema.fields[2].presence = FieldPresence::defaulted;  // revenue
  schema.fields[2].default_float = 1;
  Decoder d(schema, 4096);
  EXPECT_EQ(decode(d, with("customer_id", "null")).status, DecodeStatus::ok);
  EXPECT_EQ(decode(d, with("revenue", "null")).status, DecodeStatus::ok);
  expect_error(d, with("customer_id", "5"), DecodeStatus::schema_error, "field \"customer_id\" must be a string");
  expect_error(d, with("customer_id", "false"), DecodeStatus::schema_error, "customer_id");
  expect_error(d, with("customer_id", R"(["c"])"), DecodeStatus::schema_error, "customer_id");
  expect_error(d, with("revenue", R"("1.5")"), DecodeStatus::schema_error, "revenue");
  expect_error(d, with("revenue", "{}"), DecodeStatus::schema_error, "revenue");
  expect_error(d, with("quantity", "null"), DecodeStatus::schema_error,
               "field \"quantity\" must be an integer (int64), not null (it is a required field)");
  expect_error(d, R"({"product_id":1,"timestamp":"2024-01-01T00:00:00Z"})", DecodeStatus::schema_error,
               "missing field \"quantity\"");
  expect_error(d, R"({"product_id":1,"customer_id":null,"customer_id":"c","quantity":2,"timestamp":"2024-01-01T00:00:00Z"})",
               DecodeStatus::schema_error, "duplicate field \"customer_id\"");
  // Not JSON stays a parse error, whatever the field.
  expect_error(d, with("customer_id", "nul"), DecodeStatus::parse_error);
  expect_error(d, with("customer_id", "nullx"), DecodeStatus::parse_error);
}

TEST(DecoderError, IntegerOutOfInt64RangeIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  expect_error(d, with("quantity", "9223372036854775808"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("quantity", "18446744073709551615"), DecodeStatus::schema_error, "quantity");
  expect_error(d, with("product_id", "9223372036854775808"), DecodeStatus::schema_error, "product_id");
}

TEST(DecoderError, IntegerBeyondTheParsersRangeIsRejected) {
  // Valid JSON by RFC 8259, which lets a parser bound the numbers it accepts;
  // simdjson refuses integers outside [-2^63, 2^64). Either class of error is
  // acceptable here, but never ok.
  Decoder d(sales_schema(), 4096);
  for (const char* v : {"-9223372036854775809", "123456789012345678901234567890"}) {
    Result r = decode(d, with("quantity", v));
    EXPECT_NE(r.status, DecodeStatus::ok) << v;
    EXPECT_FALSE(r.detail.empty()) << v;
  }
}

TEST(DecoderError, KeyOfWrongTypeIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  for (const char* v : {"1.5", "1e3", "-0.0", "true", "false", "null", "{}", R"({"a":1})", "[]", "[1]"}) {
    expect_error(d, with("product_id", v), DecodeStatus::schema_error, "product_id");
  }
}

TEST(DecoderError, KeyLongerThanTheLimitIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  std::string k(kKeyBytesMax - 4, 'k');  // one byte more than fits
  expect_error(d, with("product_id", "\"" + k + "\""), DecodeStatus::schema_error, "product_id");

  SchemaConfig two = sales_schema();
  two.key = {"a", "product_id"};
  Decoder d2(two, 8192);
  // Each part fits alone, together they do not.
  std::string half(kKeyBytesMax / 2, 'h');
  std::string line = R"({"a":")" + half + "\"," + kGood.substr(1);
  line = line.replace(line.find("\"product_id\":1"), 14, "\"product_id\":\"" + half + "\"");
  Result r = decode(d2, line);
  EXPECT_EQ(r.status, DecodeStatus::schema_error) << r.detail;
  EXPECT_FALSE(r.detail.empty());
}

TEST(DecoderError, BadTimestampIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  for (const char* v : {R"("2024-13-01T00:00:00Z")", R"("2024-01-01T00:00:00")", R"("2024-02-30T00:00:00Z")",
                        R"("yesterday")", R"("")", R"("1600-01-01T00:00:00Z")", "1704067200", "null", "{}"}) {
    expect_error(d, with("timestamp", v), DecodeStatus::schema_error, "timestamp");
  }
}

TEST(DecoderError, BadEpochIsSchemaError) {
  struct Case {
    TimeFormat tf;
    const char* v;
  } cases[] = {
      {TimeFormat::epoch_s, "9223372037"},            // * 1e9 overflows int64
      {TimeFormat::epoch_s, "-9223372037"},
      {TimeFormat::epoch_ms, "9223372036855"},
      {TimeFormat::epoch_us, "9223372036854776"},
      {TimeFormat::epoch_ns, "9223372036854775808"},  // beyond int64 itself
      {TimeFormat::epoch_s, "1e300"},
      {TimeFormat::epoch_s, "-1e300"},
      {TimeFormat::epoch_ms, "9.3e15"},
      {TimeFormat::epoch_s, R"("1704067200")"},
      {TimeFormat::epoch_s, R"("2024-01-01T00:00:00Z")"},
      {TimeFormat::epoch_ms, "true"},
      {TimeFormat::epoch_ns, "null"},
      {TimeFormat::epoch_us, "[1]"},
  };
  for (const Case& c : cases) {
    Decoder d(sales_schema(c.tf), 4096);
    expect_error(d, with("timestamp", c.v), DecodeStatus::schema_error, "timestamp");
  }
}

TEST(DecoderError, DuplicateSchemaFieldIsSchemaError) {
  Decoder d(sales_schema(), 4096);
  std::string base = kGood.substr(0, kGood.size() - 1);
  expect_error(d, base + R"(,"quantity":2})", DecodeStatus::schema_error, "quantity");
  expect_error(d, base + R"(,"product_id":1})", DecodeStatus::schema_error, "product_id");
  expect_error(d, base + R"(,"timestamp":"2024-01-01T00:00:00Z"})", DecodeStatus::schema_error, "timestamp");
  expect_error(d, base + R"(,"customer_id":"d"})", DecodeStatus::schema_error, "customer_id");
  // The same name spelled with an escape is the same field.
  expect_error(d, base + R"(,"reven\u0075e":1})", DecodeStatus::schema_error, "revenue");
}

TEST(DecoderError, ParseErrorWinsOverSchemaError) {
  // A missing field and broken JSON: the line is not JSON, so parse_error.
  Decoder d(sales_schema(), 4096);
  expect_error(d, R"({"product_id":"x",)", DecodeStatus::parse_error);
  expect_error(d, R"({"quantity":"wrong type"} trailing)", DecodeStatus::parse_error);
  expect_error(d, R"({"product_id":1.5,"x":tru})", DecodeStatus::parse_error);
}

}  // namespace
}  // namespace sluice
