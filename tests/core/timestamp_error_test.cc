#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "core/timestamp.h"

namespace sluice {

static std::ostream& operator<<(std::ostream& os, TimestampError e) { return os << to_string(e); }

namespace {

TimestampError parse(std::string_view text) {
  int64_t ns = 0;
  return parse_rfc3339(text, ns);
}

TEST(Rfc3339ParseError, SyntaxErrors) {
  const char* cases[] = {
      "",
      "2024",
      "2024-01-01",
      "2024-01-01T00:00",
      "2024-01-01T00:00:00",        // no offset
      "2024-01-01T00:00:00.5",      // fraction, no offset
      "2024-01-01T00:00:00.Z",      // empty fraction
      "2024-01-01T00:00:00ZZ",      // trailing garbage
      "2024-01-01T00:00:00Z ",      // trailing space
      "2024-01-01T00:00:00+01:00x",
      "2024-01-01T00:00:00+01:00Z",
      "2024-01-01T00:00:00+0100",   // offset without colon
      "2024-01-01T00:00:00+01",
      "2024-01-01T00:00:00+1:00",
      "2024-01-01T00:00:00+01:0",
      "2024-01-01T00:00:00+01-00",
      "2024-01-01T00:00:00 Z",
      "2024-01-01T00:00:00UTC",
      "2024-01-01x00:00:00Z",       // bad separator
      "2024-01-01_00:00:00Z",
      "2024/01/01T00:00:00Z",
      "2024-01-01T00-00-00Z",
      "2024-01-01T00:00-00Z",
      "24-01-01T00:00:00Z",
      "2024-1-01T00:00:00Z",
      "2024-01-1T00:00:00Z",
      "2024-01-01T0:00:00Z",
      "2024-01-01T00:0:00Z",
      "2024-01-01T00:00:0Z",
      "2O24-01-01T00:00:00Z",       // letter O
      "2024-0a-01T00:00:00Z",
      "2024-01-0bT00:00:00Z",
      "2024-01-01Tx0:00:00Z",
      "2024-01-01T00:0y:00Z",
      "2024-01-01T00:00:z0Z",
      "2024-01-01T00:00:00+0a:00",
      "2024-01-01T00:00:00-00:b0",
      "+2024-01-01T00:00:00Z",
      "-2024-01-01T00:00:00Z",
      " 2024-01-01T00:00:00Z",
      "2024-01-01T00:00:00.1.2Z",
      "2024-01-01T00:00:00,5Z",     // comma fraction is not RFC 3339
      "2024-01-01T00:00:00.5 Z",
  };
  for (const char* c : cases) {
    EXPECT_EQ(parse(c), TimestampError::syntax) << "\"" << c << "\"";
  }
}

TEST(Rfc3339ParseError, NonAsciiBytesAreSyntaxErrors) {
  std::string s = "2024-01-01T00:00:00Z";
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') {
      std::string bad = s;
      bad[i] = char(0xC3);  // a byte that is far from the digits either way
      EXPECT_EQ(parse(bad), TimestampError::syntax) << i;
      bad[i] = char('0' - 1);
      EXPECT_EQ(parse(bad), TimestampError::syntax) << i;
      bad[i] = char('9' + 1);
      EXPECT_EQ(parse(bad), TimestampError::syntax) << i;
    }
  }
  // An embedded NUL inside the view is not the end of the text.
  EXPECT_EQ(parse(std::string_view("2024-01-01T00:00:00Z\0", 21)), TimestampError::syntax);
}

TEST(Rfc3339ParseError, FieldRange) {
  const char* cases[] = {
      "2024-00-01T00:00:00Z", "2024-13-01T00:00:00Z", "2024-99-01T00:00:00Z",
      "2024-01-00T00:00:00Z", "2024-01-32T00:00:00Z", "2024-04-31T00:00:00Z",
      "2024-06-31T00:00:00Z", "2024-09-31T00:00:00Z", "2024-11-31T00:00:00Z",
      "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
      "2100-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T99:00:00Z",
      "2024-01-01T00:60:00Z", "2024-01-01T00:00:61Z", "2024-01-01T00:00:99Z",
      "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00-24:00", "2024-01-01T00:00:00+00:60",
      "2024-01-01T00:00:00-99:99",
  };
  for (const char* c : cases) {
    EXPECT_EQ(parse(c), TimestampError::field_range) << "\"" << c << "\"";
  }
}

TEST(Rfc3339ParseError, YearsOutsideInt64Nanoseconds) {
  const char* cases[] = {
      "1600-01-01T00:00:00Z",
      "2300-01-01T00:00:00Z",
      "0000-01-01T00:00:00Z",
      "9999-12-31T23:59:59.999999999Z",
      "1677-01-01T00:00:00Z",
      "1677-09-21T00:12:43.145224191Z",  // one ns below INT64_MIN
      "2262-04-11T23:47:16.854775808Z",  // one ns above INT64_MAX
      "2262-04-11T23:47:17Z",
      "2262-04-11T23:47:16.854775807-00:01",  // the offset pushes it over
  };
  for (const char* c : cases) {
    EXPECT_EQ(parse(c), TimestampError::out_of_range) << "\"" << c << "\"";
  }
}

TEST(Rfc3339ParseError, ErrorsHaveNames) {
  EXPECT_STRNE(to_string(TimestampError::syntax), to_string(TimestampError::field_range));
  EXPECT_STRNE(to_string(TimestampError::field_range), to_string(TimestampError::out_of_range));
  EXPECT_GT(std::string_view(to_string(TimestampError::out_of_range)).size(), 0u);
}

}  // namespace
}  // namespace sluice
