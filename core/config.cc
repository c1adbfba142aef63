#include "core/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/clock.h"
#include "core/timestamp.h"

namespace sluice {

namespace {

constexpr int64_t kNsPerMin = 60 * kNsPerS;
constexpr int64_t kNsPerHour = 60 * kNsPerMin;
constexpr int64_t kNsPerDay = 24 * kNsPerHour;

struct DurationUnit {
  std::string_view name;
  int64_t ns;
};

// Largest first: format_duration relies on this order.
constexpr DurationUnit kDurationUnits[] = {
    {"d", kNsPerDay}, {"h", kNsPerHour}, {"m", kNsPerMin}, {"s", kNsPerS},
    {"ms", kNsPerMs}, {"us", kNsPerUs},  {"ns", 1},
};

// 2024-01-01T00:00:00Z: a fixed default keeps generated data (and tests) reproducible.
constexpr int64_t kGeneratorStartDefaultNs = 1'704'067'200 * kNsPerS;


// Output rows carry these columns beside the key fields and aggregates.
constexpr std::string_view kReservedColumns[] = {"window_start", "window_end"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char* type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
  }
  return "?";
}

// Edit distance, for "did you mean" hints on unknown keys; keys are short.
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "cannot <verb> string field": reads better than the bare function name.
const char* verb(AggFn fn) {
  if (fn == AggFn::min) return "take the min of";
  if (fn == AggFn::max) return "take the max of";
  if (fn == AggFn::avg) return "average";
  return fn.c_str();
}

bool before(const toml::source_region& a, const toml::source_region& b) {
  return std::pair(a.begin.line, a.begin.column) < std::pair(b.begin.line, b.begin.column);
}

// Two spellings of one file ("out/x", "./out/x") must compare equal; no file system access.
std::string normal_path(std::string_view path) {
  return std::filesystem::path(path).lexically_normal().string();
}

struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};

std::expected<ListenAddress, std::string> parse_listen(std::string_view text) {
  ListenAddress out;
  std::string_view port;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return std::unexpected("missing \"]\" after IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return std::unexpected("expected \":port\" after \"]\"");
    }
    port = text.substr(close + 2);
    in6_addr addr6;
    if (inet_pton(AF_INET6, out.host.c_str(), &addr6) != 1) {
      return std::unexpected(fmt::format("\"{}\" is not an IPv6 address", out.host));
    }
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::unexpected("expected \"host:port\"");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      return std::unexpected("an IPv6 address needs brackets, e.g. \"[::1]:9400\"");
    }
    in_addr addr4;
    if (out.host != "localhost" && inet_pton(AF_INET, out.host.c_str(), &addr4) != 1) {
      return std::unexpected(fmt::format(
          "host \"{}\" must be an IPv4 address, \"localhost\" or an IPv6 address in brackets",
          out.host));
    }
  }
  uint32_t value = 0;
  bool digits_only = !port.empty() && port.size() <= 5;
  for (char c : port) {
    if (!is_digit(c)) digits_only = false;
    if (digits_only) value = value * 10 + uint32_t(c - '0');
  }
  if (!digits_only || value > 65535) {
    return std::unexpected(fmt::format("port \"{}\" must be a number in 0..65535", port));
  }
  out.port = uint16_t(value);
  return out;
}

// Errors of one parse, each with the position of the node it is about.
class Diagnostics {
 public:
  explicit Diagnostics(std::string_view file) : file_(file) {}

  void at(const toml::source_region& where, std::string message) {
    errors_.push_back({file_, where.begin.line, where.begin.column, std::move(message)});
  }
  bool empty() const { return errors_.empty(); }

  // File order reads best; stable so two errors at one position keep the order they were found.
  std::vector<ConfigError> take_sorted() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    return std::move(errors_);
  }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

enum class Need { optional, required };
enum class Empty { rejected, allowed };
enum class Zero { rejected, allowed };

template <typename T>
struct Choice {
  std::string_view name;
  T value;
};

template <typename T>
constexpr int64_t integer_max() {
  if constexpr (sizeof(T) >= sizeof(int64_t)) {
    return std::numeric_limits<int64_t>::max();
  } else {
    return int64_t(std::numeric_limits<T>::max());
  }
}

// Reads the keys of one TOML table. Each getter records its key as expected, reports a missing
// required key at the table and a bad value at the value, and on error leaves `out` as it was,
// so parsing goes on with the default and finds further errors. finish() reports the keys that
// no getter asked for.
class TableReader {
 public:
  // `where` names the table in messages: "[window]", "[[sources]] \"pos\"", "" for the root.
  TableReader(Diagnostics& diag, const toml::table& table, std::string where)
      : diag_(diag), table_(table), where_(std::move(where)) {}

  void set_where(std::string where) { where_ = std::move(where); }

  const toml::node* find(std::string_view key, Need need = Need::optional) {
    expected_.emplace_back(key);
    const toml::node* node = table_.get(key);
    if (node == nullptr && need == Need::required) {
      missing(key);
    }
    return node;
  }

  void missing(std::string_view key, std::string_view why = {}) {
    std::string message = where_.empty()
                              ? fmt::format("missing required key \"{}\" at the top level", key)
                              : fmt::format("missing required key \"{}\" in {}", key, where_);
    if (!why.empty()) message += fmt::format(" ({})", why);
    diag_.at(table_.source(), std::move(message));
  }

