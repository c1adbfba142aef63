#include "core/histogram.h"

#include <algorithm>
#include <cmath>

namespace sluice {

namespace {

uint64_t add_sat(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max() : r;
}

}  // namespace

uint64_t histogram_percentile_rank(double p, uint64_t count) {
  if (!(p > 0)) return 1;  // also NaN: the caller asked for nothing sensible
  if (p >= 100) return count;
  // p * count first: 99.9 * 1e6 rounds to 99900000 exactly, while
  // (99.9 / 100) * 1e6 is 999000.0000000001 and would ceil one rank too far.
  double rank = std::ceil(p * double(count) / 100.0);
  if (rank < 1) return 1;
  if (rank >= double(count)) return count;
  return uint64_t(rank);
}

void HistogramSnapshot::record(uint64_t v, uint64_t count) {
  if (count == 0) return;
  buckets_[histogram_bucket_index(v)] += count;
  count_ += count;
  uint64_t add;
  if (__builtin_mul_overflow(v, count, &add)) add = std::numeric_limits<uint64_t>::max();
  sum_ = add_sat(sum_, add);
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void HistogramSnapshot::merge(const HistogramSnapshot& other) {
  for (size_t i = 0; i < kHistogramBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ = add_sat(sum_, other.sum_);
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void HistogramSnapshot::clear() {
  // Not `*this = HistogramSnapshot()`: that builds a 59 KiB temporary on the stack.
  buckets_.fill(0);
  count_ = 0;
  sum_ = 0;
  min_ = std::numeric_limits<uint64_t>::max();
  max_ = 0;
}

double HistogramSnapshot::mean() const {
  return count_ == 0 ? 0.0 : double(sum_) / double(count_);
}

uint64_t HistogramSnapshot::value_at_percentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p > 0)) return min_;
  if (p >= 100) return max_;
  uint64_t rank = histogram_percentile_rank(p, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(histogram_bucket_upper(i), max_);
  }
  return max_;  // unreachable: the buckets sum to count_
}

void Histogram::merge_into(HistogramSnapshot& out) const {
  // Buckets first with acquire, then min/max/sum: those then cover every
  // value the copied buckets hold (record() stores them before the bucket).
  uint64_t count = 0;
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    uint64_t c = buckets_[i].load(std::memory_order_acquire);
    out.buckets_[i] += c;
    count += c;
  }
  out.count_ += count;
  out.sum_ = add_sat(out.sum_, sum_.load(std::memory_order_relaxed));
  out.min_ = std::min(out.min_, min_.load(std::memory_order_relaxed));
  out.max_ = std::max(out.max_, max_.load(std::memory_order_relaxed));
}

HistogramSnapshot Histogram::snapshot() const {
  HistogramSnapshot s;
  merge_into(s);
  return s;
}

}  // namespace sluice
