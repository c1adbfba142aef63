// Failure paths of the config parser: every error names the exact line and column of the node it
// is about. Expected positions are computed from each test's own text with locate(), never
// copied from the parser's output.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "dataflow/pipeline_config.h"

namespace sluice {
namespace {

struct Position {
  uint32_t line = 0;
  uint32_t column = 0;
};

// 1-based line and column of the `occurrence`-th appearance of `needle` in `text`.
Position locate(std::string_view text, std::string_view needle, int occurrence = 1) {
  size_t at = std::string_view::npos;
  for (size_t from = 0; occurrence > 0; --occurrence, from = at + 1) {
    at = text.find(needle, from);
    if (at == std::string_view::npos) {
      ADD_FAILURE() << "\"" << needle << "\" not found in the test text";
      return {};
    }
  }
  Position p{1, 1};
  for (size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

std::string describe(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += "\n  " + e.to_string();
  return out;
}

std::vector<ConfigError> errors_of(std::string_view text) {
  auto result = parse_pipeline_config(text, "bad.toml");
  if (result) {
    ADD_FAILURE() << "expected errors, but the config parsed";
    return {};
  }
  return result.error();
}

::testing::AssertionResult is_error(const ConfigError& e, Position at, std::string_view message) {
  if (e.file == "bad.toml" && e.line == at.line && e.column == at.column &&
      e.message.find(message) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "expected bad.toml:" << at.line << ":" << at.column
                                       << ": ...\"" << message << "\"..., got " << e.to_string();
}

// `text` yields exactly one error, at `at`, whose message contains `message`.
::testing::AssertionResult has_one_error(std::string_view text, Position at,
                                         std::string_view message) {
  std::vector<ConfigError> errors = errors_of(text);
  if (errors.size() != 1) {
    return ::testing::AssertionFailure()
           << "expected one error, got " << errors.size() << ":" << describe(errors);
  }
  return is_error(errors[0], at, message);
}

// A valid pipeline in parts; each test replaces or extends one part.
constexpr std::string_view kSource = R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"
)";

constexpr std::string_view kSchema = R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { quantity = "int64", revenue = "float64", customer_id = "string" }
)";

constexpr std::string_view kWindow = R"(
[window]
size = "5m"
)";

constexpr std::string_view kSink = R"(
[[sinks]]
name = "metrics"
type = "stdout"
)";

std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

std::string with_source(std::string_view source) {
  return join({source, kSchema, kWindow, kSink});
}
std::string with_schema(std::string_view schema) {
  return join({kSource, schema, kWindow, kSink});
}
std::string with_window(std::string_view window) {
  return join({kSource, kSchema, window, kSink});
}
std::string with_sinks(std::string_view sinks) {
  return join({kSource, kSchema, kWindow, sinks});
}

TEST(ConfigError, BaseConfigIsValid) {
  EXPECT_TRUE(parse_pipeline_config(join({kSource, kSchema, kWindow, kSink}), "bad.toml").has_value());
}

// --- Unknown keys ---

TEST(ConfigError, UnknownKeyAtTopLevel) {
  std::string text = join({"colour = \"blue\"\n", kSource, kSchema, kWindow, kSink});
  EXPECT_TRUE(has_one_error(text, {1, 1}, "unknown key \"colour\" at the top level"));
}

TEST(ConfigError, UnknownKeyInWindow) {
  std::string text = with_window(R"(
[window]
size = "5m"
sise = "5m"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "sise"),
                            "unknown key \"sise\" in [window]; did you mean \"size\"?"));
}

TEST(ConfigError, UnknownKeyInSource) {
  std::string text = with_source(R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"
  backlog = 5
)");
  Position at = locate(text, "backlog");
  EXPECT_EQ(at.column, 3u);
  EXPECT_TRUE(has_one_error(text, at, "unknown key \"backlog\" in [[sources]] \"pos\""));
}

TEST(ConfigError, UnknownKeyInInlineTable) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp", fromat = "epoch_s" }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "fromat"),
                            "unknown key \"fromat\" in [schema.time]; did you mean \"format\"?"));
}

TEST(ConfigError, UnknownSubtableIsUnknownKey) {
  std::string text = join({kSource, kSchema, kWindow, "[window.extra]\nx = 1\n", kSink});
  EXPECT_TRUE(has_one_error(text, locate(text, "extra"), "unknown key \"extra\" in [window]"));
}

