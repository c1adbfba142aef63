#include "core/config.h"
#include "dataflow/engine.h"
#include "dataflow/pipeline_config.h"
#include "io/source.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/timestamp.h"

namespace sluice {
namespace {

constexpr std::string_view kFullExample = R"([pipeline]
name = "sales-metrics"
shards = 0

[[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"
format = "ndjson"

[schema]
key = ["product_id"]
time = { field = "timestamp", format = "rfc3339" }
fields = { quantity = "int64", revenue = "float64", customer_id = "string" }

[window]
kind = "tumbling"
size = "5m"
watermark_delay = "10m"
idle_timeout = "30s"

[[aggregates]]
name = "total_quantity"
fn = "sum"
field = "quantity"

[[aggregates]]
name = "total_revenue"
fn = "sum"
field = "revenue"

[[aggregates]]
name = "events"
fn = "count"

[[sinks]]
name = "metrics"
type = "file"
path = "out/sales_metrics.ndjson"
format = "ndjson"

[dead_letter]
path = "out/dead_letter.ndjson"
)";

// The sections a valid pipeline needs beside its sources; tests vary one part at a time.
constexpr std::string_view kRest = R"(
[schema]
key = "product_id"
time = { field = "ts" }

[window]
size = "1m"

[[sinks]]
name = "out"
type = "stdout"
)";

// Every error of a failed parse, one per line, for assertion messages.
std::string describe(const ConfigResult& result) {
  std::string out;
  if (!result) {
    for (const auto& e : result.error()) out += e.to_string() + "\n";
  }
  return out;
}

// Parses `text`, failing the test with every error message if it does not parse.
PipelineConfig parse_ok(std::string_view text) {
  auto result = parse_pipeline_config(text, "test.toml");
  EXPECT_TRUE(result.has_value()) << describe(result);
  return result.value_or(PipelineConfig{});
}

std::string with_sources(std::string_view sources) {
  return std::string(sources) + std::string(kRest);
}

int64_t rfc3339(std::string_view text) {
  int64_t ns = 0;
  EXPECT_EQ(parse_rfc3339(text, ns), TimestampError::ok) << text;
  return ns;
}

TEST(Config, FullExampleParses) {
  PipelineConfig c = parse_ok(kFullExample);
  EXPECT_EQ(c.file, "test.toml");
  EXPECT_EQ(c.name, "sales-metrics");
  EXPECT_EQ(c.shards, 0u);

  ASSERT_EQ(c.sources.size(), 1u);
  const SourceConfig& pos = c.sources[0];
  EXPECT_EQ(pos.name, "pos");
  EXPECT_EQ(pos.type, SourceType::tcp);
  EXPECT_EQ(pos.format, InputFormat::ndjson);
  EXPECT_EQ(pos.tcp.host, "127.0.0.1");
  EXPECT_EQ(pos.tcp.port, 9400);
  EXPECT_EQ(pos.tcp.connections_max, limits::connections_max_default);
  EXPECT_EQ(pos.line_bytes_max, limits::line_bytes_max_default);

  EXPECT_EQ(c.schema.key, std::vector<std::string>{"product_id"});
  EXPECT_EQ(c.schema.time_field, "timestamp");
  EXPECT_EQ(c.schema.time_format, TimeFormat::rfc3339);
  ASSERT_EQ(c.schema.fields.size(), 3u);
  // Sorted by name, whatever the order in the file.
  EXPECT_EQ(c.schema.fields[0].name, "customer_id");
  EXPECT_EQ(c.schema.fields[0].type, FieldType::string);
  EXPECT_EQ(c.schema.fields[1].name, "quantity");
  EXPECT_EQ(c.schema.fields[1].type, FieldType::int64);
  EXPECT_EQ(c.schema.fields[2].name, "revenue");
  EXPECT_EQ(c.schema.fields[2].type, FieldType::float64);

  EXPECT_EQ(c.window.kind, WindowKind::tumbling);
  EXPECT_EQ(c.window.size_ns, 5 * 60 * kNsPerS);
  EXPECT_EQ(c.window.watermark_delay_ns, 10 * 60 * kNsPerS);
  EXPECT_EQ(c.window.idle_timeout_ns, 30 * kNsPerS);

  ASSERT_EQ(c.aggregates.size(), 3u);
  EXPECT_EQ(c.aggregates[0].name, "total_quantity");
  EXPECT_EQ(c.aggregates[0].fn, AggFn::sum);
  EXPECT_EQ(c.aggregates[0].field, "quantity");
  EXPECT_EQ(c.aggregates[0].field_index, 1);
  EXPECT_EQ(c.aggregates[1].name, "total_revenue");
  EXPECT_EQ(c.aggregates[1].fn, AggFn::sum);
  EXPECT_EQ(c.aggregates[1].field, "revenue");
  EXPECT_EQ(c.aggregates[1].field_index, 2);
  EXPECT_EQ(c.aggregates[2].name, "events");
  EXPECT_EQ(c.aggregates[2].fn, AggFn::count);
  EXPECT_EQ(c.aggregates[2].field, "");
  EXPECT_EQ(c.aggregates[2].field_index, -1);

  ASSERT_EQ(c.sinks.size(), 1u);
  EXPECT_EQ(c.sinks[0].name, "metrics");
  EXPECT_EQ(c.sinks[0].type, SinkType::file);
  EXPECT_EQ(c.sinks[0].path, "out/sales_metrics.ndjson");
  EXPECT_EQ(c.sinks[0].format, OutputFormat::ndjson);

  EXPECT_EQ(c.dead_letter.path, "out/dead_letter.ndjson");
  EXPECT_FALSE(c.dead_letter.append);
  EXPECT_FALSE(all_sources_finite(c));
}

TEST(Config, DefaultsApplyWhenKeysAreAbsent) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "in"
type = "tcp"
listen = "localhost:0"
)"));
  EXPECT_EQ(c.name, "sluice");
  EXPECT_EQ(c.shards, 0u);
  const SourceConfig& in = c.sources.at(0);
  EXPECT_EQ(in.format, InputFormat::ndjson);
  EXPECT_EQ(in.line_bytes_max, limits::line_bytes_max_default);
  EXPECT_EQ(in.tcp.connections_max, limits::connections_max_default);
  EXPECT_EQ(c.schema.time_format, TimeFormat::rfc3339);
  EXPECT_TRUE(c.schema.fields.empty());
  EXPECT_EQ(c.window.kind, WindowKind::tumbling);
  EXPECT_EQ(c.window.watermark_delay_ns, 0);
  EXPECT_EQ(c.window.idle_timeout_ns, 30 * kNsPerS);
  EXPECT_TRUE(c.aggregates.empty());
  const SinkConfig& out = c.sinks.at(0);
  EXPECT_EQ(out.type, SinkType::stdout_sink);
  EXPECT_EQ(out.path, "");
  EXPECT_EQ(out.format, OutputFormat::ndjson);
  EXPECT_EQ(out.order, RowOrder::none);
  EXPECT_EQ(out.flush_interval_ns, 100 * kNsPerMs);
  EXPECT_FALSE(out.append);
  EXPECT_EQ(out.buffer_bytes, limits::sink_buffer_bytes_default);
  EXPECT_EQ(c.dead_letter.path, "");
  EXPECT_FALSE(c.dead_letter.append);
}

