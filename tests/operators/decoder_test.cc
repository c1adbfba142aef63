#include "operators/decoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/config_model.h"
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

// A line with kLinePadding readable bytes after it, as decode() requires. The
// padding is not blank: decoding must not depend on what follows the line
// (simdjson: "it does not matter what those bytes are initialized to").
class PaddedLine {
 public:
  explicit PaddedLine(std::string_view text, char pad = '}')
      : size_(text.size()), buf_(new char[text.size() + kLinePadding]) {
    std::memcpy(buf_.get(), text.data(), text.size());
    std::memset(buf_.get() + text.size(), pad, kLinePadding);
  }
  std::string_view view() const { return {buf_.get(), size_}; }

 private:
  size_t size_;
  std::unique_ptr<char[]> buf_;
};

// The sales schema as the config loader produces it: fields sorted by name.
SchemaConfig sales_schema(TimeFormat tf = TimeFormat::rfc3339) {
  SchemaConfig s;
  s.key = {"product_id"};
  s.time_field = "timestamp";
  s.time_format = tf;
  s.fields = {{"customer_id", FieldType::string}, {"quantity", FieldType::int64}, {"revenue", FieldType::float64}};
  return s;
}
constexpr size_t kQuantity = 1;  // index in sales_schema().fields
constexpr size_t kRevenue = 2;

// Expected key encodings, written from the format described in operators/event.h.
std::string key_int(int64_t v) {
  std::string s(1, 'i');
  uint64_t u = uint64_t(v);
  for (int i = 0; i < 8; ++i) s.push_back(char((u >> (8 * i)) & 0xff));
  return s;
}
std::string key_str(std::string_view v) {
  std::string s(1, 's');
  uint32_t n = uint32_t(v.size());
  for (int i = 0; i < 4; ++i) s.push_back(char((n >> (8 * i)) & 0xff));
  s.append(v);
  return s;
}

constexpr int64_t k2024Ns = 1'704'067'200 * kNsPerS;  // 2024-01-01T00:00:00Z

struct Decoded {
  DecodeStatus status;
  Event event;
  std::string key;  // copy of event.key
  std::string detail;
};

Decoded decode(Decoder& d, std::string_view line, const RecordMeta* meta = nullptr) {
  PaddedLine p(line);
  Decoded r;
  r.status = d.decode(p.view(), r.event, meta);
  if (r.status == DecodeStatus::ok) r.key = std::string(r.event.key);
  r.detail = std::string(d.detail());
  return r;
}

TEST(Decoder, StringKeyAndTypedValues) {
  Decoder d(sales_schema(), 4096);
  EXPECT_EQ(d.value_fields(), 3u);
  Decoded r = decode(d, R"({"product_id":"abc","customer_id":"c1","quantity":3,"revenue":1.5,)"
                        R"("timestamp":"2024-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_str("abc"));
  EXPECT_EQ(r.event.time_ns, k2024Ns);
  EXPECT_EQ(r.event.values[kQuantity].i, 3);
  EXPECT_EQ(r.event.values[kRevenue].f, 1.5);
}

// Regression (found by the decoder fuzz target's DOM oracle): simdjson 3.0's
// On-Demand get_double read "0." followed by 19+ digits wrongly, with
// success (0.12345678901234567890123 as 4.8e-05). The expected value of each
// is the same text as a C++ literal: the compiler rounds it correctly.
TEST(Decoder, ZeroPointManyDigitsIsReadExactly) {
  Decoder d(sales_schema(), 4096);
#define SLUICE_NUMBER_CASE(x) {#x, x}
  const struct {
    const char* text;
    double value;
  } cases[] = {
      SLUICE_NUMBER_CASE(0.12345678901234567890123),
      SLUICE_NUMBER_CASE(-0.092233720368547758083372036856775808),
      SLUICE_NUMBER_CASE(0.99999999999999999999),
      SLUICE_NUMBER_CASE(0.1000000000000000000001),
      SLUICE_NUMBER_CASE(0.5),
  };
#undef SLUICE_NUMBER_CASE
  for (const auto& c : cases) {
    Decoded r = decode(d, std::string(R"({"product_id":1,"customer_id":"c","quantity":1,"revenue":)") + c.text +
                              R"(,"timestamp":"2024-01-01T00:00:00Z"})");
    ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
    EXPECT_EQ(r.event.values[kRevenue].f, c.value) << c.text;
  }
  // The same in a fractional epoch time: 0.5000000000000000000001 s.
  Decoder e(sales_schema(TimeFormat::epoch_s), 4096);
  Decoded r = decode(e, R"({"product_id":1,"customer_id":"c","quantity":1,"revenue":1,)"
                        R"("timestamp":0.5000000000000000000001})");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.event.time_ns, 500'000'000);
}