// --- Types and values ---

TEST(ConfigError, WrongTypeForInteger) {
  std::string text = join({"[pipeline]\nshards = \"4\"\n", kSource, kSchema, kWindow, kSink});
  // Reported at the value: line 2, after `shards = `.
  EXPECT_TRUE(has_one_error(text, {2, 10}, "[pipeline] shards: expected an integer, got string"));
}

TEST(ConfigError, WrongTypeForString) {
  std::string text = with_source(R"([[sources]]
name = 7
type = "tcp"
listen = "127.0.0.1:9400"
)");
  EXPECT_TRUE(has_one_error(text, {2, 8}, "name: expected a string, got integer"));
}

TEST(ConfigError, WrongTypeForBoolean) {
  std::string text = join({kSource, kSchema, kWindow, kSink, "[dead_letter]\nappend = \"yes\"\n"});
  EXPECT_TRUE(has_one_error(text, locate(text, "\"yes\""),
                            "[dead_letter] append: expected true or false, got string"));
}

TEST(ConfigError, WrongTypeForSection) {
  std::string text = join({"sinks = \"stdout\"\n", kSource, kSchema, kWindow});
  EXPECT_TRUE(
      has_one_error(text, {1, 9}, "sinks: expected an array of tables ([[sinks]]), got string"));
}

TEST(ConfigError, UnknownEnumValue) {
  std::string text = with_source(R"([[sources]]
name = "pos"
type = "udp"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"udp\""),
                            "type: expected one of \"tcp\", \"file\", \"generator\", \"kafka\", got \"udp\""));
}

TEST(ConfigError, UnknownFieldType) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { quantity = "int" }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"int\""),
                            "[schema.fields] quantity: expected one of \"int64\""));
}

TEST(ConfigError, EmptyName) {
  std::string text = with_sinks(R"(
[[sinks]]
name = ""
type = "stdout"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"\""), "name: must not be empty"));
}

// --- Durations ---

TEST(ConfigError, DurationAsIntegerSuggestsString) {
  std::string text = with_window(R"(
[window]
size = 300
)");
  Position at = locate(text, "300");
  EXPECT_TRUE(has_one_error(text, at,
                            "[window] size: expected a duration string like \"5m\", got integer"));
  EXPECT_TRUE(has_one_error(text, at, "\"300s\""));
}

TEST(ConfigError, DurationAsFloat) {
  std::string text = with_window(R"(
[window]
size = "5m"
watermark_delay = 1.5
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "1.5"),
                            "watermark_delay: expected a duration string like \"5m\", got float"));
}

TEST(ConfigError, BadDuration) {
  std::string text = with_window(R"(
[window]
size = "5 minutes"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"5 minutes\""),
                            "[window] size: bad duration \"5 minutes\": "));
}

TEST(ConfigError, DurationWithUnknownUnit) {
  std::string text = with_window(R"(
[window]
size = "5m"
idle_timeout = "5min"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"5min\""), "unknown unit \"min\""));
}

TEST(ConfigError, ZeroWindowSize) {
  std::string text = with_window(R"(
[window]
size = "0s"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"0s\""), "[window] size: must be greater than 0"));
}

TEST(ConfigError, ZeroGeneratorStep) {
  std::string text = with_source(R"([[sources]]
name = "gen"
type = "generator"
step = "0ms"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"0ms\""), "step: must be greater than 0"));
}

// --- Integer ranges ---

TEST(ConfigError, OutOfRangeShards) {
  std::string text = join({"[pipeline]\nshards = 1000\n", kSource, kSchema, kWindow, kSink});
  EXPECT_TRUE(has_one_error(text, {2, 10}, "[pipeline] shards: 1000 is out of range 0..256"));
}

TEST(ConfigError, OutOfRangeLineBytes) {
  std::string text = with_source(R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"
line_bytes_max = 10
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "10\n"), "10 is out of range 64..67108864"));
}

TEST(ConfigError, OutOfRangeBelowMinimumOnly) {
  std::string text = with_source(R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"
connections_max = 0
)");
  // Line 5, after `connections_max = ` (18 characters).
  EXPECT_TRUE(
      has_one_error(text, {5, 19}, "connections_max: 0 is out of range: must be at least 1"));
}

