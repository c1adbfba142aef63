// What the config loader asks of a kind of source, sink, aggregate function
// or window about its own part of the config: its name, its own keys, how to
// read them (errors with file, line and column), and the facts the loader's
// checks across sections need. The kinds themselves (io/, operators/) fill
// these in; dataflow/pipeline_config.h gathers every registered one, so
// adding a kind never touches the loader.
//
// Start-up only.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/config_reader.h"

namespace sluice {

// Facts a kind records while its keys are read, for the checks across
// sections the loader makes at the end (a sink must not overwrite an input,
// two sources cannot listen on one port, one sink at most writes to stdout).
class ConfigContext {
 public:
  // A listening "host:port" (port != 0) claimed by `source`: empty, or the
  // source that already holds it.
  std::string claim_listen(const std::string& address, const std::string& source) {
    auto [it, fresh] = listen_owners_.try_emplace(address, source);
    return fresh ? std::string() : it->second;
  }
  // A file `owner` ("source \"pos\"") reads.
  void input_path(const std::string& path, std::string owner) { inputs_.push_back({path, std::move(owner)}); }
  // A file `owner` ("sink \"rows\"") writes: empty, or who already writes it.
  std::string output_path(const std::string& path, std::string owner, const toml::source_region& where);
  // The one sink that may write to stdout: empty, or the sink that already does.
  std::string claim_stdout(const std::string& sink) {
    if (stdout_sink_.empty()) {
      stdout_sink_ = sink;
      return {};
    }
    return stdout_sink_;
  }

  struct Output {
    std::string owner;
    toml::source_region where;
  };
  struct Input {
    std::string path;
    std::string owner;
  };
  // What a sink's keys may refer to (read before the sinks): the schema and
  // the aggregates, or null when their sections were missing.
  const SchemaConfig* schema = nullptr;
  const std::vector<AggregateConfig>* aggregates = nullptr;

  const std::map<std::string, Output>& outputs() const { return outputs_; }  // by normalised path
  const std::vector<Input>& inputs() const { return inputs_; }

 private:
  std::map<std::string, std::string> listen_owners_;
  std::map<std::string, Output> outputs_;
  std::vector<Input> inputs_;
  std::string stdout_sink_;
};

// A path as the loader compares output paths ("./a/../b" and "b" are one file).
std::string normal_path(std::string_view path);

struct SourceConfigKind {
  std::string_view name;                   // `type = "..."`
  std::span<const std::string_view> keys;  // its own keys: on another type they are "not valid for ..."
  // Reads its own keys (the loader has read name, type, format, line_bytes_max).
  void (*parse)(TableReader& r, SourceConfig& source, ConfigContext& ctx);
  bool record_metadata;     // its events carry record metadata ("@kafka.key", "@kafka.timestamp")
  bool connection_buffers;  // its lines wait in connection buffers (connection_buffer_bytes_max)
};

struct SinkConfigKind {
  std::string_view name;
  std::span<const std::string_view> keys;
  // Reads its own keys (the loader has read name, type, format, order,
  // flush_interval, buffer_bytes, pending_bytes_max).
  void (*parse)(TableReader& r, SinkConfig& sink, ConfigContext& ctx);
};

struct AggregateConfigKind {
  std::string_view name;  // `fn = "..."`
  const char* verb;       // "cannot <verb> string field"
  bool needs_field;
  bool (*accepts)(FieldType);
  std::span<const std::string_view> keys;  // its own keys, beside name, fn and field
  // Reads its own keys (nullptr: it has none).
  void (*parse)(TableReader& r, AggregateConfig& aggregate);
};

struct WindowConfigKind {
  std::string_view name;  // `kind = "..."`
  std::span<const std::string_view> keys;
  // Reads its own keys (the loader has read kind, size, watermark_delay, idle_timeout).
  void (*parse)(TableReader& r, WindowConfig& window);
};

// Every kind the loader accepts, in the order messages list them.
struct ConfigKinds {
  std::vector<const SourceConfigKind*> sources;
  std::vector<const SinkConfigKind*> sinks;
  std::vector<const AggregateConfigKind*> aggregates;
  std::vector<const WindowConfigKind*> windows;
};

// Reads and validates a pipeline file against these kinds. Every error
// found is reported, not just the first.
ConfigResult load_config(const std::string& path, const ConfigKinds& kinds);
// Same, from text; `file_name` is used in messages.
ConfigResult parse_config(std::string_view text, std::string_view file_name, const ConfigKinds& kinds);

}  // namespace sluice