TEST(Decoder, IntKeys) {
  Decoder d(sales_schema(), 4096);
  for (int64_t k : {int64_t(0), int64_t(17), int64_t(-1), int64_t(INT64_MAX), int64_t(INT64_MIN)}) {
    std::string line = R"({"product_id":)" + std::to_string(k) +
                       R"(,"customer_id":"c","quantity":1,"revenue":2.0,"timestamp":"2024-01-01T00:00:00Z"})";
    Decoded r = decode(d, line);
    ASSERT_EQ(r.status, DecodeStatus::ok) << line << ": " << r.detail;
    EXPECT_EQ(r.key, key_int(k)) << k;
  }
}

TEST(Decoder, IntAndStringKeysWithTheSameTextDiffer) {
  Decoder d(sales_schema(), 4096);
  Decoded a = decode(d, R"({"product_id":17,"customer_id":"c","quantity":1,"revenue":2,"timestamp":"2024-01-01T00:00:00Z"})");
  Decoded b = decode(d, R"({"product_id":"17","customer_id":"c","quantity":1,"revenue":2,"timestamp":"2024-01-01T00:00:00Z"})");
  ASSERT_EQ(a.status, DecodeStatus::ok);
  ASSERT_EQ(b.status, DecodeStatus::ok);
  EXPECT_NE(a.key, b.key);
  EXPECT_NE(a.event.key_hash, b.event.key_hash);
}