  // "<table> <key>: <message>" at the value of `key` (which must be present).
  void error(std::string_view key, std::string_view message) {
    error_at(*table_.get(key), key, message);
  }
  void error_at(const toml::node& node, std::string_view key, std::string_view message) {
    diag_.at(node.source(), where_.empty() ? fmt::format("{}: {}", key, message)
                                           : fmt::format("{} {}: {}", where_, key, message));
  }

  bool string(std::string_view key, std::string& out, Need need = Need::optional,
              Empty empty = Empty::rejected) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    return string_value(*node, key, out, empty);
  }

  template <typename T>
  bool integer(std::string_view key, T& out, int64_t min, int64_t max = integer_max<T>(),
               Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    const auto* value = node->as_integer();
    if (value == nullptr) {
      error_at(*node, key, fmt::format("expected an integer, got {}", type_name(*node)));
      return false;
    }
    int64_t v = value->get();
    if (v < min || v > max) {
      error_at(*node, key,
               max == integer_max<T>()
                   ? fmt::format("{} is out of range: must be at least {}", v, min)
                   : fmt::format("{} is out of range {}..{}", v, min, max));
      return false;
    }
    out = T(v);
    return true;
  }

  bool boolean(std::string_view key, bool& out) {
    const toml::node* node = find(key);
    if (node == nullptr) return false;
    const auto* value = node->as_boolean();
    if (value == nullptr) {
      error_at(*node, key, fmt::format("expected true or false, got {}", type_name(*node)));
      return false;
    }
    out = value->get();
    return true;
  }

  bool duration(std::string_view key, int64_t& out_ns, Zero zero, Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    const auto* text = node->as_string();
    if (text == nullptr) {
      std::string message =
          fmt::format("expected a duration string like \"5m\", got {}", type_name(*node));
      if (const auto* number = node->as_integer()) {
        message += fmt::format(" (write the unit too, e.g. \"{0}s\" or \"{0}ms\")", number->get());
      }
      error_at(*node, key, message);
      return false;
    }
    auto ns = parse_duration(text->get());
    if (!ns) {
      error_at(*node, key, fmt::format("bad duration \"{}\": {}", text->get(), ns.error()));
      return false;
    }
    if (*ns == 0 && zero == Zero::rejected) {
      error_at(*node, key, "must be greater than 0");
      return false;
    }
    out_ns = *ns;
    return true;
  }

  template <typename T>
  bool choice(std::string_view key, T& out, std::initializer_list<Choice<T>> choices,
              Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    const auto* text = node->as_string();
    if (text != nullptr) {
      for (const auto& c : choices) {
        if (c.name == text->get()) {
          out = c.value;
          return true;
        }
      }
    }
    std::string names;
    for (const auto& c : choices) {
      names += fmt::format("{}\"{}\"", names.empty() ? "" : ", ", c.name);
    }
    error_at(*node, key,
             text != nullptr
                 ? fmt::format("expected one of {}, got \"{}\"", names, text->get())
                 : fmt::format("expected a string (one of {}), got {}", names, type_name(*node)));
    return false;
  }

  // A string or an array of strings; every name non-empty and unique.
  bool string_list(std::string_view key, std::vector<std::string>& out, Need need,
                   bool single_string_ok) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    if (single_string_ok && node->is_string()) {
      std::string value;
      if (!string_value(*node, key, value, Empty::rejected)) return false;
      out = {std::move(value)};
      return true;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr || array->empty()) {
      error_at(*node, key,
               fmt::format("expected {}a non-empty array of strings, got {}",
                           single_string_ok ? "a string or " : "",
                           array != nullptr ? "an empty array" : type_name(*node)));
      return false;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (const toml::node& element : *array) {
      std::string value;
      if (!string_value(element, key, value, Empty::rejected)) {
        ok = false;
      } else if (std::find(values.begin(), values.end(), value) != values.end()) {
        error_at(element, key, fmt::format("\"{}\" is listed twice", value));
        ok = false;
      } else {
        values.push_back(std::move(value));
      }
    }
    if (ok) out = std::move(values);
    return ok;
  }

  const toml::table* subtable(std::string_view key, Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return nullptr;
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      error_at(*node, key, fmt::format("expected a table, got {}", type_name(*node)));
    }
    return table;
  }

  // Every table of the array of tables `key`; `noun` names one element ("source").
  std::vector<const toml::table*> tables(std::string_view key, Need need, std::string_view noun) {
    std::vector<const toml::table*> out;
    const toml::node* node = find(key);
    if (node == nullptr) {
      if (need == Need::required) {
        diag_.at(table_.source(),
                 fmt::format("missing [[{}]]: at least one {} is required", key, noun));
      }
      return out;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      error_at(*node, key,
               fmt::format("expected an array of tables ([[{}]]), got {}", key, type_name(*node)));
      return out;
    }
    if (array->empty() && need == Need::required) {
      error_at(*node, key, fmt::format("at least one {} is required", noun));
    }
    for (const toml::node& element : *array) {
      if (const toml::table* table = element.as_table()) {
        out.push_back(table);
      } else {
        error_at(element, key, fmt::format("expected a table, got {}", type_name(element)));
      }
    }
    return out;
  }

  // `key` is valid only for another variant of this table (another source type); say so at the
  // key rather than calling it unknown.
  void reject(std::string_view key, std::string_view variant) {
    known_.emplace_back(key);
    auto it = table_.find(key);
    if (it != table_.end()) {
      diag_.at(it->first.source(), fmt::format("key \"{}\" is not valid for {}", key, variant));
    }
  }

  // `key` is valid, but whether it fits depends on a value that was already reported as wrong:
  // one error is enough.
  void ignore(std::string_view key) { known_.emplace_back(key); }

  void finish() {
    for (const auto& [key, node] : table_) {
      if (std::ranges::find(expected_, key.str()) != expected_.end() ||
          std::ranges::find(known_, key.str()) != known_.end()) {
        continue;
      }
      std::string message = fmt::format("unknown key \"{}\" {}", key.str(),
                                        where_.empty() ? "at the top level" : "in " + where_);
      if (auto guess = closest_expected(key.str()); !guess.empty()) {
        message += fmt::format("; did you mean \"{}\"?", guess);
      }
      diag_.at(key.source(), std::move(message));
    }
  }

 private:
  bool string_value(const toml::node& node, std::string_view key, std::string& out, Empty empty) {
    const auto* value = node.as_string();
    if (value == nullptr) {
      error_at(node, key, fmt::format("expected a string, got {}", type_name(node)));
      return false;
    }
    if (value->get().empty() && empty == Empty::rejected) {
      error_at(node, key, "must not be empty");
      return false;
    }
    out = value->get();
    return true;
  }

  std::string_view closest_expected(std::string_view key) const {
    std::string_view best;
    size_t best_distance = 3;  // more than two edits is a different word, not a typo
    for (const auto& candidate : expected_) {
      size_t d = edit_distance(key, candidate);
      if (d < best_distance && d < candidate.size()) {
        best = candidate;
        best_distance = d;
      }
    }
    return best;
  }

  Diagnostics& diag_;
  const toml::table& table_;
  std::string where_;
  std::vector<std::string> expected_;  // keys asked for: also the "did you mean" candidates
  std::vector<std::string> known_;     // keys reported elsewhere or deliberately not checked
};

