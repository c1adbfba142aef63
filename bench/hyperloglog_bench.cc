// approx_count_distinct's sketch: what one (window, key) costs in memory and
// per value, at 1, 10, 100, 1 k and 10 k distinct values.
//
// Workload: `n` distinct customer ids ("c0000042"), hashed before timing;
// one iteration builds a fresh sketch from them (so the time includes the
// sketch's allocation and growth) and reads its estimate once. Counters:
//   bytes_per_entry   the entry's two inline slots + the sketch's heap block
//   ns_per_value      time per added value
//
//   BM_Sketch        operators/hyperloglog.h at p = 14: sparse (4-byte pairs, grown by
//                    doubling) until 768 registers are set, then dense (12 KiB, 6-bit
//                    registers packed as Redis packs them)
//   BM_DenseBaseline the textbook sketch: 16384 one-byte registers allocated up front,
//                    the classic estimate (harmonic mean, linear counting when small)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "operators/hyperloglog.h"

namespace sluice::bench {
namespace {

constexpr uint32_t kP = 14;
constexpr size_t kInlineBytes = 16;  // the aggregate's two 8-byte slots in the entry

std::vector<uint64_t> hashes(size_t n) {
  std::vector<uint64_t> h;
  for (size_t i = 0; i < n; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "c%07zu", i * 7919 % 10'000'000);
    h.push_back(hll::hash_bytes(id));
  }
  return h;
}

void BM_Sketch(benchmark::State& state) {
  const std::vector<uint64_t> h = hashes(size_t(state.range(0)));
  size_t bytes = 0;
  for (auto _ : state) {
    hll::Sketch* s = hll::create(kP);
    for (uint64_t x : h) hll::add(s, x);
    benchmark::DoNotOptimize(hll::count(s));
    bytes = hll::heap_bytes(s);
    hll::destroy(s);
  }
  state.counters["bytes_per_entry"] = double(kInlineBytes + bytes);
  state.counters["ns_per_value"] =
      benchmark::Counter(double(state.iterations()) * double(h.size()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_DenseBaseline(benchmark::State& state) {
  const std::vector<uint64_t> h = hashes(size_t(state.range(0)));
  constexpr uint32_t m = 1u << kP;
  for (auto _ : state) {
    std::vector<uint8_t> regs(m, 0);
    for (uint64_t x : h) {
      const hll::Slot s = hll::slot_of(x, kP);
      if (s.rank > regs[s.index]) regs[s.index] = s.rank;
    }
    double sum = 0;
    uint32_t zeros = 0;
    for (uint8_t r : regs) {
      sum += std::ldexp(1.0, -int(r));
      zeros += r == 0;
    }
    double e = 0.7213 / (1 + 1.079 / m) * m * m / sum;
    if (e <= 2.5 * m && zeros != 0) e = m * std::log(double(m) / zeros);
    benchmark::DoNotOptimize(e);
  }
  state.counters["bytes_per_entry"] = double(kInlineBytes + m);
  state.counters["ns_per_value"] =
      benchmark::Counter(double(state.iterations()) * double(h.size()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_Sketch)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);
BENCHMARK(BM_DenseBaseline)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