TEST(Decoder, MultiFieldKeyInAnyFieldOrder) {
  SchemaConfig s;
  s.key = {"region", "product_id", "store"};  // schema order, not sorted
  s.time_field = "ts";
  s.fields = {{"price", FieldType::float64}, {"qty", FieldType::int64}};
  Decoder d(s, 4096);
  std::vector<std::string> parts = {R"("store":-5)", R"("ts":"2024-01-01T00:00:01.5Z")", R"("qty":7)",
                                    R"("product_id":"p-9")", R"("price":2.25)", R"("region":"eu")"};
  std::string want_key = key_str("eu") + key_str("p-9") + key_int(-5);
  std::vector<size_t> order(parts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  int permutations = 0;
  uint64_t first_hash = 0;
  do {
    std::string line = "{";
    for (size_t i : order) line += (line.size() > 1 ? "," : "") + parts[i];
    line += "}";
    Decoded r = decode(d, line);
    ASSERT_EQ(r.status, DecodeStatus::ok) << line << ": " << r.detail;
    ASSERT_EQ(r.key, want_key) << line;
    if (permutations == 0) first_hash = r.event.key_hash;
    ASSERT_EQ(r.event.key_hash, first_hash) << line;
    ASSERT_EQ(r.event.time_ns, k2024Ns + 1'500'000'000) << line;
    ASSERT_EQ(r.event.values[0].f, 2.25) << line;
    ASSERT_EQ(r.event.values[1].i, 7) << line;
    ++permutations;
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_EQ(permutations, 720);
}

TEST(Decoder, EqualKeysHaveEqualHashesAndDifferentKeysDiffer) {
  Decoder d(sales_schema(), 4096);
  auto line = [](std::string_view key_json, int q) {
    return std::string(R"({"quantity":)") + std::to_string(q) + R"(,"product_id":)" + std::string(key_json) +
           R"(,"revenue":1,"customer_id":"x","timestamp":"2024-01-01T00:00:00Z"})";
  };
  Decoded a1 = decode(d, line(R"("a\u0062c")", 1));  // "abc" with an escape
  Decoded a2 = decode(d, line(R"("abc")", 2));
  Decoded b = decode(d, line(R"("abd")", 1));
  ASSERT_EQ(a1.status, DecodeStatus::ok);
  ASSERT_EQ(a2.status, DecodeStatus::ok);
  ASSERT_EQ(b.status, DecodeStatus::ok);
  EXPECT_EQ(a1.key, a2.key);
  EXPECT_EQ(a1.event.key_hash, a2.event.key_hash);
  EXPECT_NE(a1.key, b.key);
  EXPECT_NE(a1.event.key_hash, b.event.key_hash);
  // Hashes of many distinct keys are distinct (a hash of the key bytes).
  std::vector<uint64_t> hashes;
  for (int i = 0; i < 2000; ++i) {
    Decoded r = decode(d, line(std::to_string(i), 1));
    ASSERT_EQ(r.status, DecodeStatus::ok);
    hashes.push_back(r.event.key_hash);
  }
  std::sort(hashes.begin(), hashes.end());
  EXPECT_EQ(std::adjacent_find(hashes.begin(), hashes.end()), hashes.end());
}

TEST(Decoder, EscapesInKeysAreUnescaped) {
  Decoder d(sales_schema(), 4096);
  Decoded r = decode(d, R"({"product_id":"a\nb\"c\\d\/e\t\u00e9\ud83d\ude00","customer_id":"c","quantity":1,)"
                        R"("revenue":2,"timestamp":"2024-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_str("a\nb\"c\\d/e\t\xc3\xa9\xf0\x9f\x98\x80"));
}

// Keys of every length around the 16-byte blocks the raw-string scan reads,
// with and without an escape at each end, decode to their exact bytes.
TEST(Decoder, StringKeysOfEveryLength) {
  Decoder d(sales_schema(), 4096);
  for (size_t n = 0; n <= 40; ++n) {
    std::string plain;
    for (size_t i = 0; i < n; ++i) plain.push_back(char('a' + i % 26));
    for (int variant = 0; variant < 3; ++variant) {
      std::string json = plain, want = plain;
      if (variant == 1) {  // an escaped quote first
        json = "\\\"" + plain;
        want = "\"" + plain;
      } else if (variant == 2) {  // an escaped backslash last
        json = plain + "\\\\";
        want = plain + "\\";
      }
      Decoded r = decode(d, R"({"product_id":")" + json +
                                R"(","customer_id":"c\n","quantity":1,"revenue":2,"timestamp":"2024-01-01T00:00:00Z"})");
      ASSERT_EQ(r.status, DecodeStatus::ok) << n << " " << variant << ": " << r.detail;
      EXPECT_EQ(r.key, key_str(want)) << n << " " << variant;
    }
  }
}

TEST(Decoder, EscapedFieldNamesMatch) {
  Decoder d(sales_schema(), 4096);
  Decoded r = decode(d, R"({"product\u005fid":1,"customer_id":"c","qu\u0061ntity":4,"revenue":2,)"
                        R"("timestamp":"2024-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_int(1));
  EXPECT_EQ(r.event.values[kQuantity].i, 4);
}

TEST(Decoder, Utf8AndEscapesInValues) {
  Decoder d(sales_schema(), 4096);
  Decoded r = decode(d, "{\"product_id\":\"Caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\xb0\",\"customer_id\":"
                        "\"Zo\xc3\xab \\\"q\\\" \\u00e9 \\ud83d\\ude00 \\n\",\"quantity\":1,\"revenue\":2,"
                        "\"timestamp\":\"2024-01-01T00:00:00Z\"}");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_str("Caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\xb0"));
}

TEST(Decoder, LongestKeyFits) {
  Decoder d(sales_schema(), 4096);
  std::string k(kKeyBytesMax - 5, 'k');  // 's' + 4-byte length + bytes = kKeyBytesMax
  Decoded r = decode(d, R"({"product_id":")" + k +
                            R"(","customer_id":"c","quantity":1,"revenue":2,"timestamp":"2024-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_str(k));
  EXPECT_EQ(r.key.size(), kKeyBytesMax);
}

