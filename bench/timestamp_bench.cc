// RFC 3339 text -> int64 nanoseconds since the epoch.
//
// Workload: 4096 distinct UTC timestamps as the generator writes them
// ("2024-03-28T09:00:00.005Z": milliseconds when not a whole second), over
// about a year, parsed in a loop. Every baseline is checked against
// parse_rfc3339 on the whole corpus before timing.
//
//   BM_ParseRfc3339          core/timestamp.h parse_rfc3339
//   BM_SscanfTimegmBaseline  sscanf of the fields, the fraction by hand, timegm
//   BM_StrptimeTimegmBaseline strptime("%Y-%m-%dT%H:%M:%S"), the fraction by hand, timegm
//
// (std::chrono::parse would be the modern baseline; GCC 12's libstdc++ does
// not have it.) The baselines accept only the `Z` form the corpus uses;
// parse_rfc3339 also checks ranges and accepts offsets.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "bench/bench_data.h"
#include "core/timestamp.h"

namespace sluice::bench {
namespace {

constexpr size_t kTimestamps = 4096;

const std::vector<std::string>& corpus() {
  static const std::vector<std::string> c = [] {
    std::vector<std::string> v;
    uint64_t rng = 3;
    char buf[kRfc3339BytesMax];
    for (size_t i = 0; i < kTimestamps; ++i) {
      // Whole milliseconds within a year of the start, one in eight a whole second.
      int64_t ms = int64_t(splitmix64(rng) % (365LL * 86400 * 1000));
      if (i % 8 == 0) ms -= ms % 1000;
      v.emplace_back(buf, format_rfc3339(kStartNs + ms * kNsPerMs, buf));
    }
    return v;
  }();
  return c;
}

// Digits after the seconds: "[.ddd…]Z". Returns false on anything else.
bool fraction_and_z(const char* p, int64_t& frac_ns) {
  frac_ns = 0;
  if (*p == '.') {
    ++p;
    int64_t scale = 100'000'000;
    while (*p >= '0' && *p <= '9') {
      frac_ns += (*p - '0') * scale;
      scale /= 10;
      ++p;
    }
  }
  return p[0] == 'Z' && p[1] == '\0';
}

bool sscanf_timegm(const std::string& s, int64_t& out_ns) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return false;
  }
  int64_t frac;
  if (!fraction_and_z(s.c_str() + consumed, frac)) return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  out_ns = int64_t(timegm(&tm)) * kNsPerS + frac;
  return true;
}

bool strptime_timegm(const std::string& s, int64_t& out_ns) {
  std::tm tm{};
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  int64_t frac;
  if (rest == nullptr || !fraction_and_z(rest, frac)) return false;
  out_ns = int64_t(timegm(&tm)) * kNsPerS + frac;
  return true;
}

template <typename Parse>
void run(benchmark::State& state, Parse&& parse) {
  const std::vector<std::string>& c = corpus();
  for (const std::string& s : c) {
    int64_t want = 0, got = 0;
    if (parse_rfc3339(s, want) != TimestampError::ok || !parse(s, got) || got != want) {
      state.SkipWithError(("parsers disagree on " + s).c_str());
      return;
    }
  }
  int64_t sum = 0;
  for (auto _ : state) {
    for (const std::string& s : c) {
      int64_t ns = 0;
      parse(s, ns);
      sum += ns;
    }
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(int64_t(state.iterations() * c.size()));
}

void BM_ParseRfc3339(benchmark::State& state) {
  run(state, [](const std::string& s, int64_t& ns) { return parse_rfc3339(s, ns) == TimestampError::ok; });
}
void BM_SscanfTimegmBaseline(benchmark::State& state) { run(state, sscanf_timegm); }
void BM_StrptimeTimegmBaseline(benchmark::State& state) { run(state, strptime_timegm); }

BENCHMARK(BM_ParseRfc3339);
BENCHMARK(BM_SscanfTimegmBaseline);
BENCHMARK(BM_StrptimeTimegmBaseline);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