TEST(Config, PipelineSettings) {
  PipelineConfig c = parse_ok(R"([pipeline]
name = "p"
shards = 256
)" + with_sources(R"(
[[sources]]
name = "in"
type = "tcp"
listen = "0.0.0.0:1"
)"));
  EXPECT_EQ(c.name, "p");
  EXPECT_EQ(c.shards, limits::shards_max);
}

TEST(Config, TcpSourceAddresses) {
  struct Case {
    std::string_view listen;
    std::string_view host;
    uint16_t port;
  };
  const Case cases[] = {
      {"127.0.0.1:9400", "127.0.0.1", 9400},
      {"0.0.0.0:65535", "0.0.0.0", 65535},
      {"localhost:0", "localhost", 0},
      {"[::1]:80", "::1", 80},
      {"[::]:9400", "::", 9400},
  };
  for (const auto& tc : cases) {
    PipelineConfig c = parse_ok(with_sources(fmt::format(R"(
[[sources]]
name = "in"
type = "tcp"
listen = "{}"
connections_max = 7
line_bytes_max = 64
)",
                                                         tc.listen)));
    ASSERT_EQ(c.sources.size(), 1u) << tc.listen;
    EXPECT_EQ(c.sources[0].tcp.host, tc.host);
    EXPECT_EQ(c.sources[0].tcp.port, tc.port);
    EXPECT_EQ(c.sources[0].tcp.connections_max, 7u);
    EXPECT_EQ(c.sources[0].line_bytes_max, 64u);
  }
}