TEST(Decoder, NumbersForFloatFields) {
  Decoder d(sales_schema(), 4096);
  struct Case {
    const char* json;
    double want;
  } cases[] = {{"3", 3.0}, {"-7", -7.0}, {"0", 0.0}, {"2.5", 2.5}, {"-0.125", -0.125},
               {"1e3", 1000.0}, {"1.5E-2", 0.015}, {"9007199254740993", 9007199254740992.0},
               {"1.7976931348623157e308", 1.7976931348623157e308}};
  for (const Case& c : cases) {
    std::string line = std::string(R"({"product_id":1,"customer_id":"c","quantity":1,"revenue":)") + c.json +
                       R"(,"timestamp":"2024-01-01T00:00:00Z"})";
    Decoded r = decode(d, line);
    ASSERT_EQ(r.status, DecodeStatus::ok) << line << ": " << r.detail;
    EXPECT_EQ(r.event.values[kRevenue].f, c.want) << c.json;
  }
}

TEST(Decoder, Int64FieldRange) {
  Decoder d(sales_schema(), 4096);
  for (const char* q : {"0", "-1", "9223372036854775807", "-9223372036854775808"}) {
    std::string line = std::string(R"({"product_id":1,"customer_id":"c","revenue":1,"quantity":)") + q +
                       R"(,"timestamp":"2024-01-01T00:00:00Z"})";
    Decoded r = decode(d, line);
    ASSERT_EQ(r.status, DecodeStatus::ok) << line << ": " << r.detail;
    EXPECT_EQ(r.event.values[kQuantity].i, std::stoll(q));
  }
}

TEST(Decoder, Rfc3339TimeVariants) {
  Decoder d(sales_schema(), 4096);
  struct Case {
    const char* ts;
    int64_t want;
  } cases[] = {{"2024-01-01T00:00:00Z", k2024Ns},
               {"2024-01-01T01:00:00+01:00", k2024Ns},
               {"2024-01-01 00:00:00.250z", k2024Ns + 250'000'000},
               {"1969-12-31T23:59:59.999999999Z", -1}};
  for (const Case& c : cases) {
    std::string line = std::string(R"({"product_id":1,"customer_id":"c","quantity":1,"revenue":1,"timestamp":")") +
                       c.ts + "\"}";
    Decoded r = decode(d, line);
    ASSERT_EQ(r.status, DecodeStatus::ok) << line << ": " << r.detail;
    EXPECT_EQ(r.event.time_ns, c.want) << c.ts;
  }
}

TEST(Decoder, EpochTimeFormats) {
  struct Case {
    TimeFormat tf;
    const char* json;
    int64_t want;
  } cases[] = {
      {TimeFormat::epoch_s, "1704067200", k2024Ns},
      {TimeFormat::epoch_s, "0", 0},
      {TimeFormat::epoch_s, "-1", -kNsPerS},
      {TimeFormat::epoch_s, "1.5", 1'500'000'000},
      {TimeFormat::epoch_s, "-2.25", -2'250'000'000},
      {TimeFormat::epoch_s, "1704067200.0", k2024Ns},
      {TimeFormat::epoch_s, "9223372036", 9'223'372'036 * kNsPerS},
      {TimeFormat::epoch_ms, "1704067200123", k2024Ns + 123'000'000},
      {TimeFormat::epoch_ms, "-1", -kNsPerMs},
      {TimeFormat::epoch_ms, "2.5", 2'500'000},
      {TimeFormat::epoch_ms, "1e3", kNsPerS},
      {TimeFormat::epoch_us, "1704067200123456", k2024Ns + 123'456'000},
      {TimeFormat::epoch_us, "0.5", 500},
      {TimeFormat::epoch_ns, "1704067200123456789", k2024Ns + 123'456'789},
      {TimeFormat::epoch_ns, "9223372036854775807", INT64_MAX},
      {TimeFormat::epoch_ns, "-9223372036854775808", INT64_MIN},
      {TimeFormat::epoch_ns, "1024.0", 1024},
  };
  for (const Case& c : cases) {
    Decoder d(sales_schema(c.tf), 4096);
    std::string line = std::string(R"({"product_id":1,"customer_id":"c","quantity":1,"revenue":1,"timestamp":)") +
                       c.json + "}";
    Decoded r = decode(d, line);
    ASSERT_EQ(r.status, DecodeStatus::ok) << line << ": " << r.detail;
    EXPECT_EQ(r.event.time_ns, c.want) << c.json << " format " << int(c.tf);
  }
}

TEST(Decoder, UnknownFieldsAreIgnored) {
  Decoder d(sales_schema(), 4096);
  Decoded ok = decode(d, R"({"extra":{"product_id":99,"nested":[1,{"quantity":"x"},[[]]],"s":"}]"},)"
                         R"("product_id":5,"list":[1,2.5,"three",null,true,false,{"a":{}}],"customer_id":"c",)"
                         R"("quantity":2,"null":null,"flag":true,"revenue":3.25,"big":123456789012345678901234567890,)"
                         R"("timestamp":"2024-01-01T00:00:00Z","tail":"\u00e9\"}"})");
  ASSERT_EQ(ok.status, DecodeStatus::ok) << ok.detail;
  EXPECT_EQ(ok.key, key_int(5));
  EXPECT_EQ(ok.event.values[kQuantity].i, 2);
  EXPECT_EQ(ok.event.values[kRevenue].f, 3.25);
  EXPECT_EQ(ok.event.time_ns, k2024Ns);
}

