#include "core/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <thread>
#include <vector>

namespace sluice {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kTwo63 = uint64_t{1} << 63;

// The exact p-th percentile by the header's definition, computed
// independently of the histogram: sort, rank = ceil(p * n / 100) in [1, n].
uint64_t exact_percentile(const std::vector<uint64_t>& sorted, double p) {
  double r = std::ceil(p * double(sorted.size()) / 100.0);
  size_t rank = r < 1 ? 1 : (r > double(sorted.size()) ? sorted.size() : size_t(r));
  return sorted[rank - 1];
}

// reported is never below exact and less than exact / 128 above it.
::testing::AssertionResult within_bound(uint64_t reported, uint64_t exact) {
  if (reported < exact) {
    return ::testing::AssertionFailure() << reported << " is below the exact " << exact;
  }
  long double excess = (long double)(reported - exact);
  if (reported != exact && !(excess < (long double)exact * kHistogramRelativeErrorMax)) {
    return ::testing::AssertionFailure() << reported << " exceeds the exact " << exact << " by "
                                         << excess << ", more than 1/128 of it";
  }
  return ::testing::AssertionSuccess();
}

const double kPercentiles[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};

// Records `values` into a live Histogram and checks every figure of its
// snapshot against the sorted values.
void check_against_exact(std::vector<uint64_t> values) {
  auto h = std::make_unique<Histogram>();
  for (uint64_t v : values) h->record(v);
  auto s = std::make_unique<HistogramSnapshot>(h->snapshot());
  std::sort(values.begin(), values.end());
  ASSERT_EQ(s->count(), values.size());
  EXPECT_EQ(h->count(), values.size());
  EXPECT_EQ(s->min(), values.front());
  EXPECT_EQ(s->max(), values.back());
  unsigned __int128 sum = 0;
  for (uint64_t v : values) sum += v;
  EXPECT_EQ(s->sum(), sum > kU64Max ? kU64Max : uint64_t(sum));
  for (double p : kPercentiles) {
    EXPECT_TRUE(within_bound(s->value_at_percentile(p), exact_percentile(values, p))) << "p" << p;
  }
  EXPECT_EQ(s->value_at_percentile(0), values.front());
  EXPECT_EQ(s->value_at_percentile(100), values.back());
}

TEST(HistogramBuckets, AreContiguousAndCoverEveryValue) {
  EXPECT_EQ(histogram_bucket_lower(0), 0u);
  for (size_t i = 0; i + 1 < kHistogramBuckets; ++i) {
    ASSERT_LE(histogram_bucket_lower(i), histogram_bucket_upper(i)) << i;
    ASSERT_EQ(histogram_bucket_upper(i) + 1, histogram_bucket_lower(i + 1)) << i;
    ASSERT_EQ(histogram_bucket_index(histogram_bucket_lower(i)), i);
    ASSERT_EQ(histogram_bucket_index(histogram_bucket_upper(i)), i);
  }
  EXPECT_EQ(histogram_bucket_upper(kHistogramBuckets - 1), kU64Max);
}

TEST(HistogramBuckets, WidthIsAtMostOne128thOfTheLowerBound) {
  for (size_t i = 0; i < kHistogramBuckets; ++i) {
    uint64_t width = histogram_bucket_upper(i) - histogram_bucket_lower(i) + 1;
    if (i <= kHistogramExactMax) {
      EXPECT_EQ(width, 1u) << i;
    } else {
      EXPECT_LE(width * kHistogramSubBuckets, histogram_bucket_lower(i)) << i;
    }
  }
}

TEST(HistogramBuckets, ValuesAroundPowersOfTwo) {
  for (unsigned e = 0; e < 64; ++e) {
    uint64_t p = uint64_t{1} << e;
    for (uint64_t v : {p - 1, p, p + 1}) {
      size_t i = histogram_bucket_index(v);
      ASSERT_LT(i, kHistogramBuckets);
      EXPECT_LE(histogram_bucket_lower(i), v);
      EXPECT_GE(histogram_bucket_upper(i), v);
    }
  }
}

TEST(HistogramPercentileRank, FollowsTheDefinition) {
  EXPECT_EQ(histogram_percentile_rank(50, 4), 2u);
  EXPECT_EQ(histogram_percentile_rank(50, 5), 3u);
  EXPECT_EQ(histogram_percentile_rank(99.9, 1'000'000), 999'000u);
  EXPECT_EQ(histogram_percentile_rank(99.9, 1'001), 1'000u);
  EXPECT_EQ(histogram_percentile_rank(0, 10), 1u);
  EXPECT_EQ(histogram_percentile_rank(-5, 10), 1u);
  EXPECT_EQ(histogram_percentile_rank(0.0001, 10), 1u);
  EXPECT_EQ(histogram_percentile_rank(100, 10), 10u);
  EXPECT_EQ(histogram_percentile_rank(250, 10), 10u);
  EXPECT_EQ(histogram_percentile_rank(std::nan(""), 10), 1u);
}

TEST(Histogram, EmptyReportsZeros) {
  auto h = std::make_unique<Histogram>();
  HistogramSnapshot s = h->snapshot();
  EXPECT_EQ(s.count(), 0u);
  EXPECT_EQ(s.sum(), 0u);
  EXPECT_EQ(s.min(), 0u);
  EXPECT_EQ(s.max(), 0u);
  EXPECT_EQ(s.mean(), 0.0);
  EXPECT_EQ(s.value_at_percentile(50), 0u);
  EXPECT_EQ(s.value_at_percentile(100), 0u);
}

TEST(Histogram, SmallValuesAreExact) {
  std::vector<uint64_t> values;
  for (uint64_t v = 0; v <= kHistogramExactMax; ++v) values.push_back(v);
  auto h = std::make_unique<Histogram>();
  for (uint64_t v : values) h->record(v);
  HistogramSnapshot s = h->snapshot();
  for (double p : kPercentiles) {
    EXPECT_EQ(s.value_at_percentile(p), exact_percentile(values, p)) << p;
  }
}

TEST(Histogram, Uniform) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<uint64_t> d(0, 1'000'000'000);
  std::vector<uint64_t> v(100'000);
  for (auto& x : v) x = d(rng);
  check_against_exact(v);
}

TEST(Histogram, Exponential) {
  std::mt19937_64 rng(2);
  std::exponential_distribution<double> d(1.0 / 250'000.0);  // mean 250 us in ns
  std::vector<uint64_t> v(100'000);
  for (auto& x : v) x = uint64_t(d(rng));
  check_against_exact(v);
}

TEST(Histogram, Bimodal) {
  // A fast path near 20 us and a slow one near 40 ms (1 in 20): p99 lands on the slow side.
  std::mt19937_64 rng(3);
  std::normal_distribution<double> fast(20'000, 2'000);
  std::normal_distribution<double> slow(40'000'000, 5'000'000);
  std::bernoulli_distribution is_slow(0.05);
  std::vector<uint64_t> v(100'000);
  for (auto& x : v) x = uint64_t(std::max(0.0, is_slow(rng) ? slow(rng) : fast(rng)));
  check_against_exact(v);
}

TEST(Histogram, Constant) {
  check_against_exact(std::vector<uint64_t>(10'000, 123'456'789));
  // Clamped to the max: the bucket's upper bound would overshoot.
  auto h = std::make_unique<Histogram>();
  h->record(1000, 7);
  EXPECT_EQ(h->snapshot().value_at_percentile(50), 1000u);
}

TEST(Histogram, Zeros) {
  check_against_exact(std::vector<uint64_t>(1'000, 0));
  std::vector<uint64_t> mixed(900, 0);
  for (uint64_t i = 1; i <= 100; ++i) mixed.push_back(i * 1'000'003);
  check_against_exact(mixed);
}

TEST(Histogram, HugeValuesNearTwoTo63) {
  std::mt19937_64 rng(4);
  std::uniform_int_distribution<uint64_t> d(kTwo63 - (uint64_t{1} << 50), kTwo63);
  std::vector<uint64_t> v(10'000);
  for (auto& x : v) x = d(rng);
  v.push_back(kTwo63);
  v.push_back(kTwo63 - 1);
  check_against_exact(v);  // the sum saturates: checked there
}

TEST(Histogram, TheWholeUint64Range) {
  std::vector<uint64_t> v = {0, 1, 255, 256, kTwo63, kU64Max - 1, kU64Max};
  std::mt19937_64 rng(5);
  for (int i = 0; i < 1000; ++i) v.push_back(rng() >> (rng() % 64));
  check_against_exact(v);
}

TEST(Histogram, CountsAboveOneEqualRepeatedRecords) {
  std::mt19937_64 rng(6);
  auto weighted = std::make_unique<Histogram>();
  auto repeated = std::make_unique<Histogram>();
  std::vector<uint64_t> expanded;
  for (int i = 0; i < 2'000; ++i) {
    uint64_t v = rng() % 10'000'000;
    uint64_t c = 1 + rng() % 50;
    weighted->record(v, c);
    for (uint64_t k = 0; k < c; ++k) {
      repeated->record(v);
      expanded.push_back(v);
    }
  }
  weighted->record(42, 0);  // a count of 0 changes nothing, min included
  HistogramSnapshot a = weighted->snapshot();
  HistogramSnapshot b = repeated->snapshot();
  ASSERT_EQ(a.count(), expanded.size());
  EXPECT_EQ(a.sum(), b.sum());
  EXPECT_EQ(a.min(), b.min());
  EXPECT_EQ(a.max(), b.max());
  for (size_t i = 0; i < kHistogramBuckets; ++i) ASSERT_EQ(a.bucket_count(i), b.bucket_count(i));
  std::sort(expanded.begin(), expanded.end());
  for (double p : kPercentiles) {
    EXPECT_TRUE(within_bound(a.value_at_percentile(p), exact_percentile(expanded, p))) << p;
  }
}

TEST(Histogram, SumSaturates) {
  auto h = std::make_unique<Histogram>();
  h->record(kU64Max / 2 + 1);
  h->record(kU64Max / 2 + 1);
  EXPECT_EQ(h->snapshot().sum(), kU64Max);
  auto w = std::make_unique<Histogram>();
  w->record(kTwo63, 4);  // v * count overflows
  EXPECT_EQ(w->snapshot().sum(), kU64Max);
  EXPECT_EQ(w->snapshot().count(), 4u);
}

// The acceptance figure: a million values spread over seven decades, every
// reported percentile within the stated bound of the exact one.
TEST(Histogram, MillionRandomValuesWithinBound) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(std::log(200'000.0), 2.0);  // ~200 us median
  std::vector<uint64_t> v(1'000'000);
  for (auto& x : v) x = uint64_t(std::min(d(rng), 1e15));
  auto h = std::make_unique<Histogram>();
  for (uint64_t x : v) h->record(x);
  HistogramSnapshot s = h->snapshot();
  std::sort(v.begin(), v.end());
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) {
    uint64_t exact = exact_percentile(v, p);
    uint64_t got = s.value_at_percentile(p);
    EXPECT_TRUE(within_bound(got, exact)) << "p" << p;
    EXPECT_LT(std::abs(double(got) - double(exact)) / double(exact), 0.008) << "p" << p;
  }
}

TEST(Histogram, MergeEqualsOneHistogramOfAllValues) {
  std::mt19937_64 rng(8);
  constexpr int kShards = 4;
  std::vector<std::unique_ptr<Histogram>> shards;
  for (int i = 0; i < kShards; ++i) shards.push_back(std::make_unique<Histogram>());
  auto all = std::make_unique<Histogram>();
  std::vector<uint64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    int shard = int(rng() % kShards);
    // Each shard has its own scale, so the merge mixes different octaves.
    uint64_t v = (rng() % 100'000) << (4 * shard);
    shards[size_t(shard)]->record(v);
    all->record(v);
    values.push_back(v);
  }
  HistogramSnapshot merged;
  for (const auto& h : shards) h->merge_into(merged);
  HistogramSnapshot merged_snapshots;
  for (const auto& h : shards) merged_snapshots.merge(h->snapshot());
  HistogramSnapshot one = all->snapshot();
  for (const HistogramSnapshot* m : {&merged, &merged_snapshots}) {
    EXPECT_EQ(m->count(), one.count());
    EXPECT_EQ(m->sum(), one.sum());
    EXPECT_EQ(m->min(), one.min());
    EXPECT_EQ(m->max(), one.max());
    for (size_t i = 0; i < kHistogramBuckets; ++i) {
      ASSERT_EQ(m->bucket_count(i), one.bucket_count(i)) << i;
    }
    for (double p : kPercentiles) {
      EXPECT_EQ(m->value_at_percentile(p), one.value_at_percentile(p)) << p;
    }
  }
  std::sort(values.begin(), values.end());
  for (double p : kPercentiles) {
    EXPECT_TRUE(within_bound(merged.value_at_percentile(p), exact_percentile(values, p))) << p;
  }
}

TEST(Histogram, MergeWithAnEmptyOneChangesNothing) {
  auto h = std::make_unique<Histogram>();
  auto empty = std::make_unique<Histogram>();
  h->record(500);
  h->record(70'000);
  HistogramSnapshot s;
  h->merge_into(s);
  empty->merge_into(s);
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.min(), 500u);
  EXPECT_EQ(s.max(), 70'000u);
  s.clear();
  EXPECT_EQ(s.count(), 0u);
  EXPECT_EQ(s.min(), 0u);
  EXPECT_EQ(s.value_at_percentile(99), 0u);
}

// A reader snapshots while the owner records. What the header promises:
// counts only grow from one snapshot to the next; min and max bound every
// value the copied buckets hold; sum covers at least those values; and once
// the writer is done, the snapshot is exact.
TEST(Histogram, ConcurrentReaderSeesConsistentSnapshots) {
  constexpr uint64_t kRecords = 2'000'000;
  auto h = std::make_unique<Histogram>();
  // Odd records shrink the min, even ones grow the max, so both move all the time.
  auto value = [](uint64_t i) -> uint64_t {
    return i % 2 == 0 ? 1'000'000'000 + i * 1'000 : 10'000'000 - i;
  };
  std::atomic<bool> done{false};
  // The writer starts once the reader has taken a snapshot and, halfway,
  // waits for one more, so snapshots overlap the writes whatever the
  // scheduling (it once wrote all 2 M records before the first snapshot).
  std::atomic<int> taken{0};
  auto wait_for = [&](int n) {
    while (taken.load(std::memory_order_acquire) < n) std::this_thread::yield();
  };
  std::thread writer([&] {
    wait_for(1);
    for (uint64_t i = 0; i < kRecords; ++i) {
      if (i == kRecords / 2) wait_for(2);
      h->record(value(i));
    }
    done.store(true, std::memory_order_release);
  });
  auto s = std::make_unique<HistogramSnapshot>();
  uint64_t last_count = 0;
  int snapshots = 0;
  bool stop = false;
  while (!stop) {
    stop = done.load(std::memory_order_acquire);  // one more snapshot after the writer ends
    s->clear();
    h->merge_into(*s);
    ++snapshots;
    taken.store(snapshots, std::memory_order_release);
    ASSERT_GE(s->count(), last_count);
    ASSERT_LE(s->count(), kRecords);
    last_count = s->count();
    if (s->count() == 0) continue;
    unsigned __int128 lower_sum = 0;
    for (size_t i = 0; i < kHistogramBuckets; ++i) {
      uint64_t c = s->bucket_count(i);
      if (c == 0) continue;
      ASSERT_LE(s->min(), histogram_bucket_upper(i)) << "min misses a copied value";
      ASSERT_GE(s->max(), histogram_bucket_lower(i)) << "max misses a copied value";
      lower_sum += (unsigned __int128)c * histogram_bucket_lower(i);
    }
    ASSERT_GE((unsigned __int128)s->sum(), lower_sum) << "sum misses copied values";
    ASSERT_GE(s->value_at_percentile(100), s->value_at_percentile(50));
  }
  writer.join();
  EXPECT_GT(snapshots, 1);
  RecordProperty("snapshots", snapshots);
  EXPECT_EQ(s->count(), kRecords);
  EXPECT_EQ(s->max(), value(kRecords - 2));
  EXPECT_EQ(s->min(), value(kRecords - 1));
  uint64_t sum = 0;
  for (uint64_t i = 0; i < kRecords; ++i) sum += value(i);
  EXPECT_EQ(s->sum(), sum);
}

#ifndef NDEBUG
TEST(HistogramDeathTest, SecondWriterThreadTrapsInDebugBuilds) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        auto h = std::make_unique<Histogram>();
        h->record(1);
        std::thread([&] { h->record(2); }).join();
      },
      "assertion failed");
}
#endif

}  // namespace
}  // namespace sluice