TEST(Config, TcpSourcesMayShareListenPortZero) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "a"
type = "tcp"
listen = "127.0.0.1:0"

[[sources]]
name = "b"
type = "tcp"
listen = "127.0.0.1:0"
)"));
  EXPECT_EQ(c.sources.size(), 2u);
}

TEST(Config, FileSourceWithOnePath) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "in"
type = "file"
path = "data/sales.ndjson"
read_bytes = 4096
)"));
  const SourceConfig& in = c.sources.at(0);
  EXPECT_EQ(in.type, SourceType::file);
  EXPECT_EQ(in.file.paths, std::vector<std::string>{"data/sales.ndjson"});
  EXPECT_EQ(in.file.read_bytes, limits::read_bytes_min);
  EXPECT_TRUE(all_sources_finite(c));
}

TEST(Config, FileSourceWithPathsKeepsTheirOrder) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "in"
type = "file"
paths = ["b.ndjson", "a.ndjson", "c.ndjson"]
)"));
  const SourceConfig& in = c.sources.at(0);
  EXPECT_EQ(in.file.paths, (std::vector<std::string>{"b.ndjson", "a.ndjson", "c.ndjson"}));
  EXPECT_EQ(in.file.read_bytes, limits::read_bytes_default);
}

TEST(Config, GeneratorSourceWithEveryOption) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "gen"
type = "generator"
count = 500
rate = 100
products = 10
customers = 20
start = "2024-03-28T00:00:00Z"
step = "250ms"
jitter = "2s"
seed = 42
)"));
  const GeneratorSourceConfig& g = c.sources.at(0).generator;
  EXPECT_EQ(c.sources[0].type, SourceType::generator);
  EXPECT_EQ(g.count, 500u);
  EXPECT_EQ(g.rate, 100u);
  EXPECT_EQ(g.products, 10u);
  EXPECT_EQ(g.customers, 20u);
  EXPECT_EQ(g.start_ns, rfc3339("2024-03-28T00:00:00Z"));
  EXPECT_FALSE(g.start_now);
  EXPECT_EQ(g.step_ns, 250 * kNsPerMs);
  EXPECT_EQ(g.jitter_ns, 2 * kNsPerS);
  EXPECT_EQ(g.seed, 42u);
  EXPECT_TRUE(all_sources_finite(c));
}

TEST(Config, GeneratorSourceDefaults) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "gen"
type = "generator"
)"));
  const GeneratorSourceConfig& g = c.sources.at(0).generator;
  EXPECT_EQ(g.count, 1'000'000u);
  EXPECT_EQ(g.rate, 0u);
  EXPECT_EQ(g.products, 1000u);
  EXPECT_EQ(g.customers, 10000u);
  EXPECT_EQ(g.start_ns, rfc3339("2024-01-01T00:00:00Z"));
  EXPECT_FALSE(g.start_now);
  EXPECT_EQ(g.step_ns, kNsPerMs);
  EXPECT_EQ(g.jitter_ns, 0);
  EXPECT_EQ(g.seed, 1u);
}

TEST(Config, GeneratorStartNowAndUnlimitedCount) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "gen"
type = "generator"
start = "now"
count = 0
)"));
  EXPECT_TRUE(c.sources.at(0).generator.start_now);
  EXPECT_EQ(c.sources[0].generator.count, 0u);
  EXPECT_FALSE(all_sources_finite(c));
}

TEST(Config, EverySourceTypeTogether) {
  PipelineConfig c = parse_ok(with_sources(R"(
[[sources]]
name = "net"
type = "tcp"
listen = "127.0.0.1:9400"

[[sources]]
name = "disk"
type = "file"
path = "in.ndjson"

[[sources]]
name = "synthetic"
type = "generator"
)"));
  ASSERT_EQ(c.sources.size(), 3u);
  EXPECT_EQ(c.sources[0].type, SourceType::tcp);
  EXPECT_EQ(c.sources[1].type, SourceType::file);
  EXPECT_EQ(c.sources[2].type, SourceType::generator);
  EXPECT_FALSE(all_sources_finite(c));
}

constexpr std::string_view kGenerator = R"(
[[sources]]
name = "gen"
type = "generator"
)";

std::string with_schema(std::string_view schema) {
  return std::string(kGenerator) + std::string(schema) + R"(
[window]
size = "1m"

[[sinks]]
name = "out"
type = "stdout"
)";
}

