#include "operators/dead_letter.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tests/util/base64_decode.h"

namespace sluice {
namespace {

using testing_util::base64_decode;

// A decoded record: every member as text (numbers and bools as their JSON text).
struct Record {
  std::map<std::string, std::string> strings;
  std::optional<bool> raw_truncated;
  std::optional<int64_t> raw_bytes;
  std::vector<std::string> keys;  // in order
  std::string problem;
};

Record parse_record(const std::string& line) {
  Record r;
  if (line.empty() || line.back() != '\n') {
    r.problem = "does not end in a newline";
    return r;
  }
  if (line.find('\n') != line.size() - 1) {
    r.problem = "newline inside the record";
    return r;
  }
  simdjson::dom::parser parser;
  simdjson::padded_string json(line.data(), line.size() - 1);
  simdjson::dom::element root;
  if (auto err = parser.parse(json).get(root)) {
    r.problem = std::string("not JSON: ") + simdjson::error_message(err);
    return r;
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) {
    r.problem = "not an object";
    return r;
  }
  for (auto field : obj) {
    std::string key(field.key);
    r.keys.push_back(key);
    if (field.value.is_string()) {
      r.strings[key] = std::string(std::string_view(field.value));
    } else if (key == "raw_truncated" && field.value.is_bool()) {
      r.raw_truncated = bool(field.value);
    } else if (key == "raw_bytes" && field.value.is_int64()) {
      r.raw_bytes = int64_t(field.value);
    } else {
      r.problem = "unexpected member " + key;
    }
  }
  return r;
}

// Encodes into a buffer of exactly dead_letter_bytes_max() bytes followed by a
// guard area, and checks the size bound and the guard.
std::string encode(const DeadLetter& d) {
  size_t max = dead_letter_bytes_max(d);
  std::string buf(max + 64, '\x5a');
  size_t n = encode_dead_letter(d, buf.data());
  EXPECT_LE(n, max) << "encoded size above dead_letter_bytes_max";
  for (size_t i = std::max(n, max); i < buf.size(); ++i) {
    if (buf[i] != '\x5a') {
      ADD_FAILURE() << "wrote past dead_letter_bytes_max at " << i;
      break;
    }
  }
  return buf.substr(0, n);
}

bool valid_utf8(std::string_view s) { return simdjson::validate_utf8(s.data(), s.size()); }

std::string all_ascii() {
  std::string s;
  for (int c = 0; c < 128; ++c) s.push_back(char(c));
  return s;
}

TEST(DeadLetter, EveryReason) {
  const std::pair<DeadLetterReason, const char*> reasons[] = {
      {DeadLetterReason::parse_error, "parse_error"},
      {DeadLetterReason::schema_error, "schema_error"},
      {DeadLetterReason::line_too_long, "line_too_long"},
      {DeadLetterReason::late, "late"},
      {DeadLetterReason::partial_line, "partial_line"},
      {DeadLetterReason::corrupt_batch, "corrupt_batch"},
      {DeadLetterReason::future, "future"},
  };
  static_assert(kDeadLetterReasons == 7);
  for (const auto& [reason, name] : reasons) {
    EXPECT_STREQ(to_string(reason), name);
    DeadLetter d{reason, "some detail", "pos", "127.0.0.1:51234", R"({"product_id":1})"};
    Record r = parse_record(encode(d));
    ASSERT_EQ(r.problem, "") << name;
    EXPECT_EQ(r.strings["reason"], name);
    EXPECT_EQ(r.strings["detail"], "some detail");
    EXPECT_EQ(r.strings["source"], "pos");
    EXPECT_EQ(r.strings["origin"], "127.0.0.1:51234");
    EXPECT_EQ(r.strings["raw"], R"({"product_id":1})");
    EXPECT_EQ(r.strings.count("raw_base64"), 0u);
    EXPECT_FALSE(r.raw_truncated.has_value());
    EXPECT_FALSE(r.raw_bytes.has_value());
  }
}

TEST(DeadLetter, ExampleFromTheHeader) {
  DeadLetter d{DeadLetterReason::schema_error, "missing field \"quantity\"", "pos", "127.0.0.1:51234",
               "{\"product_id\":1}"};
  EXPECT_EQ(encode(d),
            "{\"reason\":\"schema_error\",\"detail\":\"missing field \\\"quantity\\\"\",\"source\":\"pos\","
            "\"origin\":\"127.0.0.1:51234\",\"raw\":\"{\\\"product_id\\\":1}\"}\n");
}

TEST(DeadLetter, EmptyOriginIsLeftOut) {
  DeadLetter d{DeadLetterReason::late, "window closed", "gen", "", "x"};
  Record r = parse_record(encode(d));
  ASSERT_EQ(r.problem, "");
  EXPECT_EQ(r.strings.count("origin"), 0u);
  EXPECT_EQ(r.keys, (std::vector<std::string>{"reason", "detail", "source", "raw"}));
}

TEST(DeadLetter, StringsRoundTripExactly) {
  std::string tricky = all_ascii() + "\"\\/\x7f" + "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xe2\x80\xa8";
  const std::string detail = "detail " + tricky;  // DeadLetter holds views: keep the string alive
  DeadLetter d{DeadLetterReason::parse_error, detail, "src\t\"q\"", "file:\n12", tricky};
  Record r = parse_record(encode(d));
  ASSERT_EQ(r.problem, "");
  EXPECT_EQ(r.strings["detail"], detail);
  EXPECT_EQ(r.strings["source"], "src\t\"q\"");
  EXPECT_EQ(r.strings["origin"], "file:\n12");
  EXPECT_EQ(r.strings["raw"], tricky);
}

TEST(DeadLetter, EmptyRaw) {
  DeadLetter d{DeadLetterReason::parse_error, "", "", "", ""};
  Record r = parse_record(encode(d));
  ASSERT_EQ(r.problem, "");
  EXPECT_EQ(r.strings.at("raw"), "");
  EXPECT_EQ(r.strings.at("detail"), "");
}

TEST(DeadLetter, InvalidUtf8RawIsBase64) {
  std::vector<std::string> raws = {"\xff", "abc\xfe", "\xc3", "\x80" "abc", "\xc0\xaf", "\xed\xa0\x80",
                                   "\xf4\x90\x80\x80", std::string("a\0\xff", 3), "ok then \xe2\x82"};
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    std::string blob(rng() % 70, '\0');
    for (char& c : blob) c = char(rng());
    if (!valid_utf8(blob)) raws.push_back(blob);
  }
  for (const std::string& raw : raws) {
    ASSERT_FALSE(valid_utf8(raw));
    DeadLetter d{DeadLetterReason::parse_error, "invalid JSON", "s", "o", raw};
    Record r = parse_record(encode(d));
    ASSERT_EQ(r.problem, "");
    EXPECT_EQ(r.strings.count("raw"), 0u);
    ASSERT_EQ(r.strings.count("raw_base64"), 1u);
    std::optional<std::string> bytes = base64_decode(r.strings["raw_base64"]);
    ASSERT_TRUE(bytes.has_value()) << r.strings["raw_base64"];
    EXPECT_EQ(*bytes, raw);
  }
}

// Char boundaries of a valid UTF-8 string: positions not inside a sequence.
bool is_boundary(std::string_view s, size_t k) {
  return k == 0 || k == s.size() || (static_cast<unsigned char>(s[k]) & 0xC0) != 0x80;
}

TEST(DeadLetter, TruncatedRawIsCutAtACharBoundary) {
  const std::string line = "ab\xc3\xa9" "c\xe2\x82\xac" "d\xf0\x9f\x98\x80" "e\xc3\xa9\xc3\xa9 end";
  ASSERT_TRUE(valid_utf8(line));
  for (size_t k = 0; k <= line.size(); ++k) {
    // The framer hands over the first k bytes of a longer line.
    DeadLetter d{DeadLetterReason::line_too_long, "line of 5000 bytes exceeds line_bytes_max (1024)", "s", "",
                 std::string_view(line).substr(0, k), true, 5000};
    Record r = parse_record(encode(d));
    ASSERT_EQ(r.problem, "") << k;
    size_t j = k;
    while (!is_boundary(line, j)) --j;
    ASSERT_EQ(r.strings.count("raw"), 1u) << "prefix of " << k << " bytes went to base64";
    EXPECT_EQ(r.strings["raw"], line.substr(0, j)) << k;
    ASSERT_TRUE(r.raw_truncated.has_value());
    EXPECT_TRUE(*r.raw_truncated);
    ASSERT_TRUE(r.raw_bytes.has_value());
    EXPECT_EQ(*r.raw_bytes, 5000);
    EXPECT_EQ(r.keys.back(), "raw_bytes");
  }
}

TEST(DeadLetter, TruncatedInvalidRawIsBase64OfAPrefix) {
  std::string raw = "\xff\xfe binary \x01\x02\x03\xc3";
  DeadLetter d{DeadLetterReason::line_too_long, "too long", "s", "", raw, true, 99999};
  Record r = parse_record(encode(d));
  ASSERT_EQ(r.problem, "");
  ASSERT_EQ(r.strings.count("raw_base64"), 1u);
  std::optional<std::string> bytes = base64_decode(r.strings["raw_base64"]);
  ASSERT_TRUE(bytes.has_value());
  EXPECT_TRUE(raw.starts_with(*bytes));
  EXPECT_GE(bytes->size() + 3, raw.size()) << "only a partial sequence may be cut";
  EXPECT_EQ(r.raw_bytes.value_or(-1), 99999);
  EXPECT_TRUE(r.raw_truncated.value_or(false));
}

TEST(DeadLetter, SizeBoundHoldsForWorstCaseInputs) {
  // Control bytes cost six bytes each when escaped; invalid UTF-8 costs 4/3 as base64.
  std::mt19937_64 rng(6);
  for (size_t n : {size_t(0), size_t(1), size_t(2), size_t(3), size_t(63), size_t(64), size_t(1000), size_t(4096)}) {
    std::string controls(n, '\x01');
    std::string quotes(n, '"');
    std::string invalid(n, '\xff');
    for (const std::string* raw : {&controls, &quotes, &invalid}) {
      for (bool truncated : {false, true}) {
        for (DeadLetterReason reason : {DeadLetterReason::line_too_long, DeadLetterReason::late,
                                        DeadLetterReason::partial_line}) {
          DeadLetter d{reason, controls, controls, controls, *raw, truncated, uint64_t(INT64_MAX)};
          std::string out = encode(d);
          Record r = parse_record(out);
          ASSERT_EQ(r.problem, "") << n;
          if (raw != &invalid) {
            EXPECT_EQ(r.strings["raw"], *raw);
          }
          EXPECT_EQ(r.strings["detail"], controls);
        }
      }
    }
  }
}

}  // namespace
}  // namespace sluice
