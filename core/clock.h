// Clocks and time units. Event time and wall time are both int64 nanoseconds
// since the Unix epoch (range 1677-09-21 .. 2262-04-11); monotonic time is
// int64 nanoseconds since an arbitrary origin. The suffix says which.
#pragma once

#include <cstdint>
#include <ctime>
#include <limits>

namespace sluice {

constexpr int64_t kNsPerUs = 1'000;
constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerS = 1'000'000'000;

// "No time yet" / "no bound": used for watermarks before the first event.
constexpr int64_t kTimeMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kTimeMax = std::numeric_limits<int64_t>::max();

inline int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * kNsPerS + ts.tv_nsec;
}

inline int64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * kNsPerS + ts.tv_nsec;
}

// floor(a / b) for b > 0, correct for negative a.
constexpr int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// Saturating a - b for watermark arithmetic (kTimeMin stays kTimeMin).
constexpr int64_t sub_sat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b > 0 ? kTimeMin : kTimeMax;
  return r;
}

}  // namespace sluice