TEST(Decoder, DuplicateUnknownFieldsAreFine) {
  Decoder d(sales_schema(), 4096);
  Decoded r = decode(d, R"({"x":1,"x":2,"product_id":1,"customer_id":"c","quantity":1,"revenue":1,)"
                        R"("timestamp":"2024-01-01T00:00:00Z","x":[3]})");
  EXPECT_EQ(r.status, DecodeStatus::ok) << r.detail;
}

TEST(Decoder, WhitespaceAroundTokens) {
  Decoder d(sales_schema(), 4096);
  Decoded r = decode(d, " \t{ \"product_id\" : 8 ,\r\"customer_id\":\"c\" ,\"quantity\" :\n1,\"revenue\":1 , "
                        "\"timestamp\" : \"2024-01-01T00:00:00Z\" }  \t");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_int(8));
}

TEST(Decoder, DecodesAfterAnError) {
  Decoder d(sales_schema(), 4096);
  EXPECT_NE(decode(d, R"({"product_id":1})").status, DecodeStatus::ok);
  EXPECT_NE(decode(d, R"({"product_id":)").status, DecodeStatus::ok);
  Decoded r = decode(d, R"({"product_id":2,"customer_id":"c","quantity":6,"revenue":1,"timestamp":"2024-01-01T00:00:00Z"})");
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_int(2));
  EXPECT_EQ(r.event.values[kQuantity].i, 6);
}

TEST(Decoder, LineOfLineBytesMax) {
  const uint32_t max = 256;
  Decoder d(sales_schema(), max);
  std::string line = R"({"product_id":1,"customer_id":"c","quantity":1,"revenue":1,"timestamp":"2024-01-01T00:00:00Z","pad":")";
  line += std::string(max - line.size() - 2, 'p') + "\"}";
  ASSERT_EQ(line.size(), max);
  Decoded r = decode(d, line);
  EXPECT_EQ(r.status, DecodeStatus::ok) << r.detail;
}

// Optional fields: absent or null is "absent" (Event::absent), or the
// field's default; a present value is read as for a required field.
SchemaConfig optional_schema() {
  SchemaConfig s;
  s.key = {"product_id"};
  s.time_field = "ts";
  s.time_format = TimeFormat::epoch_s;
  s.fields = {{"customer_id", FieldType::string, FieldPresence::optional},
              {"discount", FieldType::float64, FieldPresence::defaulted, 0, 0.25},
              {"quantity", FieldType::int64},
              {"region", FieldType::string, FieldPresence::defaulted, 0, 0, "anonymous"},
              {"revenue", FieldType::float64, FieldPresence::optional},
              {"units", FieldType::int64, FieldPresence::defaulted, -1}};
  return s;
}
constexpr uint32_t kOptCustomer = 0, kOptDiscount = 1, kOptQuantity = 2, kOptRegion = 3, kOptRevenue = 4,
                   kOptUnits = 5;