// Where a name was first defined, for "duplicate" messages.
using NameLines = std::map<std::string, uint32_t, std::less<>>;

// Turns a parsed TOML document into a PipelineConfig. Sections are read in a fixed order
// (schema before aggregates) so later ones can check references into earlier ones.
class ConfigParser {
 public:
  explicit ConfigParser(Diagnostics& diag) : diag_(diag) {}

  void parse(const toml::table& root, PipelineConfig& config) {
    TableReader r(diag_, root, "");
    if (const toml::table* t = r.subtable("pipeline")) parse_pipeline(*t, config);
    auto sources = r.tables("sources", Need::required, "source");
    for (size_t i = 0; i < sources.size(); ++i) {
      parse_source(*sources[i], i, config.sources.emplace_back());
    }
    const toml::table* schema = r.subtable("schema", Need::required);
    if (schema != nullptr) parse_schema(*schema, config.schema);
    if (const toml::table* t = r.subtable("window", Need::required)) {
      parse_window(*t, config.window);
    }
    auto aggregates = r.tables("aggregates", Need::optional, "aggregate");
    if (aggregates.size() > limits::aggregates_max) {
      diag_.at(root.get("aggregates")->source(),
               fmt::format("at most {} aggregates are supported, got {}", limits::aggregates_max,
                           aggregates.size()));
    }
    for (size_t i = 0; i < aggregates.size(); ++i) {
      parse_aggregate(*aggregates[i], i, schema != nullptr, config.schema,
                      config.aggregates.emplace_back());
    }
    auto sinks = r.tables("sinks", Need::required, "sink");
    for (size_t i = 0; i < sinks.size(); ++i) {
      parse_sink(*sinks[i], i, config.sinks.emplace_back());
    }
    if (const toml::table* t = r.subtable("metrics")) {
      parse_metrics(*t, config.metrics);
    }
    if (const toml::table* t = r.subtable("dead_letter")) {
      parse_dead_letter(*t, config.dead_letter);
    }
    r.finish();
    cross_check(config);
  }

 private:
  void parse_pipeline(const toml::table& table, PipelineConfig& config) {
    TableReader r(diag_, table, "[pipeline]");
    r.string("name", config.name);
    r.integer("shards", config.shards, 0, limits::shards_max);
    r.duration("stop_timeout", config.stop_timeout_ns, Zero::allowed);
    if (r.integer("connection_buffer_bytes_max", config.connection_buffer_bytes_max,
                  int64_t(limits::line_bytes_max_min))) {
      connection_budget_where_ = table.get("connection_buffer_bytes_max")->source();
    }
    r.integer("fixed_memory_bytes_max", config.fixed_memory_bytes_max, 1 << 20);
    r.finish();
  }

