// LagHistogram: the distribution of sluice-gen's schedule lag (how late a batch
// went out against its due time), for the p99 in the report. Log-linear
// buckets, so it has a fixed size (no allocation, however long the run) and a
// bounded relative error: values below 2^kSubBits are exact, larger ones fall
// into one of 2^kSubBits buckets per power of two.
//
// Threads: one owner.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace sluice::gen {

class LagHistogram {
 public:
  // 32 buckets per power of two: a percentile is at most 1/32 (3 %) above the
  // true value, plenty for a lag figure, and the table is 15 KiB.
  static constexpr int kSubBits = 5;
  static constexpr size_t kSubBuckets = size_t(1) << kSubBits;
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSubBuckets;

  // Negative values (a batch sent before it was due cannot happen, but the
  // clock is not ours to trust) count as 0.
  void record(int64_t value) {
    uint64_t v = value < 0 ? 0 : uint64_t(value);
    ++counts_[index(v)];
    ++total_;
    if (v > max_) max_ = v;
  }

  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }

  // The smallest bucket upper bound at or above a fraction q (0 < q <= 1) of
  // the values, capped at max(): never below the true quantile, at most 1/32
  // above it. 0 when nothing was recorded.
  uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    double wanted = q * double(total_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (counts_[i] != 0 && double(seen) >= wanted) return upper(i) < max_ ? upper(i) : max_;
    }
    return max_;
  }

  static size_t index(uint64_t v) {
    if (v < kSubBuckets) return size_t(v);
    int e = std::bit_width(v) - 1;  // v in [2^e, 2^(e+1)), e >= kSubBits
    size_t sub = size_t(v >> (e - kSubBits)) & (kSubBuckets - 1);
    return size_t(e - kSubBits + 1) * kSubBuckets + sub;
  }

  // The largest value that falls into bucket i.
  static uint64_t upper(size_t i) {
    if (i < kSubBuckets) return i;
    int e = int(i / kSubBuckets) + kSubBits - 1;
    uint64_t width = uint64_t(1) << (e - kSubBits);
    uint64_t low = (kSubBuckets + i % kSubBuckets) << (e - kSubBits);
    return low + (width - 1);
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace sluice::gen
