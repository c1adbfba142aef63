// The Sink seam: how an output (a file, stdout; later Redis, PostgreSQL,
// Kafka, Parquet/Delta) plugs into the pipeline without the gatherer knowing
// it.
//
// The gatherer (dataflow/) decides when a window is complete (every shard has
// fired through its end) and hands complete windows to every sink in window
// order, row by row, as the sink takes them. A sink encodes and writes them
// its own way, with its own flush policy, and says what still waits for it
// (bounded by its pending_bytes_max: past it, the gatherer stops firing and
// the sources pause). It reports completed writes (rows out, latency of each
// window) and failures through SinkHost.
//
// Checkpoints (the durable-pipeline issue) drive the position hooks: a
// sink's position is what it has durably written; pre_commit() at a barrier
// makes the output up to its position durable; commit() runs once the
// checkpoint is complete; recover() puts the output back at a checkpointed
// position (a file is truncated; a transactional sink re-commits or
// discards).
//
// Adding a kind of sink: one file in io/sinks/ that implements Sink and
// defines a SinkKind, plus its line in io/sinks/sinks.cc.
//
// Threads: sinks run on the gatherer's shard (shard 0) and are touched only
// by its thread. (A sink that must not stall shard 0, such as Parquet
// encoding or PostgreSQL, will say so through SinkKind and run on a shard of
// its own; not needed by the file sink.)
#pragma once

#include <cstdint>
#include <vector>
#include <expected>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/config_kinds.h"
#include "core/config_model.h"
#include "core/reactor.h"
#include "io/shard_metrics.h"
#include "operators/result_row.h"

namespace sluice {

// One complete window's result rows (operators/result_row.h), in the order
// the sink gets them (sorted by key when a sink asked for it).
struct SinkWindow {
  int64_t start = 0;
  int64_t end = 0;
  int64_t fire_ns = kTimeMax;  // monotonic: when its first shard fired it
  const char* rows = nullptr;
  const uint32_t* offsets = nullptr;  // of each row in rows
  size_t count = 0;
  size_t aggregates = 0;
  size_t states = 0;  // exported states per row (exported_states(config))

  ResultRowView row(size_t i) const { return ResultRowView::parse(rows + offsets[i], aggregates, states); }
};

// What a sink needs from the pipeline that runs it (implemented by the
// dataflow's gatherer).
class SinkHost {
 public:
  virtual ~SinkHost() = default;
  virtual Reactor& reactor() = 0;
  virtual const PipelineConfig& config() const = 0;
  // A window's rows are all written: its emit latency (fire_ns, monotonic)
  // and freshness (window end + watermark delay, wall clock) are recorded.
  virtual void window_written(int64_t fire_ns, int64_t window_end_ns) = 0;
  // More rows were written (rows out is the minimum over sinks).
  virtual void rows_written() = 0;
  // The sink failed for good (logged by it): the pipeline stops, exit status 1.
  virtual void sink_failed() = 0;
};

// What a sink's kind opens at start-up, before any shard runs (so `run`
// reports an unwritable path before reading anything): a file descriptor.
struct SinkResource {
  int fd = -1;
  bool owned = false;  // closed by the engine after the run
};

class Sink {
 public:
  virtual ~Sink() = default;

  // Rows must come sorted by key within each window.
  virtual bool wants_key_order() const { return false; }
  // Takes rows [from, w.count) of w while it has room; returns how many it
  // took (fewer: its buffers are full; the gatherer offers the rest later).
  // A failed sink takes (and counts as lost) every row.
  virtual size_t take(const SinkWindow& w, size_t from, int64_t now_ns) = 0;
  // Every row of w has been taken.
  virtual void window_taken(const SinkWindow& w) = 0;
  // Starts the writes its flush policy says are due. stuck: rows wait that
  // it had no room for; final: nothing more will come. True if it did anything.
  virtual bool flush(int64_t now_ns, bool stuck, bool final) = 0;
  // The earliest monotonic time a buffered flush falls due, or kTimeMax.
  virtual int64_t next_deadline() const { return kTimeMax; }

  // Bytes taken and not yet written (its part of what waits for it).
  virtual uint64_t unwritten_bytes() const = 0;
  // Nothing buffered, nothing in flight.
  virtual bool idle() const = 0;
  virtual bool failed() const = 0;
  // Rows whose write completed.
  virtual uint64_t rows_written() const = 0;
  // After a failure: "sink NAME failed (why): N rows written, M rows not written".
  virtual std::string failure() const = 0;
  // What still waits (for a stop that timed out); empty when nothing.
  virtual std::string describe_pending() const = 0;
  // Refreshes its gauges (buffer bytes).
  virtual void refresh_gauges() {}

  // Checkpoint hooks. Bytes (or rows, for sinks without bytes) written and
  // acknowledged so far.
  virtual uint64_t position() const = 0;
  // At a checkpoint barrier: make the output up to position() durable.
  virtual std::expected<void, std::string> pre_commit(uint64_t epoch) = 0;
  // The checkpoint of `epoch` is complete.
  virtual void commit(uint64_t epoch) { (void)epoch; }
  // Before the run, after a restart from a checkpoint: put the output back
  // at `position` (truncate; re-commit or discard a pending transaction). An
  // output shorter than position is an error, never filled.
  virtual std::expected<void, std::string> recover(uint64_t position) = 0;
};

// A kind of sink, registered by name (io/sinks/sinks.cc).
struct SinkKind {
  // Its part of the config: its name (`type = "..."`), its own keys and how to read them.
  SinkConfigKind config;
  SinkType type() const { return SinkType{config.name}; }
  // Start-up, on the main thread: opens what the sink writes to.
  std::expected<SinkResource, std::string> (*open)(const SinkConfig& config);
  // The sink, on the gatherer's shard; or a start-up error.
  std::expected<std::unique_ptr<Sink>, std::string> (*make)(SinkHost& host, const SinkConfig& config,
                                                            SinkResource resource, SinkMetrics& metrics);
  // Bytes it holds whatever the data (its buffers), for the fixed-memory estimate.
  uint64_t (*fixed_bytes)(const SinkConfig& config);
  // What `sluice check` says about one ("rows.ndjson, ndjson").
  std::string (*describe)(const SinkConfig& config);
};

const SinkKind* find_sink_kind(SinkType type);
// Every registered kind, built-ins first.
const std::vector<const SinkKind*>& sink_kinds();
// Adds a kind (start-up, before engines are built; built-ins are in
// io/sinks/sinks.cc). A test or a plugin registers its own this way.
void register_sink_kind(const SinkKind* kind);

}  // namespace sluice