  void parse_source(const toml::table& table, size_t index, SourceConfig& source) {
    TableReader r(diag_, table, fmt::format("[[sources]] #{}", index + 1));
    if (r.string("name", source.name, Need::required)) {
      r.set_where(fmt::format("[[sources]] \"{}\"", source.name));
      check_unique(source_names_, source.name, *table.get("name"), "source");
    }
    bool typed = r.choice("type", source.type,
                          {{"tcp", SourceType::tcp},
                           {"file", SourceType::file},
                           {"generator", SourceType::generator},
                           {"kafka", SourceType::kafka}},
                          Need::required);
    r.choice("format", source.format, {{"ndjson", InputFormat::ndjson}});
    r.integer("line_bytes_max", source.line_bytes_max, limits::line_bytes_max_min,
              limits::line_bytes_max_max);

    // Keys of the other types are named as misplaced rather than unknown: `path` on a tcp source
    // is a mix-up, not a typo.
    static constexpr std::string_view kTcpKeys[] = {"listen", "connections_max", "read_timeout",
                                                    "stop_grace"};
    static constexpr std::string_view kFileKeys[] = {"path", "paths", "read_bytes", "split"};
    static constexpr std::string_view kGeneratorKeys[] = {"count", "rate", "products", "customers",
                                                          "start", "step", "jitter",   "seed"};
    static constexpr std::string_view kKafkaKeys[] = {
        "brokers",   "topic",     "start",     "stop",          "offset_reset",        "client_id",
        "max_wait",  "min_bytes", "max_bytes", "partition_max_bytes"};
    struct TypeKeys {
      SourceType type;
      std::span<const std::string_view> keys;
    };
    const TypeKeys type_keys[] = {{SourceType::tcp, kTcpKeys},
                                  {SourceType::file, kFileKeys},
                                  {SourceType::generator, kGeneratorKeys},
                                  {SourceType::kafka, kKafkaKeys}};
    if (typed) {
      if (source.type == SourceType::tcp) {
        parse_tcp_source(r, source);
      } else if (source.type == SourceType::file) {
        parse_file_source(r, source);
      } else if (source.type == SourceType::generator) {
        parse_generator_source(r, source.generator);
      } else if (source.type == SourceType::kafka) {
        parse_kafka_source(r, source);
      }
    }
    std::string variant = fmt::format("a {} source", to_string(source.type));
    std::span<const std::string_view> own_keys;
    for (const auto& [type, keys] : type_keys) {
      if (typed && type == source.type) own_keys = keys;
    }
    std::vector<std::string_view> seen;  // a key of several other types is reported once
    for (const auto& [type, keys] : type_keys) {
      if (typed && type == source.type) continue;
      for (std::string_view key : keys) {
        if (std::ranges::find(own_keys, key) != own_keys.end()) continue;  // shared, e.g. "start"
        if (std::ranges::find(seen, key) != seen.end()) continue;
        seen.push_back(key);
        if (typed) {
          r.reject(key, variant);
        } else {
          r.ignore(key);
        }
      }
    }
    r.finish();
  }

  void parse_tcp_source(TableReader& r, SourceConfig& source) {
    std::string listen;
    if (r.string("listen", listen, Need::required)) {
      auto address = parse_listen(listen);
      if (!address) {
        r.error("listen", fmt::format("bad address \"{}\": {}", listen, address.error()));
      } else {
        source.tcp.host = address->host;
        source.tcp.port = address->port;
        // Port 0 asks the kernel for a free port, so several such sources never clash.
        if (address->port != 0) {
          auto [it, fresh] = listen_owners_.try_emplace(
              fmt::format("{}:{}", address->host, address->port), source.name);
          if (!fresh) {
            r.error("listen",
                    fmt::format("\"{}\" is already used by source \"{}\"", listen, it->second));
          }
        }
      }
    }
    r.integer("connections_max", source.tcp.connections_max, 1);
    r.duration("read_timeout", source.tcp.read_timeout_ns, Zero::allowed);
    r.duration("stop_grace", source.tcp.stop_grace_ns, Zero::allowed);
  }

  void parse_file_source(TableReader& r, SourceConfig& source) {
    const toml::node* path = r.find("path");
    const toml::node* paths = r.find("paths");
    if (path != nullptr && paths != nullptr) {
      r.error("paths", "give either \"path\" or \"paths\", not both");
    } else if (path == nullptr && paths == nullptr) {
      r.missing("path", "a file source needs \"path\" or \"paths\"");
    } else if (path != nullptr) {
      std::string one;
      if (r.string("path", one)) source.file.paths = {std::move(one)};
    } else {
      r.string_list("paths", source.file.paths, Need::required, /*single_string_ok=*/false);
    }
    for (const auto& p : source.file.paths) {
      source_paths_.push_back({p, fmt::format("source \"{}\"", source.name)});
    }
    r.integer("read_bytes", source.file.read_bytes, limits::read_bytes_min, limits::read_bytes_max);
    r.boolean("split", source.file.split);
  }

  void parse_kafka_source(TableReader& r, SourceConfig& source) {
    KafkaSourceConfig& k = source.kafka;
    std::vector<std::string> brokers;
    if (r.string_list("brokers", brokers, Need::required, /*single_string_ok=*/true)) {
      for (const std::string& b : brokers) {
        auto address = parse_listen(b);
        if (!address || address->port == 0) {
          r.error("brokers", fmt::format("bad broker address \"{}\"{}; expected \"host:port\"", b,
                                         address ? "" : ": " + address.error()));
        } else {
          k.brokers.push_back({address->host, address->port});
        }
      }
    }
    r.string("topic", k.topic, Need::required);
    if (const toml::node* start = r.find("start")) {
      const auto* text = start->as_string();
      int64_t ns = 0;
      if (text == nullptr) {
        r.error("start", fmt::format("expected \"earliest\", \"latest\" or an RFC 3339 time, got {}{}",
                                     type_name(*start), start->is_date_time() ? " (quote it)" : ""));
      } else if (text->get() == "earliest") {
        k.start = KafkaSourceConfig::Start::earliest;
      } else if (text->get() == "latest") {
        k.start = KafkaSourceConfig::Start::latest;
      } else if (auto e = parse_rfc3339(text->get(), ns); e != TimestampError::ok) {
        r.error("start", fmt::format("bad start \"{}\": expected \"earliest\", \"latest\" or an "
                                     "RFC 3339 time ({})",
                                     text->get(), to_string(e)));
      } else {
        k.start = KafkaSourceConfig::Start::time;
        k.start_time_ms = ns / kNsPerMs;
      }
    }
    r.choice("stop", k.stop, {{"none", KafkaSourceConfig::Stop::none}, {"end", KafkaSourceConfig::Stop::end}});
    r.choice("offset_reset", k.offset_reset,
             {{"earliest", KafkaSourceConfig::OffsetReset::earliest},
              {"latest", KafkaSourceConfig::OffsetReset::latest},
              {"fail", KafkaSourceConfig::OffsetReset::fail}});
    r.string("client_id", k.client_id);
    r.duration("max_wait", k.max_wait_ns, Zero::allowed);
    r.integer("min_bytes", k.min_bytes, 0, 1 << 30);
    r.integer("max_bytes", k.max_bytes, 1 << 16, 1 << 30);
    r.integer("partition_max_bytes", k.partition_max_bytes, 1 << 10, 1 << 30);
  }

