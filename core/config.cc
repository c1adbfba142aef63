#include "core/config.h"
#include "core/config_env.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
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
#include "core/config_kinds.h"
#include "core/config_reader.h"
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

// Output rows carry these columns beside the key fields and aggregates.
constexpr std::string_view kReservedColumns[] = {"window_start", "window_end"};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char* type_name_of(const toml::node& node) {
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
size_t edit_distance_of(std::string_view a, std::string_view b) {
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

bool before(const toml::source_region& a, const toml::source_region& b) {
  return std::pair(a.begin.line, a.begin.column) < std::pair(b.begin.line, b.begin.column);
}

// Two spellings of one file ("out/x", "./out/x") must compare equal; no file system access.

// "@kafka.header.<name>" with a name.
bool is_header_field(std::string_view name) {
  return name.starts_with(kKafkaHeaderPrefix) && name.size() > kKafkaHeaderPrefix.size();
}
}  // namespace

std::string normal_path(std::string_view path) {
  return std::filesystem::path(path).lexically_normal().string();
}

std::string ConfigContext::output_path(const std::string& path, std::string owner, const toml::source_region& where) {
  auto [it, fresh] = outputs_.try_emplace(normal_path(path), Output{std::move(owner), where});
  return fresh ? std::string() : it->second.owner;
}

const char* type_name(const toml::node& node) { return type_name_of(node); }
size_t edit_distance(std::string_view a, std::string_view b) { return edit_distance_of(a, b); }

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

namespace {

// Where a name was first defined, for "duplicate" messages.
using NameLines = std::map<std::string, uint32_t, std::less<>>;

// Turns a parsed TOML document into a PipelineConfig. Sections are read in a fixed order
// (schema before aggregates) so later ones can check references into earlier ones.
class ConfigParser {
 public:
  ConfigParser(Diagnostics& diag, const ConfigKinds& kinds) : diag_(diag), kinds_(kinds) {}

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
    if (schema != nullptr) context_.schema = &config.schema;
    context_.aggregates = &config.aggregates;
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
    std::vector<std::string_view> names;
    for (const SourceConfigKind* k : kinds_.sources) names.push_back(k->name);
    const int t = r.choice_of("type", names, Need::required);
    const SourceConfigKind* kind = t >= 0 ? kinds_.sources[size_t(t)] : nullptr;
    if (kind != nullptr) source.type = SourceType{kind->name};
    r.choice("format", source.format, {{"ndjson", InputFormat::ndjson}});
    r.integer("line_bytes_max", source.line_bytes_max, limits::line_bytes_max_min,
              limits::line_bytes_max_max);
    if (kind != nullptr) kind->parse(r, source, context_);
    reject_other_kinds_keys(r, kind, kinds_.sources, "source");
    r.finish();
  }

  // Keys of the other kinds are named as misplaced rather than unknown: `path`
  // on a tcp source is a mix-up, not a typo. (kind: null when the type was
  // bad and already reported: then they pass without a second error.)
  template <typename Kind>
  void reject_other_kinds_keys(TableReader& r, const Kind* kind, const std::vector<const Kind*>& kinds,
                               std::string_view noun) {
    const std::string variant = kind != nullptr ? fmt::format("a {} {}", kind->name, noun) : std::string();
    std::vector<std::string_view> seen;  // a key of several other kinds is reported once
    for (const Kind* other : kinds) {
      if (other == kind) continue;
      for (std::string_view key : other->keys) {
        if (kind != nullptr && std::ranges::find(kind->keys, key) != kind->keys.end()) continue;  // shared
        if (std::ranges::find(seen, key) != seen.end()) continue;
        seen.push_back(key);
        if (kind != nullptr) {
          r.reject(key, variant);
        } else {
          r.ignore(key);
        }
      }
    }
  }

  void parse_schema(const toml::table& table, SchemaConfig& schema) {
    TableReader r(diag_, table, "[schema]");
    r.string_list("key", schema.key, Need::required, /*single_string_ok=*/true);
    for (const std::string& k : schema.key) {
      if (!k.starts_with("@kafka.")) continue;
      if (k != kKafkaKeyField && !is_header_field(k)) {
        r.error_at(*table.get("key"), "key",
                   fmt::format("unknown Kafka metadata field \"{}\"; a key can use \"{}\" and record "
                               "headers (\"{}<name>\")",
                               k, kKafkaKeyField, kKafkaHeaderPrefix));
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
      for (std::string_view key : {"optional", "default"}) t.reject(key, "the time field: every event needs its time");
      t.finish();
    }

    if (const toml::table* fields = r.subtable("fields")) {
      TableReader f(diag_, *fields, "[schema.fields]");
      for (const auto& [key, node] : *fields) {
        std::string_view name = key.str();
        FieldConfig field{std::string(name)};
        // Where the field is said to be optional (`optional` or `default`), if it is.
        const toml::node* presence = nullptr;
        if (!parse_field(f, name, node, field, presence)) continue;
        const bool is_key = std::ranges::find(schema.key, name) != schema.key.end();
        const bool is_header = is_header_field(name);
        if (name.empty()) {
          diag_.at(key.source(), "[schema.fields]: field names must not be empty");
        } else if (name.starts_with("@kafka.") && !is_header) {
          diag_.at(key.source(), fmt::format("[schema.fields]: \"{}\": of a Kafka record's metadata, "
                                             "a value field can be a header (\"{}<name>\"); the key "
                                             "can use \"{}\", the time \"{}\"",
                                             name, kKafkaHeaderPrefix, kKafkaKeyField, kKafkaTimestampField));
        } else if (presence != nullptr && (is_key || name == schema.time_field)) {
          diag_.at(presence->source(),
                   fmt::format("[schema.fields] {}: \"{}\" is {}, which every event must have: it "
                               "cannot be optional (key and time fields are not listed in [schema] fields)",
                               name, name, is_key ? "a key field" : "the time field"));
        } else if (is_key) {
          diag_.at(key.source(), fmt::format("\"{}\" is a key field; key fields must not also be "
                                             "listed in [schema] fields",
                                             name));
        } else if (is_header && field.type != FieldType::string) {
          const toml::node* type = node.is_table() ? node.as_table()->get("type") : &node;
          diag_.at(type->source(), fmt::format("[schema.fields] {}: a record header is text: its type "
                                               "must be \"string\", not \"{}\"",
                                               name, to_string(field.type)));
        } else {
          if (is_header && !kafka_meta_where_) kafka_meta_where_ = key.source();
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

    if (const size_t headers = schema.header_names().size(); headers > limits::header_fields_max) {
      const toml::node* where = table.get("fields") != nullptr ? table.get("fields") : table.get("key");
      r.error_at(*where, where == table.get("fields") ? "fields" : "key",
                 fmt::format("[schema] uses {} record headers (\"{}<name>\"); at most {} are supported",
                             headers, kKafkaHeaderPrefix, limits::header_fields_max));
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

  // One entry of [schema.fields]: a type name (`quantity = "int64"`: required),
  // or a table with the type and whether the field may be absent
  // (`{ type = "string", optional = true }`, `{ type = "int64", default = 0 }`).
  // False when its type is unknown (reported); presence: the `optional` or
  // `default` node that made it optional.
  bool parse_field(TableReader& f, std::string_view name, const toml::node& node, FieldConfig& field,
                   const toml::node*& presence) {
    auto type = [&](TableReader& r, std::string_view key, Need need) {
      return r.choice(key, field.type,
                      {{"int64", FieldType::int64}, {"float64", FieldType::float64}, {"string", FieldType::string}},
                      need);
    };
    if (node.is_string()) return type(f, name, Need::optional);
    f.find(name);
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      f.error_at(node, name,
                 fmt::format("expected a type (\"int64\", \"float64\" or \"string\") or a table like "
                             "{{ type = \"string\", optional = true }}, got {}",
                             type_name(node)));
      return false;
    }
    TableReader t(diag_, *table, fmt::format("[schema.fields] {}", name));
    const bool typed = type(t, "type", Need::required);
    bool optional = false;
    const bool has_optional = t.boolean("optional", optional);
    if (has_optional && optional) {
      field.presence = FieldPresence::optional;
      presence = table->get("optional");
    }
    if (const toml::node* value = t.find("default"); value != nullptr && typed) {
      if (has_optional && !optional) {
        t.error("optional", "a field with a default may be absent: optional = false contradicts it");
      } else if (parse_default(t, *value, field)) {
        field.presence = FieldPresence::defaulted;
        presence = value;
      }
    }
    t.finish();
    return typed;
  }

  // A field's default, of the field's type.
  bool parse_default(TableReader& t, const toml::node& value, FieldConfig& field) {
    switch (field.type) {
      case FieldType::int64:
        if (const auto* i = value.as_integer()) {
          field.default_int = i->get();
          return true;
        }
        break;
      case FieldType::float64:
        if (const auto* i = value.as_integer()) {
          field.default_float = double(i->get());
          return true;
        }
        if (const auto* d = value.as_floating_point()) {
          if (!std::isfinite(d->get())) {
            t.error_at(value, "default", "must be a finite number (results are JSON, which has no inf or nan)");
            return false;
          }
          field.default_float = d->get();
          return true;
        }
        break;
      case FieldType::string:
        if (const auto* str = value.as_string()) {
          field.default_string = str->get();
          return true;
        }
        break;
    }
    t.error_at(value, "default",
               fmt::format("expected {}, the field's type ({}), got {}",
                           field.type == FieldType::int64     ? "an integer"
                           : field.type == FieldType::float64 ? "a number"
                                                              : "a string",
                           to_string(field.type), type_name(value)));
    return false;
  }

  void parse_window(const toml::table& table, WindowConfig& window) {
    TableReader r(diag_, table, "[window]");
    std::vector<std::string_view> names;
    for (const WindowConfigKind* k : kinds_.windows) names.push_back(k->name);
    const int k = r.choice_of("kind", names);
    const WindowConfigKind* kind = nullptr;
    if (k >= 0) {
      kind = kinds_.windows[size_t(k)];
      window.kind = WindowKind{kind->name};
    } else if (table.get("kind") == nullptr) {
      for (const WindowConfigKind* w : kinds_.windows) {
        if (w->name == window.kind.name) kind = w;  // the default kind
      }
    }
    r.duration("size", window.size_ns, Zero::rejected, Need::required);
    r.duration("watermark_delay", window.watermark_delay_ns, Zero::allowed);
    r.duration("idle_timeout", window.idle_timeout_ns, Zero::allowed);
    if (kind != nullptr) {
      kind->parse(r, window);
    } else {
      // A bad kind was reported: the keys of every kind pass without a second error.
      for (const WindowConfigKind* w : kinds_.windows) {
        for (std::string_view key : w->keys) r.ignore(key);
      }
    }
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
    std::vector<std::string_view> names;
    for (const AggregateConfigKind* k : kinds_.aggregates) names.push_back(k->name);
    const int f = r.choice_of("fn", names, Need::required);
    const AggregateConfigKind* fn = f >= 0 ? kinds_.aggregates[size_t(f)] : nullptr;
    if (fn != nullptr) aggregate.fn = AggFn{fn->name};
    bool have_field = r.string("field", aggregate.field);
    if (fn != nullptr && !have_field && fn->needs_field && table.get("field") == nullptr) {
      r.missing("field", fmt::format("fn \"{}\" needs a field", fn->name));
    }
    if (have_field && schema_given) {
      check_aggregate_field(*table.get("field"), fn, schema, aggregate);
    }
    if (fn != nullptr && fn->parse != nullptr) fn->parse(r, aggregate);
    reject_other_kinds_keys(r, fn, kinds_.aggregates, "aggregate");
    r.finish();
  }

  void check_aggregate_field(const toml::node& field, const AggregateConfigKind* fn, const SchemaConfig& schema,
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
    } else if (fn != nullptr && fn->needs_field && !fn->accepts(schema.fields[size_t(index_in_schema)].type)) {
      std::string accepted;
      for (FieldType t : {FieldType::int64, FieldType::float64, FieldType::string}) {
        if (!fn->accepts(t)) continue;
        accepted += fmt::format("{}{}", accepted.empty() ? "" : " and ", to_string(t));
      }
      diag_.at(field.source(), fmt::format("aggregate \"{}\" cannot {} {} field \"{}\": fn \"{}\" "
                                           "takes {} fields",
                                           aggregate.name, fn->verb,
                                           to_string(schema.fields[size_t(index_in_schema)].type),
                                           aggregate.field, fn->name, accepted));
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
    std::vector<std::string_view> names;
    for (const SinkConfigKind* k : kinds_.sinks) names.push_back(k->name);
    const int t = r.choice_of("type", names, Need::required);
    const SinkConfigKind* kind = t >= 0 ? kinds_.sinks[size_t(t)] : nullptr;
    if (kind != nullptr) sink.type = SinkType{kind->name};
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

    if (kind != nullptr) kind->parse(r, sink, context_);
    reject_other_kinds_keys(r, kind, kinds_.sinks, "sink");
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
        const std::string owner =
            context_.claim_listen(fmt::format("{}:{}", address->host, address->port), "[metrics]");
        if (!owner.empty() && address->port != 0) {
          r.error("listen", fmt::format("\"{}\" is already used by source \"{}\"", listen, owner));
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
    r.number("max_ratio", dead_letter.max_ratio, 0.0, 1.0);
    r.finish();
  }

  // Checks between sections that need all of them parsed.
  void cross_check(const PipelineConfig& config) {
    auto kind_of = [&](const SourceConfig& src) -> const SourceConfigKind* {
      for (const SourceConfigKind* k : kinds_.sources) {
        if (k->name == src.type.name) return k;
      }
      return nullptr;
    };
    if (kafka_meta_where_) {
      for (const SourceConfig& src : config.sources) {
        const SourceConfigKind* k = kind_of(src);
        if (k != nullptr && !k->record_metadata) {
          diag_.at(*kafka_meta_where_,
                   fmt::format("[schema] uses Kafka record metadata (\"@kafka.*\"), but source "
                               "\"{}\" is a {} source; every source must be a Kafka source",
                               src.name, to_string(src.type)));
          break;
        }
      }
    }
    if (dead_letter_path_) {
      auto it = context_.outputs().find(normal_path(config.dead_letter.path));
      if (it != context_.outputs().end()) {
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
        const SourceConfigKind* k = kind_of(src);
        if (k != nullptr && k->connection_buffers && src.line_bytes_max > config.connection_buffer_bytes_max) {
          diag_.at(*connection_budget_where_,
                   fmt::format("connection_buffer_bytes_max ({}) is less than line_bytes_max ({}) of "
                               "source \"{}\": no connection could hold one of its longest lines",
                               config.connection_buffer_bytes_max, src.line_bytes_max, src.name));
        }
      }
    }
    // A sink truncates its file at start-up: writing to an input would destroy it.
    for (const auto& [path, owner] : context_.inputs()) {
      auto it = context_.outputs().find(normal_path(path));
      if (it != context_.outputs().end()) {
        diag_.at(it->second.where, fmt::format("{} would overwrite \"{}\", which {} reads",
                                               it->second.owner, path, owner));
      }
    }
  }

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
  const ConfigKinds& kinds_;
  ConfigContext context_;
  // Where [schema] first refers to "@kafka.*" metadata, if it does.
  std::optional<toml::source_region> kafka_meta_where_;
  std::optional<toml::source_region> dead_letter_path_;
  std::optional<toml::source_region> connection_budget_where_;
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

namespace {

ConfigResult parse_expanded(std::string_view text, std::string_view file_name, const ConfigKinds& kinds) {
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
  ConfigParser parser(diag, kinds);
  parser.parse(root, config);
  if (!diag.empty()) return std::unexpected(diag.take_sorted());
  return config;
}

}  // namespace

ConfigResult parse_config(std::string_view text, std::string_view file_name, const ConfigKinds& kinds) {
  const EnvExpansion env = expand_env(text, [](const std::string& name) { return std::getenv(name.c_str()); });
  if (!env.errors.empty()) {
    std::vector<ConfigError> errors;
    for (const EnvError& e : env.errors) errors.push_back({std::string(file_name), e.line, e.column, e.message});
    return std::unexpected(std::move(errors));
  }
  ConfigResult result = parse_expanded(env.text, file_name, kinds);
  if (!result && !env.substitutions.empty()) {
    // Columns as the file has them, not as the expanded text does.
    for (ConfigError& e : result.error()) {
      if (e.line > 0 && e.column > 0) e.column = file_column(env.substitutions, e.line, e.column);
    }
  }
  return result;
}

ConfigResult load_config(const std::string& path, const ConfigKinds& kinds) {
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
  return parse_config(text, path, kinds);
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

namespace {
// A TOML basic string: quotes, backslashes and control characters escaped.
std::string toml_quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (uint8_t(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\u{:04X}", unsigned(uint8_t(c)));
    } else {
      out += c;
    }
  }
  return out + "\"";
}
}  // namespace

std::string describe_schema(const SchemaConfig& schema) {
  std::string out = "key ";
  for (size_t i = 0; i < schema.key.size(); ++i) out += (i ? ", " : "") + schema.key[i];
  out += "; time " + schema.time_field;
  // The record timestamp is a number of milliseconds whatever the format says.
  if (schema.time_field != kKafkaTimestampField) out += fmt::format(" ({})", to_string(schema.time_format));
  if (schema.fields.empty()) return out;
  out += "; fields ";
  for (size_t i = 0; i < schema.fields.size(); ++i) {
    const FieldConfig& f = schema.fields[i];
    out += fmt::format("{}{} {}", i ? ", " : "", f.name, to_string(f.type));
    if (f.presence == FieldPresence::optional) {
      out += " optional";
    } else if (f.presence == FieldPresence::defaulted) {
      std::string value;
      switch (f.type) {
        case FieldType::int64: value = std::to_string(f.default_int); break;
        case FieldType::float64:
          value = fmt::format("{}", f.default_float);
          if (value.find_first_of(".en") == std::string::npos) value += ".0";
          break;
        case FieldType::string: value = toml_quoted(f.default_string); break;
      }
      out += " default " + value;
    }
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
