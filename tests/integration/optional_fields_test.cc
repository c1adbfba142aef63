// Optional fields through the real binary: events that lack an optional
// field (absent or JSON null) still count, the aggregates over that field
// skip them, a default stands in where one is given; a present optional
// field of the wrong type and a missing or null required field are
// schema_error dead letters. A key whose events all lack a field gets null
// aggregates over it (empty in CSV). Expectations come from the reference
// model, which knows optional fields and defaults (reference.h).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <string>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

PipelineSpec optional_spec() {
  PipelineSpec spec;
  spec.key_fields = {"product_id"};
  spec.time_field = "ts";
  spec.time_format = "rfc3339";
  spec.fields = {{"quantity", FieldKind::int64},
                 {"revenue", FieldKind::float64},
                 {"customer_id", FieldKind::string},
                 {"region", FieldKind::string},
                 {"units", FieldKind::int64}};
  spec.optional_fields = {{"revenue", {}},
                          {"customer_id", {}},
                          {"region", {FieldValue{std::string("anonymous")}}},
                          {"units", {FieldValue{int64_t(1)}}}};
  spec.window_ns = kNsPerMin;
  spec.delay_ns = 30 * kNsPerS;
  spec.aggregates = {{"n", AggFn::count, ""},
                     {"with_customer", AggFn::count, "customer_id"},
                     {"quantity", AggFn::sum, "quantity"},
                     {"revenue_sum", AggFn::sum, "revenue"},
                     {"revenue_min", AggFn::min, "revenue"},
                     {"revenue_max", AggFn::max, "revenue"},
                     {"revenue_avg", AggFn::avg, "revenue"},
                     {"customers", AggFn::approx_count_distinct, "customer_id"},
                     {"regions", AggFn::approx_count_distinct, "region"},
                     {"units", AggFn::sum, "units"}};
  return spec;
}

// `line` (a JSON object) with `"name":null` added at its end.
std::string with_null(std::string line, const std::string& name) {
  line.insert(line.size() - 1, "," + json_string(name) + ":null");
  return line;
}

// The canonical line of `e` with `name` set to the JSON text `value` (added
// when e lacks it) or, with an empty value, removed.
std::string with_value(const PipelineSpec& spec, Event e, const std::string& name, const std::string& value) {
  e.values.erase(name);
  std::string line = canonical_event_line(spec, e);
  if (!value.empty()) line.insert(line.size() - 1, "," + json_string(name) + ":" + value);
  return line;
}

// Events over 10 minutes, a little out of order. Each optional field is
// there, absent or null at random (the model sees absent and null alike);
// product 99 never has a revenue or a customer. Among them, lines that must
// be schema errors.
std::vector<InputLine> optional_lines(const PipelineSpec& spec, std::mt19937_64& rng) {
  std::vector<InputLine> lines;
  auto one_in = [&](unsigned n) { return std::uniform_int_distribution<unsigned>(1, n)(rng) == 1; };
  const int64_t start = 1'704'067'200 * kNsPerS;  // 2024-01-01T00:00:00Z
  for (int i = 0; i < 400; ++i) {
    Event e;
    e.time_ns = start + i * (1500 * kNsPerMs) - int64_t(rng() % 20) * kNsPerS;
    const bool hollow = i % 9 == 0;
    e.key = {int64_t(hollow ? 99 : 1 + int64_t(rng() % 3))};
    e.values["quantity"] = int64_t(rng() % 10) - 2;
    std::vector<std::string> nulls;
    // Each optional field: present, absent (left out) or null (left out of
    // the model's event, written as null).
    auto maybe = [&](const std::string& name, FieldValue v, bool never) {
      const unsigned pick = never ? 1 + unsigned(rng() % 2) : unsigned(rng() % 3);
      if (pick == 0) e.values[name] = std::move(v);
      if (pick == 2) nulls.push_back(name);
    };
    maybe("revenue", double(int64_t(rng() % 4001) - 500) / 4, hollow);
    maybe("customer_id", "c" + std::to_string(rng() % 5), hollow);
    maybe("region", std::string(one_in(2) ? "eu" : "us"), false);
    maybe("units", int64_t(rng() % 9), false);
    std::string text = event_line(spec, e, rng);
    for (const std::string& name : nulls) text = with_null(text, name);
    lines.push_back(InputLine::of_event(e, text));

    if (i % 37 == 5) {
      // Schema errors: optional fields of the wrong type, required ones missing or null.
      Event bad = e;
      bad.values["revenue"] = 1.5;
      bad.values["customer_id"] = std::string("c1");
      const std::vector<std::pair<std::string, std::string>> cases = {
          {"revenue", R"("1.5")"}, {"customer_id", "5"},    {"region", "true"},
          {"units", "1.5"},        {"quantity", ""},        {"quantity", "null"},
          {"revenue", "[null]"},   {"customer_id", "{}"}};
      const auto& [name, value] = cases[size_t(i / 37) % cases.size()];
      lines.push_back(InputLine::bad(with_value(spec, bad, name, value), "schema_error"));
    }
  }
  return lines;
}