  void parse_generator_source(TableReader& r, GeneratorSourceConfig& generator) {
    generator.start_ns = kGeneratorStartDefaultNs;
    r.integer("count", generator.count, 0);
    r.integer("rate", generator.rate, 0);
    r.integer("products", generator.products, 1);
    r.integer("customers", generator.customers, 1);
    if (const toml::node* start = r.find("start")) {
      const auto* text = start->as_string();
      int64_t ns = 0;
      if (text == nullptr) {
        // An unquoted TOML date-time is the likely slip here; the fix is to quote it.
        r.error("start",
                fmt::format("expected a string like \"2024-01-01T00:00:00Z\" or \"now\", "
                            "got {}{}",
                            type_name(*start), start->is_date_time() ? " (quote it)" : ""));
      } else if (text->get() == "now") {
        generator.start_now = true;
      } else if (auto e = parse_rfc3339(text->get(), ns); e != TimestampError::ok) {
        r.error("start", fmt::format("bad time \"{}\": {}; expected RFC 3339 like "
                                     "\"2024-01-01T00:00:00Z\" or \"now\"",
                                     text->get(), to_string(e)));
      } else {
        generator.start_ns = ns;
      }
    }
    r.duration("step", generator.step_ns, Zero::rejected);
    r.duration("jitter", generator.jitter_ns, Zero::allowed);
    r.integer("seed", generator.seed, 0);
  }

  void parse_schema(const toml::table& table, SchemaConfig& schema) {
    TableReader r(diag_, table, "[schema]");
    r.string_list("key", schema.key, Need::required, /*single_string_ok=*/true);
    for (const std::string& k : schema.key) {
      if (!k.starts_with("@kafka.")) continue;
      if (k != kKafkaKeyField) {
        r.error_at(*table.get("key"), "key",
                   fmt::format("unknown Kafka metadata field \"{}\"; a key can use \"{}\"", k,
                               kKafkaKeyField));
      } else if (!kafka_meta_where_) {
        kafka_meta_where_ = table.get("key")->source();
      }
    }
    if (schema.key.size() > limits::key_fields_max) {
      r.error_at(*table.get("key"), "key",
                 fmt::format("at most {} key fields are supported, got {}", limits::key_fields_max,
                             schema.key.size()));
    }

    const toml::node* time_field = nullptr;
    if (const toml::table* time = r.subtable("time", Need::required)) {
      TableReader t(diag_, *time, "[schema.time]");
      if (t.string("field", schema.time_field, Need::required)) {
        time_field = time->get("field");
        if (schema.time_field.starts_with("@kafka.")) {
          if (schema.time_field != kKafkaTimestampField) {
            t.error_at(*time_field, "field",
                       fmt::format("unknown Kafka metadata field \"{}\"; the time can use \"{}\"",
                                   schema.time_field, kKafkaTimestampField));
          } else if (!kafka_meta_where_) {
            kafka_meta_where_ = time_field->source();
          }
        }
      }
      t.choice("format", schema.time_format,
               {{"rfc3339", TimeFormat::rfc3339},
                {"epoch_s", TimeFormat::epoch_s},
                {"epoch_ms", TimeFormat::epoch_ms},
                {"epoch_us", TimeFormat::epoch_us},
                {"epoch_ns", TimeFormat::epoch_ns}},
               Need::optional);
      t.duration("future_limit", schema.future_limit_ns, Zero::allowed);
      t.finish();
    }

    if (const toml::table* fields = r.subtable("fields")) {
      TableReader f(diag_, *fields, "[schema.fields]");
      for (const auto& [key, node] : *fields) {
        std::string_view name = key.str();
        FieldConfig field{std::string(name)};
        if (!f.choice(name, field.type,
                      {{"int64", FieldType::int64},
                       {"float64", FieldType::float64},
                       {"string", FieldType::string}})) {
          continue;
        }
        if (name.empty()) {
          diag_.at(key.source(), "[schema.fields]: field names must not be empty");
        } else if (name.starts_with("@kafka.")) {
          diag_.at(key.source(), fmt::format("[schema.fields]: \"{}\": Kafka metadata can be used "
                                             "as a key (\"{}\") or as the time (\"{}\"), not as "
                                             "a value field",
                                             name, kKafkaKeyField, kKafkaTimestampField));
        } else if (std::ranges::find(schema.key, name) != schema.key.end()) {
          diag_.at(key.source(), fmt::format("\"{}\" is a key field; key fields must not also be "
                                             "listed in [schema] fields",
                                             name));
        } else {
          schema.fields.push_back(std::move(field));
        }
      }
      f.finish();
      std::ranges::sort(schema.fields, {}, &FieldConfig::name);
      if (schema.fields.size() > limits::value_fields_max) {
        r.error_at(*fields, "fields",
                   fmt::format("at most {} fields are supported, got {}", limits::value_fields_max,
                               schema.fields.size()));
      }
    }

    if (time_field != nullptr) {
      const std::string& name = schema.time_field;
      if (std::ranges::find(schema.key, name) != schema.key.end()) {
        r.error_at(*time_field, "time.field",
                   fmt::format("time field \"{}\" must not also be a key field", name));
      } else if (schema.field_index(name) >= 0) {
        r.error_at(
            *time_field, "time.field",
            fmt::format("time field \"{}\" must not also be listed in [schema] fields", name));
      }
    }
    r.finish();
  }

