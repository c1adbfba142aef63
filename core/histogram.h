// A log-linear histogram of uint64 values (latencies in nanoseconds, sizes in
// bytes, ...), in the manner of HdrHistogram: fixed memory, O(1) recording,
// percentiles within a stated relative error.
//
// Buckets. Values 0..255 each have a bucket of their own (exact). Above that,
// every power-of-two range [2^e, 2^(e+1)), e = 8..63, is cut into
// kHistogramSubBuckets = 128 equal sub-buckets of width 2^(e-7). That gives
// 256 + 56 * 128 = 7424 buckets for the whole uint64 range (59 KiB of
// counters), and the bucket of a value is one clz and one shift away
// (bucket_index below): no loop, no branch, no allocation.
//
// Error bound. A percentile is reported as the upper bound of the bucket that
// holds the exact percentile x, clamped to the largest recorded value, so the
// reported value r satisfies
//     x <= r <= x + (width - 1)  and  width <= x / 128,
// i.e. 0 <= (r - x) / x < 1/128 (0.78 %); r == x exactly when x < 256 or when
// x is the maximum. kHistogramRelativeErrorMax states that bound.
//
// Threads. A Histogram has one writer (the shard or engine thread that owns
// it: record()) and any number of readers (snapshot(), merge_into(), count()).
// Since there is one writer, a counter is bumped with a plain atomic load and
// store, never a locked read-modify-write. The bucket store is a release
// store (a plain mov on x86, like relaxed) and readers load buckets with
// acquire, then min/max/sum: so a reader that sees a value in a bucket also
// sees the min, max and sum updates that value made, and a snapshot's
// percentiles are never clamped below a value it holds. A snapshot may be a
// moment old, and is not a cut at one instant: see HistogramSnapshot. Debug
// builds trap when a second thread records (SingleWriterCheck).
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <thread>

#include "core/assert.h"

namespace sluice {

// Debug builds: remembers the first thread that writes and traps when another
// one does (the one-writer rule of Histogram, and of Counter and Gauge in
// core/metrics.h). Release builds: nothing, and no bytes.
class SingleWriterCheck {
 public:
#ifndef NDEBUG
  void check() {
    std::thread::id me = std::this_thread::get_id();
    std::thread::id owner{};
    if (!owner_.compare_exchange_strong(owner, me, std::memory_order_relaxed)) {
      SLUICE_ASSERT(owner == me);
    }
  }

 private:
  std::atomic<std::thread::id> owner_{};
#else
  void check() {}
#endif
};

// log2 of the linear sub-buckets per power of two: 7 -> 128 -> error < 1/128.
// One more bit halves the error and doubles the memory (and the snapshot copy).
constexpr unsigned kHistogramSubBucketBits = 7;
constexpr uint64_t kHistogramSubBuckets = uint64_t{1} << kHistogramSubBucketBits;
// Values up to this have a bucket each: the first octave cut into
// kHistogramSubBuckets pieces, [128, 256), has buckets of width 1.
constexpr uint64_t kHistogramExactMax = 2 * kHistogramSubBuckets - 1;
// (64 - 7 - 1) octaves of 128 beyond the 256 exact buckets.
constexpr size_t kHistogramBuckets =
    size_t(2 * kHistogramSubBuckets) +
    size_t(64 - kHistogramSubBucketBits - 1) * kHistogramSubBuckets;
static_assert(kHistogramBuckets == 7424);
// 0 <= (reported - exact) / exact < kHistogramRelativeErrorMax (see the file comment).
constexpr double kHistogramRelativeErrorMax = 1.0 / double(kHistogramSubBuckets);

// The bucket of a value. With v | 255 the clz never sees 0 and values below
// 256 get shift 0, so one formula covers the exact range and the octaves.
constexpr size_t histogram_bucket_index(uint64_t v) {
  unsigned top = 63 - unsigned(std::countl_zero(v | kHistogramExactMax));  // >= 7
  unsigned shift = top - kHistogramSubBucketBits;
  return (size_t(shift) << kHistogramSubBucketBits) + size_t(v >> shift);
}
// The smallest and the largest value that land in bucket `i`.
// REQUIRES: i < kHistogramBuckets.
constexpr uint64_t histogram_bucket_lower(size_t i) {
  if (i < kHistogramSubBuckets) return i;
  unsigned shift = unsigned(i >> kHistogramSubBucketBits) - 1;
  return (uint64_t(i & (kHistogramSubBuckets - 1)) + kHistogramSubBuckets) << shift;
}
constexpr uint64_t histogram_bucket_upper(size_t i) {
  if (i < kHistogramSubBuckets) return i;
  unsigned shift = unsigned(i >> kHistogramSubBucketBits) - 1;
  return histogram_bucket_lower(i) + ((uint64_t{1} << shift) - 1);
}
static_assert(histogram_bucket_index(0) == 0);
static_assert(histogram_bucket_index(255) == 255);
static_assert(histogram_bucket_index(256) == 256);
static_assert(histogram_bucket_index(~uint64_t{0}) == kHistogramBuckets - 1);
static_assert(histogram_bucket_upper(kHistogramBuckets - 1) == ~uint64_t{0});

// The rank of the p-th percentile among `count` values, 1-based: the smallest
// rank k with k >= p/100 * count, at least 1, at most count. Computed as
// ceil(p * count / 100) so that decimal percentiles such as 99.9 of a round
// count land on the integer they mean. p <= 0 gives 1, p >= 100 gives count.
// REQUIRES: count > 0.
uint64_t histogram_percentile_rank(double p, uint64_t count);

// A plain (non-atomic) copy of a histogram, or the merge of several: taken by
// a reader, then queried at leisure. Owned by whoever made it.
//
// Snapshot semantics: the bucket counts are copied one by one while the
// writer may go on recording, so a snapshot holds some of the records made
// during the copy and not others; it is never a mix that a writer could not
// have produced bucket by bucket. count() is the sum of the copied buckets, so
// percentiles are consistent with count; min() and max() bound every value in
// the copied buckets; sum() may include a few records more than count() holds
// (those made during the copy).
class HistogramSnapshot {
 public:
  HistogramSnapshot() = default;

