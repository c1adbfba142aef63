#include "core/timestamp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

// Expected values come from the C library (timegm/gmtime_r, 64-bit time_t on
// this platform) and from constants worked out by hand, never from the code
// under test.

namespace sluice {

static std::ostream& operator<<(std::ostream& os, TimestampError e) { return os << to_string(e); }

namespace {

constexpr int64_t k2024 = 1'704'067'200;  // 2024-01-01T00:00:00Z, seconds

// Seconds since the epoch of a UTC civil time, by the C library.
int64_t utc_seconds(int year, int month, int day, int hour = 0, int minute = 0, int second = 0) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return int64_t(timegm(&tm));
}

int64_t parse_ok(std::string_view text) {
  int64_t ns = 0x5a5a5a5a;
  TimestampError e = parse_rfc3339(text, ns);
  EXPECT_EQ(e, TimestampError::ok) << "\"" << text << "\": " << to_string(e);
  return ns;
}

std::string format(int64_t ns) {
  char buf[kRfc3339BytesMax + 8];
  std::memset(buf, '#', sizeof buf);
  size_t n = format_rfc3339(ns, buf);
  EXPECT_LE(n, kRfc3339BytesMax);
  EXPECT_EQ(buf[n], '#') << "wrote past the returned length";
  return std::string(buf, n);
}

// Independent reference formatter: gmtime_r for the civil part, then the
// documented fraction rule (none / 3 / 6 / 9 digits, the fewest that are exact).
std::string reference_format(int64_t ns) {
  __int128 wide = ns;
  __int128 secs = wide / 1'000'000'000;
  if (wide % 1'000'000'000 < 0) secs -= 1;
  int64_t frac = int64_t(wide - secs * 1'000'000'000);
  time_t t = time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  std::string s(buf, size_t(n));
  if (frac != 0) {
    if (frac % 1'000'000 == 0) {
      std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac / 1'000'000));
    } else if (frac % 1'000 == 0) {
      std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac / 1'000));
    } else {
      std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
    }
    s += buf;
  }
  return s + "Z";
}

TEST(Rfc3339Parse, EpochAndKnownInstant) {
  EXPECT_EQ(parse_ok("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00Z"), k2024 * kNsPerS);
  EXPECT_EQ(utc_seconds(2024, 1, 1), k2024);  // the reference agrees with the constant
  EXPECT_EQ(parse_ok("2001-09-09T01:46:40Z"), 1'000'000'000 * kNsPerS);
}

TEST(Rfc3339Parse, AcceptsLowercaseZAndTAndSpaceSeparator) {
  const int64_t want = k2024 * kNsPerS;
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00z"), want);
  EXPECT_EQ(parse_ok("2024-01-01t00:00:00Z"), want);
  EXPECT_EQ(parse_ok("2024-01-01t00:00:00z"), want);
  EXPECT_EQ(parse_ok("2024-01-01 00:00:00Z"), want);
  EXPECT_EQ(parse_ok("2024-01-01 00:00:00+00:00"), want);
}

TEST(Rfc3339Parse, FractionOfOneToTwelveDigitsTruncatesAfterNine) {
  const std::string digits = "987654321987";
  for (size_t k = 1; k <= digits.size(); ++k) {
    std::string text = "2024-01-01T00:00:00." + digits.substr(0, k) + "Z";
    // The first min(k, 9) digits, right-padded with zeros to nine: nanoseconds.
    std::string nine = digits.substr(0, std::min<size_t>(k, 9));
    nine.resize(9, '0');
    int64_t frac = std::stoll(nine);
    EXPECT_EQ(parse_ok(text), k2024 * kNsPerS + frac) << text;
  }
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00.000000001Z"), k2024 * kNsPerS + 1);
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00.0000000009Z"), k2024 * kNsPerS);  // truncated, not rounded
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00.999999999999Z"), k2024 * kNsPerS + 999'999'999);
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00.5+01:00"), (k2024 - 3600) * kNsPerS + 500'000'000);
}

TEST(Rfc3339Parse, Offsets) {
  const int64_t base = k2024 * kNsPerS;
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00+00:00"), base);
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00-00:00"), base);
  EXPECT_EQ(parse_ok("2024-01-01T01:00:00+01:00"), base);
  EXPECT_EQ(parse_ok("2023-12-31T19:00:00-05:00"), base);
  EXPECT_EQ(parse_ok("2024-01-01T05:30:00+05:30"), base);
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00+23:59"), base - (23 * 3600 + 59 * 60) * kNsPerS);
  EXPECT_EQ(parse_ok("2024-01-01T00:00:00-23:59"), base + (23 * 3600 + 59 * 60) * kNsPerS);
  // An offset moves the instant across a day, month and year boundary.
  EXPECT_EQ(parse_ok("2023-12-31T23:30:00-00:45"), (k2024 + 15 * 60) * kNsPerS);
}

TEST(Rfc3339Parse, LeapYears) {
  EXPECT_EQ(parse_ok("2024-02-29T00:00:00Z"), utc_seconds(2024, 2, 29) * kNsPerS);
  EXPECT_EQ(parse_ok("2000-02-29T12:00:00Z"), utc_seconds(2000, 2, 29, 12) * kNsPerS);
  EXPECT_EQ(parse_ok("2024-03-01T00:00:00Z") - parse_ok("2024-02-28T00:00:00Z"), 2 * 86400 * kNsPerS);
  EXPECT_EQ(parse_ok("2023-03-01T00:00:00Z") - parse_ok("2023-02-28T00:00:00Z"), 1 * 86400 * kNsPerS);
  EXPECT_EQ(parse_ok("2024-12-31T00:00:00Z"), utc_seconds(2024, 12, 31) * kNsPerS);
}

TEST(Rfc3339Parse, LeapSecondIsFirstInstantOfNextMinute) {
  // 2017-01-01T00:00:00Z = 1483228800 (a well-known leap-second boundary).
  EXPECT_EQ(parse_ok("2016-12-31T23:59:60Z"), 1'483'228'800 * kNsPerS);
  EXPECT_EQ(parse_ok("2016-12-31T23:59:60.5Z"), 1'483'228'800 * kNsPerS + 500'000'000);
  EXPECT_EQ(parse_ok("2024-01-01T00:00:60Z"), (k2024 + 60) * kNsPerS);
}

TEST(Rfc3339Parse, FieldBoundsThatAreValid) {
  EXPECT_EQ(parse_ok("2024-01-31T23:59:59Z"), utc_seconds(2024, 1, 31, 23, 59, 59) * kNsPerS);
  EXPECT_EQ(parse_ok("2024-12-01T00:00:00Z"), utc_seconds(2024, 12, 1) * kNsPerS);
  EXPECT_EQ(parse_ok("2024-04-30T00:00:00Z"), utc_seconds(2024, 4, 30) * kNsPerS);
  EXPECT_EQ(parse_ok("2024-06-15T12:34:56Z"), utc_seconds(2024, 6, 15, 12, 34, 56) * kNsPerS);
}

TEST(Rfc3339Parse, MatchesTimegmOverManyDates) {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int> year(1678, 2261), month(1, 12), day(1, 28), hour(0, 23),
      minute(0, 59), second(0, 59), off_h(0, 23), off_m(0, 59);
  for (int i = 0; i < 2000; ++i) {
    int y = year(rng), mo = month(rng), d = day(rng), h = hour(rng), mi = minute(rng),
        s = second(rng), oh = off_h(rng), om = off_m(rng);
    bool plus = rng() & 1;
    char text[64];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", y, mo, d, h, mi, s,
                  plus ? '+' : '-', oh, om);
    int64_t off = (oh * 3600 + om * 60) * (plus ? 1 : -1);
    int64_t want = (utc_seconds(y, mo, d, h, mi, s) - off) * kNsPerS;
    EXPECT_EQ(parse_ok(text), want) << text;
  }
}

TEST(Rfc3339Parse, PreEpochWithFraction) {
  // 1969-12-31T23:59:59.5Z is half a second before the epoch.
  EXPECT_EQ(parse_ok("1969-12-31T23:59:59.5Z"), -500'000'000);
  EXPECT_EQ(parse_ok("1969-12-31T23:59:59.999999999Z"), -1);
  EXPECT_EQ(parse_ok("1900-01-01T00:00:00Z"), utc_seconds(1900, 1, 1) * kNsPerS);
  EXPECT_EQ(utc_seconds(1900, 1, 1), -2'208'988'800);
}

TEST(Rfc3339Parse, Int64Extremes) {
  // INT64_MAX ns = 9223372036 s + 854775807 ns = 2262-04-11T23:47:16.854775807Z.
  EXPECT_EQ(utc_seconds(2262, 4, 11, 23, 47, 16), 9'223'372'036);
  EXPECT_EQ(parse_ok("2262-04-11T23:47:16.854775807Z"), std::numeric_limits<int64_t>::max());
  // INT64_MIN ns = -9223372037 s + 145224192 ns = 1677-09-21T00:12:43.145224192Z.
  EXPECT_EQ(utc_seconds(1677, 9, 21, 0, 12, 43), -9'223'372'037);
  EXPECT_EQ(parse_ok("1677-09-21T00:12:44Z"), -9'223'372'036 * kNsPerS);
}

// Regression: the lowest representable second (1677-09-21T00:12:43.145224192Z
// .. :43.999999999Z) holds valid int64 nanoseconds, but parsing multiplies the
// whole (negative) seconds by 1e9 before adding the fraction, which overflows.
TEST(Rfc3339Parse, LowestRepresentableSecondParses) {
  EXPECT_EQ(parse_ok("1677-09-21T00:12:43.145224192Z"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(parse_ok("1677-09-21T00:12:43.5Z"), -9'223'372'036 * kNsPerS - 500'000'000);
}

TEST(Rfc3339Format, WholeSecondsHaveNoFraction) {
  EXPECT_EQ(format(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format(k2024 * kNsPerS), "2024-01-01T00:00:00Z");
  EXPECT_EQ(format(-kNsPerS), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format(utc_seconds(2024, 2, 29, 13, 14, 15) * kNsPerS), "2024-02-29T13:14:15Z");
}

TEST(Rfc3339Format, FractionUsesThreeSixOrNineDigits) {
  const int64_t base = k2024 * kNsPerS;
  EXPECT_EQ(format(base + 500'000'000), "2024-01-01T00:00:00.500Z");
  EXPECT_EQ(format(base + 1'000'000), "2024-01-01T00:00:00.001Z");
  EXPECT_EQ(format(base + 123'456'000), "2024-01-01T00:00:00.123456Z");
  EXPECT_EQ(format(base + 1'000), "2024-01-01T00:00:00.000001Z");
  EXPECT_EQ(format(base + 123'456'789), "2024-01-01T00:00:00.123456789Z");
  EXPECT_EQ(format(base + 1), "2024-01-01T00:00:00.000000001Z");
  EXPECT_EQ(format(base + 100'000'010), "2024-01-01T00:00:00.100000010Z");
}

TEST(Rfc3339Format, NegativeTimesFloor) {
  EXPECT_EQ(format(-1), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(format(-1'000), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format(-1'000'000), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format(-500'000'000), "1969-12-31T23:59:59.500Z");
  EXPECT_EQ(format(-1'500'000'000), "1969-12-31T23:59:58.500Z");
  EXPECT_EQ(format(-86'400 * kNsPerS - 1), "1969-12-30T23:59:59.999999999Z");
  EXPECT_EQ(format(-2'208'988'800 * kNsPerS + 250'000'000), "1900-01-01T00:00:00.250Z");
}

TEST(Rfc3339Format, Int64Max) {
  EXPECT_EQ(format(std::numeric_limits<int64_t>::max()), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(format(std::numeric_limits<int64_t>::max()).size(), 30u);
}

// Regression: format_rfc3339 computes secs * 1e9 for the floored seconds,
// which is below INT64_MIN for the lowest representable second (signed
// overflow, undefined behaviour; UBSan traps on it).
TEST(Rfc3339Format, Int64MinHasNoOverflow) {
  EXPECT_EQ(format(std::numeric_limits<int64_t>::min()), "1677-09-21T00:12:43.145224192Z");
}

TEST(Rfc3339Format, MatchesReferenceFormatter) {
  std::mt19937_64 rng(99);
  // Stay clear of the lowest second (see Int64MinHasNoOverflow).
  std::uniform_int_distribution<int64_t> any(-9'223'372'036 * kNsPerS, std::numeric_limits<int64_t>::max());
  for (int i = 0; i < 5000; ++i) {
    int64_t ns = any(rng);
    // Make whole-second, millisecond and microsecond values common.
    switch (i % 4) {
      case 0: ns -= ns % kNsPerS; break;
      case 1: ns -= ns % kNsPerMs; break;
      case 2: ns -= ns % kNsPerUs; break;
      default: break;
    }
    ASSERT_EQ(format(ns), reference_format(ns)) << ns;
  }
}

TEST(Rfc3339RoundTrip, FormatThenParseGivesTheSameValue) {
  std::vector<int64_t> values = {0,
                                 1,
                                 -1,
                                 999'999'999,
                                 -999'999'999,
                                 kNsPerS,
                                 -kNsPerS,
                                 k2024 * kNsPerS,
                                 k2024 * kNsPerS + 1'000'000,
                                 k2024 * kNsPerS + 1'000,
                                 -2'208'988'800 * kNsPerS - 1,
                                 std::numeric_limits<int64_t>::max(),
                                 -9'223'372'036 * kNsPerS};
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> any(-9'223'372'036 * kNsPerS, std::numeric_limits<int64_t>::max());
  for (int i = 0; i < 5000; ++i) {
    int64_t ns = any(rng);
    if (i % 3 == 0) ns -= ns % kNsPerMs;
    if (i % 3 == 1) ns -= ns % kNsPerUs;
    values.push_back(ns);
  }
  for (int64_t ns : values) {
    std::string text = format(ns);
    int64_t back = 0;
    ASSERT_EQ(parse_rfc3339(text, back), TimestampError::ok) << text;
    ASSERT_EQ(back, ns) << text;
    // Fraction digit selection: the fewest of 0/3/6/9 digits that are exact.
    int64_t frac = ((ns % kNsPerS) + kNsPerS) % kNsPerS;
    size_t want_len = frac == 0 ? 20 : frac % kNsPerMs == 0 ? 24 : frac % kNsPerUs == 0 ? 27 : 30;
    ASSERT_EQ(text.size(), want_len) << text;
  }
}

TEST(CivilDays, KnownDates) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11'017);
  EXPECT_EQ(days_from_civil(2024, 1, 1), k2024 / 86'400);
  EXPECT_EQ(days_from_civil(1600, 1, 1), utc_seconds(1600, 1, 1) / 86'400);
}

TEST(CivilDays, MatchTimegmAndInvert) {
  for (int y = 1600; y <= 2400; y += 3) {
    for (unsigned m = 1; m <= 12; ++m) {
      for (unsigned d : {1u, 15u, 28u}) {
        int64_t days = days_from_civil(y, m, d);
        ASSERT_EQ(days * 86'400, utc_seconds(y, int(m), int(d))) << y << "-" << m << "-" << d;
        int64_t yy;
        unsigned mm, dd;
        civil_from_days(days, yy, mm, dd);
        ASSERT_EQ(yy, y);
        ASSERT_EQ(mm, m);
        ASSERT_EQ(dd, d);
      }
    }
  }
}

}  // namespace
}  // namespace sluice