  void parse_window(const toml::table& table, WindowConfig& window) {
    TableReader r(diag_, table, "[window]");
    r.choice("kind", window.kind, {{"tumbling", WindowKind::tumbling}});
    r.duration("size", window.size_ns, Zero::rejected, Need::required);
    r.duration("watermark_delay", window.watermark_delay_ns, Zero::allowed);
    r.duration("idle_timeout", window.idle_timeout_ns, Zero::allowed);
    r.finish();
  }

  // `schema_given`: without a [schema] table every field reference would fail; one error
  // ("missing [schema]") says it better.
  void parse_aggregate(const toml::table& table, size_t index, bool schema_given,
                       const SchemaConfig& schema, AggregateConfig& aggregate) {
    TableReader r(diag_, table, fmt::format("[[aggregates]] #{}", index + 1));
    if (r.string("name", aggregate.name, Need::required)) {
      r.set_where(fmt::format("[[aggregates]] \"{}\"", aggregate.name));
      const toml::node& name = *table.get("name");
      if (std::ranges::find(kReservedColumns, aggregate.name) != std::end(kReservedColumns)) {
        r.error_at(
            name, "name",
            fmt::format("\"{}\" is reserved for the window bounds in output rows", aggregate.name));
      } else if (std::ranges::find(schema.key, aggregate.name) != schema.key.end()) {
        r.error_at(name, "name",
                   fmt::format("\"{}\" collides with the key field of that name in output rows",
                               aggregate.name));
      } else {
        check_unique(aggregate_names_, aggregate.name, name, "aggregate");
      }
    }
    bool have_fn = r.choice("fn", aggregate.fn,
                            {{"count", AggFn::count},
                             {"sum", AggFn::sum},
                             {"min", AggFn::min},
                             {"max", AggFn::max},
                             {"avg", AggFn::avg}},
                            Need::required);
    bool have_field = r.string("field", aggregate.field);
    if (have_fn && !have_field && aggregate.fn != AggFn::count && table.get("field") == nullptr) {
      r.missing("field", fmt::format("fn \"{}\" needs a field", to_string(aggregate.fn)));
    }
    if (have_field && schema_given) {
      check_aggregate_field(*table.get("field"), have_fn, schema, aggregate);
    }
    r.finish();
  }

  void check_aggregate_field(const toml::node& field, bool have_fn, const SchemaConfig& schema,
                             AggregateConfig& aggregate) {
    int index_in_schema = schema.field_index(aggregate.field);
    if (index_in_schema < 0) {
      std::string_view role;
      if (std::ranges::find(schema.key, aggregate.field) != schema.key.end()) {
        role = " (it is a key field)";
      } else if (aggregate.field == schema.time_field) {
        role = " (it is the time field)";
      }
      diag_.at(field.source(), fmt::format("aggregate \"{}\" uses field \"{}\" which is not "
                                           "declared in [schema] fields{}",
                                           aggregate.name, aggregate.field, role));
    } else if (have_fn && aggregate.fn != AggFn::count &&
               schema.fields[size_t(index_in_schema)].type == FieldType::string) {
      diag_.at(field.source(), fmt::format("aggregate \"{}\" cannot {} string field \"{}\": only "
                                           "int64 and float64 fields can be aggregated",
                                           aggregate.name, verb(aggregate.fn), aggregate.field));
    } else {
      aggregate.field_index = index_in_schema;
    }
  }

  void parse_sink(const toml::table& table, size_t index, SinkConfig& sink) {
    TableReader r(diag_, table, fmt::format("[[sinks]] #{}", index + 1));
    if (r.string("name", sink.name, Need::required)) {
      r.set_where(fmt::format("[[sinks]] \"{}\"", sink.name));
      check_unique(sink_names_, sink.name, *table.get("name"), "sink");
    }
    bool typed =
        r.choice("type", sink.type, {{"stdout", SinkType::stdout_sink}, {"file", SinkType::file}},
                 Need::required);
    r.choice("format", sink.format, {{"ndjson", OutputFormat::ndjson}, {"csv", OutputFormat::csv}});
    r.choice("order", sink.order, {{"none", RowOrder::none}, {"key", RowOrder::key}});
    r.duration("flush_interval", sink.flush_interval_ns, Zero::allowed);
    r.integer("buffer_bytes", sink.buffer_bytes, limits::sink_buffer_bytes_min,
              limits::sink_buffer_bytes_max);
    if (r.integer("pending_bytes_max", sink.pending_bytes_max, 1 << 16)) {
      if (sink.pending_bytes_max < 2 * uint64_t(sink.buffer_bytes)) {
        r.error("pending_bytes_max",
                fmt::format("pending_bytes_max ({}) must be at least twice buffer_bytes ({})",
                            sink.pending_bytes_max, sink.buffer_bytes));
      }
    } else {
      sink.pending_bytes_max = std::max<uint64_t>(64ull << 20, 4 * uint64_t(sink.buffer_bytes));
    }

    if (!typed) {
      r.ignore("path");
      r.ignore("append");
    } else if (sink.type == SinkType::file) {
      if (r.string("path", sink.path, Need::required)) {
        const toml::node& path = *table.get("path");
        auto [it, fresh] = sink_paths_.try_emplace(
            normal_path(sink.path), fmt::format("sink \"{}\"", sink.name), path.source());
        if (!fresh) {
          r.error("path",
                  fmt::format("\"{}\" is already written by {}", sink.path, it->second.owner));
        }
      }
      r.boolean("append", sink.append);
    } else {
      r.reject("path", "a stdout sink");
      r.reject("append", "a stdout sink");
      if (stdout_sink_.empty()) {
        stdout_sink_ = sink.name;
      } else {
        r.error("type", fmt::format("only one sink may write to stdout; sink \"{}\" already does",
                                    stdout_sink_));
      }
    }
    r.finish();
  }