  // Adds `count` values equal to `v` (for tests and for building a merge by hand).
  void record(uint64_t v, uint64_t count = 1);
  // Adds every value of `other`.
  void merge(const HistogramSnapshot& other);
  // Forgets every value.
  void clear();

  uint64_t count() const { return count_; }
  // Saturates at UINT64_MAX rather than wrapping: ns latencies reach it only
  // after 584 years in total; values near 2^63 reach it after two records.
  uint64_t sum() const { return sum_; }
  // 0 when empty.
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  // sum / count, 0 when empty.
  double mean() const;
  // REQUIRES: i < kHistogramBuckets.
  uint64_t bucket_count(size_t i) const {
    SLUICE_DASSERT(i < kHistogramBuckets);
    return buckets_[i];
  }

  // The p-th percentile (0 <= p <= 100): the smallest recorded value v such
  // that at least p % of the recorded values are <= v (rank from
  // histogram_percentile_rank), reported as its bucket's upper bound clamped
  // to max(), so within kHistogramRelativeErrorMax above the exact value and
  // never below it. p <= 0 gives min() exactly, p >= 100 max() exactly.
  // 0 when empty.
  uint64_t value_at_percentile(double p) const;

 private:
  friend class Histogram;
  std::array<uint64_t, kHistogramBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = std::numeric_limits<uint64_t>::max();
  uint64_t max_ = 0;
};

// The live histogram: one writer, any readers (see the file comment).
// Memory is inline (about 59 KiB); build it when the owner starts. Values are
// cumulative from construction: nothing is ever reset, so readers can take
// differences of counts and sums between two snapshots.
class Histogram {
 public:
  Histogram() = default;
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // Owner thread only. O(1), no allocation, no locked instruction.
  void record(uint64_t v, uint64_t count = 1) {
    writer_.check();
    if (count == 0) return;  // else min/max would move with nothing counted
    // min, max and sum first: the bucket store below publishes them (release).
    if (v < min_.load(std::memory_order_relaxed)) min_.store(v, std::memory_order_relaxed);
    if (v > max_.load(std::memory_order_relaxed)) max_.store(v, std::memory_order_relaxed);
    uint64_t add;
    if (__builtin_mul_overflow(v, count, &add)) add = std::numeric_limits<uint64_t>::max();
    uint64_t sum;
    if (__builtin_add_overflow(sum_.load(std::memory_order_relaxed), add, &sum)) {
      sum = std::numeric_limits<uint64_t>::max();
    }
    sum_.store(sum, std::memory_order_relaxed);
    std::atomic<uint64_t>& b = buckets_[histogram_bucket_index(v)];
    b.store(b.load(std::memory_order_relaxed) + count, std::memory_order_release);
    count_.store(count_.load(std::memory_order_relaxed) + count, std::memory_order_relaxed);
  }

  // Any thread: the number of values recorded (a moment old for readers).
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

  // Any thread: a copy of the current state (see HistogramSnapshot for what
  // "current" means while the writer runs).
  HistogramSnapshot snapshot() const;
  // Any thread: adds the current state to `out` without an intermediate copy;
  // how per-shard histograms are summed into one.
  void merge_into(HistogramSnapshot& out) const;

 private:
  // The writer touches these on every record: one cache line, ahead of the buckets.
  alignas(64) std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> min_{std::numeric_limits<uint64_t>::max()};
  std::atomic<uint64_t> max_{0};
  alignas(64) std::array<std::atomic<uint64_t>, kHistogramBuckets> buckets_{};
  [[no_unique_address]] SingleWriterCheck writer_;
};

}  // namespace sluice
