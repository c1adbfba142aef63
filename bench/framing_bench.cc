// NDJSON framing: byte chunks -> lines.
//
// Workload: sales lines from the engine's generator (112 bytes on average),
// 16 MiB of them, fed in 64 KiB chunks (the engine's receive-buffer and
// generator-chunk size), so about one line in 600 is split across two
// chunks and goes through the carry path. The handler only counts lines and
// their bytes.
//
//   BM_LineFramer        operators/framing.h LineFramer::feed
//   BM_MemchrBaseline    std::memchr line splitting over the same chunks, with
//                        a std::string carry for lines split across chunks
//                        (no line limit, no CR stripping, no back-pressure)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "bench/bench_data.h"
#include "operators/framing.h"

namespace sluice::bench {
namespace {

constexpr size_t kChunkBytes = 64 * 1024;
// 150k lines, 16 MiB of text: far beyond L2 (it does fit a 32 MiB L3).
constexpr uint64_t kLines = 150'000;
constexpr uint32_t kLineBytesMax = 1u << 20;  // limits::line_bytes_max_default

const NdjsonText& text() {
  static const NdjsonText t = sales_ndjson(kLines);
  return t;
}

void BM_LineFramer(benchmark::State& state) {
  const NdjsonText& t = text();
  LineFramer framer(kLineBytesMax);
  uint64_t lines = 0, line_bytes = 0;
  for (auto _ : state) {
    for (size_t off = 0; off < t.size; off += kChunkBytes) {
      size_t len = std::min(kChunkBytes, t.size - off);
      framer.feed(t.data() + off, len, [&](const Line& line) {
        ++lines;
        line_bytes += line.text.size();
        return true;
      });
    }
  }
  benchmark::DoNotOptimize(lines);
  benchmark::DoNotOptimize(line_bytes);
  state.SetBytesProcessed(int64_t(state.iterations() * t.size));
  state.counters["lines"] = benchmark::Counter(double(state.iterations() * t.lines),
                                               benchmark::Counter::kIsRate);
}

void BM_MemchrBaseline(benchmark::State& state) {
  const NdjsonText& t = text();
  std::string carry;
  carry.reserve(kLineBytesMax);
  uint64_t lines = 0, line_bytes = 0;
  auto on_line = [&](const char*, size_t n) {
    if (n == 0) return;
    ++lines;
    line_bytes += n;
  };
  for (auto _ : state) {
    for (size_t off = 0; off < t.size; off += kChunkBytes) {
      const char* p = t.data() + off;
      const char* end = p + std::min(kChunkBytes, t.size - off);
      while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
        if (nl == nullptr) {
          carry.append(p, size_t(end - p));
          break;
        }
        if (!carry.empty()) {
          carry.append(p, size_t(nl - p));
          on_line(carry.data(), carry.size());
          carry.clear();
        } else {
          on_line(p, size_t(nl - p));
        }
        p = nl + 1;
      }
    }
  }
  benchmark::DoNotOptimize(lines);
  benchmark::DoNotOptimize(line_bytes);
  state.SetBytesProcessed(int64_t(state.iterations() * t.size));
  state.counters["lines"] = benchmark::Counter(double(state.iterations() * t.lines),
                                               benchmark::Counter::kIsRate);
}

BENCHMARK(BM_LineFramer);
BENCHMARK(BM_MemchrBaseline);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
