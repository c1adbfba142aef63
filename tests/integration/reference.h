// The reference model: a deliberately simple, obviously-correct statement of
// what a pipeline must output, written from the documented semantics and not
// from the engine's code. Tests feed it the events they send and compare the
// engine's output against what it computes.
//
//   window_start = floor(t / size) * size; windows are [start, start + size)
//   per source stream: watermark = largest time delivered so far - delay
//   an event is late when its window end <= its own stream's watermark when
//   it arrives (its own time does not count); late events are not aggregated
//   one output row per (window, key) with count/sum/min/max/avg
//
// Also here: the pipeline description shared by the model and the TOML a test
// writes, so the two cannot drift apart, and the parsing and comparison of
// output rows and dead-letter records.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "tests/integration/harness.h"

namespace sluice::integration {

enum class FieldKind { int64, float64, string };
enum class AggFn { count, sum, min, max, avg, approx_count_distinct };

struct AggSpec {
  std::string name;
  AggFn fn = AggFn::count;
  std::string field;  // empty for count (of events); with count, it counts the events that have it
};

using FieldValue = std::variant<int64_t, double, std::string>;

// A field an event may lack (README "Optional fields"): `optional = true`,
// or `default = <value>` when it has one.
struct OptionalField {
  std::optional<FieldValue> default_value;
};

// What a test pipeline computes: schema, window and aggregates.
struct PipelineSpec {
  std::vector<std::string> key_fields;
  std::string time_field = "ts";
  std::string time_format = "rfc3339";  // as written in [schema] time
  std::map<std::string, FieldKind> fields;
  // The fields of `fields` an event may lack; every other one is required.
  std::map<std::string, OptionalField> optional_fields;
  int64_t window_ns = 0;
  int64_t delay_ns = 0;
  std::string idle_timeout = "1h";
  std::vector<AggSpec> aggregates;

  FieldKind field_kind(const std::string& name) const { return fields.at(name); }
  // The [schema], [window] and [[aggregates]] sections of a pipeline file.
  std::string toml() const;
};

// A key field value: JSON integer or JSON string (they never compare equal).
using KeyPart = std::variant<int64_t, std::string>;
using Key = std::vector<KeyPart>;

std::string describe(const Key& key);

struct Event {
  int64_t time_ns = 0;
  Key key;
  // Every field of the spec the event has: all required ones, and the
  // optional ones it has (absent and null are the same to the model).
  std::map<std::string, FieldValue> values;
};

// One output row: a window, a key and the aggregates in spec order.
struct Row {
  int64_t window_start = 0;
  Key key;
  std::vector<Scalar> aggregates;

  std::string describe() const;
};

class ReferenceModel {
 public:
  explicit ReferenceModel(PipelineSpec spec);

  // One event arriving on source stream `stream`. Returns false when the event
  // is late (it is then not aggregated).
  bool offer(int stream, const Event& e);

  int64_t window_start(int64_t t) const { return floor_div(t, spec_.window_ns) * spec_.window_ns; }
  int64_t window_end(int64_t t) const { return window_start(t) + spec_.window_ns; }
  // Watermark of a stream, or nullopt before its first accepted event.
  std::optional<int64_t> watermark(int stream) const;
  // The largest watermark over all streams (nullopt when none has one).
  std::optional<int64_t> max_watermark() const;

  // Expected rows, ordered by (window_start, key).
  std::vector<Row> rows() const;
  uint64_t accepted() const { return accepted_; }
  uint64_t late() const { return late_; }
  // Accepted events whose time was below their stream's largest time so far.
  uint64_t accepted_out_of_order() const { return accepted_out_of_order_; }
  const PipelineSpec& spec() const { return spec_; }

 private:
  struct Accumulator {
    int64_t count = 0;
    // Per aggregate: the values it took, exact integer sums (with overflow
    // flag) and float sums, extremes, distinct values.
    std::vector<int64_t> values;
    std::vector<__int128> int_sum;
    std::vector<long double> float_sum;
    std::vector<FieldValue> min, max;
    std::vector<std::set<FieldValue>> distinct;
  };

  PipelineSpec spec_;
  std::map<int, int64_t> max_time_;  // per stream
  std::map<std::pair<int64_t, Key>, Accumulator> windows_;
  uint64_t accepted_ = 0;
  uint64_t late_ = 0;
  uint64_t accepted_out_of_order_ = 0;
};

// ---------------------------------------------------------------------------
// Output rows

// Parses NDJSON output lines. Each must be an object with exactly the fields
// window_start, window_end, the key fields, the aggregates, in that order,
// with window_end = window_start + size. Malformed lines fail the test.
std::vector<Row> parse_ndjson_rows(const PipelineSpec& spec, const std::vector<std::string>& lines);

// Parses CSV output: checks the header line, then reads each row, typing key
// fields by `key_kinds` (CSV itself has no types) and aggregates by the spec.
std::vector<Row> parse_csv_rows(const PipelineSpec& spec, const std::vector<FieldKind>& key_kinds,
                                const std::vector<std::string>& lines);

// Same rows as a multiset: every expected row exactly once, nothing else.
// Integers and strings compare exactly, floats with a relative tolerance of
// 1e-9 (float sums depend on addition order), types exactly.
::testing::AssertionResult same_rows(const std::vector<Row>& expected,
                                     const std::vector<Row>& actual);

// Rows of a window never come after rows of a later window.
::testing::AssertionResult windows_ascending(const std::vector<Row>& rows);

// Keys ascend strictly within each window: integers numerically, strings by
// bytes, multi-field keys field by field.
::testing::AssertionResult keys_ascending_within_windows(const std::vector<Row>& rows);

// ---------------------------------------------------------------------------
// Dead letters

// What the test expects for one line that should become a dead letter.
struct ExpectedDeadLetter {
  std::string reason;
  std::string origin;  // "file:line" or the peer's address
  std::string raw;     // the whole line (without its terminator)
  // line_too_long: the engine keeps only a prefix of the line and its length.
  bool truncated = false;
};

// Parses the dead-letter file and compares it, as a multiset of (reason,
// origin, raw), with the expected records; `source` is the source's name.
::testing::AssertionResult same_dead_letters(const std::vector<ExpectedDeadLetter>& expected,
                                             const std::vector<std::string>& lines,
                                             const std::string& source);

// ---------------------------------------------------------------------------
// A finished run

struct ExpectedRun {
  std::vector<Row> rows;
  uint64_t events_in = 0;  // events aggregated
  uint64_t lines_in =
      0;  // non-empty complete lines read (a file's unterminated last line included)
  std::vector<ExpectedDeadLetter> dead_letters;
  std::string source;  // the (only) source's name, as dead letters give it
};

// Checks the NDJSON rows file (rows as a multiset, windows ascending, ends
// with a newline), the dead-letter file, and the counters of the final log line.
void expect_run_output(const PipelineSpec& spec, const ExpectedRun& expected,
                       const std::string& rows_path, const std::string& dead_letter_path,
                       const std::string& stderr_text);

// Runs the file `input` through a pipeline of one file source (named
// expected.source) and one NDJSON file sink, on `shards` shards, to its end,
// then checks everything with expect_run_output.
void run_file_and_expect(const TempDir& dir, const PipelineSpec& spec, const std::string& input,
                         uint32_t shards, const ExpectedRun& expected,
                         std::string_view extra_source_keys = "");

}  // namespace sluice::integration