TEST(DecoderOptional, AbsentAndNullOptionalFieldsAreAbsent) {
  Decoder d(optional_schema(), 4096, /*carried_strings=*/(1u << kOptCustomer) | (1u << kOptRegion));
  struct Case {
    std::string line;
    uint32_t absent;
  };
  const Case cases[] = {
      {R"({"product_id":1,"ts":5,"quantity":2,"customer_id":"c7","revenue":1.5})", 0},
      {R"({"product_id":1,"ts":5,"quantity":2,"revenue":1.5})", 1u << kOptCustomer},
      {R"({"product_id":1,"ts":5,"quantity":2,"customer_id":null,"revenue":1.5})", 1u << kOptCustomer},
      {R"({"product_id":1,"ts":5,"quantity":2,"customer_id":"c7","revenue":null})", 1u << kOptRevenue},
      {R"({"product_id":1,"ts":5,"quantity":2})", (1u << kOptCustomer) | (1u << kOptRevenue)},
      {R"({"revenue" : null , "customer_id" : null, "ts":5,"quantity":2,"product_id":1})",
       (1u << kOptCustomer) | (1u << kOptRevenue)},
  };
  for (int round = 0; round < 2; ++round) {  // a decoder's previous event leaves nothing behind
    for (const Case& c : cases) {
      Decoded r = decode(d, c.line);
      ASSERT_EQ(r.status, DecodeStatus::ok) << c.line << ": " << r.detail;
      EXPECT_EQ(r.event.absent, c.absent) << c.line;
      EXPECT_EQ(r.event.values[kOptQuantity].i, 2) << c.line;
      if (!(c.absent >> kOptCustomer & 1)) {
        EXPECT_EQ(text_of(r.event.text, r.event.values[kOptCustomer]), "c7");
      }
      if (!(c.absent >> kOptRevenue & 1)) {
        EXPECT_EQ(r.event.values[kOptRevenue].f, 1.5);
      }
    }
  }
}

TEST(DecoderOptional, DefaultsFillAbsentAndNullFields) {
  Decoder d(optional_schema(), 4096, /*carried_strings=*/(1u << kOptCustomer) | (1u << kOptRegion));
  for (const char* line : {R"({"product_id":1,"ts":5,"quantity":2,"customer_id":"c"})",
                           R"({"product_id":1,"ts":5,"quantity":2,"customer_id":"c","discount":null,"region":null,"units":null})"}) {
    Decoded r = decode(d, line);
    ASSERT_EQ(r.status, DecodeStatus::ok) << line << ": " << r.detail;
    EXPECT_EQ(r.event.absent, 1u << kOptRevenue) << line;  // the one optional field without a default
    EXPECT_EQ(r.event.values[kOptDiscount].f, 0.25);
    EXPECT_EQ(r.event.values[kOptUnits].i, -1);
    EXPECT_EQ(text_of(r.event.text, r.event.values[kOptRegion]), "anonymous");
    EXPECT_EQ(text_of(r.event.text, r.event.values[kOptCustomer]), "c");
  }
  Decoded given = decode(d, R"({"product_id":1,"ts":5,"quantity":2,"discount":0.5,"region":"eu","units":4,"revenue":2})");
  ASSERT_EQ(given.status, DecodeStatus::ok) << given.detail;
  EXPECT_EQ(given.event.absent, 1u << kOptCustomer);
  EXPECT_EQ(given.event.values[kOptDiscount].f, 0.5);
  EXPECT_EQ(given.event.values[kOptUnits].i, 4);
  EXPECT_EQ(text_of(given.event.text, given.event.values[kOptRegion]), "eu");
  EXPECT_EQ(given.event.values[kOptRevenue].f, 2.0);
  // A string default no aggregate reads is not carried.
  Decoder plain(optional_schema(), 4096);
  Decoded p = decode(plain, R"({"product_id":1,"ts":5,"quantity":2})");
  ASSERT_EQ(p.status, DecodeStatus::ok) << p.detail;
  EXPECT_TRUE(p.event.text.empty());
}

