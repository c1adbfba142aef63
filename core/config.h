// Loading a pipeline configuration (the model is in config_model.h).
//
// load_config()/parse_config() turn TOML into a PipelineConfig, or into a list
// of errors each naming file, line and column. All validation that can be done
// without touching the system (unknown keys, types, durations, references
// between sections, impossible combinations) happens here, so `sluice check`
// and `sluice run` agree on what is valid. Start-up code only: may allocate and
// may use exceptions internally (toml++ does), never on the data path.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_model.h"

namespace sluice {

struct ConfigError {
  std::string file;
  uint32_t line = 0;    // 1-based; 0 when the error is about the file as a whole
  uint32_t column = 0;  // 1-based, in characters (as toml++ counts), not bytes
  std::string message;

  // "file:line:column: message" (or "file: message").
  std::string to_string() const;
};

using ConfigResult = std::expected<PipelineConfig, std::vector<ConfigError>>;

// load_config() and parse_config() are in core/config_kinds.h (they take the
// kinds of source, sink, aggregate and window to accept); with every kind
// registered: dataflow/pipeline_config.h.

// "250ms", "30s", "5m", "1h30m", "2d"; units ns, us, ms, s, m, h, d; no sign,
// no spaces, at least one unit. Error message says what is wrong.
std::expected<int64_t, std::string> parse_duration(std::string_view text);
// Inverse for messages and logs: the largest exact units, e.g. "5m", "1h30m", "250ms".
std::string format_duration(int64_t ns);

// The schema in one line, for `sluice check`: the key fields, the time field
// and its format, and each value field with its type and, when an event may
// lack it, `optional` or `default <value>`.
std::string describe_schema(const SchemaConfig& schema);

const char* to_string(SourceType);
const char* to_string(FieldType);
const char* to_string(AggFn);
const char* to_string(TimeFormat);
const char* to_string(OutputFormat);

}  // namespace sluice
