// What one shard measures about itself, and what its sources and sinks
// count: the shard counters (one table, X-macro generated), dead letters by
// reason, window gauges, latency histograms, per-source and per-sink series.
//
// Written only by the shard that owns it (each metric is a single-writer
// relaxed atomic), read by the metrics endpoint and the exit summary from any
// thread. Owned by the engine, so the registry can point at it for the whole
// run. Lives in io/ because the connectors write it (a TCP source counts its
// connections, a sink its rows); the dataflow registers and sums it.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "core/metrics.h"
#include "operators/dead_letter.h"

namespace sluice {

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
  Gauge pending_bytes;        // waiting for the sink in all (bounded by pending_bytes_max)
  Counter writes;             // writes (a file) or batches of commands (Redis) started
  Counter retries;            // batches sent again (a transient error reply)
  Counter reconnects;         // connections lost or refused, then made again
  Counter errors;             // error replies and failed writes
  LatencyHistogram write_latency;  // a write or batch started to its completion
};

// Every per-shard counter, once: X(field, metric name, help, unit). The
// struct of live counters, the after-run snapshot, the sums and the metrics
// registration are all generated from this table. (Dead letters by reason
// are an array beside it.) shard 0 alone writes rows_out (the gatherer).
#define SLUICE_SHARD_COUNTERS(X)                                                                    \
  X(events_in, "events_applied", "Events applied to a window table, by the shard owning their key", \
    none)                                                                                           \
  X(lines_in, "lines_read", "Non-empty lines or records read, by the shard reading them", none)     \
  X(bytes_in, "input", "Bytes read from sources", bytes)                                            \
  X(partial_line_bytes, "partial_line", "Bytes of lines cut off by a disconnecting peer", bytes)    \
  X(dead_letters_lost, "dead_letters_lost",                                                         \
    "Dead letters not written because the dead-letter output failed", none)                         \
  X(connections, "connections_accepted", "TCP connections handed to this shard", none)              \
  X(connections_refused, "connections_refused",                                                     \
    "TCP connections closed at once (hand-off queue full, or stopping)", none)                      \
  X(connections_evicted, "connections_evicted",                                                     \
    "TCP connections closed to admit a new one at connections_max (the longest without a line)",    \
    none)                                                                                           \
  X(connections_timed_out, "connections_timed_out",                                                 \
    "TCP connections closed after read_timeout without a complete line", none)                      \
  X(connections_over_budget, "connections_over_budget",                                             \
    "TCP connections closed because their line would pass connection_buffer_bytes_max", none)       \
  X(windows_fired, "windows_fired", "Windows fired (their rows sent to the gatherer)", none)         \
  X(output_pauses, "output_backpressure_pauses",                                                    \
    "Times every source paused because a sink had more than pending_bytes_max waiting (shard 0)",    \
    none)                                                                                           \
  X(rows_out, "rows_written", "Result rows written to every sink (shard 0)", none)                  \
  X(batches_sent, "batches_sent", "Event batches sent to other shards", none)                       \
  X(backpressure_stalls, "backpressure_stalls",                                                     \
    "Loop iterations in which input waited for buffer space", none)                                 \
  X(ring_submissions, "uring_submissions", "io_uring submission queue entries submitted", none)     \
  X(ring_completions, "uring_completions", "io_uring completions reaped", none)

struct ShardMetrics {
#define SLUICE_COUNTER_FIELD(field, name, help, unit) Counter field;
  SLUICE_SHARD_COUNTERS(SLUICE_COUNTER_FIELD)
#undef SLUICE_COUNTER_FIELD
  std::array<Counter, kDeadLetterReasons> dead_letters;
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
#define SLUICE_COUNTER_VALUE(field, name, help, unit) uint64_t field = 0;
  SLUICE_SHARD_COUNTERS(SLUICE_COUNTER_VALUE)
#undef SLUICE_COUNTER_VALUE
  std::array<uint64_t, kDeadLetterReasons> dead_letters{};

  ShardCounters& operator+=(const ShardCounters& o);
};

ShardCounters snapshot(const ShardMetrics& m);

}  // namespace sluice