// Kafka record metadata as schema fields.
SchemaConfig kafka_schema() {
  SchemaConfig s;
  s.key = {"region", std::string(kKafkaKeyField)};
  s.time_field = std::string(kKafkaTimestampField);
  s.fields = {{"quantity", FieldType::int64}};
  return s;
}

TEST(DecoderKafkaMeta, KeyAndTimeComeFromTheRecord) {
  Decoder d(kafka_schema(), 4096);
  RecordMeta meta{1'711'620'000'250, "p-17", false};  // 2024-03-28T10:00:00.250Z
  // A JSON field with the metadata's name is an ordinary (ignored) field.
  Decoded r = decode(d, R"({"quantity":3,"region":"eu","@kafka.key":"json","timestamp":1})", &meta);
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_str("eu") + key_str("p-17"));
  EXPECT_EQ(r.event.time_ns, 1'711'620'000'250 * kNsPerMs);
  EXPECT_EQ(r.event.values[0].i, 3);
}

TEST(DecoderKafkaMeta, NullOrMissingMetaIsASchemaError) {
  Decoder d(kafka_schema(), 4096);
  RecordMeta null_key{1000, {}, true};
  Decoded a = decode(d, R"({"quantity":3,"region":"eu"})", &null_key);
  EXPECT_EQ(a.status, DecodeStatus::schema_error);
  EXPECT_NE(a.detail.find("no key"), std::string::npos) << a.detail;
  Decoded b = decode(d, R"({"quantity":3,"region":"eu"})", nullptr);
  EXPECT_EQ(b.status, DecodeStatus::schema_error);
}

TEST(DecoderKafkaMeta, NonUtf8RecordKeyIsASchemaError) {
  Decoder d(kafka_schema(), 4096);
  RecordMeta meta{1000, std::string_view("\xff\xfe", 2), false};
  Decoded r = decode(d, R"({"quantity":3,"region":"eu"})", &meta);
  EXPECT_EQ(r.status, DecodeStatus::schema_error);
  EXPECT_NE(r.detail.find("UTF-8"), std::string::npos) << r.detail;
}

TEST(DecoderKafkaMeta, InvalidJsonStaysAParseError) {
  Decoder d(kafka_schema(), 4096);
  RecordMeta null_key{1000, {}, true};
  EXPECT_EQ(decode(d, R"({"quantity":3,"region":"eu")", &null_key).status, DecodeStatus::parse_error);
}

TEST(DecoderKafkaMeta, TimestampOutsideInt64NanosecondsIsASchemaError) {
  Decoder d(kafka_schema(), 4096);
  RecordMeta meta{INT64_MAX / 1000, "k", false};
  EXPECT_EQ(decode(d, R"({"quantity":3,"region":"eu"})", &meta).status, DecodeStatus::schema_error);
}

// Record headers as a key part and as value fields ("@kafka.header.<name>").
SchemaConfig header_schema() {
  SchemaConfig s;
  s.key = {"product_id", "@kafka.header.source"};
  s.time_field = std::string(kKafkaTimestampField);
  s.fields = {{"@kafka.header.region", FieldType::string},
              {"@kafka.header.tier", FieldType::string, FieldPresence::defaulted, 0, 0, "basic"},
              {"@kafka.header.version", FieldType::string, FieldPresence::optional},
              {"quantity", FieldType::int64}};
  return s;
}
constexpr uint32_t kHdrRegion = 0, kHdrTier = 1, kHdrVersion = 2, kHdrQuantity = 3;

// A record's metadata with the headers `given` (nullopt: a null value), laid
// out in the schema's header order as the Kafka source lays them out.
struct Headers {
  std::vector<std::pair<std::string, std::optional<std::string>>> given;
};
RecordMeta meta_with(const SchemaConfig& schema, const Headers& h) {
  RecordMeta m{1'711'620'000'250, "k", false};
  const std::vector<std::string> names = schema.header_names();
  for (size_t i = 0; i < names.size(); ++i) {
    for (const auto& [name, value] : h.given) {
      if (name != names[i]) continue;
      m.headers_found |= 1u << i;
      if (value) {
        m.headers_null &= ~(1u << i);
        m.headers[i] = *value;
      } else {
        m.headers_null |= 1u << i;
        m.headers[i] = {};
      }
    }
  }
  return m;
}

