#include "operators/json_text.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>

namespace sluice {
namespace {

std::string quote(std::string_view s) {
  std::string out(json_escaped_bytes_max(s.size()) + 16, '#');
  size_t n = json_quote(s, out.data());
  EXPECT_LE(n, json_escaped_bytes_max(s.size()));
  EXPECT_EQ(out[n], '#');
  return out.substr(0, n);
}

std::string csv(std::string_view s) {
  std::string out(csv_field_bytes_max(s.size()) + 16, '#');
  size_t n = csv_field(s, out.data());
  EXPECT_LE(n, csv_field_bytes_max(s.size()));
  return out.substr(0, n);
}

std::string int_text(int64_t v) {
  char buf[kNumberBytesMax + 8];
  size_t n = write_int64(v, buf);
  EXPECT_LE(n, kNumberBytesMax);
  return std::string(buf, n);
}

std::string double_text(double v) {
  char buf[kNumberBytesMax + 8];
  std::memset(buf, '#', sizeof buf);
  size_t n = write_double(v, buf);
  EXPECT_LE(n, kNumberBytesMax);
  return std::string(buf, n);
}

std::string b64(std::string_view s) {
  std::string out(base64_bytes(s.size()) + 8, '#');
  size_t n = base64_encode(s, out.data());
  EXPECT_EQ(n, base64_bytes(s.size()));
  EXPECT_EQ(out[n], '#');
  return out.substr(0, n);
}

// What a JSON parser reads back from a quoted string.
std::string unquote(const std::string& json) {
  simdjson::dom::parser p;
  simdjson::padded_string ps(json);
  std::string_view s;
  auto err = p.parse(ps).get_string().get(s);
  EXPECT_EQ(err, simdjson::SUCCESS) << json;
  return std::string(s);
}

TEST(JsonQuote, PlainAndEscaped) {
  EXPECT_EQ(quote(""), R"("")");
  EXPECT_EQ(quote("abc"), R"("abc")");
  EXPECT_EQ(quote(R"(a"b\c)"), R"("a\"b\\c")");
  EXPECT_EQ(quote("/"), R"("/")");
  EXPECT_EQ(quote("\n\r\t\b\f"), R"("\n\r\t\b\f")");
  EXPECT_EQ(quote(std::string_view("\0", 1)), R"("\u0000")");
  EXPECT_EQ(quote("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(quote("\x7f"), "\"\x7f\"");
  EXPECT_EQ(quote(" "), R"(" ")");
  EXPECT_EQ(quote("caf\xc3\xa9 \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
}

TEST(JsonQuote, ReadsBackExactly) {
  std::string all;
  for (int c = 0; c < 128; ++c) all.push_back(char(c));
  all += "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xe2\x80\xa8\xef\xbf\xbf";
  EXPECT_EQ(unquote(quote(all)), all);
  std::string worst(100, '\x01');
  EXPECT_EQ(quote(worst).size(), json_escaped_bytes_max(worst.size()));
  EXPECT_EQ(unquote(quote(worst)), worst);
}

TEST(CsvField, Rfc4180) {
  EXPECT_EQ(csv("abc"), "abc");
  EXPECT_EQ(csv(""), "");
  EXPECT_EQ(csv(" spaced "), " spaced ");
  EXPECT_EQ(csv("a,b"), "\"a,b\"");
  EXPECT_EQ(csv("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(csv("\""), "\"\"\"\"");
  EXPECT_EQ(csv("a\nb"), "\"a\nb\"");
  EXPECT_EQ(csv("a\rb"), "\"a\rb\"");
  EXPECT_EQ(csv("caf\xc3\xa9"), "caf\xc3\xa9");
  std::string quotes(10, '"');
  EXPECT_EQ(csv(quotes), "\"" + std::string(20, '"') + "\"");
  EXPECT_EQ(csv(quotes).size(), csv_field_bytes_max(quotes.size()));
}

// A small RFC 4180 field reader, to check that fields read back.
std::string csv_unquote(const std::string& f) {
  if (f.empty() || f[0] != '"') return f;
  std::string out;
  for (size_t i = 1; i + 1 < f.size(); ++i) {
    out.push_back(f[i]);
    if (f[i] == '"') ++i;  // a doubled quote
  }
  return out;
}

TEST(CsvField, ReadsBack) {
  std::mt19937 rng(1);
  const char alphabet[] = "ab,\"\r\n x";
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 12, ' ');
    for (char& c : s) c = alphabet[rng() % (sizeof alphabet - 1)];
    std::string f = csv(s);
    ASSERT_EQ(csv_unquote(f), s) << f;
    bool special = s.find_first_of(",\"\r\n") != std::string::npos;
    ASSERT_EQ(!f.empty() && f[0] == '"', special) << f;
  }
}

TEST(WriteInt64, Values) {
  EXPECT_EQ(int_text(0), "0");
  EXPECT_EQ(int_text(7), "7");
  EXPECT_EQ(int_text(-1), "-1");
  EXPECT_EQ(int_text(1234567890123), "1234567890123");
  EXPECT_EQ(int_text(std::numeric_limits<int64_t>::max()), "9223372036854775807");
  EXPECT_EQ(int_text(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
}

TEST(WriteDouble, AlwaysReadsAsAFloat) {
  EXPECT_EQ(double_text(3.0), "3.0");
  EXPECT_EQ(double_text(0.0), "0.0");
  EXPECT_EQ(double_text(-0.0), "-0.0");
  EXPECT_EQ(double_text(-2.0), "-2.0");
  EXPECT_EQ(double_text(0.1), "0.1");
  EXPECT_EQ(double_text(59.97), "59.97");
  EXPECT_EQ(double_text(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(double_text(1.5), "1.5");
  EXPECT_EQ(double_text(-0.125), "-0.125");
  EXPECT_EQ(double_text(123456.0), "123456.0");
  std::string big = double_text(1e20);
  EXPECT_TRUE(big == "1e+20" || big == "100000000000000000000.0") << big;
  EXPECT_EQ(double_text(5e-324), "5e-324");
  EXPECT_EQ(double_text(DBL_MAX), "1.7976931348623157e+308");
  EXPECT_EQ(double_text(-DBL_MAX), "-1.7976931348623157e+308");
}

// Significant digits of a decimal number in text (sign, point, exponent, and
// leading/trailing zeros of the digit string do not count).
int significant_digits(const std::string& text) {
  std::string digits;
  for (char c : text) {
    if (c == 'e' || c == 'E') break;
    if (c >= '0' && c <= '9') digits.push_back(c);
  }
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return 1;
  size_t last = digits.find_last_not_of('0');
  return int(last - first + 1);
}

// Fewest significant digits that read back as v, by trying %.{p}g.
int shortest_digits(double v) {
  for (int p = 1; p <= 17; ++p) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) return p;
  }
  return 17;
}

TEST(WriteDouble, ShortestRoundTrip) {
  std::mt19937_64 rng(2);
  for (int i = 0; i < 20000; ++i) {
    double v;
    switch (i % 4) {
      case 0: {  // any finite bit pattern
        uint64_t bits = rng();
        std::memcpy(&v, &bits, 8);
        if (!std::isfinite(v)) continue;
        break;
      }
      case 1: v = double(int64_t(rng() % 2000001) - 1000000) / 100; break;  // prices
      case 2: v = double(int64_t(rng() >> 11)); break;                      // integers
      default: v = std::ldexp(double(rng() >> 11), int(rng() % 200) - 100); break;
    }
    std::string text = double_text(v);
    // Integral values from 2^53 to 1e22 are printed in full (see
    // LargeIntegralValuesUseShortestDigits); only round-tripping is checked there.
    bool full_integer = std::fabs(v) >= 9007199254740992.0 && std::fabs(v) < 1e22;
    char* end = nullptr;
    double back = std::strtod(text.c_str(), &end);
    ASSERT_EQ(size_t(end - text.c_str()), text.size()) << text;
    ASSERT_EQ(std::memcmp(&back, &v, 8), 0) << text << " does not read back";
    ASSERT_TRUE(text.find_first_of(".e") != std::string::npos) << text << " reads as an integer";
    if (!full_integer) {
      ASSERT_EQ(significant_digits(text), shortest_digits(v)) << text << " is not the shortest";
    }
  }
}

// Regression: std::to_chars picks fixed notation when it is no longer than
// scientific, and fixed notation prints every digit of a large integral
// double. With ".0" appended the text is longer than the scientific form and
// shows digits beyond the 17 that identify the value.
TEST(WriteDouble, LargeIntegralValuesUseShortestDigits) {
  for (double v : {1619400690080260554752.0, 1180591620717411303424.0 /* 2^70 */, 123456789012345683968.0,
                   -9.999999999999999e21}) {
    std::string text = double_text(v);
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
    EXPECT_EQ(significant_digits(text), shortest_digits(v)) << text;
    char sci[64];
    int sci_len = std::snprintf(sci, sizeof sci, "%.*e", shortest_digits(v) - 1, v);
    EXPECT_LE(text.size(), size_t(sci_len)) << text << " is longer than " << sci;
  }
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("abc"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_TRUE(is_valid_utf8(std::string_view("\0", 1)));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foob"), "Zm9vYg==");
  EXPECT_EQ(b64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
}

TEST(Base64, BinaryBytes) {
  EXPECT_EQ(b64(std::string_view("\0\0\0", 3)), "AAAA");
  EXPECT_EQ(b64("\xff\xff\xff"), "////");
  EXPECT_EQ(b64("\xfb\xff"), "+/8=");
  EXPECT_EQ(b64("\xff"), "/w==");
  // Every byte value once: checked against the alphabet by hand-rolled bit math.
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(char(c));
  std::string got = b64(all);
  std::string want;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : all) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      want.push_back(kAlphabet[(acc >> (bits - 6)) & 63]);
      bits -= 6;
    }
  }
  if (bits > 0) want.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  while (want.size() % 4) want.push_back('=');
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace sluice
