// Input lines for the "sales" test schema: valid events spelled in many
// equivalent ways, and a catalogue of lines each of which must become a
// particular dead letter.
//
//   key    = ["region", "product"]   region: JSON string; product: JSON
//                                    integer or string (7 and "7" are two keys)
//   time   = "ts" (rfc3339 or epoch_ms)
//   fields = qty int64, price float64, note string
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "tests/integration/reference.h"

namespace sluice::integration {

// The sales schema with every aggregate function over both numeric fields.
PipelineSpec sales_spec(std::string time_format, int64_t window_ns, int64_t delay_ns);

// A random event at `time_ns` (whole milliseconds) from small pools of keys
// and values, including negative quantities and non-ASCII / escaped strings.
Event random_sales_event(std::mt19937_64& rng, int64_t time_ns);

// `e` as one NDJSON line (no terminator), for the sales schema or any other
// spec. `rng` picks the spelling: field order, timestamp offset and fraction
// digits (rfc3339), escaped key strings, integer or exponent spelling of
// floats, extra fields the schema ignores.
std::string event_line(const PipelineSpec& spec, const Event& e, std::mt19937_64& rng);

// `e` in one fixed spelling: key fields, time, then value fields; nothing else.
std::string canonical_event_line(const PipelineSpec& spec, const Event& e);

// `e` as a line of exactly `bytes` bytes (padded with an ignored field).
std::string padded_event_line(const PipelineSpec& spec, const Event& e, size_t bytes);

struct BadLine {
  std::string text;
  std::string reason;  // the dead-letter reason it must produce
};

// One line for every parse_error and schema_error case: truncated JSON, bad
// literal, invalid UTF-8, trailing garbage, top-level array and number,
// missing field, wrong types, unparseable timestamps, non-integer keys.
// `e` supplies otherwise valid content.
std::vector<BadLine> sales_bad_lines(const PipelineSpec& spec, const Event& e);

// One input line as a test wrote it, and what it must become.
struct InputLine {
  enum class Kind { event, bad, blank };
  Kind kind = Kind::blank;
  std::string text;               // without its terminator
  std::string terminator = "\n";  // "\n", "\r\n", or "" for a file's unterminated last line
  Event event;                    // kind == event
  std::string reason;             // kind == bad: the dead-letter reason
  bool truncated = false;         // kind == bad: line_too_long keeps only a prefix of the line

  static InputLine of_event(const Event& e, std::string text);
  static InputLine bad(std::string text, std::string reason, bool truncated = false);
  static InputLine blank(std::string terminator);
};

// The bytes of `lines` with their terminators.
std::string render(const std::vector<InputLine>& lines);

// Feeds the lines of one source stream, in order, to the model and adds what
// they must produce to `expected` (lines_in, dead letters). `origin(i)` is
// the dead-letter origin of line i. Returns, per line, whether it was an
// event the model accepted.
std::vector<bool> feed_lines(ReferenceModel& model, int stream, const std::vector<InputLine>& lines,
                             const std::function<std::string(size_t)>& origin,
                             ExpectedRun& expected);

// Writes `lines` as one file (source "in"), runs it through `shards` shards
// to its end and checks rows, dead letters and counters against the model.
void run_lines_file_and_expect(const PipelineSpec& spec, const std::vector<InputLine>& lines,
                               uint32_t shards);

}  // namespace sluice::integration
