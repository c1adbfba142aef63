// The pipeline configuration model: plain structs describing one pipeline,
// with their defaults and limits. The loader that fills them from TOML is in
// config.h; code that only reads a config (operators, the engine) includes
// this header alone.
#pragma once

#include <algorithm>
#include <any>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// Defaults and bounds shared by the parser, the engine and the docs.
namespace limits {
// Longest NDJSON line accepted; longer lines become `line_too_long` dead letters.
// Also the size of each connection's carry buffer, so it bounds memory per connection.
constexpr uint32_t line_bytes_max_default = 1u << 20;
constexpr uint32_t line_bytes_max_min = 64;
constexpr uint32_t line_bytes_max_max = 64u << 20;
// Connections per TCP source; more are accepted and closed at once (and logged).
constexpr uint32_t connections_max_default = 1024;
// Size of one file read; larger reads amortise syscalls, smaller ones use less memory.
constexpr uint32_t read_bytes_default = 1u << 20;
constexpr uint32_t read_bytes_min = 4096;
constexpr uint32_t read_bytes_max = 64u << 20;
// Shards beyond this are refused: one thread per CPU is the model.
constexpr uint32_t shards_max = 256;
// All TCP connections' line buffers together (a connection holds one only
// while a line spans reads, sized to that line). A connection whose line
// would need more than is left is closed (counted, logged).
constexpr uint64_t connection_buffer_bytes_max_default = 256ull << 20;
// Bytes buffered per sink before a write is forced regardless of flush_interval.
// Below 64 KiB a busy sink writes too often; above 1 GiB one sink holds too much memory.
constexpr uint32_t sink_buffer_bytes_default = 4u << 20;
constexpr uint32_t sink_buffer_bytes_min = 64u << 10;
constexpr uint32_t sink_buffer_bytes_max = 1u << 30;
// Schema sizes: events travel between shards as fixed-layout records, so the
// number of key fields, value fields and aggregates is bounded.
constexpr size_t key_fields_max = 8;
constexpr size_t value_fields_max = 32;
constexpr size_t aggregates_max = 64;
// Kafka record headers a schema may use ("@kafka.header.<name>"): each record's
// headers are searched for every one of them, and a record carries their values
// to the decoder in a fixed array (RecordMeta).
constexpr size_t header_fields_max = 8;
}  // namespace limits

// The name a kind of source, sink, aggregate function or window goes by in
// the config (`type = "tcp"`, `fn = "sum"`, `kind = "tumbling"`). The built-in
// kinds are the constants; a kind registered later is just its name, which
// its registry resolves (io/source.h, io/sink.h, operators/aggregate.h,
// operators/window_kind.h). Names are compared by value; a name must point
// to storage that lives as long as the program (a kind's own literal).
#define SLUICE_KIND_NAME_TYPE(Type)                                   \
  std::string_view name;                                              \
  const char* c_str() const { return name.data(); }                   \
  friend bool operator==(const Type&, const Type&) = default

struct SourceType {
  SLUICE_KIND_NAME_TYPE(SourceType);
  static const SourceType tcp, file, generator, kafka;
};
inline constexpr SourceType SourceType::tcp{"tcp"};
inline constexpr SourceType SourceType::file{"file"};
inline constexpr SourceType SourceType::generator{"generator"};
inline constexpr SourceType SourceType::kafka{"kafka"};

enum class InputFormat { ndjson };

struct TcpSourceConfig {
  std::string host;  // numeric IPv4 or IPv6 address, or "localhost"
  uint16_t port = 0;  // 0: the kernel picks one; the start-up log names it
  // Connections per source; at the limit the connection that has gone longest
  // without a complete line is closed to admit the new one.
  uint32_t connections_max = limits::connections_max_default;
  // A connection that delivers no complete line for this long is closed. 0 =
  // never (the default: a quiet sender is legitimate).
  int64_t read_timeout_ns = 0;
  // On stop, how long to keep reading what peers have already sent (bytes in
  // the socket buffers) before the connections are shut down.
  int64_t stop_grace_ns = 2'000'000'000LL;
};

struct FileSourceConfig {
  std::vector<std::string> paths;  // read in this order, as one source
  uint32_t read_bytes = limits::read_bytes_default;
  // Every shard reads its own byte range of each file (aligned to lines), as
  // a source of its own: parsing runs on every core. See README "split".
  bool split = false;
};

// Synthetic sales events: product_id (int), customer_id (string), quantity
// (int), revenue (float), timestamp (in the schema's time format).
struct GeneratorSourceConfig {
  uint64_t count = 1'000'000;  // events to produce; 0 = unlimited (never finishes)
  uint64_t rate = 0;           // events per second of wall time; 0 = as fast as possible
  uint32_t products = 1000;    // distinct product_id values
  uint32_t customers = 10000;  // distinct customer_id values
  int64_t start_ns = 1'704'067'200'000'000'000;  // event time of the first event: 2024-01-01T00:00:00Z
  bool start_now = false;      // start = "now": event time of the first event is wall-clock now
  int64_t step_ns = 1'000'000;  // event time advances by this much per event
  int64_t jitter_ns = 0;       // each event's time is moved back by uniform [0, jitter]
  uint64_t seed = 1;
};