  void parse_metrics(const toml::table& table, MetricsConfig& metrics) {
    TableReader r(diag_, table, "[metrics]");
    metrics.enabled = true;
    std::string listen;
    if (r.string("listen", listen)) {
      auto address = parse_listen(listen);
      if (!address) {
        r.error("listen", fmt::format("bad address \"{}\": {}", listen, address.error()));
      } else {
        metrics.host = address->host;
        metrics.port = address->port;
        auto [it, fresh] = listen_owners_.try_emplace(
            fmt::format("{}:{}", address->host, address->port), "[metrics]");
        if (!fresh && address->port != 0) {
          r.error("listen", fmt::format("\"{}\" is already used by source \"{}\"", listen, it->second));
        }
      }
    }
    r.duration("request_timeout", metrics.request_timeout_ns, Zero::rejected);
    r.finish();
  }

  void parse_dead_letter(const toml::table& table, DeadLetterConfig& dead_letter) {
    TableReader r(diag_, table, "[dead_letter]");
    if (r.string("path", dead_letter.path, Need::optional, Empty::allowed) &&
        !dead_letter.path.empty()) {
      dead_letter_path_ = table.get("path")->source();
    }
    r.boolean("append", dead_letter.append);
    r.finish();
  }

  // Checks between sections that need all of them parsed.
  void cross_check(const PipelineConfig& config) {
    if (kafka_meta_where_) {
      for (const SourceConfig& src : config.sources) {
        if (src.type != SourceType::kafka) {
          diag_.at(*kafka_meta_where_,
                   fmt::format("[schema] uses Kafka record metadata (\"@kafka.*\"), but source "
                               "\"{}\" is a {} source; every source must be a Kafka source",
                               src.name, to_string(src.type)));
          break;
        }
      }
    }
    if (dead_letter_path_) {
      auto it = sink_paths_.find(normal_path(config.dead_letter.path));
      if (it != sink_paths_.end()) {
        // Reported at whichever of the two comes second: the first was fine on its own.
        const auto& where =
            before(it->second.where, *dead_letter_path_) ? *dead_letter_path_ : it->second.where;
        diag_.at(where, fmt::format("\"{}\" is both the [dead_letter] path and the path of {}",
                                    config.dead_letter.path, it->second.owner));
      }
    }
    // One connection must always be able to hold a line of the longest allowed length.
    if (connection_budget_where_) {
      for (const SourceConfig& src : config.sources) {
        if (src.type == SourceType::tcp && src.line_bytes_max > config.connection_buffer_bytes_max) {
          diag_.at(*connection_budget_where_,
                   fmt::format("connection_buffer_bytes_max ({}) is less than line_bytes_max ({}) of "
                               "source \"{}\": no connection could hold one of its longest lines",
                               config.connection_buffer_bytes_max, src.line_bytes_max, src.name));
        }
      }
    }
    // A sink truncates its file at start-up: writing to an input would destroy it.
    for (const auto& [path, owner] : source_paths_) {
      auto it = sink_paths_.find(normal_path(path));
      if (it != sink_paths_.end()) {
        diag_.at(it->second.where, fmt::format("{} would overwrite \"{}\", which {} reads",
                                               it->second.owner, path, owner));
      }
    }
  }

  struct PathOwner {
    std::string owner;  // "sink \"metrics\""
    toml::source_region where;
  };
  struct SourcePath {
    std::string path;
    std::string owner;  // "source \"pos\""
  };

  void check_unique(NameLines& seen, const std::string& name, const toml::node& node,
                    std::string_view noun) {
    auto [it, fresh] = seen.try_emplace(name, node.source().begin.line);
    if (!fresh) {
      diag_.at(node.source(), fmt::format("duplicate {} name \"{}\" (first used on line {})", noun,
                                          name, it->second));
    }
  }

  Diagnostics& diag_;
  NameLines source_names_;
  NameLines aggregate_names_;
  NameLines sink_names_;
  std::map<std::string, std::string> listen_owners_;  // "host:port" (port != 0) -> source name
  std::map<std::string, PathOwner> sink_paths_;       // normalised path -> sink
  std::vector<SourcePath> source_paths_;
  // Where [schema] first refers to "@kafka.*" metadata, if it does.
  std::optional<toml::source_region> kafka_meta_where_;
  std::optional<toml::source_region> dead_letter_path_;
  std::optional<toml::source_region> connection_budget_where_;
  std::string stdout_sink_;
};

}  // namespace

std::string ConfigError::to_string() const {
  if (line == 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

int SchemaConfig::field_index(std::string_view name) const {
  // Linear: schemas have a handful of fields and this runs at start-up only.
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name == name) return int(i);
  }
  return -1;
}