TEST(ConfigError, OutOfRangeSinkBuffer) {
  std::string text = with_sinks(R"(
[[sinks]]
name = "metrics"
type = "stdout"
buffer_bytes = 1024
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "1024"), "1024 is out of range 65536..1073741824"));
}

TEST(ConfigError, NegativeGeneratorCount) {
  std::string text = with_source(R"([[sources]]
name = "gen"
type = "generator"
count = -1
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "-1"), "count: -1 is out of range"));
}

// --- Missing keys: reported at the table that lacks them ---

TEST(ConfigError, MissingWindowSize) {
  std::string text = with_window(R"(
[window]
kind = "tumbling"
)");
  EXPECT_TRUE(
      has_one_error(text, locate(text, "[window]"), "missing required key \"size\" in [window]"));
}

TEST(ConfigError, MissingSourceType) {
  std::string text = with_source(R"([[sources]]
name = "pos"
listen = "127.0.0.1:9400"
)");
  EXPECT_TRUE(has_one_error(text, {1, 1}, "missing required key \"type\" in [[sources]] \"pos\""));
}

TEST(ConfigError, MissingSourceNameUsesIndex) {
  std::string text =
      join({kSource, "\n[[sources]]\ntype = \"generator\"\n", kSchema, kWindow, kSink});
  EXPECT_TRUE(has_one_error(text, locate(text, "[[sources]]", 2),
                            "missing required key \"name\" in [[sources]] #2"));
}

TEST(ConfigError, MissingTcpListen) {
  std::string text = with_source(R"([[sources]]
name = "pos"
type = "tcp"
)");
  EXPECT_TRUE(has_one_error(text, {1, 1}, "missing required key \"listen\""));
}

TEST(ConfigError, MissingTimeField) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { format = "epoch_s" }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "{ format"),
                            "missing required key \"field\" in [schema.time]"));
}

TEST(ConfigError, MissingSchemaAtTopOfFile) {
  std::string text = join({kSource, kWindow, kSink});
  EXPECT_TRUE(has_one_error(text, {1, 1}, "missing required key \"schema\" at the top level"));
}

TEST(ConfigError, MissingSinks) {
  std::string text = join({kSource, kSchema, kWindow});
  EXPECT_TRUE(has_one_error(text, {1, 1}, "missing [[sinks]]: at least one sink is required"));
}

TEST(ConfigError, AggregateFunctionNeedsField) {
  std::string text = join({kSource, kSchema, kWindow, R"(
[[aggregates]]
name = "total"
fn = "sum"
)",
                           kSink});
  EXPECT_TRUE(has_one_error(text, locate(text, "[[aggregates]]"),
                            "missing required key \"field\" in [[aggregates]] \"total\" "
                            "(fn \"sum\" needs a field)"));
}

// --- Keys of another variant ---

TEST(ConfigError, FileKeyOnTcpSource) {
  std::string text = with_source(R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"
path = "data/sales.ndjson"
)");
  EXPECT_TRUE(has_one_error(text, {5, 1}, "key \"path\" is not valid for a tcp source"));
}

TEST(ConfigError, TcpKeyOnGeneratorSource) {
  std::string text = with_source(R"([[sources]]
name = "gen"
type = "generator"
connections_max = 4
)");
  EXPECT_TRUE(
      has_one_error(text, {4, 1}, "key \"connections_max\" is not valid for a generator source"));
}

TEST(ConfigError, PathOnStdoutSink) {
  std::string text = with_sinks(R"(
[[sinks]]
name = "metrics"
type = "stdout"
path = "out/x.ndjson"
)");
  EXPECT_TRUE(
      has_one_error(text, locate(text, "path ="), "key \"path\" is not valid for a stdout sink"));
}

TEST(ConfigError, FileSourceWithPathAndPaths) {
  std::string text = with_source(R"([[sources]]
name = "in"
type = "file"
path = "a.ndjson"
paths = ["a.ndjson", "b.ndjson"]
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "[\"a"),
                            "paths: give either \"path\" or \"paths\", not both"));
}

TEST(ConfigError, FileSourceWithNeitherPathNorPaths) {
  std::string text = with_source(R"([[sources]]
name = "in"
type = "file"
)");
  EXPECT_TRUE(has_one_error(text, {1, 1}, "a file source needs \"path\" or \"paths\""));
}

