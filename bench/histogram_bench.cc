// Recording a latency sample, the per-event cost of self-measurement.
//
// Workload: 64 Ki latencies drawn before timing from a log-normal with a
// median of 50 us and a spread over about six decades (1 us .. 1 s), as
// ingest and fire latencies look; the timed loop records them in turn. One
// iteration = one sample, so the reported time is ns per record.
//
//   BM_HistogramRecord             core/histogram.h Histogram::record (the owner's path)
//   BM_LatencyHistogramRecord      core/metrics.h LatencyHistogram::record, the same call
//                                  through the metrics type
//   BM_HistogramRecordSameValue    one value over and over: every record hits one bucket,
//                                  so each waits for the previous one's store
//   BM_VectorPushBackBaseline      std::vector<uint64_t>::push_back of the sample into a
//                                  reserved vector, cleared when full: keeping raw samples
//                                  to sort later, the exact but unbounded approach
//   BM_AtomicFetchAddBaseline      std::atomic<uint64_t>::fetch_add(sample): the naive
//                                  thread-safe sum, one locked instruction per sample
//   BM_CounterAdd                  core/metrics.h Counter::add (plain load + store)
//
// And the reader's side, for scale (per call, not per sample):
//   BM_HistogramSnapshot           Histogram::snapshot (copies 7424 buckets)
//   BM_SnapshotValueAtPercentile   HistogramSnapshot::value_at_percentile(99.9)
#include <benchmark/benchmark.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/histogram.h"
#include "core/metrics.h"

namespace sluice::bench {
namespace {

constexpr size_t kSamples = 64 * 1024;  // a power of two: the loop masks the index

uint64_t splitmix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

const std::vector<uint64_t>& samples() {
  static const std::vector<uint64_t> s = [] {
    std::vector<uint64_t> v(kSamples);
    uint64_t rng = 11;
    for (uint64_t& x : v) {
      // Box-Muller normal -> log-normal, median 50 us, sigma 2 (e-folds).
      double u1 = (double(splitmix(rng) >> 11) + 0.5) / double(uint64_t{1} << 53);
      double u2 = double(splitmix(rng) >> 11) / double(uint64_t{1} << 53);
      double z = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
      x = uint64_t(std::exp(std::log(50'000.0) + 2.0 * z));
    }
    return v;
  }();
  return s;
}

template <typename H>
void record_loop(benchmark::State& state, H& h) {
  const std::vector<uint64_t>& s = samples();
  size_t i = 0;
  for (auto _ : state) {
    h.record(s[i++ & (kSamples - 1)]);
  }
  benchmark::DoNotOptimize(h.count());
  state.SetItemsProcessed(int64_t(state.iterations()));
}

void BM_HistogramRecord(benchmark::State& state) {
  auto h = std::make_unique<Histogram>();
  record_loop(state, *h);
}
BENCHMARK(BM_HistogramRecord);

void BM_LatencyHistogramRecord(benchmark::State& state) {
  auto h = std::make_unique<LatencyHistogram>();
  record_loop(state, *h);
}
BENCHMARK(BM_LatencyHistogramRecord);

void BM_HistogramRecordSameValue(benchmark::State& state) {
  auto h = std::make_unique<Histogram>();
  uint64_t v = 50'000;
  for (auto _ : state) {
    benchmark::DoNotOptimize(v);
    h->record(v);
  }
  benchmark::DoNotOptimize(h->count());
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_HistogramRecordSameValue);

void BM_VectorPushBackBaseline(benchmark::State& state) {
  const std::vector<uint64_t>& s = samples();
  std::vector<uint64_t> kept;
  kept.reserve(kSamples);
  size_t i = 0;
  for (auto _ : state) {
    if (kept.size() == kSamples) kept.clear();  // keeps capacity: no allocation when timed
    kept.push_back(s[i++ & (kSamples - 1)]);
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(kept.data());
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_VectorPushBackBaseline);

void BM_AtomicFetchAddBaseline(benchmark::State& state) {
  const std::vector<uint64_t>& s = samples();
  std::atomic<uint64_t> sum{0};
  size_t i = 0;
  for (auto _ : state) {
    sum.fetch_add(s[i++ & (kSamples - 1)], std::memory_order_relaxed);
  }
  benchmark::DoNotOptimize(sum.load());
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_AtomicFetchAddBaseline);

void BM_CounterAdd(benchmark::State& state) {
  const std::vector<uint64_t>& s = samples();
  Counter c;
  size_t i = 0;
  for (auto _ : state) {
    c.add(s[i++ & (kSamples - 1)]);
  }
  benchmark::DoNotOptimize(c.value());
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_CounterAdd);

void BM_HistogramSnapshot(benchmark::State& state) {
  auto h = std::make_unique<Histogram>();
  for (uint64_t v : samples()) h->record(v);
  auto snap = std::make_unique<HistogramSnapshot>();
  for (auto _ : state) {
    snap->clear();
    h->merge_into(*snap);
    benchmark::DoNotOptimize(snap->count());
  }
}
BENCHMARK(BM_HistogramSnapshot);

void BM_SnapshotValueAtPercentile(benchmark::State& state) {
  auto h = std::make_unique<Histogram>();
  for (uint64_t v : samples()) h->record(v);
  auto snap = std::make_unique<HistogramSnapshot>(h->snapshot());
  for (auto _ : state) {
    benchmark::DoNotOptimize(snap->value_at_percentile(99.9));
  }
}
BENCHMARK(BM_SnapshotValueAtPercentile);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