bool PipelineConfig::all_sources_finite() const {
  return std::ranges::all_of(sources, &SourceConfig::finite);
}

ConfigResult parse_config(std::string_view text, std::string_view file_name) {
  Diagnostics diag(file_name);
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    // toml++ starts its messages with a capital ("Error while parsing..."); ours are lower-case.
    std::string message(e.description());
    if (!message.empty() && message[0] >= 'A' && message[0] <= 'Z') message[0] += 'a' - 'A';
    diag.at(e.source(), std::move(message));
    return std::unexpected(diag.take_sorted());
  }
  PipelineConfig config;
  config.file = std::string(file_name);
  ConfigParser parser(diag);
  parser.parse(root, config);
  if (!diag.empty()) return std::unexpected(diag.take_sorted());
  return config;
}

ConfigResult load_config(const std::string& path) {
  auto unreadable = [&](int error) {
    return std::unexpected(std::vector<ConfigError>{
        {path, 0, 0, fmt::format("cannot read file: {}", std::strerror(error))}});
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return unreadable(errno);
  std::string text;
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;  // close() may overwrite it
      ::close(fd);
      return unreadable(error);
    }
    if (n == 0) break;
    text.append(buffer, size_t(n));
  }
  ::close(fd);
  return parse_config(text, path);
}

std::expected<int64_t, std::string> parse_duration(std::string_view text) {
  if (text.empty()) return std::unexpected("empty duration");
  int64_t total_ns = 0;
  bool overflow = false;
  size_t i = 0;
  while (i < text.size()) {
    size_t digits_begin = i;
    int64_t count = 0;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      overflow |= __builtin_mul_overflow(count, 10, &count);
      overflow |= __builtin_add_overflow(count, text[i] - '0', &count);
    }
    size_t unit_begin = i;
    while (i < text.size() && is_alpha(text[i])) ++i;
    std::string_view unit = text.substr(unit_begin, i - unit_begin);

    if (unit_begin == digits_begin) {
      if (!unit.empty()) {
        return std::unexpected(fmt::format("missing number before \"{}\" in \"{}\"", unit, text));
      }
      char c = text[i];
      if (c == '-' || c == '+') {
        return std::unexpected(fmt::format("durations have no sign: \"{}\"", text));
      }
      return std::unexpected(fmt::format("unexpected character '{}' in \"{}\"", c, text));
    }
    if (unit.empty()) {
      if (i == text.size()) return std::unexpected(fmt::format("missing unit in \"{}\"", text));
      if (text[i] == '.') {
        return std::unexpected(fmt::format(
            "fractions are not supported in \"{}\"; use a smaller unit, e.g. \"1500ms\"", text));
      }
      return std::unexpected(fmt::format("unexpected character '{}' in \"{}\"", text[i], text));
    }
    auto known = std::ranges::find(kDurationUnits, unit, &DurationUnit::name);
    if (known == std::end(kDurationUnits)) {
      return std::unexpected(fmt::format(
          "unknown unit \"{}\" in \"{}\" (units are ns, us, ms, s, m, h, d)", unit, text));
    }
    int64_t group_ns = 0;
    overflow |= __builtin_mul_overflow(count, known->ns, &group_ns);
    overflow |= __builtin_add_overflow(total_ns, group_ns, &total_ns);
  }
  if (overflow) {
    return std::unexpected(fmt::format("\"{}\" is too long (the limit is about 292 years)", text));
  }
  return total_ns;
}

std::string format_duration(int64_t ns) {
  if (ns == 0) return "0s";
  // Magnitude as unsigned so INT64_MIN has one too.
  uint64_t rest = ns < 0 ? uint64_t(0) - uint64_t(ns) : uint64_t(ns);
  std::string out = ns < 0 ? "-" : "";
  if (rest % uint64_t(kNsPerS) != 0) {
    // Below a second one exact unit reads best: "1500us", not "1ms500us".
    for (int64_t unit_ns : {kNsPerMs, kNsPerUs, int64_t(1)}) {
      if (rest % uint64_t(unit_ns) == 0) {
        auto unit = std::ranges::find(kDurationUnits, unit_ns, &DurationUnit::ns);
        return out + fmt::format("{}{}", rest / uint64_t(unit_ns), unit->name);
      }
    }
  }
  for (const auto& unit : kDurationUnits) {
    if (unit.ns < kNsPerS) break;
    uint64_t count = rest / uint64_t(unit.ns);
    if (count == 0) continue;
    out += fmt::format("{}{}", count, unit.name);
    rest -= count * uint64_t(unit.ns);
  }
  return out;
}

const char* to_string(SourceType type) { return type.c_str(); }

const char* to_string(FieldType type) {
  switch (type) {
    case FieldType::int64:
      return "int64";
    case FieldType::float64:
      return "float64";
    case FieldType::string:
      return "string";
  }
  return "?";
}

const char* to_string(AggFn fn) { return fn.c_str(); }

const char* to_string(TimeFormat format) {
  switch (format) {
    case TimeFormat::rfc3339:
      return "rfc3339";
    case TimeFormat::epoch_s:
      return "epoch_s";
    case TimeFormat::epoch_ms:
      return "epoch_ms";
    case TimeFormat::epoch_us:
      return "epoch_us";
    case TimeFormat::epoch_ns:
      return "epoch_ns";
  }
  return "?";
}

const char* to_string(OutputFormat format) {
  switch (format) {
    case OutputFormat::ndjson:
      return "ndjson";
    case OutputFormat::csv:
      return "csv";
  }
  return "?";
}

}  // namespace sluice