TEST(ConfigError, FileSourceWithEmptyPaths) {
  std::string text = with_source(R"([[sources]]
name = "in"
type = "file"
paths = []
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "[]"), "paths: expected a non-empty array"));
}

// --- Schema ---

TEST(ConfigError, DuplicateKeyField) {
  std::string text = with_schema(R"(
[schema]
key = ["region", "region"]
time = { field = "timestamp" }
)");
  EXPECT_TRUE(
      has_one_error(text, locate(text, "\"region\"", 2), "key: \"region\" is listed twice"));
}

TEST(ConfigError, KeyFieldAlsoInFields) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { quantity = "int64", product_id = "int64" }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "product_id", 2), "\"product_id\" is a key field"));
}

TEST(ConfigError, TimeFieldIsKeyField) {
  std::string text = with_schema(R"(
[schema]
key = ["timestamp"]
time = { field = "timestamp" }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"timestamp\"", 2),
                            "time field \"timestamp\" must not also be a key field"));
}

TEST(ConfigError, TimeFieldInFields) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "ts" }
fields = { ts = "int64" }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"ts\""),
                            "time field \"ts\" must not also be listed in [schema] fields"));
}

// --- Optional fields ---

TEST(ConfigError, OptionalFieldWithoutType) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { quantity = "int64", customer_id = { optional = true } }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "{ optional"),
                            "missing required key \"type\" in [schema.fields] customer_id"));
}

TEST(ConfigError, FieldThatIsNeitherATypeNorATable) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { quantity = 64 }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "64"),
                            "[schema.fields] quantity: expected a type (\"int64\", \"float64\" or \"string\") or "
                            "a table like { type = \"string\", optional = true }, got integer"));
}

TEST(ConfigError, UnknownKeyInAFieldTable) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { customer_id = { type = "string", optional = true, defualt = "x" } }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "defualt"),
                            "unknown key \"defualt\" in [schema.fields] customer_id; did you mean \"default\"?"));
}

TEST(ConfigError, OptionalMustBeABoolean) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { customer_id = { type = "string", optional = "yes" } }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"yes\""),
                            "[schema.fields] customer_id optional: expected true or false, got string"));
}

TEST(ConfigError, DefaultOfAnotherType) {
  struct Case {
    std::string_view field;
    std::string_view message;
  };
  const Case cases[] = {
      {R"({ type = "int64", default = "0" })", "default: expected an integer, the field's type (int64), got string"},
      {R"({ type = "int64", default = 1.5 })", "default: expected an integer, the field's type (int64), got float"},
      {R"({ type = "float64", default = "1.5" })", "default: expected a number, the field's type (float64), got string"},
      {R"({ type = "float64", default = inf })", "default: must be a finite number"},
      {R"({ type = "string", default = 17 })", "default: expected a string, the field's type (string), got integer"},
      {R"({ type = "string", default = false })", "default: expected a string, the field's type (string), got boolean"},
  };
  for (const Case& c : cases) {
    std::string text = with_schema(fmt::format(R"(
[schema]
key = ["product_id"]
time = {{ field = "timestamp" }}
fields = {{ x = {} }}
)",
                                               c.field));
    const std::string_view value = c.field.substr(c.field.find("default = ") + 10);
    EXPECT_TRUE(has_one_error(text, locate(text, value.substr(0, value.find(' '))), c.message)) << c.field;
  }
}

TEST(ConfigError, DefaultWithOptionalFalse) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "timestamp" }
fields = { region = { type = "string", optional = false, default = "eu" } }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "false"),
                            "optional: a field with a default may be absent: optional = false contradicts it"));
}

TEST(ConfigError, KeyFieldCannotBeOptional) {
  for (std::string_view presence : {"optional = true", "default = 0"}) {
    std::string text = with_schema(fmt::format(R"(
[schema]
key = ["product_id"]
time = {{ field = "timestamp" }}
fields = {{ quantity = "int64", product_id = {{ type = "int64", {} }} }}
)",
                                               presence));
    Position value = locate(text, presence);  // the value of `optional` or `default`
    value.column += uint32_t(presence.find("= ") + 2);
    EXPECT_TRUE(has_one_error(text, value,
                              "[schema.fields] product_id: \"product_id\" is a key field, which every event "
                              "must have: it cannot be optional"))
        << presence;
  }
}

