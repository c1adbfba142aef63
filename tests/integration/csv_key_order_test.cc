// A CSV sink with order = "key": the header, windows ascending, and the rows
// of each window sorted by key (integers numerically, strings by bytes), with
// rows from both shards merged. An NDJSON sink beside it gets the same rows.
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

PipelineSpec store_spec() {
  PipelineSpec spec;
  spec.key_fields = {"store", "product"};
  spec.time_field = "ts";
  spec.time_format = "rfc3339";
  spec.fields = {{"qty", FieldKind::int64}, {"price", FieldKind::float64}};
  spec.window_ns = kNsPerMin;
  spec.delay_ns = 20 * kNsPerS;
  spec.aggregates = {{"n", AggFn::count, ""},
                     {"qty_sum", AggFn::sum, "qty"},
                     {"price_sum", AggFn::sum, "price"},
                     {"price_max", AggFn::max, "price"}};
  return spec;
}

TEST(CsvKeyOrderTest, RowsSortedByKeyWithinAscendingWindows) {
  TempDir dir;
  const PipelineSpec spec = store_spec();
  const int64_t t0 = utc_ns(2024, 9, 1, 10, 0, 0);
  // Numeric order differs from text order (-3 < 2 < 7 < 10 < 100), byte order
  // from case-blind order ("B" < "a"), prefixes sort first ("ab" < "abc"),
  // and some strings need CSV quoting.
  const std::vector<int64_t> stores = {100, -3, 10, 2, 7};
  const std::vector<std::string> products = {"abc", "a", "x,y", "B", "q\"uote", "ab", "é"};
  std::mt19937_64 rng(4);
  std::vector<InputLine> lines;
  for (int i = 0; i < 800; ++i) {
    const int64_t jitter = std::uniform_int_distribution<int64_t>(0, 10'000)(rng) * kNsPerMs;
    Event e;
    e.time_ns = std::max(t0, t0 + i * 600 * kNsPerMs - jitter);
    e.key = {stores[std::uniform_int_distribution<size_t>(0, stores.size() - 1)(rng)],
             products[std::uniform_int_distribution<size_t>(0, products.size() - 1)(rng)]};
    e.values["qty"] = std::uniform_int_distribution<int64_t>(1, 20)(rng);
    e.values["price"] = double(std::uniform_int_distribution<int>(1, 4000)(rng)) / 4;
    lines.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
  }
  write_file(dir.file("in.ndjson"), render(lines));
  ReferenceModel model(spec);
  ExpectedRun expected;
  feed_lines(
      model, 0, lines, [](size_t) { return std::string(); }, expected);
  const std::vector<Row> want = model.rows();
  ASSERT_EQ(model.late(), 0u);

  write_file(dir.file("pipeline.toml"),
             fmt::format(R"([pipeline]
name = "csv-test"
shards = 2

[[sources]]
name = "in"
type = "file"
path = {}

{}
[[sinks]]
name = "sorted"
type = "file"
path = {}
format = "csv"
order = "key"

[[sinks]]
name = "plain"
type = "file"
path = {}
format = "ndjson"

[dead_letter]
path = {}
)",
                         toml_string(dir.file("in.ndjson")), spec.toml(),
                         toml_string(dir.file("rows.csv")), toml_string(dir.file("rows.ndjson")),
                         toml_string(dir.file("dead.ndjson"))));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());

  std::string tail;
  const std::vector<std::string> csv = complete_lines(read_file(dir.file("rows.csv")), &tail);
  EXPECT_EQ(tail, "");
  const std::vector<Row> sorted = parse_csv_rows(spec, {FieldKind::int64, FieldKind::string}, csv);
  EXPECT_TRUE(same_rows(want, sorted));
  EXPECT_TRUE(windows_ascending(sorted));
  EXPECT_TRUE(keys_ascending_within_windows(sorted));
  // Exact text of a row whose key needs quoting.
  EXPECT_NE(read_file(dir.file("rows.csv")).find(",2,\"x,y\","), std::string::npos);
  EXPECT_NE(read_file(dir.file("rows.csv")).find(",7,\"q\"\"uote\","), std::string::npos);

  const std::vector<Row> plain =
      parse_ndjson_rows(spec, complete_lines(read_file(dir.file("rows.ndjson"))));
  EXPECT_TRUE(same_rows(want, plain));
  EXPECT_TRUE(windows_ascending(plain));
  EXPECT_EQ(read_file(dir.file("dead.ndjson")), "");

  auto summary = parse_summary(run.stderr_text());
  ASSERT_TRUE(summary) << run.stderr_text();
  EXPECT_EQ(summary->events_in, model.accepted());
  // Each row is counted once per sink that writes it.
  EXPECT_TRUE(summary->rows_out == want.size() || summary->rows_out == 2 * want.size())
      << summary->rows_out << " rows out for " << want.size() << " rows";
}

}  // namespace
}  // namespace sluice::integration
