// The watermark protocol as pure functions (dataflow/progress.h), driven
// without threads or sockets: a shard's marker from its streams (idle
// transitions, back-pressure, pauses), the pipeline watermark from every
// shard's latest marker in every order, and the gatherer's completion rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "dataflow/progress.h"

namespace sluice {
namespace {

// A Source that owns nothing: streams need an owner, the rules never call it.
class NoSource final : public Source {
 public:
  void start() override {}
  bool process(Stream&) override { return false; }
  void stop() override {}
  bool done() const override { return true; }
  void for_each_stream(FunctionRef<void(Stream&, bool)>) override {}
};

struct Streams {
  NoSource owner;
  std::vector<std::unique_ptr<Stream>> s;
  Stream& add(int64_t max_event_ns, int64_t last_active_ns) {
    s.push_back(std::make_unique<Stream>(owner, 0, /*delay*/ 10, kTimeMin));
    if (max_event_ns != kTimeMin) s.back()->wm.observe(max_event_ns);
    s.back()->last_active_ns = last_active_ns;
    return *s.back();
  }
};

TEST(MarkerRule, ActiveStreamsHoldTheMarkerAtTheirLowestWatermark) {
  Streams st;
  st.add(100, 0);
  st.add(50, 0);
  MarkerRule r(/*now*/ 5, /*idle*/ 1000, /*paused*/ false, kTimeMin);
  for (auto& s : st.s) r.consider(*s, false);
  const Marker m = r.finish(false);
  EXPECT_TRUE(m.opinion);
  EXPECT_FALSE(m.final);
  EXPECT_EQ(m.watermark, 40);  // 50 - delay 10
  EXPECT_EQ(m.retired, kTimeMin);
}

TEST(MarkerRule, ASilentStreamGoesIdleAndOnlyRaisesRetired) {
  Streams st;
  Stream& quiet = st.add(500, 0);
  st.add(100, 990);
  MarkerRule r(1000, 1000, false, kTimeMin);
  for (auto& s : st.s) r.consider(*s, false);
  const Marker m = r.finish(false);
  EXPECT_TRUE(quiet.idle);
  EXPECT_EQ(m.watermark, 90);
  EXPECT_EQ(m.retired, 490);
}

TEST(MarkerRule, WaitingInputAStallAndAPauseAreNotSilence) {
  for (int why = 0; why < 3; ++why) {
    Streams st;
    Stream& s = st.add(500, 0);
    s.stalled = why == 1;
    MarkerRule r(5000, 1000, /*paused*/ why == 2, kTimeMin);
    r.consider(s, /*backlogged*/ why == 0);
    const Marker m = r.finish(false);
    EXPECT_FALSE(s.idle) << why;
    EXPECT_EQ(s.last_active_ns, 5000) << why;
    EXPECT_TRUE(m.opinion) << why;
    EXPECT_EQ(m.watermark, 490) << why;
  }
}

TEST(MarkerRule, IdleTimeoutZeroNeverIdlesAndHoldBackWins) {
  Streams st;
  Stream& s = st.add(500, 0);
  MarkerRule r(kTimeMax / 2, 0, false, kTimeMin);
  r.consider(s, false);
  r.hold_back();
  const Marker m = r.finish(false);
  EXPECT_FALSE(s.idle);
  EXPECT_TRUE(m.opinion);
  EXPECT_EQ(m.watermark, kTimeMin);
}

TEST(MarkerRule, FinalHasNoOpinionAndKeepsRetired) {
  Streams st;
  Stream& s = st.add(700, 0);
  s.done = true;
  MarkerRule r(0, 1000, false, 300);
  r.consider(s, false);
  const Marker m = r.finish(true);
  EXPECT_TRUE(m.final);
  EXPECT_FALSE(m.opinion);
  EXPECT_EQ(m.retired, 690);
}

Marker opinion(int64_t w, int64_t retired = kTimeMin) { return Marker{true, false, w, retired}; }
Marker no_opinion(int64_t retired) { return Marker{false, false, kTimeMin, retired}; }
Marker final_marker(int64_t retired) { return Marker{false, true, kTimeMin, retired}; }

TEST(AdvanceWatermark, MinimumOverOpinionsElseLargestRetiredElseInfinity) {
  std::vector<Marker> in(3);
  in[1] = opinion(100);
  in[2] = opinion(70, 500);
  EXPECT_EQ(advance_watermark(kTimeMin, opinion(90), in, 0), 70);
  in[2] = no_opinion(500);
  EXPECT_EQ(advance_watermark(kTimeMin, opinion(90), in, 0), 90);
  EXPECT_EQ(advance_watermark(kTimeMin, no_opinion(10), in, 0), 100);
  in[1] = no_opinion(200);
  EXPECT_EQ(advance_watermark(kTimeMin, no_opinion(10), in, 0), 500);  // nobody active: largest retired
  in[1] = final_marker(200);
  in[2] = final_marker(500);
  EXPECT_EQ(advance_watermark(0, final_marker(0), in, 0), kTimeMax);
  // Never backwards.
  in[1] = opinion(5);
  EXPECT_EQ(advance_watermark(50, opinion(90), in, 0), 50);
  // The own slot of `in` is not read.
  in[0] = opinion(kTimeMin);
  EXPECT_EQ(advance_watermark(kTimeMin, opinion(90), in, 0), 5);
}

// Every order in which the shards' markers can arrive (each shard's own in
// sequence) gives, at every step, a watermark that never moves back and never
// passes an active shard's watermark, and ends where the last markers say,
// whatever the order: +infinity when every shard ends final; when every
// shard ends with no active source, the largest watermark any source reached.
TEST(AdvanceWatermark, EveryArrivalOrderIsSafeAndEndsAtTheSamePlace) {
  std::mt19937_64 rng(31);
  for (int round = 0; round < 300; ++round) {
    const size_t shards = 2 + rng() % 4;
    // Each shard: rising watermarks, sometimes idle (no opinion, retired =
    // what it reached), ending idle or final.
    std::vector<std::vector<Marker>> seq(shards);
    const bool end_final = rng() % 2;
    int64_t reached_max = kTimeMin;
    for (size_t s = 0; s < shards; ++s) {
      int64_t w = int64_t(rng() % 100);
      int64_t retired = kTimeMin;
      const size_t n = 1 + rng() % 5;
      for (size_t k = 0; k < n; ++k) {
        w += int64_t(rng() % 50);
        if (rng() % 4 == 0) {
          retired = std::max(retired, w);
          seq[s].push_back(no_opinion(retired));
        } else {
          seq[s].push_back(opinion(w, retired));
        }
      }
      retired = std::max(retired, w);
      reached_max = std::max(reached_max, retired);
      seq[s].push_back(end_final ? final_marker(retired) : no_opinion(retired));
    }
    const int64_t expected_end = end_final ? kTimeMax : reached_max;
    for (int order = 0; order < 20; ++order) {
      std::vector<size_t> next(shards, 0);
      std::vector<Marker> latest(shards, initial_marker());
      int64_t target = kTimeMin;
      size_t left = 0;
      for (auto& q : seq) left += q.size();
      while (left > 0) {
        size_t s = rng() % shards;
        while (next[s] == seq[s].size()) s = (s + 1) % shards;
        latest[s] = seq[s][next[s]++];
        --left;
        // Shard 0's view; its own marker is latest[0].
        const int64_t t = advance_watermark(target, latest[0], latest, 0);
        ASSERT_GE(t, target);
        for (const Marker& m : latest) {
          if (m.opinion && t != target) {
            ASSERT_LE(t, m.watermark);
          }
        }
        target = t;
      }
      ASSERT_EQ(target, expected_end) << "round " << round << " order " << order;
    }
  }
}

TEST(CompleteThrough, TheSlowestShardDecidesUntilAllAreFinal) {
  std::vector<int64_t> fired{100, 40, 70};
  std::vector<bool> final{false, false, true};
  EXPECT_EQ(complete_through(fired, final), 40);
  final = {true, true, true};
  EXPECT_EQ(complete_through(fired, final), kTimeMax);
}

}  // namespace
}  // namespace sluice