TEST(ConfigError, TimeFieldCannotBeOptional) {
  std::string text = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "ts" }
fields = { ts = { type = "string", optional = true } }
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "true"),
                            "\"ts\" is the time field, which every event must have: it cannot be optional"));
  std::string in_time = with_schema(R"(
[schema]
key = ["product_id"]
time = { field = "ts", optional = true }
)");
  EXPECT_TRUE(has_one_error(in_time, locate(in_time, "optional"),
                            "key \"optional\" is not valid for the time field: every event needs its time"));
}

// --- Aggregates ---

std::string with_aggregates(std::string_view aggregates) {
  return join({kSource, kSchema, kWindow, aggregates, kSink});
}

TEST(ConfigError, AggregateOnUndeclaredField) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "total"
fn = "sum"
field = "qty"
)");
  EXPECT_TRUE(has_one_error(
      text, locate(text, "\"qty\""),
      "aggregate \"total\" uses field \"qty\" which is not declared in [schema] fields"));
}

TEST(ConfigError, CountOnUndeclaredField) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "n"
fn = "count"
field = "product_id"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"product_id\"", 2),
                            "not declared in [schema] fields (it is a key field)"));
}

TEST(ConfigError, SumOverStringField) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "total"
fn = "sum"
field = "customer_id"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"customer_id\""),
                            "aggregate \"total\" cannot sum string field \"customer_id\""));
}

TEST(ConfigError, ApproxCountDistinctOverFloatField) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "u"
fn = "approx_count_distinct"
field = "revenue"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"revenue\""),
                            "aggregate \"u\" cannot count the distinct values of float64 field \"revenue\": fn "
                            "\"approx_count_distinct\" takes int64 and string fields"));
}

TEST(ConfigError, ApproxCountDistinctPrecisionOutOfRange) {
  for (const char* p : {"3", "19", "-1"}) {
    std::string text = with_aggregates(std::string(R"(
[[aggregates]]
name = "u"
fn = "approx_count_distinct"
field = "customer_id"
precision = )") + p + "\n");
    EXPECT_TRUE(has_one_error(text, locate(text, std::string(p) + "\n"),
                              std::string("precision: ") + p + " is out of range 4..18"));
  }
}

TEST(ConfigError, PrecisionIsNotAKeyOfSum) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "total"
fn = "sum"
field = "quantity"
precision = 12
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "precision"), "key \"precision\" is not valid for a sum aggregate"));
}

TEST(ConfigError, AggregateNameCollidesWithKeyField) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "product_id"
fn = "count"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"product_id\"", 2),
                            "name: \"product_id\" collides with the key field"));
}

TEST(ConfigError, AggregateNameReservedForWindowBounds) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "window_end"
fn = "count"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"window_end\""),
                            "\"window_end\" is reserved for the window bounds"));
}

// --- Duplicates and clashes ---

TEST(ConfigError, DuplicateSourceNames) {
  std::string text = with_source(R"([[sources]]
name = "pos"
type = "generator"

[[sources]]
name = "pos"
type = "generator"
)");
  EXPECT_TRUE(has_one_error(text, {6, 8}, "duplicate source name \"pos\" (first used on line 2)"));
}

TEST(ConfigError, DuplicateAggregateNames) {
  std::string text = with_aggregates(R"(
[[aggregates]]
name = "n"
fn = "count"

[[aggregates]]
name = "n"
fn = "count"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"n\"", 2), "duplicate aggregate name \"n\""));
}

TEST(ConfigError, DuplicateSinkNames) {
  std::string text = with_sinks(R"(
[[sinks]]
name = "out"
type = "file"
path = "a.ndjson"

[[sinks]]
name = "out"
type = "file"
path = "b.ndjson"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"out\"", 2), "duplicate sink name \"out\""));
}

TEST(ConfigError, DuplicateTcpListen) {
  std::string text = with_source(R"([[sources]]
name = "a"
type = "tcp"
listen = "127.0.0.1:9400"

[[sources]]
name = "b"
type = "tcp"
listen = "127.0.0.1:9400"
)");
  EXPECT_TRUE(
      has_one_error(text, {9, 10}, "listen: \"127.0.0.1:9400\" is already used by source \"a\""));
}

