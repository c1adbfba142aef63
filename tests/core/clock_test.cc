#include "core/clock.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>

namespace sluice {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// Reference models in 128-bit arithmetic, where nothing overflows.
int64_t ref_floor_div(int64_t a, int64_t b) {
  __int128 q = __int128(a) / b;
  if (__int128(a) % b != 0 && a < 0) q -= 1;
  return int64_t(q);
}

int64_t ref_sub_sat(int64_t a, int64_t b) {
  __int128 r = __int128(a) - b;
  if (r < kMin) return kMin;
  if (r > kMax) return kMax;
  return int64_t(r);
}

TEST(FloorDiv, SmallValues) {
  EXPECT_EQ(floor_div(7, 2), 3);
  EXPECT_EQ(floor_div(-7, 2), -4);
  EXPECT_EQ(floor_div(-8, 2), -4);
  EXPECT_EQ(floor_div(-1, 2), -1);
  EXPECT_EQ(floor_div(0, 5), 0);
  EXPECT_EQ(floor_div(4, 5), 0);
  EXPECT_EQ(floor_div(5, 5), 1);
  EXPECT_EQ(floor_div(-5, 5), -1);
  EXPECT_EQ(floor_div(-6, 5), -2);
  EXPECT_EQ(floor_div(-1, kNsPerS), -1);
  EXPECT_EQ(floor_div(-kNsPerS, kNsPerS), -1);
  EXPECT_EQ(floor_div(-kNsPerS - 1, kNsPerS), -2);
}

TEST(FloorDiv, Extremes) {
  EXPECT_EQ(floor_div(kMin, 1), kMin);
  EXPECT_EQ(floor_div(kMax, 1), kMax);
  EXPECT_EQ(floor_div(kMax, kMax), 1);
  EXPECT_EQ(floor_div(kMin, kMax), -2);
  EXPECT_EQ(floor_div(kMin, 10), -922'337'203'685'477'581);
  EXPECT_EQ(floor_div(kMax, 10), 922'337'203'685'477'580);
  EXPECT_EQ(floor_div(kMin, kNsPerS), -9'223'372'037);
}

TEST(FloorDiv, MatchesReference) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    int64_t a = int64_t(rng());
    int64_t b = int64_t(rng() >> (1 + rng() % 63));  // positive, of every magnitude
    if (b == 0) b = 1;
    if (i % 2) a >>= rng() % 64;
    ASSERT_EQ(floor_div(a, b), ref_floor_div(a, b)) << a << " / " << b;
  }
}

TEST(SubSat, Values) {
  EXPECT_EQ(sub_sat(5, 3), 2);
  EXPECT_EQ(sub_sat(3, 5), -2);
  EXPECT_EQ(sub_sat(kTimeMin, 0), kTimeMin);
  EXPECT_EQ(sub_sat(kTimeMin, 10), kTimeMin);
  EXPECT_EQ(sub_sat(kTimeMin + 5, 10), kTimeMin);
  EXPECT_EQ(sub_sat(kTimeMin + 10, 10), kTimeMin);
  EXPECT_EQ(sub_sat(kTimeMin + 11, 10), kTimeMin + 1);
  EXPECT_EQ(sub_sat(kTimeMax, -1), kTimeMax);
  EXPECT_EQ(sub_sat(0, kTimeMin), kTimeMax);
  EXPECT_EQ(sub_sat(-1, kTimeMin), kTimeMax);  // exactly INT64_MAX, no overflow
  EXPECT_EQ(sub_sat(kTimeMax, kTimeMax), 0);
  EXPECT_EQ(sub_sat(kTimeMin, kTimeMax), kTimeMin);
}

TEST(SubSat, MatchesReference) {
  std::mt19937_64 rng(4);
  for (int i = 0; i < 100000; ++i) {
    int64_t a = int64_t(rng()) >> (rng() % 64);
    int64_t b = int64_t(rng()) >> (rng() % 64);
    ASSERT_EQ(sub_sat(a, b), ref_sub_sat(a, b)) << a << " - " << b;
  }
}

TEST(Clocks, MonotonicDoesNotGoBackwards) {
  int64_t prev = monotonic_ns();
  for (int i = 0; i < 1000; ++i) {
    int64_t now = monotonic_ns();
    ASSERT_GE(now, prev);
    prev = now;
  }
}

}  // namespace
}  // namespace sluice