TEST(DecoderKafkaHeaders, HeadersAreKeyPartsAndStringFields) {
  const SchemaConfig schema = header_schema();
  Decoder d(schema, 4096, (1u << kHdrRegion) | (1u << kHdrTier) | (1u << kHdrVersion));
  const std::string line = R"({"product_id":17,"quantity":3,"@kafka.header.source":"json is ignored"})";
  // The headers outlive the metadata, whose values are views into them.
  const Headers all_headers{{{"source", "pos-system"}, {"region", "eu"}, {"tier", "gold"}, {"version", "1.0"}}};
  RecordMeta all = meta_with(schema, all_headers);
  Decoded r = decode(d, line, &all);
  ASSERT_EQ(r.status, DecodeStatus::ok) << r.detail;
  EXPECT_EQ(r.key, key_int(17) + key_str("pos-system"));
  EXPECT_EQ(r.event.absent, 0u);
  EXPECT_EQ(text_of(r.event.text, r.event.values[kHdrRegion]), "eu");
  EXPECT_EQ(text_of(r.event.text, r.event.values[kHdrTier]), "gold");
  EXPECT_EQ(text_of(r.event.text, r.event.values[kHdrVersion]), "1.0");
  EXPECT_EQ(r.event.values[kHdrQuantity].i, 3);

  // Optional headers missing or null: absent, or the default.
  for (const Headers& h : {Headers{{{"source", ""}, {"region", "us"}}},
                           Headers{{{"source", ""}, {"region", "us"}, {"tier", std::nullopt}, {"version", std::nullopt}}}}) {
    RecordMeta m = meta_with(schema, h);
    Decoded o = decode(d, line, &m);
    ASSERT_EQ(o.status, DecodeStatus::ok) << o.detail;
    EXPECT_EQ(o.key, key_int(17) + key_str(""));  // an empty header is a value
    EXPECT_EQ(o.event.absent, 1u << kHdrVersion);
    EXPECT_EQ(text_of(o.event.text, o.event.values[kHdrTier]), "basic");
    EXPECT_EQ(text_of(o.event.text, o.event.values[kHdrRegion]), "us");
  }
}

TEST(DecoderKafkaHeaders, MissingNullOrNonUtf8HeadersThatAreRequiredAreSchemaErrors) {
  const SchemaConfig schema = header_schema();
  Decoder d(schema, 4096);
  const std::string line = R"({"product_id":17,"quantity":3})";
  struct Case {
    Headers headers;
    std::string detail;
  };
  const Case cases[] = {
      {{{{"region", "eu"}}}, "the record has no header \"source\" (the schema key uses @kafka.header.source)"},
      {{{{"region", "eu"}, {"source", std::nullopt}}}, "the record's header \"source\" is null"},
      {{{{"region", "eu"}, {"source", "bad \xff"}}}, "header \"source\" is not valid UTF-8"},
      {{{{"source", "s"}}}, "the record has no header \"region\" (the schema's field @kafka.header.region)"},
      {{{{"source", "s"}, {"region", "e\xc3"}}}, "header \"region\" is not valid UTF-8"},
      {{{{"source", "s"}, {"region", "e"}, {"version", "\xc0\x80"}}}, "header \"version\" is not valid UTF-8"},
      {{{{"source", std::string(kKeyBytesMax, 's')}, {"region", "e"}}}, "header \"source\" longer than"},
  };
  for (const Case& c : cases) {
    RecordMeta m = meta_with(schema, c.headers);
    Decoded r = decode(d, line, &m);
    EXPECT_EQ(r.status, DecodeStatus::schema_error) << c.detail;
    EXPECT_NE(r.detail.find(c.detail), std::string::npos) << r.detail;
  }
  // No metadata at all (not a Kafka record).
  EXPECT_EQ(decode(d, line, nullptr).status, DecodeStatus::schema_error);
  // Invalid JSON is a parse error whatever the headers.
  RecordMeta none = meta_with(schema, {});
  EXPECT_EQ(decode(d, R"({"product_id":17,)", &none).status, DecodeStatus::parse_error);
}

}  // namespace
}  // namespace sluice