TEST(ConfigError, BadListenAddresses) {
  struct Case {
    std::string_view listen;
    std::string_view message;
  };
  const Case cases[] = {
      {"127.0.0.1", "expected \"host:port\""},
      {"example.com:80", "host \"example.com\" must be an IPv4 address"},
      {"::1:80", "needs brackets"},
      {"[::1]80", "expected \":port\""},
      {"[nope]:80", "\"nope\" is not an IPv6 address"},
      {"127.0.0.1:65536", "port \"65536\" must be a number in 0..65535"},
      {"127.0.0.1:", "port \"\" must be a number"},
      {"127.0.0.1:http", "port \"http\""},
  };
  for (const auto& tc : cases) {
    std::string text = with_source(std::string(R"([[sources]]
name = "pos"
type = "tcp"
listen = ")") + std::string(tc.listen) +
                                   "\"\n");
    EXPECT_TRUE(has_one_error(text, {4, 10}, tc.message)) << tc.listen;
  }
}

TEST(ConfigError, BadGeneratorStart) {
  std::string text = with_source(R"([[sources]]
name = "gen"
type = "generator"
start = "yesterday"
)");
  EXPECT_TRUE(has_one_error(text, {4, 9}, "start: bad time \"yesterday\""));
}

TEST(ConfigError, UnquotedGeneratorStart) {
  std::string text = with_source(R"([[sources]]
name = "gen"
type = "generator"
start = 2024-03-28T00:00:00Z
)");
  EXPECT_TRUE(has_one_error(text, {4, 9}, "got date-time (quote it)"));
}

TEST(ConfigError, SecondStdoutSink) {
  std::string text = with_sinks(R"(
[[sinks]]
name = "a"
type = "stdout"

[[sinks]]
name = "b"
type = "stdout"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"stdout\"", 2),
                            "only one sink may write to stdout; sink \"a\" already does"));
}

TEST(ConfigError, DuplicateSinkPath) {
  std::string text = with_sinks(R"(
[[sinks]]
name = "a"
type = "file"
path = "out/x.ndjson"

[[sinks]]
name = "b"
type = "file"
path = "./out/x.ndjson"
)");
  EXPECT_TRUE(has_one_error(text, locate(text, "\"./out"),
                            "\"./out/x.ndjson\" is already written by sink \"a\""));
}

TEST(ConfigError, SinkPathIsDeadLetterPath) {
  std::string text = with_sinks(R"(
[[sinks]]
name = "a"
type = "file"
path = "out/x.ndjson"

[dead_letter]
path = "out/x.ndjson"
)");
  // The second of the two is the one in conflict.
  EXPECT_TRUE(has_one_error(text, locate(text, "\"out/x.ndjson\"", 2),
                            "is both the [dead_letter] path and the path of sink \"a\""));
}

TEST(ConfigError, SinkWouldOverwriteSourceFile) {
  std::string text = join({R"([[sources]]
name = "in"
type = "file"
path = "data.ndjson"
)",
                           kSchema, kWindow, R"(
[[sinks]]
name = "out"
type = "file"
path = "data.ndjson"
)"});
  EXPECT_TRUE(
      has_one_error(text, locate(text, "\"data.ndjson\"", 2),
                    "sink \"out\" would overwrite \"data.ndjson\", which source \"in\" reads"));
}

// --- Syntax, several errors, files ---

TEST(ConfigError, TomlSyntaxError) {
  // Line 2 lacks its closing bracket; toml++ notices at the end of that line (column 8).
  constexpr std::string_view kText = "name = \"x\"\n[window\nsize = \"5m\"\n";
  EXPECT_TRUE(has_one_error(kText, {2, 8}, "expected ']'"));
}

TEST(ConfigError, TomlSyntaxErrorMessageIsLowerCase) {
  std::vector<ConfigError> errors = errors_of("a = = 1\n");
  ASSERT_EQ(errors.size(), 1u);
  ASSERT_FALSE(errors[0].message.empty());
  EXPECT_TRUE(errors[0].message[0] < 'A' || errors[0].message[0] > 'Z') << errors[0].message;
}

