// The engine: builds the shards, channels, listeners and outputs for one
// pipeline, runs them, and reports what happened.
//
// Threads: run() starts one thread per shard (pinned) and waits for them.
// request_stop() may be called from any thread. Everything else is start-up
// or after-run code on the caller's thread.
#pragma once

#include <readerwriterqueue/readerwriterqueue.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <vector>

#include "core/channel.h"
#include "core/config_model.h"
#include "core/memory_budget.h"
#include "core/metrics.h"
#include "io/shard_metrics.h"
#include "io/sink.h"
#include "io/source.h"
#include "operators/aggregate.h"
#include "operators/dead_letter.h"
#include "dataflow/batch.h"

namespace sluice {

class Shard;

struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
};

struct EngineTotals {
  ShardCounters sum;
  std::vector<ShardCounters> per_shard;
  double seconds = 0;
  LatencySummary ingest, emit, freshness;
  // Outputs that failed during the run, each with what was and was not written.
  std::vector<std::string> failures;
};

// The memory a pipeline's fixed structures may occupy, whatever its data:
// per shard the receive buffers, the exchange batches, the result chunks,
// the dead-letter buffers, the decoder, the file / generator / Kafka
// buffers; once, the sink buffers. (Window state, the gatherer's rows and
// TCP line buffers come on top: they grow with the data, the last within
// connection_buffer_bytes_max.) The decoder's share is an estimate.
struct FixedMemory {
  uint64_t per_shard = 0;  // the largest share of one shard
  uint64_t total = 0;
  std::string describe() const;  // "1.2 GiB (34.0 MiB per shard)"
};
FixedMemory estimate_fixed_memory(const PipelineConfig& config, uint32_t shards);
// The shard that reads each source placed on one shard (files not split,
// generators), by source index: spread round-robin.
std::vector<uint32_t> place_sources(const PipelineConfig& config, uint32_t shards);
// Every source ends by itself (SourceKind::finite).
bool all_sources_finite(const PipelineConfig& config);
// Shards a pipeline runs with: config.shards, or one per CPU of the affinity mask.
uint32_t effective_shards(const PipelineConfig& config);
// The fixed-memory budget: config.fixed_memory_bytes_max, or half of the machine's memory.
uint64_t fixed_memory_budget(const PipelineConfig& config);
// An error when the fixed memory of `shards` shards is over the budget.
std::expected<FixedMemory, std::string> check_fixed_memory(const PipelineConfig& config, uint32_t shards);

// What crosses between shards: the channels and the pools their batches come
// from. Each channel end is used by one shard only.
struct Exchange {
  // data[src * shards + dst], src != dst; their batches come from pools[src].
  std::vector<std::unique_ptr<SpscChannel<EventBatch>>> data;
  std::vector<std::unique_ptr<ItemPool<EventBatch>>> pools;
  // results[src] : src -> shard 0 (index 0 unused)
  std::vector<std::unique_ptr<SpscChannel<ResultChunk>>> results;
  // accepted connections, shard 0 -> shard dst: (source index << 32) | fd
  std::vector<std::unique_ptr<moodycamel::ReaderWriterQueue<uint64_t>>> accepted;
};

// The run's state every shard reads and some write: a few atomics (each with
// its one writer or a CAS), and the start times.
struct RunControl {
  // Largest watermark up to which any shard has fired windows: the floor of a
  // source that joins (or returns from idle) later.
  std::atomic<int64_t> fired_max{kTimeMin};
  // The sinks are behind (more than pending_bytes_max waits for one): no
  // window fires and every shard stops reading its sources until it clears.
  // Written by shard 0 (the gatherer), read by every shard each iteration.
  std::atomic<bool> outputs_backlogged{false};
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> exit_now{false};     // the gatherer has written everything: shards may leave
  std::atomic<int> exit_code{0};
  // Benchmark mode: sources are read and framed, and each event is counted,
  // but not decoded, aggregated or written (measures the transport alone).
  bool consume_only = false;
  int64_t start_mono_ns = 0;
  int64_t start_wall_ns = 0;
};

// What the engine opened before the shards start (errors are reported there),
// closed after they end.
struct Resources {
  // What each source's kind opened at start-up (a listener), by source index.
  std::vector<SourceResource> sources;
  std::vector<std::string> listen_addresses;  // "" for sources that do not listen
  // Which shard reads each source placed on one shard (files, generators).
  std::vector<uint32_t> source_shard;
  std::vector<SinkResource> sinks;  // by sink index, opened by each sink's kind
  int dead_letter_fd = 2;
  int signal_fd = -1;
  int metrics_fd = -1;  // [metrics] listener (shard 0)
  std::string metrics_address;
  // Line buffers of all TCP connections (connection_buffer_bytes_max).
  std::unique_ptr<MemoryBudget> connection_buffers;
};

// What the shards measure, and the registry that names it for /metrics.
struct Telemetry {
  std::vector<std::unique_ptr<ShardMetrics>> metrics;  // by shard
  MetricsRegistry registry;
};

// State shared by all shards, in named parts. Written at start-up, then
// read-only, except RunControl's atomics.
struct EngineShared {
  PipelineConfig config;
  uint32_t shards = 1;
  std::vector<int> cpus;  // cpu of each shard
  FixedMemory fixed_memory;
  std::unique_ptr<AggLayout> layout;
  Exchange exchange;
  RunControl control;
  Resources resources;
  Telemetry telemetry;
  std::vector<Shard*> shard_ptrs;  // to wake them
};

class Engine {
 public:
  explicit Engine(PipelineConfig config);
  ~Engine();

  // Opens listeners, input files and outputs. Errors are for the user and
  // name what failed (a port in use, a missing file).
  std::expected<void, std::string> prepare();
  // Runs the pipeline to its end; returns the process exit code.
  int run();
  // Asks the pipeline to stop reading, flush every open window and exit.
  void request_stop();
  // Listen addresses actually bound, by source index ("" for non-TCP sources).
  const std::vector<std::string>& listen_addresses() const { return shared_.resources.listen_addresses; }
  const EngineTotals& totals() const { return totals_; }
  // After prepare(): the number of shards and the CPU each is pinned to.
  uint32_t shards() const { return shared_.shards; }
  const FixedMemory& fixed_memory() const { return shared_.fixed_memory; }
  const std::vector<int>& cpus() const { return shared_.cpus; }
  // "host:port" of the metrics endpoint, empty without [metrics].
  const std::string& metrics_address() const { return shared_.resources.metrics_address; }

  void set_consume_only(bool on) { shared_.control.consume_only = on; }

  // Blocks SIGINT/SIGTERM in the calling thread (and the threads it starts)
  // and routes them to shard 0 through a signalfd. Call before run().
  bool handle_signals();

 private:
  EngineShared shared_;
  std::vector<std::unique_ptr<Shard>> shards_;
  EngineTotals totals_;
};

}  // namespace sluice