// A Kafka topic read by Sluice's own wire client (no librdkafka in the engine).
struct KafkaSourceConfig {
  struct Broker {
    std::string host;
    uint16_t port = 9092;
  };
  enum class Start : uint8_t { earliest, latest, time };
  enum class Stop : uint8_t { none, end };
  enum class OffsetReset : uint8_t { earliest, latest, fail };

  std::vector<Broker> brokers;  // bootstrap list
  std::string topic;
  Start start = Start::earliest;
  int64_t start_time_ms = 0;  // start == time: the first offset at or after this time
  Stop stop = Stop::none;     // end: read up to the end offsets seen at start, then finish
  OffsetReset offset_reset = OffsetReset::earliest;  // on OFFSET_OUT_OF_RANGE
  std::string client_id = "sluice";
  int64_t max_wait_ns = 500'000'000;  // Fetch max_wait_ms: how long the broker may hold a fetch
  uint32_t min_bytes = 1;
  // Bytes per fetch response, and per partition in it. The response buffer is
  // sized from max_bytes: memory per broker connection is about 2 x max_bytes.
  uint32_t max_bytes = 16u << 20;
  uint32_t partition_max_bytes = 1u << 20;
};

struct SourceConfig {
  std::string name;
  SourceType type = SourceType::tcp;
  InputFormat format = InputFormat::ndjson;
  uint32_t line_bytes_max = limits::line_bytes_max_default;
  TcpSourceConfig tcp;              // type == tcp
  FileSourceConfig file;            // type == file
  GeneratorSourceConfig generator;  // type == generator
  KafkaSourceConfig kafka;          // type == kafka
  // The options of a kind whose struct is its own (set by its config parser,
  // read by its make): a kind added later keeps its keys out of this file.
  std::any options;
};

enum class FieldType { int64, float64, string };
enum class TimeFormat { rfc3339, epoch_s, epoch_ms, epoch_us, epoch_ns };

// Whether an event must carry a value field (README, "Optional fields").
enum class FieldPresence : uint8_t {
  required,   ///< absent or JSON null: the event is a schema_error dead letter
  optional,   ///< absent or JSON null: the aggregates over it skip the event
  defaulted,  ///< absent or JSON null: it takes FieldConfig's default
};

struct FieldConfig {
  std::string name;
  FieldType type = FieldType::int64;
  FieldPresence presence = FieldPresence::required;
  // presence == defaulted: the value, in the member of the field's type.
  int64_t default_int = 0;
  double default_float = 0;
  std::string default_string;
};

// Schema names that refer to Kafka record metadata instead of JSON fields
// (valid only when every source is a Kafka source).
constexpr std::string_view kKafkaKeyField = "@kafka.key";            // the record key, as a string
constexpr std::string_view kKafkaTimestampField = "@kafka.timestamp";  // the record timestamp
// "@kafka.header.<name>": the value of the record's header <name> (the last
// one when it appears more than once), as a string; a key or value field.
constexpr std::string_view kKafkaHeaderPrefix = "@kafka.header.";

struct SchemaConfig {
  std::vector<std::string> key;  // one or more key fields; values are JSON strings or integers
  std::string time_field;
  TimeFormat time_format = TimeFormat::rfc3339;
  // Events more than this far ahead of the wall clock are `future` dead
  // letters (one far-future stamp would otherwise make every later event
  // late). 0 = no limit (the default: replays of any era are fine).
  int64_t future_limit_ns = 0;
  std::vector<FieldConfig> fields;  // sorted by name; required typed value fields

  // Index into `fields`, or -1.
  int field_index(std::string_view name) const;
  // The record headers the key and the fields use (the <name> of each
  // "@kafka.header.<name>"), key fields first, then fields, each once: the
  // order in which a Kafka source hands their values to the decoder.
  // (Inline: the decoder, which the fuzz targets build without the config loader, uses it.)
  std::vector<std::string> header_names() const {
    std::vector<std::string> out;
    auto add = [&](std::string_view name) {
      if (!name.starts_with(kKafkaHeaderPrefix)) return;
      name.remove_prefix(kKafkaHeaderPrefix.size());
      if (std::ranges::find(out, name) == out.end()) out.emplace_back(name);
    };
    for (const std::string& k : key) add(k);
    for (const FieldConfig& f : fields) add(f.name);
    return out;
  }
};

struct WindowKind {
  SLUICE_KIND_NAME_TYPE(WindowKind);
  static const WindowKind tumbling;
};
inline constexpr WindowKind WindowKind::tumbling{"tumbling"};

