// Self-measurement: counters, gauges and latency histograms, a registry that
// names them, and two renderings (Prometheus text, compact JSON).
//
// Ownership. Each metric object is owned, and written, by exactly one thread:
// the shard it counts for, or the engine thread for global ones. The writer
// uses a plain atomic load and store (no locked instruction: there is no
// other writer); any thread may read. Debug builds trap when a second thread
// writes to the same metric (SingleWriterCheck).
//
// Registration happens at start-up, on one thread, and may allocate: the
// registry keeps a pointer to each metric with its name, help text, unit and
// labels. After that the registry is read-only and any thread may render it;
// the metric objects must outlive it. The data path touches only the metric
// objects, never the registry.
//
// Naming (checked by MetricsRegistry::add, so that `promtool check metrics`
// finds nothing to lint): a name is snake_case without the `sluice_` prefix,
// without a unit and without `_total`; the renderer adds those. Exposed names:
//   counter  sluice_<name>[_bytes|_seconds]_total
//   gauge    sluice_<name>[_bytes|_seconds]
//   latency  sluice_<name>_seconds   (a Prometheus summary)
// Values whose unit is MetricUnit::nanoseconds are recorded in ns and exposed
// in seconds, as Prometheus wants base units.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

#include "core/histogram.h"

namespace sluice {

// A monotonic count (events, bytes, errors). One writer, any readers.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void add(uint64_t n = 1) {
    writer_.check();
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
  [[no_unique_address]] SingleWriterCheck writer_;
};

// A value that goes up and down (queue depth, watermark lag). One writer, any readers.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(int64_t v) {
    writer_.check();
    value_.store(v, std::memory_order_relaxed);
  }
  // Wraps like unsigned arithmetic rather than overflowing (no UB on a bad delta).
  void add(int64_t delta) {
    writer_.check();
    value_.store(int64_t(uint64_t(value_.load(std::memory_order_relaxed)) + uint64_t(delta)),
                 std::memory_order_relaxed);
  }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
  [[no_unique_address]] SingleWriterCheck writer_;
};

// A Histogram of durations in nanoseconds (see core/histogram.h for the
// error bound and the snapshot semantics). One writer, any readers.
class LatencyHistogram : public Histogram {
 public:
  // end - start, or 0 when end < start: event-time latencies compare another
  // machine's clock with ours, and a skewed clock must not record 2^64 - 1.
  void record_interval_ns(int64_t start_ns, int64_t end_ns) {
    record(end_ns > start_ns ? uint64_t(end_ns) - uint64_t(start_ns) : 0);
  }
};

enum class MetricUnit : uint8_t {
  none,         ///< a count of things: events, records, errors
  bytes,        ///< exposed with a `_bytes` suffix
  nanoseconds,  ///< recorded in ns; exposed in seconds with a `_seconds` suffix
};

enum class MetricKind : uint8_t { counter, gauge, latency };

struct MetricLabel {
  std::string name;   ///< snake_case; not `quantile` or `le`, not starting with `__`
  std::string value;  ///< any valid UTF-8; escaped on output
};

// What add() needs besides the metric itself. Designated initializers read well:
//   registry.add({.name = "events_in", .help = "Events read.", .labels = {{"shard", "0"}}}, c);
struct MetricDesc {
  std::string_view name;
  std::string_view help;  ///< one line of plain text; required (promtool lints its absence)
  MetricUnit unit = MetricUnit::none;  ///< ignored for latency, which is always nanoseconds
  std::vector<MetricLabel> labels;
};

enum class MetricsError : uint8_t {
  ok = 0,
  bad_name,      ///< not [a-z][a-z0-9_]*, or has a unit, a type, `_total`/`_sum`/`_count`/`_bucket`
  missing_help,  ///< empty help text
  bad_label_name,    ///< not [a-z_][a-z0-9_]*, starts with `__`, or is `quantile` / `le`
  bad_label_value,   ///< not valid UTF-8 (Prometheus refuses the whole scrape)
  duplicate_label,   ///< the same label name twice in one series
  family_mismatch,   ///< the name is already registered with another kind or unit
  duplicate_series,  ///< the name is already registered with the same labels
};

const char* to_string(MetricsError e);

// Names metrics and renders them. See the file comment for the threading rule.
//
// JSON shape (render_json), compact, one object, families in registration order:
//   {"counters":{"<name>[_bytes|_ns]":{"total":N,
//                                      "series":[{"labels":{"shard":"0"},"value":N},...]}},
//    "gauges":{"<name>[_bytes|_ns]":{"series":[{"labels":{...},"value":N},...]}},
//    "latency":{"<name>":{"count":N,"p50_ms":x,"p90_ms":x,"p99_ms":x,"p999_ms":x,"max_ms":x,
//                         "series":[{"labels":{...},"count":N,"p50_ms":x,...,"max_ms":x}]}}}
// Counter and gauge values are integers in their unit (ns stay ns, hence the
// `_ns` key suffix); a counter family's total is the sum of its series; a
// latency family's top-level figures are over all its series merged. The
// percentiles are milliseconds as doubles, null when there is no value yet.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Start-up only. `metric` must outlive the registry. Series of one name form
  // a family: same kind and unit, distinct label sets; the first help wins.
  [[nodiscard]] MetricsError add(const MetricDesc& desc, const Counter& metric);
  [[nodiscard]] MetricsError add(const MetricDesc& desc, const Gauge& metric);
  [[nodiscard]] MetricsError add(const MetricDesc& desc, const LatencyHistogram& metric);
  // The registry keeps a pointer: a temporary would dangle.
  MetricsError add(const MetricDesc&, Counter&&) = delete;
  MetricsError add(const MetricDesc&, Gauge&&) = delete;
  MetricsError add(const MetricDesc&, LatencyHistogram&&) = delete;

  size_t family_count() const { return families_.size(); }
  size_t series_count() const;

  // Appends Prometheus text exposition format 0.0.4 (Content-Type
  // kPrometheusContentType): one `# HELP` and `# TYPE` per family, its series
  // after them; latency as a summary with quantiles 0.5, 0.9, 0.99, 0.999
  // (NaN before the first value), `_sum` and `_count`, in seconds. Allocates.
  void render_prometheus(std::string& out) const;
  // Appends the JSON described above. Allocates.
  void render_json(std::string& out) const;

 private:
  struct Series {
    std::vector<MetricLabel> labels;
    std::string prometheus_labels;  // `a="x",b="y"`, escaped once at registration
    std::variant<const Counter*, const Gauge*, const LatencyHistogram*> metric;
  };
  struct Family {
    std::string name;
    std::string help;
    MetricKind kind;
    MetricUnit unit;
    std::vector<Series> series;
    // Canonical label sets of its series (see label_set_key): a duplicate is
    // found in O(1), so registering the per-shard-pair series of a 64-shard
    // job is not quadratic.
    std::unordered_set<std::string> label_sets;
  };

  MetricsError add_series(const MetricDesc& desc, MetricKind kind, MetricUnit unit,
                          std::variant<const Counter*, const Gauge*, const LatencyHistogram*> m);

  std::vector<Family> families_;
};

constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJsonContentType = "application/json";

}  // namespace sluice
