#include "core/timestamp.h"

#include <cstring>

#include "core/clock.h"

namespace sluice {

const char* to_string(TimestampError e) {
  switch (e) {
    case TimestampError::ok: return "ok";
    case TimestampError::syntax: return "not an RFC 3339 date-time";
    case TimestampError::field_range: return "date or time field out of range";
    case TimestampError::out_of_range: return "timestamp outside 1677-09-21..2262-04-11";
  }
  return "?";
}

// Howard Hinnant's public-domain civil calendar algorithms.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

void civil_from_days(int64_t z, int64_t& year, unsigned& month, unsigned& day) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = unsigned(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = int64_t(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  day = doy - (153 * mp + 2) / 5 + 1;
  month = mp < 10 ? mp + 3 : mp - 9;
  year = y + (month <= 2);
}

namespace {

inline bool digits(const char* p, int n, unsigned& out) {
  unsigned v = 0;
  for (int i = 0; i < n; ++i) {
    unsigned d = unsigned(p[i]) - '0';
    if (d > 9) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

inline bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned days_in_month(int64_t y, unsigned m) {
  static constexpr unsigned kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

namespace {

TimestampError parse_impl(std::string_view s, int64_t& out_ns, Rfc3339DayCache* cache) {
  // YYYY-MM-DDTHH:MM:SS is 19 bytes; the shortest valid form adds "Z".
  if (s.size() < 20) return TimestampError::syntax;
  const char* p = s.data();
  unsigned year = 0, month = 0, day = 0, hour, minute, second;
  const bool cached = cache != nullptr && cache->valid && std::memcmp(p, cache->date, 10) == 0;
  if (!cached && (!digits(p, 4, year) || p[4] != '-' || !digits(p + 5, 2, month) || p[7] != '-' ||
                  !digits(p + 8, 2, day))) {
    return TimestampError::syntax;
  }
  if (p[10] != 'T' && p[10] != 't' && p[10] != ' ') return TimestampError::syntax;
  if (!digits(p + 11, 2, hour) || p[13] != ':' || !digits(p + 14, 2, minute) || p[16] != ':' ||
      !digits(p + 17, 2, second)) {
    return TimestampError::syntax;
  }
  size_t i = 19;
  int64_t frac_ns = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    // Up to nine digits make the nanoseconds; further digits are truncated.
    while (i < s.size() && i - start < 9 && unsigned(s[i] - '0') <= 9) {
      frac_ns = frac_ns * 10 + (s[i] - '0');
      ++i;
    }
    static constexpr int64_t kScale[10] = {1'000'000'000, 100'000'000, 10'000'000, 1'000'000, 100'000,
                                           10'000,        1'000,       100,        10,        1};
    frac_ns *= kScale[i - start];
    while (i < s.size() && unsigned(s[i] - '0') <= 9) ++i;
    if (i == start) return TimestampError::syntax;
  }
  if (i >= s.size()) return TimestampError::syntax;
  int64_t offset_s = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    ++i;
  } else if (s[i] == '+' || s[i] == '-') {
    if (s.size() - i != 6) return TimestampError::syntax;
    unsigned oh, om;
    if (!digits(p + i + 1, 2, oh) || p[i + 3] != ':' || !digits(p + i + 4, 2, om)) {
      return TimestampError::syntax;
    }
    if (oh > 23 || om > 59) return TimestampError::field_range;
    offset_s = int64_t(oh) * 3600 + int64_t(om) * 60;
    if (s[i] == '-') offset_s = -offset_s;
    i += 6;
  } else {
    return TimestampError::syntax;
  }
  if (i != s.size()) return TimestampError::syntax;
  if ((!cached && (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))) ||
      hour > 23 || minute > 59 || second > 60) {
    return TimestampError::field_range;
  }
  int64_t days;
  if (cached) {
    days = cache->days;
  } else {
    days = days_from_civil(year, month, day);
    if (cache != nullptr) {
      std::memcpy(cache->date, p, 10);
      cache->days = days;
      cache->valid = true;
    }
  }
  // Whole seconds first: they fit easily in int64 for years 0..9999.
  int64_t secs = days * 86400 + int64_t(hour) * 3600 + int64_t(minute) * 60 + second - offset_s;
  // For the lowest representable second, secs * 1e9 alone is below INT64_MIN
  // although secs * 1e9 + frac is not: borrow a second first.
  if (secs < 0 && frac_ns > 0) {
    secs += 1;
    frac_ns -= kNsPerS;
  }
  int64_t ns;
  if (__builtin_mul_overflow(secs, kNsPerS, &ns) || __builtin_add_overflow(ns, frac_ns, &ns)) {
    return TimestampError::out_of_range;
  }
  out_ns = ns;
  return TimestampError::ok;
}

}  // namespace

TimestampError parse_rfc3339(std::string_view s, int64_t& out_ns) { return parse_impl(s, out_ns, nullptr); }

TimestampError parse_rfc3339(std::string_view s, int64_t& out_ns, Rfc3339DayCache& cache) {
  return parse_impl(s, out_ns, &cache);
}

size_t format_rfc3339(int64_t ns, char* out) {
  int64_t secs = floor_div(ns, kNsPerS);
  int64_t frac = ns % kNsPerS;  // not ns - secs * 1e9: that overflows for the lowest second
  if (frac < 0) frac += kNsPerS;
  int64_t days = floor_div(secs, 86400);
  int64_t sod = secs - days * 86400;
  int64_t year;
  unsigned month, day;
  civil_from_days(days, year, month, day);
  auto put = [&](size_t& i, int64_t v, int width) {
    for (int k = width - 1; k >= 0; --k) {
      out[i + size_t(k)] = char('0' + v % 10);
      v /= 10;
    }
    i += size_t(width);
  };
  size_t i = 0;
  put(i, year, 4);  // int64 ns spans 1677..2262: always four digits
  out[i++] = '-';
  put(i, month, 2);
  out[i++] = '-';
  put(i, day, 2);
  out[i++] = 'T';
  put(i, sod / 3600, 2);
  out[i++] = ':';
  put(i, sod / 60 % 60, 2);
  out[i++] = ':';
  put(i, sod % 60, 2);
  if (frac != 0) {
    out[i++] = '.';
    if (frac % 1'000'000 == 0) {
      put(i, frac / 1'000'000, 3);
    } else if (frac % 1'000 == 0) {
      put(i, frac / 1'000, 6);
    } else {
      put(i, frac, 9);
    }
  }
  out[i++] = 'Z';
  return i;
}

}  // namespace sluice
