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
#include "core/metrics.h"
#include "operators/aggregate.h"
#include "operators/dead_letter.h"
#include "tools/sluice/batch.h"

namespace sluice {

class Shard;

// What one shard measures about itself. Written only by that shard (each
// metric is a single-writer relaxed atomic), read by the metrics endpoint and
// the exit summary from any thread. Owned by the engine, so the registry can
// point at it for the whole run.
struct SourceMetrics {
  Counter lines_in;           // non-empty lines / records read
  Counter bytes_in;
  Gauge watermark;            // ns since the epoch: min over this source's active streams here
  Gauge watermark_lag;        // wall clock minus that watermark, ns
};

struct SinkMetrics {
  Counter rows_out;
  Counter bytes_out;
  Gauge buffer_bytes;         // encoded, not yet written
};

struct ShardMetrics {
  Counter events_in;          // events applied to a window table (by the owner)
  Counter lines_in;           // non-empty lines read (by the reader)
  Counter bytes_in;           // bytes read from sources
  std::array<Counter, kDeadLetterReasons> dead_letters;
  Counter partial_line_bytes;
  Counter dead_letters_lost;  // produced but not written: the dead-letter output failed
  Counter connections;        // TCP connections accepted (handed to this shard)
  Counter connections_refused;
  Counter windows_fired;
  Counter rows_out;           // rows written to sinks (gatherer, shard 0)
  Counter batches_sent;
  Counter backpressure_stalls;
  Counter ring_submissions;
  Counter ring_completions;
  Gauge open_windows;
  Gauge window_entries;       // (window, key) entries held
  // Bytes received -> event applied to its window table.
  LatencyHistogram ingest_latency;
  // Shard 0 (gatherer): window fired -> its rows written; and freshness:
  // window end + watermark_delay (wall clock) -> its rows written.
  LatencyHistogram emit_latency;
  LatencyHistogram freshness;
  std::vector<std::unique_ptr<SourceMetrics>> sources;  // by source index
  std::vector<std::unique_ptr<SinkMetrics>> sinks;      // by sink index (shard 0)
  std::vector<std::unique_ptr<Gauge>> channel_depth;    // batches queued to each shard
};

// A plain snapshot of counters, summed over shards after the run.
struct ShardCounters {
  uint64_t events_in = 0;       // events applied to a window table (by the owner)
  uint64_t lines_in = 0;        // non-empty lines read (by the reader)
  uint64_t bytes_in = 0;        // bytes read from sources
  std::array<uint64_t, kDeadLetterReasons> dead_letters{};
  uint64_t partial_line_bytes = 0;
  uint64_t dead_letters_lost = 0;
  uint64_t connections = 0;     // TCP connections accepted (handed to this shard)
  uint64_t connections_refused = 0;
  uint64_t windows_fired = 0;
  uint64_t rows_out = 0;        // rows written to sinks (gatherer)
  uint64_t batches_sent = 0;
  uint64_t backpressure_stalls = 0;
  uint64_t ring_submissions = 0;
  uint64_t ring_completions = 0;
};

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

ShardCounters snapshot(const ShardMetrics& m);

// State shared by all shards. Written at start-up, then read-only, except the atomics.
struct EngineShared {
  PipelineConfig config;
  uint32_t shards = 1;
  std::vector<int> cpus;            // cpu of each shard
  std::unique_ptr<AggLayout> layout;

  // data[src * shards + dst], src != dst
  std::vector<std::unique_ptr<SpscChannel<EventBatch>>> data;
  // results[src] : src -> shard 0 (index 0 unused)
  std::vector<std::unique_ptr<SpscChannel<ResultChunk>>> results;
  // accepted connections, shard 0 -> shard dst: (source index << 32) | fd
  std::vector<std::unique_ptr<moodycamel::ReaderWriterQueue<uint64_t>>> accepted;

  // Listeners, by source index (-1 for non-TCP sources).
  std::vector<int> listen_fds;
  std::vector<std::string> listen_addresses;
  // Which shard reads each file / generator source.
  std::vector<uint32_t> source_shard;
  std::vector<int> sink_fds;
  int dead_letter_fd = 2;
  int signal_fd = -1;

  std::vector<Shard*> shard_ptrs;
  std::vector<std::unique_ptr<ShardMetrics>> metrics;  // by shard
  MetricsRegistry registry;
  int metrics_fd = -1;               // [metrics] listener (shard 0)
  std::string metrics_address;

  // Largest watermark up to which any shard has fired windows: the floor of a
  // source that joins (or returns from idle) later.
  std::atomic<int64_t> fired_max{kTimeMin};
  // Benchmark mode: sources are read and framed, and each event is counted,
  // but not decoded, aggregated or written (measures the transport alone).
  bool consume_only = false;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> exit_now{false};     // the gatherer has written everything: shards may leave
  std::atomic<int> exit_code{0};
  int64_t start_mono_ns = 0;
  int64_t start_wall_ns = 0;

  EventBatch* nothing = nullptr;
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
  const std::vector<std::string>& listen_addresses() const { return shared_.listen_addresses; }
  const EngineTotals& totals() const { return totals_; }
  // After prepare(): the number of shards and the CPU each is pinned to.
  uint32_t shards() const { return shared_.shards; }
  const std::vector<int>& cpus() const { return shared_.cpus; }
  // "host:port" of the metrics endpoint, empty without [metrics].
  const std::string& metrics_address() const { return shared_.metrics_address; }

  void set_consume_only(bool on) { shared_.consume_only = on; }

  // Blocks SIGINT/SIGTERM in the calling thread (and the threads it starts)
  // and routes them to shard 0 through a signalfd. Call before run().
  bool handle_signals();

 private:
  EngineShared shared_;
  std::vector<std::unique_ptr<Shard>> shards_;
  EngineTotals totals_;
};

}  // namespace sluice