TEST(Config, SchemaKeyAsString) {
  PipelineConfig c = parse_ok(with_schema(R"(
[schema]
key = "product_id"
time = { field = "ts" }
)"));
  EXPECT_EQ(c.schema.key, std::vector<std::string>{"product_id"});
}

TEST(Config, SchemaKeyAsArray) {
  PipelineConfig c = parse_ok(with_schema(R"(
[schema]
key = ["region", "product_id"]
time = { field = "ts" }
)"));
  EXPECT_EQ(c.schema.key, (std::vector<std::string>{"region", "product_id"}));
}

TEST(Config, SchemaTimeAsNormalTable) {
  PipelineConfig c = parse_ok(with_schema(R"(
[schema]
key = "k"

[schema.time]
field = "ts"
format = "epoch_ms"
)"));
  EXPECT_EQ(c.schema.time_field, "ts");
  EXPECT_EQ(c.schema.time_format, TimeFormat::epoch_ms);
}

TEST(Config, EveryTimeFormat) {
  struct Case {
    std::string_view name;
    TimeFormat format;
  };
  const Case cases[] = {
      {"rfc3339", TimeFormat::rfc3339},   {"epoch_s", TimeFormat::epoch_s},
      {"epoch_ms", TimeFormat::epoch_ms}, {"epoch_us", TimeFormat::epoch_us},
      {"epoch_ns", TimeFormat::epoch_ns},
  };
  for (const auto& tc : cases) {
    PipelineConfig c = parse_ok(with_schema(fmt::format(R"(
[schema]
key = "k"
time = {{ field = "ts", format = "{}" }}
)",
                                                        tc.name)));
    EXPECT_EQ(c.schema.time_format, tc.format) << tc.name;
  }
}

TEST(Config, FieldIndexFindsSortedFields) {
  PipelineConfig c = parse_ok(with_schema(R"(
[schema]
key = "k"
time = { field = "ts" }
fields = { zeta = "float64", alpha = "string", mid = "int64" }
)"));
  EXPECT_EQ(c.schema.field_index("alpha"), 0);
  EXPECT_EQ(c.schema.field_index("mid"), 1);
  EXPECT_EQ(c.schema.field_index("zeta"), 2);
  EXPECT_EQ(c.schema.field_index("k"), -1);
  EXPECT_EQ(c.schema.field_index(""), -1);
}

// Optional fields: a type alone is required; the table form says whether a
// field may be absent and what it then takes.
TEST(Config, OptionalAndDefaultedFields) {
  PipelineConfig c = parse_ok(with_schema(R"(
[schema]
key = "k"
time = { field = "ts" }

[schema.fields]
q = "int64"
customer = { type = "string", optional = true }
region = { type = "string", default = "anonymous" }
n = { type = "int64", default = -3 }
price = { type = "float64", default = 2 }
rate = { type = "float64", default = 0.5 }
note = { type = "string", optional = false }
tag = { type = "string", optional = true, default = "" }
)"));
  const auto& f = c.schema.fields;
  auto field = [&](std::string_view name) -> const FieldConfig& {
    const int i = c.schema.field_index(name);
    EXPECT_GE(i, 0) << name;
    return f[size_t(std::max(i, 0))];
  };
  ASSERT_EQ(f.size(), 8u);
  EXPECT_EQ(field("q").presence, FieldPresence::required);
  EXPECT_EQ(field("customer").presence, FieldPresence::optional);
  EXPECT_EQ(field("customer").type, FieldType::string);
  EXPECT_EQ(field("region").presence, FieldPresence::defaulted);
  EXPECT_EQ(field("region").default_string, "anonymous");
  EXPECT_EQ(field("n").presence, FieldPresence::defaulted);
  EXPECT_EQ(field("n").default_int, -3);
  EXPECT_EQ(field("price").presence, FieldPresence::defaulted);
  EXPECT_EQ(field("price").default_float, 2.0);  // an integer is a float64 default too
  EXPECT_EQ(field("rate").default_float, 0.5);
  EXPECT_EQ(field("note").presence, FieldPresence::required);
  EXPECT_EQ(field("note").type, FieldType::string);
  EXPECT_EQ(field("tag").presence, FieldPresence::defaulted);
  EXPECT_EQ(field("tag").default_string, "");
}

TEST(Config, DescribeSchemaShowsOptionalAndDefaults) {
  PipelineConfig c = parse_ok(with_schema(R"(
[schema]
key = ["region", "product_id"]
time = { field = "ts", format = "epoch_ms" }

[schema.fields]
q = "int64"
customer = { type = "string", optional = true }
label = { type = "string", default = "say \"hi\"\\" }
n = { type = "int64", default = -3 }
price = { type = "float64", default = 2 }
rate = { type = "float64", default = 0.25 }
)"));
  EXPECT_EQ(describe_schema(c.schema),
            "key region, product_id; time ts (epoch_ms); fields customer string optional, "
            "label string default \"say \\\"hi\\\"\\\\\", n int64 default -3, price float64 default 2.0, q int64, "
            "rate float64 default 0.25");
  PipelineConfig bare = parse_ok(with_schema(R"(
[schema]
key = "k"
time = { field = "ts" }
)"));
  EXPECT_EQ(describe_schema(bare.schema), "key k; time ts (rfc3339)");
}

TEST(Config, OptionalFieldsAsATable) {
  PipelineConfig c = parse_ok(with_schema(R"(
[schema]
key = "k"
time = { field = "ts" }

[schema.fields]
quantity = "int64"
customer_id = { type = "string", optional = true }

[schema.fields.revenue]
type = "float64"
default = 0.0
)"));
  ASSERT_EQ(c.schema.fields.size(), 3u);
  EXPECT_EQ(c.schema.fields[size_t(c.schema.field_index("customer_id"))].presence, FieldPresence::optional);
  EXPECT_EQ(c.schema.fields[size_t(c.schema.field_index("revenue"))].presence, FieldPresence::defaulted);
  EXPECT_EQ(c.schema.fields[size_t(c.schema.field_index("quantity"))].presence, FieldPresence::required);
}

TEST(Config, AggregatesOfEveryFunction) {
  PipelineConfig c = parse_ok(std::string(kGenerator) + R"(
[schema]
key = "product_id"
time = { field = "ts" }
fields = { quantity = "int64", revenue = "float64", customer_id = "string" }

[window]
size = "1m"

[[aggregates]]
name = "n"
fn = "count"

[[aggregates]]
name = "buyers"
fn = "count"
field = "customer_id"

[[aggregates]]
name = "q_min"
fn = "min"
field = "quantity"

[[aggregates]]
name = "q_max"
fn = "max"
field = "quantity"

[[aggregates]]
name = "r_avg"
fn = "avg"
field = "revenue"

[[sinks]]
name = "out"
type = "stdout"
)");
  ASSERT_EQ(c.aggregates.size(), 5u);
  EXPECT_EQ(c.aggregates[0].fn, AggFn::count);
  EXPECT_EQ(c.aggregates[0].field_index, -1);
  EXPECT_EQ(c.aggregates[1].fn, AggFn::count);
  EXPECT_EQ(c.aggregates[1].field_index, c.schema.field_index("customer_id"));
  EXPECT_EQ(c.aggregates[2].fn, AggFn::min);
  EXPECT_EQ(c.aggregates[2].field_index, c.schema.field_index("quantity"));
  EXPECT_EQ(c.aggregates[3].fn, AggFn::max);
  EXPECT_EQ(c.aggregates[4].fn, AggFn::avg);
  EXPECT_EQ(c.aggregates[4].field_index, c.schema.field_index("revenue"));
}

TEST(Config, SinksWithEveryOption) {
  PipelineConfig c = parse_ok(std::string(kGenerator) + R"(
[schema]
key = "k"
time = { field = "ts" }

[window]
size = "1m"

[[sinks]]
name = "file"
type = "file"
path = "out/a.csv"
format = "csv"
order = "key"
flush_interval = "0s"
append = true
buffer_bytes = 65536

[[sinks]]
name = "console"
type = "stdout"
format = "ndjson"
order = "none"
buffer_bytes = 1073741824

[dead_letter]
path = "out/dead.ndjson"
append = true
)");
  ASSERT_EQ(c.sinks.size(), 2u);
  const SinkConfig& file = c.sinks[0];
  EXPECT_EQ(file.type, SinkType::file);
  EXPECT_EQ(file.path, "out/a.csv");
  EXPECT_EQ(file.format, OutputFormat::csv);
  EXPECT_EQ(file.order, RowOrder::key);
  EXPECT_EQ(file.flush_interval_ns, 0);
  EXPECT_TRUE(file.append);
  EXPECT_EQ(file.buffer_bytes, 65536u);
  EXPECT_EQ(c.sinks[1].type, SinkType::stdout_sink);
  EXPECT_EQ(c.sinks[1].buffer_bytes, 1u << 30);
  EXPECT_EQ(c.dead_letter.path, "out/dead.ndjson");
  EXPECT_TRUE(c.dead_letter.append);
}

TEST(Config, ToStringGivesTomlSpelling) {
  EXPECT_STREQ(to_string(SourceType::tcp), "tcp");
  EXPECT_STREQ(to_string(SourceType::file), "file");
  EXPECT_STREQ(to_string(SourceType::generator), "generator");
  EXPECT_STREQ(to_string(FieldType::int64), "int64");
  EXPECT_STREQ(to_string(FieldType::float64), "float64");
  EXPECT_STREQ(to_string(FieldType::string), "string");
  EXPECT_STREQ(to_string(AggFn::count), "count");
  EXPECT_STREQ(to_string(AggFn::sum), "sum");
  EXPECT_STREQ(to_string(AggFn::min), "min");
  EXPECT_STREQ(to_string(AggFn::max), "max");
  EXPECT_STREQ(to_string(AggFn::avg), "avg");
}

TEST(Config, ErrorToString) {
  EXPECT_EQ((ConfigError{"p.toml", 3, 7, "bad"}).to_string(), "p.toml:3:7: bad");
  EXPECT_EQ((ConfigError{"p.toml", 0, 0, "gone"}).to_string(), "p.toml: gone");
}

TEST(Config, LoadConfigReadsFile) {
  char path[] = "/tmp/sluice_config_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, kFullExample.data(), kFullExample.size()), ssize_t(kFullExample.size()));
  close(fd);
  auto result = load_pipeline_config(path);
  unlink(path);
  ASSERT_TRUE(result.has_value()) << describe(result);
  EXPECT_EQ(result->file, path);
  EXPECT_EQ(result->name, "sales-metrics");
  EXPECT_EQ(result->sources.size(), 1u);
}

TEST(Config, LoadConfigNamesFileInErrors) {
  char path[] = "/tmp/sluice_config_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  constexpr std::string_view kText = "colour = 1\n";
  ASSERT_EQ(write(fd, kText.data(), kText.size()), ssize_t(kText.size()));
  close(fd);
  auto result = load_pipeline_config(path);
  unlink(path);
  ASSERT_FALSE(result.has_value());
  ASSERT_FALSE(result.error().empty());
  EXPECT_EQ(result.error()[0].file, path);
}

// --- Durations ---

TEST(Duration, ParsesValidText) {
  struct Case {
    std::string_view text;
    int64_t ns;
  };
  const Case cases[] = {
      {"0s", 0},
      {"0ns", 0},
      {"1ns", 1},
      {"250ms", 250 * kNsPerMs},
      {"1500us", 1500 * kNsPerUs},
      {"30s", 30 * kNsPerS},
      {"5m", 5 * 60 * kNsPerS},
      {"1h30m", 90 * 60 * kNsPerS},
      {"2d", 2 * 86400 * kNsPerS},
      {"1d2h3m4s5ms6us7ns", 86400 * kNsPerS + 2 * 3600 * kNsPerS + 3 * 60 * kNsPerS + 4 * kNsPerS +
                                5 * kNsPerMs + 6 * kNsPerUs + 7},
      {"90s", 90 * kNsPerS},  // groups need not be normalised
      {"1s1s", 2 * kNsPerS},  // nor unique
      {"007s", 7 * kNsPerS},
      {"9223372036854775807ns", INT64_MAX},
  };
  for (const auto& tc : cases) {
    auto ns = parse_duration(tc.text);
    ASSERT_TRUE(ns.has_value()) << tc.text << ": " << (ns ? "" : ns.error());
    EXPECT_EQ(*ns, tc.ns) << tc.text;
  }
}

TEST(Duration, RejectsInvalidText) {
  struct Case {
    std::string_view text;
    std::string_view message;  // a substring of the error
  };
  const Case cases[] = {
      {"", "empty"},
      {"5", "missing unit in \"5\""},
      {"1h30", "missing unit in \"1h30\""},
      {"5min", "unknown unit \"min\" in \"5min\""},
      {"5S", "unknown unit \"S\""},
      {"5 minutes", "unexpected character ' '"},
      {" 5s", "unexpected character ' '"},
      {"5s ", "unexpected character ' '"},
      {"-5s", "no sign"},
      {"+5s", "no sign"},
      {"1.5s", "fractions"},
      {"s", "missing number before \"s\""},
      {"9223372036854775808ns", "too long"},
      {"106752d", "too long"},
      {"99999999999999999999s", "too long"},
      {"106751d23h47m16s854ms775us808ns", "too long"},
  };
  for (const auto& tc : cases) {
    auto ns = parse_duration(tc.text);
    ASSERT_FALSE(ns.has_value()) << tc.text;
    EXPECT_NE(ns.error().find(tc.message), std::string::npos)
        << tc.text << ": got \"" << ns.error() << "\"";
  }
}

TEST(Duration, FormatsWithLargestExactUnits) {
  struct Case {
    int64_t ns;
    std::string_view text;
  };
  const Case cases[] = {
      {0, "0s"},
      {1, "1ns"},
      {250 * kNsPerMs, "250ms"},
      {1500 * kNsPerUs, "1500us"},
      {1500 * kNsPerMs, "1500ms"},
      {30 * kNsPerS, "30s"},
      {330 * kNsPerS, "5m30s"},
      {5 * 60 * kNsPerS, "5m"},
      {90 * 60 * kNsPerS, "1h30m"},
      {2 * 86400 * kNsPerS, "2d"},
      {86400 * kNsPerS + 1 * kNsPerS, "1d1s"},
      {-30 * kNsPerS, "-30s"},
  };
  for (const auto& tc : cases) EXPECT_EQ(format_duration(tc.ns), tc.text) << tc.ns;
}

TEST(Duration, FormatThenParseRoundTrips) {
  const int64_t values[] = {0,
                            1,
                            999,
                            kNsPerUs,
                            kNsPerMs + 1,
                            kNsPerS,
                            kNsPerS + kNsPerMs,
                            59 * kNsPerS,
                            61 * kNsPerS,
                            3600 * kNsPerS + 1,
                            86399 * kNsPerS,
                            365 * 86400 * kNsPerS,
                            INT64_MAX,
                            INT64_MAX - INT64_MAX % kNsPerS};
  for (int64_t ns : values) {
    std::string text = format_duration(ns);
    auto back = parse_duration(text);
    ASSERT_TRUE(back.has_value()) << ns << " -> " << text << ": " << (back ? "" : back.error());
    EXPECT_EQ(*back, ns) << text;
  }
}

TEST(Duration, ParseThenFormatIsCanonical) {
  EXPECT_EQ(format_duration(parse_duration("90s").value()), "1m30s");
  EXPECT_EQ(format_duration(parse_duration("1000ms").value()), "1s");
  EXPECT_EQ(format_duration(parse_duration("24h").value()), "1d");
}

TEST(Config, KafkaSourceWithEveryOption) {
  PipelineConfig cfg = parse_ok(R"([[sources]]
name = "sales"
type = "kafka"
brokers = ["127.0.0.1:9092", "localhost:19093", "[::1]:9094"]
topic = "sales_events"
start = "2024-03-28T10:00:00.250Z"
stop = "end"
offset_reset = "fail"
client_id = "pos-metrics"
max_wait = "250ms"
min_bytes = 1024
max_bytes = 8388608
partition_max_bytes = 262144

[schema]
key = ["@kafka.key"]
time = { field = "@kafka.timestamp" }
fields = { quantity = "int64" }

[window]
size = "5m"

[[sinks]]
name = "out"
type = "stdout"
)");
  ASSERT_EQ(cfg.sources.size(), 1u);
  const SourceConfig& s = cfg.sources[0];
  EXPECT_EQ(s.type, SourceType::kafka);
  const KafkaSourceConfig& k = s.kafka;
  ASSERT_EQ(k.brokers.size(), 3u);
  EXPECT_EQ(k.brokers[0].host, "127.0.0.1");
  EXPECT_EQ(k.brokers[0].port, 9092);
  EXPECT_EQ(k.brokers[1].host, "localhost");
  EXPECT_EQ(k.brokers[1].port, 19093);
  EXPECT_EQ(k.brokers[2].port, 9094);
  EXPECT_EQ(k.topic, "sales_events");
  EXPECT_EQ(k.start, KafkaSourceConfig::Start::time);
  // 2024-03-28T10:00:00Z is 1711620000 s after the epoch.
  EXPECT_EQ(k.start_time_ms, 1711620000LL * 1000 + 250);
  EXPECT_EQ(k.stop, KafkaSourceConfig::Stop::end);
  EXPECT_TRUE(find_source_kind(s.type)->finite(s));
  EXPECT_TRUE(all_sources_finite(cfg));
  EXPECT_EQ(k.offset_reset, KafkaSourceConfig::OffsetReset::fail);
  EXPECT_EQ(k.client_id, "pos-metrics");
  EXPECT_EQ(k.max_wait_ns, 250'000'000);
  EXPECT_EQ(k.min_bytes, 1024u);
  EXPECT_EQ(k.max_bytes, 8388608u);
  EXPECT_EQ(k.partition_max_bytes, 262144u);
  EXPECT_EQ(cfg.schema.key, std::vector<std::string>{"@kafka.key"});
  EXPECT_EQ(cfg.schema.time_field, "@kafka.timestamp");
}

TEST(Config, KafkaSourceDefaults) {
  PipelineConfig cfg = parse_ok(with_sources(R"([[sources]]
name = "k"
type = "kafka"
brokers = "127.0.0.1:9092"
topic = "t"
)"));
  const KafkaSourceConfig& k = cfg.sources[0].kafka;
  EXPECT_EQ(k.start, KafkaSourceConfig::Start::earliest);
  EXPECT_EQ(k.stop, KafkaSourceConfig::Stop::none);
  EXPECT_FALSE(find_source_kind(cfg.sources[0].type)->finite(cfg.sources[0]));
  EXPECT_EQ(k.offset_reset, KafkaSourceConfig::OffsetReset::earliest);
  EXPECT_EQ(k.client_id, "sluice");
  EXPECT_EQ(k.max_wait_ns, 500'000'000);
  EXPECT_EQ(k.min_bytes, 1u);
  EXPECT_EQ(k.max_bytes, 16u << 20);
  EXPECT_EQ(k.partition_max_bytes, 1u << 20);
}

// Record headers as a key part and as value fields (optional ones too),
// and the order the decoder and the Kafka source agree on.
TEST(Config, KafkaHeadersAsKeyAndFields) {
  PipelineConfig cfg = parse_ok(R"([[sources]]
name = "k"
type = "kafka"
brokers = "127.0.0.1:9092"
topic = "t"

[schema]
key = ["product_id", "@kafka.header.source"]
time = { field = "@kafka.timestamp" }

[schema.fields]
quantity = "int64"
"@kafka.header.version" = { type = "string", optional = true }
"@kafka.header.region" = "string"
"@kafka.header.tier" = { type = "string", default = "basic" }

[window]
size = "1m"

[[aggregates]]
name = "versions"
fn = "approx_count_distinct"
field = "@kafka.header.version"

[[sinks]]
name = "out"
type = "stdout"
)");
  EXPECT_EQ(cfg.schema.key, (std::vector<std::string>{"product_id", "@kafka.header.source"}));
  ASSERT_EQ(cfg.schema.fields.size(), 4u);
  const int version = cfg.schema.field_index("@kafka.header.version");
  ASSERT_GE(version, 0);
  EXPECT_EQ(cfg.schema.fields[size_t(version)].presence, FieldPresence::optional);
  EXPECT_EQ(cfg.aggregates[0].field_index, version);
  // Key headers first, then the fields' in field order (sorted by name).
  EXPECT_EQ(cfg.schema.header_names(), (std::vector<std::string>{"source", "region", "tier", "version"}));
}

TEST(Config, MetricsSection) {
  PipelineConfig off = parse_ok(with_sources(R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"
)"));
  EXPECT_FALSE(off.metrics.enabled);
  PipelineConfig defaults = parse_ok(with_sources(R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"
)") + "\n[metrics]\n");
  EXPECT_TRUE(defaults.metrics.enabled);
  EXPECT_EQ(defaults.metrics.host, "127.0.0.1");  // loopback unless configured otherwise
  EXPECT_EQ(defaults.metrics.port, 9464);
  PipelineConfig set = parse_ok(with_sources(R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"
)") + "\n[metrics]\nlisten = \"0.0.0.0:19464\"\n");
  EXPECT_EQ(set.metrics.host, "0.0.0.0");
  EXPECT_EQ(set.metrics.port, 19464);
}

}  // namespace
}  // namespace sluice
