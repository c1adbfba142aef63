// Key routing: the encoded key of an event -> the shard that owns it.
//   XXH3_64bits over the key bytes, then Lemire's multiply-shift (what
//   Shard::route does), beside a baseline of std::hash<std::string_view> and
//   the modulo operator. Keys are encoded as the decoder does (operators/event.h):
//   integer product ids and string customer ids.
#include <benchmark/benchmark.h>
#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "operators/event.h"

namespace {

using sluice::kKeyInt;
using sluice::kKeyString;

std::vector<std::string> make_keys(bool strings, size_t n) {
  std::vector<std::string> keys;
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < n; ++i) {
    std::string k;
    if (strings) {
      std::string value = "c" + std::to_string(rng() % 1'000'000);
      uint32_t len = uint32_t(value.size());
      k.push_back(kKeyString);
      k.append(reinterpret_cast<const char*>(&len), 4);
      k += value;
    } else {
      int64_t v = int64_t(rng() % 100'000);
      k.push_back(kKeyInt);
      k.append(reinterpret_cast<const char*>(&v), 8);
    }
    keys.push_back(std::move(k));
  }
  return keys;
}

constexpr uint32_t kShards = 2;

void BM_Xxh3MultiplyShift(benchmark::State& state) {
  const auto keys = make_keys(state.range(0) != 0, 4096);
  uint64_t sink = 0;
  for (auto _ : state) {
    for (const std::string& k : keys) {
      uint64_t h = XXH3_64bits(k.data(), k.size());
      sink += uint32_t((static_cast<unsigned __int128>(h) * kShards) >> 64);
    }
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(keys.size()));
}

void BM_StdHashModuloBaseline(benchmark::State& state) {
  const auto keys = make_keys(state.range(0) != 0, 4096);
  uint64_t sink = 0;
  std::hash<std::string_view> hasher;
  for (auto _ : state) {
    for (const std::string& k : keys) {
      sink += hasher(std::string_view(k)) % kShards;
    }
  }
  benchmark::DoNotOptimize(sink);
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(keys.size()));
}

}  // namespace

// Argument: 0 = integer keys (9 bytes), 1 = string keys (~12 bytes).
BENCHMARK(BM_Xxh3MultiplyShift)->Arg(0)->Arg(1);
BENCHMARK(BM_StdHashModuloBaseline)->Arg(0)->Arg(1);
BENCHMARK_MAIN();