TEST(ConfigError, MultipleErrorsInFileOrder) {
  // Sections appear in an order unlike the parser's (window first, pipeline last), and each
  // holds one mistake: all are reported, sorted by position.
  constexpr std::string_view kText = R"([window]
size = "5"

[[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"
  path = "x"

[schema]
key = "product_id"
time = { field = "timestamp" }

[[sinks]]
name = "metrics"
type = "stdout"
buffer_bytes = 1

[pipeline]
shards = -1
colour = "red"
)";
  std::vector<ConfigError> errors = errors_of(kText);
  ASSERT_EQ(errors.size(), 5u) << describe(errors);
  EXPECT_TRUE(is_error(errors[0], {2, 8}, "[window] size: bad duration \"5\": missing unit"));
  EXPECT_TRUE(is_error(errors[1], {8, 3}, "key \"path\" is not valid for a tcp source"));
  EXPECT_TRUE(is_error(errors[2], {17, 16}, "buffer_bytes: 1 is out of range"));
  EXPECT_TRUE(is_error(errors[3], {20, 10}, "[pipeline] shards: -1 is out of range 0..256"));
  EXPECT_TRUE(is_error(errors[4], {21, 1}, "unknown key \"colour\" in [pipeline]"));
}

TEST(ConfigError, UnreadableFile) {
  const std::string path = "/nonexistent-sluice-dir/pipeline.toml";
  auto result = load_pipeline_config(path);
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  const ConfigError& e = result.error()[0];
  EXPECT_EQ(e.file, path);
  EXPECT_EQ(e.line, 0u);
  EXPECT_EQ(e.column, 0u);
  EXPECT_EQ(e.message, "cannot read file: No such file or directory");
  EXPECT_EQ(e.to_string(), path + ": cannot read file: No such file or directory");
}

TEST(ConfigError, DirectoryIsUnreadable) {
  auto result = load_pipeline_config("/tmp");
  ASSERT_FALSE(result.has_value());
  ASSERT_EQ(result.error().size(), 1u);
  EXPECT_EQ(result.error()[0].line, 0u);
  EXPECT_EQ(result.error()[0].message, "cannot read file: Is a directory");
}

constexpr std::string_view kKafkaRest = R"(
[window]
size = "1m"

[[sinks]]
name = "out"
type = "stdout"
)";

TEST(ConfigError, KafkaMetadataNeedsKafkaSources) {
  std::string text = R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"

[schema]
key = ["product_id"]
time = { field = "@kafka.timestamp" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "\"@kafka.timestamp\""),
                            "source \"pos\" is a tcp source; every source must be a Kafka source"));
}

TEST(ConfigError, UnknownKafkaMetadataField) {
  std::string text = R"([[sources]]
name = "k"
type = "kafka"
brokers = ["127.0.0.1:9092"]
topic = "t"

[schema]
key = ["@kafka.partition"]
time = { field = "ts" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "[\"@kafka.partition\"]"),
                            "unknown Kafka metadata field \"@kafka.partition\""));
}

constexpr std::string_view kKafkaSource = R"([[sources]]
name = "k"
type = "kafka"
brokers = ["127.0.0.1:9092"]
topic = "t"
)";

TEST(ConfigError, KafkaHeaderNeedsKafkaSources) {
  std::string text = R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"

[schema]
key = ["product_id"]
time = { field = "ts" }
fields = { "@kafka.header.source" = "string" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "\"@kafka.header.source\""),
                            "source \"pos\" is a tcp source; every source must be a Kafka source"));
}

TEST(ConfigError, KafkaHeaderFieldMustBeAString) {
  for (std::string_view field : {R"("@kafka.header.version" = "int64")",
                                 R"("@kafka.header.version" = { type = "float64", optional = true })"}) {
    std::string text = std::string(kKafkaSource) + fmt::format(R"(
[schema]
key = ["product_id"]
time = {{ field = "ts" }}
fields = {{ {} }}
)",
                                                               field) +
                       std::string(kKafkaRest);
    const Position at = locate(text, field.find("int64") != std::string_view::npos ? "\"int64\"" : "\"float64\"");
    EXPECT_TRUE(has_one_error(text, at,
                              "[schema.fields] @kafka.header.version: a record header is text: its type must be "
                              "\"string\""))
        << field;
  }
}

