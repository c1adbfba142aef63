// RFC 3339 timestamps <-> int64 nanoseconds since the Unix epoch (UTC).
// Used on the data path: no allocation, no exceptions, no locale.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice {

enum class TimestampError : uint8_t {
  ok = 0,
  syntax,        ///< not of the form YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)
  field_range,   ///< month, day, hour, minute, second or offset out of range
  out_of_range,  ///< valid date but outside what int64 nanoseconds can hold (1677..2262)
};

const char* to_string(TimestampError e);

// Parses an RFC 3339 date-time: `T`, `t` or a space between date and time;
// fractional seconds of any length (digits beyond nanoseconds are truncated);
// `Z`, `z` or a `±hh:mm` offset. A leap second (:60) is accepted and counted as
// the first instant of the next minute, as POSIX time does.
TimestampError parse_rfc3339(std::string_view text, int64_t& out_ns);

// The last date seen, for streams of timestamps that mostly share their day:
// when the next one starts with the same "YYYY-MM-DD", its (already validated)
// day number is reused. Owned by one thread.
struct Rfc3339DayCache {
  char date[10] = {};
  int64_t days = 0;
  bool valid = false;
};
TimestampError parse_rfc3339(std::string_view text, int64_t& out_ns, Rfc3339DayCache& cache);

// Longest output of format_rfc3339: "-292277-..." never happens for int64 ns,
// "2262-04-11T23:47:16.854775807Z" is 30 characters.
constexpr size_t kRfc3339BytesMax = 32;

// Writes `ns` as UTC RFC 3339 with a `Z`: no fraction when the time is a whole
// second, otherwise 3, 6 or 9 fraction digits (the fewest that are exact).
// Returns the number of bytes written (no terminating NUL).
size_t format_rfc3339(int64_t ns, char* out);

// Days since 1970-01-01 of a proleptic Gregorian date, and its inverse.
int64_t days_from_civil(int64_t year, unsigned month, unsigned day);
void civil_from_days(int64_t days, int64_t& year, unsigned& month, unsigned& day);

}  // namespace sluice