void run_optional(uint32_t shards, uint64_t seed) {
  const PipelineSpec spec = optional_spec();
  std::mt19937_64 rng(seed);
  const std::vector<InputLine> lines = optional_lines(spec, rng);

  TempDir dir;
  const std::string input = dir.file("in.ndjson");
  write_file(input, render(lines));
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "in";
  feed_lines(model, 0, lines, [&](size_t i) { return input + ":" + std::to_string(i + 1); }, expected);
  expected.rows = model.rows();
  expected.events_in = model.accepted();

  // The data does what the test is about: skipped values, keys with no value
  // at all, defaults, schema errors.
  size_t null_rows = 0, schema_errors = 0;
  for (const Row& r : expected.rows) null_rows += r.aggregates[3].kind == Scalar::Kind::null;
  for (const ExpectedDeadLetter& d : expected.dead_letters) schema_errors += d.reason == "schema_error";
  ASSERT_GE(null_rows, 5u);
  ASSERT_GE(schema_errors, 8u);
  ASSERT_GT(expected.rows.size(), 20u);

  write_file(dir.file("pipeline.toml"), fmt::format(R"([pipeline]
name = "optional-fields"
shards = {}

[[sources]]
name = "in"
type = "file"
path = {}

{}
[[sinks]]
name = "rows"
type = "file"
path = {}

[[sinks]]
name = "csv"
type = "file"
format = "csv"
path = {}

[dead_letter]
path = {}
)",
                                                    shards, toml_string(input), spec.toml(),
                                                    toml_string(dir.file("rows.ndjson")),
                                                    toml_string(dir.file("rows.csv")),
                                                    toml_string(dir.file("dead.ndjson"))));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());
  expect_run_output(spec, expected, dir.file("rows.ndjson"), dir.file("dead.ndjson"), run.stderr_text());
  // CSV: null is an empty field.
  const std::vector<Row> csv = parse_csv_rows(spec, {FieldKind::int64}, complete_lines(read_file(dir.file("rows.csv"))));
  EXPECT_TRUE(same_rows(expected.rows, csv));
}

TEST(OptionalFieldsTest, AbsentNullAndDefaultedFieldsOneShard) { run_optional(1, 3); }
TEST(OptionalFieldsTest, AbsentNullAndDefaultedFieldsTwoShards) { run_optional(2, 4); }

// `sluice check` shows which fields are optional and their defaults.
TEST(OptionalFieldsTest, CheckShowsOptionalFieldsAndDefaults) {
  TempDir dir;
  write_file(dir.file("in.ndjson"), "");  // check looks for the input
  write_file(dir.file("p.toml"), fmt::format(R"([[sources]]
name = "in"
type = "file"
path = {}

{}
[[sinks]]
name = "out"
type = "stdout"
)",
                                             toml_string(dir.file("in.ndjson")), optional_spec().toml()));
  CommandResult r = run_command({sluice_bin(), "check", dir.file("p.toml")}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.out.find("\n  schema: key product_id; time ts (rfc3339); fields customer_id string optional, "
                       "quantity int64, region string default \"anonymous\", revenue float64 optional, "
                       "units int64 default 1\n"),
            std::string::npos)
      << r.out;
}

}  // namespace
}  // namespace sluice::integration
