// The whole engine, in-process: allocations during Engine::run() must not
// grow with the number of events.
//
// Two runs of the same pipeline (generator source, 2 shards, one file sink,
// dead letters to a file): the same 100 products, the same 20 windows, the
// same sink, but the second run has 10x the events (10x the count, a 10x
// smaller step, so event time spans the same windows). Start-up (shards,
// rings, parsers, channels, buffers) and per-window work (gatherer rows,
// recycled tables) are the same in both runs; anything that allocates per
// event, per line or per batch would show up about 10x in the second count.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/clock.h"
#include "core/config.h"
#include "tests/alloc/counting_new.h"
#include "dataflow/engine.h"

namespace sluice {
namespace {

using alloc_test::allocations;

constexpr uint32_t kShards = 2;
constexpr uint32_t kProducts = 100;
constexpr int64_t kWindowNs = 100 * kNsPerS;
constexpr uint64_t kWindows = 20;
constexpr int64_t kSpanNs = int64_t(kWindows) * kWindowNs;  // event time covered by either run
constexpr uint64_t kSmallRunEvents = 200'000;
// 2024-03-28T09:00:00Z: a multiple of the window size, so the span is whole windows.
constexpr int64_t kStartNs = 1'711'616'400 * kNsPerS;

// Allowed growth of the second run's count over the first's, in percent.
// Not every allocation is identical between two runs of a two-thread
// engine: how the result rows of a window arrive at the gatherer (one
// ResultChunk or several, which depends on thread timing) changes how often
// its row vector grows, and the gatherer's deque of complete windows grows
// by a block when the sink falls behind. Those are per-window or per-chunk
// effects worth a few allocations each, far below 5% of the start-up and
// per-window total; a per-event allocation would add ~1.8M here, and even
// one per 64 KiB batch (~1k events) would add thousands.
constexpr uint64_t kSlackPercent = 5;
// Exchange batches are made on first use, up to a pool of
// kEventBatchesPerShard per shard; how many a run makes depends on how far
// the receiving shard falls behind (thread timing), not on the event count:
// seen 170 to 208 allocations for the same small run under `ctest -j`.
constexpr uint64_t kPoolSlack = uint64_t(kShards) * kEventBatchesPerShard;

PipelineConfig make_config(const std::filesystem::path& dir, uint64_t events) {
  PipelineConfig cfg;
  cfg.name = "alloc_test";
  cfg.shards = kShards;

  SourceConfig src;
  src.name = "gen";
  src.type = SourceType::generator;
  src.generator.count = events;
  src.generator.rate = 0;  // as fast as possible
  src.generator.products = kProducts;
  src.generator.customers = 1000;
  src.generator.start_ns = kStartNs;
  src.generator.step_ns = kSpanNs / int64_t(events);
  src.generator.jitter_ns = 0;
  src.generator.seed = 11;
  cfg.sources.push_back(src);

  cfg.schema.key = {"product_id"};
  cfg.schema.time_field = "timestamp";
  cfg.schema.time_format = TimeFormat::rfc3339;
  cfg.schema.fields = {{"customer_id", FieldType::string},
                       {"quantity", FieldType::int64},
                       {"revenue", FieldType::float64}};  // sorted by name

  cfg.window.kind = WindowKind::tumbling;
  cfg.window.size_ns = kWindowNs;
  cfg.window.watermark_delay_ns = 0;

  cfg.aggregates = {{"total_quantity", AggFn::sum, "quantity", 1},
                    {"total_revenue", AggFn::sum, "revenue", 2},
                    {"events", AggFn::count, "", -1}};

  SinkConfig sink;
  sink.name = "out";
  sink.type = SinkType::file;
  sink.path = (dir / "out.ndjson").string();
  sink.format = OutputFormat::ndjson;
  sink.order = RowOrder::key;
  cfg.sinks.push_back(sink);

  cfg.dead_letter.path = (dir / "dead_letter.ndjson").string();
  return cfg;
}

struct RunResult {
  uint64_t allocations = 0;
  uint64_t bytes = 0;
  int exit_code = -1;
  EngineTotals totals;
  uint64_t output_lines = 0;
};

RunResult run_engine(const std::filesystem::path& dir, uint64_t events) {
  RunResult r;
  Engine engine(make_config(dir, events));
  auto prepared = engine.prepare();
  EXPECT_TRUE(prepared.has_value()) << (prepared ? "" : prepared.error());
  if (!prepared) return r;
  uint64_t a0 = allocations(), b0 = alloc_test::allocated_bytes();
  {
    alloc_test::AllocTraceScope trace;
    r.exit_code = engine.run();
  }
  r.allocations = allocations() - a0;
  r.bytes = alloc_test::allocated_bytes() - b0;
  r.totals = engine.totals();
  std::ifstream out(dir / "out.ndjson");
  for (std::string line; std::getline(out, line);) ++r.output_lines;
  return r;
}

TEST(EngineAlloc, AllocationsDoNotGrowWithEvents) {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("sluice_alloc_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  const uint64_t small_events = kSmallRunEvents;
  const uint64_t large_events = kSmallRunEvents * 10;
  RunResult small = run_engine(dir, small_events);
  RunResult large = run_engine(dir, large_events);

  std::printf("engine run(): %llu events -> %llu allocations (%llu bytes); "
              "%llu events -> %llu allocations (%llu bytes)\n",
              static_cast<unsigned long long>(small_events), static_cast<unsigned long long>(small.allocations),
              static_cast<unsigned long long>(small.bytes), static_cast<unsigned long long>(large_events),
              static_cast<unsigned long long>(large.allocations), static_cast<unsigned long long>(large.bytes));

  for (const RunResult* r : {&small, &large}) {
    EXPECT_EQ(r->exit_code, 0);
    // Each shard fires its own table of every window (100 keys hash to both shards).
    EXPECT_EQ(r->totals.sum.windows_fired, kShards * kWindows);
    EXPECT_EQ(r->totals.sum.rows_out, kWindows * kProducts);
    EXPECT_EQ(r->output_lines, kWindows * kProducts);
    for (uint64_t d : r->totals.sum.dead_letters) EXPECT_EQ(d, 0u);
  }
  EXPECT_EQ(small.totals.sum.events_in, small_events);
  EXPECT_EQ(large.totals.sum.events_in, large_events);

  EXPECT_LE(large.allocations, small.allocations + small.allocations * kSlackPercent / 100 + kPoolSlack)
      << "allocations grow with the number of events (rerun with SLUICE_ALLOC_TRACE=20 to see where)";

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace sluice
