#include "operators/watermark.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>

#include "core/clock.h"

namespace sluice {
namespace {

// The documented rule, in 128-bit arithmetic:
//   watermark = max(floor, largest event time so far - delay), kTimeMin before any event;
//   late iff window_end <= watermark at arrival (the event's own time is not counted).
class RefWatermark {
 public:
  RefWatermark(int64_t delay, int64_t floor) : delay_(delay), floor_(floor) {}
  int64_t watermark() const {
    __int128 wm = floor_;
    if (seen_) wm = std::max<__int128>(wm, __int128(max_event_) - delay_);
    return int64_t(std::max<__int128>(wm, kTimeMin));
  }
  bool is_late(int64_t end) const { return end <= watermark(); }
  void observe(int64_t t) {
    max_event_ = seen_ ? std::max(max_event_, t) : t;
    seen_ = true;
  }
  void raise_floor(int64_t f) { floor_ = std::max(floor_, f); }

 private:
  int64_t delay_;
  int64_t floor_;
  bool seen_ = false;
  int64_t max_event_ = 0;
};

int64_t window_end(int64_t t, int64_t size) { return floor_div(t, size) * size + size; }

TEST(SourceWatermark, BeforeAnyEvent) {
  SourceWatermark wm(10);
  EXPECT_EQ(wm.watermark(), kTimeMin);
  EXPECT_EQ(wm.max_event_ns(), kTimeMin);
  EXPECT_FALSE(wm.is_late(kTimeMin + 1));
  EXPECT_FALSE(wm.is_late(0));
  EXPECT_FALSE(wm.is_late(-1'000'000'000'000));
}

TEST(SourceWatermark, MaxEventMinusDelay) {
  SourceWatermark wm(10);
  wm.observe(100);
  EXPECT_EQ(wm.watermark(), 90);
  EXPECT_TRUE(wm.is_late(90));
  EXPECT_TRUE(wm.is_late(50));
  EXPECT_FALSE(wm.is_late(91));
  wm.observe(50);  // older events do not move it back
  EXPECT_EQ(wm.watermark(), 90);
  EXPECT_EQ(wm.max_event_ns(), 100);
  wm.observe(200);
  EXPECT_EQ(wm.watermark(), 190);
  EXPECT_EQ(wm.max_event_ns(), 200);
}

TEST(SourceWatermark, NegativeTimes) {
  SourceWatermark wm(10);
  wm.observe(-100);
  EXPECT_EQ(wm.watermark(), -110);
  EXPECT_TRUE(wm.is_late(-110));
  EXPECT_FALSE(wm.is_late(-109));
}

TEST(SourceWatermark, ZeroDelay) {
  // Windows of 10; the shard checks lateness, then observes.
  SourceWatermark wm(0);
  auto arrive = [&](int64_t t) {
    bool late = wm.is_late(window_end(t, 10));
    if (!late) wm.observe(t);
    return late;
  };
  EXPECT_FALSE(arrive(25));  // window [20, 30); watermark becomes 25
  EXPECT_EQ(wm.watermark(), 25);
  EXPECT_FALSE(arrive(29));  // same window, still open
  EXPECT_TRUE(arrive(15));   // [10, 20) ended at 20 <= 25
  EXPECT_FALSE(arrive(30));  // [30, 40); watermark becomes 30, which closes [20, 30)
  EXPECT_TRUE(arrive(29));
  EXPECT_TRUE(arrive(20));
  EXPECT_FALSE(arrive(30));
  EXPECT_FALSE(arrive(39));
}

TEST(SourceWatermark, OwnTimeDoesNotMakeAnEventLate) {
  // With delay 0, an event exactly at a window end would close its own window
  // if it were observed before the check.
  SourceWatermark wm(0);
  wm.observe(19);
  EXPECT_FALSE(wm.is_late(window_end(29, 10)));
  // The event at time 20 belongs to [20, 30): not late, although observing it
  // makes the watermark 20 (closing [10, 20)).
  EXPECT_FALSE(wm.is_late(window_end(20, 10)));
  wm.observe(20);
  EXPECT_TRUE(wm.is_late(window_end(19, 10)));
  EXPECT_FALSE(wm.is_late(window_end(20, 10)));
}

TEST(SourceWatermark, HugeDelaySaturates) {
  SourceWatermark wm(kTimeMax);
  wm.observe(0);
  EXPECT_EQ(wm.watermark(), -kTimeMax);
  wm.observe(-5);
  EXPECT_EQ(wm.watermark(), -kTimeMax);
  SourceWatermark wm2(kTimeMax);
  wm2.observe(kTimeMin);
  EXPECT_EQ(wm2.watermark(), kTimeMin);
  EXPECT_FALSE(wm2.is_late(kTimeMin + 1));
  SourceWatermark wm3(100);
  wm3.observe(kTimeMin + 50);
  EXPECT_EQ(wm3.watermark(), kTimeMin);
}

TEST(SourceWatermark, Floor) {
  SourceWatermark wm(10, 1000);
  EXPECT_EQ(wm.watermark(), 1000) << "the floor applies before any event";
  EXPECT_TRUE(wm.is_late(1000));
  EXPECT_FALSE(wm.is_late(1001));
  wm.observe(500);
  EXPECT_EQ(wm.watermark(), 1000);
  wm.observe(2000);
  EXPECT_EQ(wm.watermark(), 1990);
  wm.raise_floor(1500);  // lower than the event-driven watermark: no change
  EXPECT_EQ(wm.watermark(), 1990);
  wm.raise_floor(3000);
  EXPECT_EQ(wm.watermark(), 3000);
  wm.raise_floor(2500);  // a floor never goes down
  EXPECT_EQ(wm.watermark(), 3000);
  wm.observe(4000);
  EXPECT_EQ(wm.watermark(), 3990);
}

TEST(SourceWatermark, RaiseFloorBeforeEvents) {
  SourceWatermark wm(0);
  wm.raise_floor(-50);
  EXPECT_EQ(wm.watermark(), -50);
  EXPECT_TRUE(wm.is_late(-50));
  EXPECT_FALSE(wm.is_late(-49));
}

TEST(SourceWatermark, MatchesReferenceModel) {
  std::mt19937_64 rng(77);
  for (int64_t delay : {int64_t(0), int64_t(1), int64_t(7), int64_t(100), int64_t(1) << 40, kTimeMax}) {
    for (int run = 0; run < 20; ++run) {
      int64_t base = run % 2 ? 0 : kTimeMin + 200;  // also right at the bottom of the range
      int64_t floor = run % 3 == 0 ? kTimeMin : base + int64_t(rng() % 1000);
      SourceWatermark wm(delay, floor);
      RefWatermark ref(delay, floor);
      const int64_t size = 10;
      int64_t late = 0;
      for (int i = 0; i < 2000; ++i) {
        int64_t t = base + int64_t(rng() % 1000) + i / 2;
        if (rng() % 100 == 0) {
          int64_t f = base + int64_t(rng() % 1500);
          wm.raise_floor(f);
          ref.raise_floor(f);
        }
        int64_t end = window_end(t, size);
        bool want = ref.is_late(end);
        ASSERT_EQ(wm.is_late(end), want) << "delay " << delay << " event " << i << " t " << t;
        ASSERT_EQ(wm.watermark(), ref.watermark()) << "delay " << delay << " event " << i;
        if (!want) {
          wm.observe(t);
          ref.observe(t);
        } else {
          ++late;
        }
      }
      if (delay <= 7 && run % 3 != 0) {
        EXPECT_GT(late, 0) << "the model was never exercised";
      }
    }
  }
}

}  // namespace
}  // namespace sluice