struct WindowConfig {
  WindowKind kind = WindowKind::tumbling;
  int64_t size_ns = 0;
  int64_t watermark_delay_ns = 0;
  int64_t idle_timeout_ns = 30 * 1'000'000'000LL;  // 0 = a source never counts as idle
  std::any options;  // a kind's own options (see SourceConfig::options)
};

struct AggFn {
  SLUICE_KIND_NAME_TYPE(AggFn);
  static const AggFn count, sum, min, max, avg;
};
inline constexpr AggFn AggFn::count{"count"};
inline constexpr AggFn AggFn::sum{"sum"};
inline constexpr AggFn AggFn::min{"min"};
inline constexpr AggFn AggFn::max{"max"};
inline constexpr AggFn AggFn::avg{"avg"};

// A function's own parameters, read by its kind (0: not used by it).
struct AggParams {
  uint32_t precision = 0;  // approx_count_distinct: HyperLogLog precision, 4..18
};

struct AggregateConfig {
  std::string name;
  AggFn fn = AggFn::count;
  std::string field;  // empty for count
  int field_index = -1;  // index into SchemaConfig::fields, -1 for count
  AggParams params;
};

struct SinkType {
  SLUICE_KIND_NAME_TYPE(SinkType);
  static const SinkType stdout_sink, file;
};
inline constexpr SinkType SinkType::stdout_sink{"stdout"};
inline constexpr SinkType SinkType::file{"file"};
enum class OutputFormat { ndjson, csv };
enum class RowOrder { none, key };

struct SinkConfig {
  std::string name;
  SinkType type = SinkType::stdout_sink;
  std::string path;  // type == file
  OutputFormat format = OutputFormat::ndjson;
  RowOrder order = RowOrder::none;
  int64_t flush_interval_ns = 100 * 1'000'000LL;
  bool append = false;  // file: append instead of truncating at start
  uint32_t buffer_bytes = limits::sink_buffer_bytes_default;
  // Result bytes that may wait for this sink (rows of complete windows it
  // has not encoded, plus encoded bytes not yet written). Past it, windows
  // stop firing and every source pauses until the sink catches up (resumes
  // below half). At least 2 x buffer_bytes; default max(64 MiB, 4 x buffer_bytes).
  uint64_t pending_bytes_max = 64ull << 20;
  // Aggregates (indices) whose state itself this sink writes (a Redis
  // sink's `sketches`), set by its kind: result rows then carry them.
  std::vector<uint32_t> states;
  std::any options;  // a kind's own options (see SourceConfig::options)
};

struct DeadLetterConfig {
  std::string path;  // empty: dead letters go to stderr
  bool append = false;
  // A run whose dead letters are more than this fraction of the records read
  // fails with exit status 3 (a schema naming the wrong fields yields no rows
  // and would otherwise "succeed"). 1 = no limit (the default).
  double max_ratio = 1.0;
};

// [metrics]: an HTTP endpoint with /metrics (Prometheus text) and /status (JSON).
struct MetricsConfig {
  bool enabled = false;  // the [metrics] table is present
  std::string host = "127.0.0.1";  // loopback unless configured otherwise
  uint16_t port = 9464;
  // A connection must send its request head, and take its response, within
  // this long; otherwise it is closed (idle sockets cannot hold the slots).
  int64_t request_timeout_ns = 5'000'000'000LL;
};

struct PipelineConfig {
  std::string file;  // the config file it came from (for messages)
  std::string name = "sluice";
  uint32_t shards = 0;  // 0 = one per CPU in the affinity mask
  // Longest a stop (SIGINT/SIGTERM, or a failed output) may take to drain and
  // flush; past it the process logs what was still pending and exits 1. 0 = no bound.
  int64_t stop_timeout_ns = 30 * 1'000'000'000LL;
  uint64_t connection_buffer_bytes_max = limits::connection_buffer_bytes_max_default;
  // Budget for the fixed memory of all shards (see the README's "Resources");
  // `check` and `run` refuse a pipeline over it. 0 = half of the machine's memory.
  uint64_t fixed_memory_bytes_max = 0;
  std::vector<SourceConfig> sources;
  SchemaConfig schema;
  WindowConfig window;
  std::vector<AggregateConfig> aggregates;
  std::vector<SinkConfig> sinks;
  DeadLetterConfig dead_letter;
  MetricsConfig metrics;

};

// The aggregates whose state result rows carry (some sink writes it), in
// increasing index order: exported state j of a row is aggregate
// exported_states(config)[j]'s.
inline std::vector<uint32_t> exported_states(const PipelineConfig& config) {
  std::vector<uint32_t> out;
  for (const SinkConfig& s : config.sinks) out.insert(out.end(), s.states.begin(), s.states.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace sluice