TEST(ConfigError, KafkaMetadataOtherThanHeadersIsNotAValueField) {
  std::string text = std::string(kKafkaSource) + R"(
[schema]
key = ["product_id"]
time = { field = "ts" }
fields = { "@kafka.key" = "string", "@kafka.header." = "string" }
)" + std::string(kKafkaRest);
  std::vector<ConfigError> errors = errors_of(text);
  ASSERT_EQ(errors.size(), 2u) << describe(errors);
  EXPECT_TRUE(is_error(errors[0], locate(text, "\"@kafka.key\" ="), "a value field can be a header (\"@kafka.header.<name>\")"));
  EXPECT_TRUE(is_error(errors[1], locate(text, "\"@kafka.header.\" ="), "\"@kafka.header.\": of a Kafka record's metadata"));
}

TEST(ConfigError, KafkaHeaderWithoutANameIsNotAKey) {
  std::string text = std::string(kKafkaSource) + R"(
[schema]
key = ["@kafka.header."]
time = { field = "ts" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "[\"@kafka.header.\"]"),
                            "unknown Kafka metadata field \"@kafka.header.\"; a key can use \"@kafka.key\" and "
                            "record headers (\"@kafka.header.<name>\")"));
}

TEST(ConfigError, KafkaHeaderIsNotTheTime) {
  std::string text = std::string(kKafkaSource) + R"(
[schema]
key = ["k"]
time = { field = "@kafka.header.ts" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "\"@kafka.header.ts\""),
                            "unknown Kafka metadata field \"@kafka.header.ts\"; the time can use \"@kafka.timestamp\""));
}

TEST(ConfigError, KafkaHeaderKeyAlsoInFields) {
  std::string text = std::string(kKafkaSource) + R"(
[schema]
key = ["@kafka.header.source"]
time = { field = "ts" }
fields = { "@kafka.header.source" = { type = "string", optional = true } }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "true"),
                            "\"@kafka.header.source\" is a key field, which every event must have: it cannot be "
                            "optional"));
}

TEST(ConfigError, AtMostEightHeaders) {
  std::string fields;
  for (int i = 0; i < 8; ++i) fields += fmt::format("\"@kafka.header.h{}\" = \"string\", ", i);
  std::string text = std::string(kKafkaSource) + R"(
[schema]
key = ["@kafka.header.source"]
time = { field = "ts" }
fields = { )" + fields + R"(n = "int64" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "{ \"@kafka.header.h0"),
                            "[schema] fields: [schema] uses 9 record headers (\"@kafka.header.<name>\"); at most 8 "
                            "are supported"));
}

TEST(ConfigError, KafkaBrokerWithoutPort) {
  std::string text = R"([[sources]]
name = "k"
type = "kafka"
brokers = ["127.0.0.1"]
topic = "t"

[schema]
key = ["k"]
time = { field = "ts" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "[\"127.0.0.1\"]"), "bad broker address \"127.0.0.1\""));
}

TEST(ConfigError, KafkaBadStart) {
  std::string text = R"([[sources]]
name = "k"
type = "kafka"
brokers = ["127.0.0.1:9092"]
topic = "t"
start = "yesterday"

[schema]
key = ["k"]
time = { field = "ts" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "\"yesterday\""), "bad start \"yesterday\""));
}

TEST(ConfigError, KafkaKeyOnAnotherSourceTypeIsReportedOnce) {
  std::string text = R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"
start = "earliest"

[schema]
key = ["k"]
time = { field = "ts" }
)" + std::string(kKafkaRest);
  EXPECT_TRUE(has_one_error(text, locate(text, "start"), "key \"start\" is not valid for a tcp source"));
}

TEST(ConfigError, MetricsListenClashesWithASource) {
  std::string text = R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:9400"

[schema]
key = ["k"]
time = { field = "ts" }

[window]
size = "1m"

[[sinks]]
name = "out"
type = "stdout"

[metrics]
listen = "127.0.0.1:9400"
)";
  EXPECT_TRUE(has_one_error(text, locate(text, "\"127.0.0.1:9400\"", 2),
                            "\"127.0.0.1:9400\" is already used by source \"pos\""));
}

TEST(ConfigError, MetricsUnknownKey) {
  std::string text = R"([[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"

[schema]
key = ["k"]
time = { field = "ts" }

[window]
size = "1m"

[[sinks]]
name = "out"
type = "stdout"

[metrics]
port = 9464
)";
  EXPECT_TRUE(has_one_error(text, locate(text, "port"), "unknown key \"port\" in [metrics]"));
}

}  // namespace
}  // namespace sluice
