// The seams proven by use: a pipeline built only of test-only kinds (a
// source, a sink, an aggregate function with out-of-line state and a window
// kind that puts each event in two windows), each one file plus one
// registration line in tests/plugins/, runs in the real engine on two shards
// (cross-shard exchange, watermark markers, firing, the gatherer) and gives
// exactly the rows an independent reference computes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "core/clock.h"
#include "dataflow/engine.h"
#include "dataflow/pipeline_config.h"
#include "tests/plugins/plugins.h"

namespace sluice {
namespace {

using test_plugins::CollectedRow;

constexpr int64_t kWindowNs = 10 * kNsPerS;  // each window 10 s, a new one every 5 s

struct Ref {
  int64_t count = 0;
  std::set<int64_t> distinct;
  std::set<std::string> customers;
  int64_t sum = 0;
};

TEST(PluginSeams, APipelineOfTestOnlyKindsGivesTheReferenceRows) {
  test_plugins::register_test_plugins();
  test_plugins::clear_collected_rows();
  const auto dir = std::filesystem::temp_directory_path() / ("sluice_seams_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);

  // Events over 2 minutes, slightly out of order, 40 products.
  std::mt19937_64 rng(17);
  std::vector<std::string> lines;
  std::map<std::pair<int64_t, int64_t>, Ref> ref;  // (window start s, product) -> expected
  for (int i = 0; i < 30000; ++i) {
    const int64_t t = 1'700'000'000 + i / 250 + int64_t(rng() % 3);  // seconds
    const int64_t product = int64_t(rng() % 40);
    const int64_t quantity = int64_t(rng() % 25);
    // A string field an aggregate reads travels with the event to the shard
    // owning its key; some arrive escaped ("\u0063" is "c").
    const int64_t c = int64_t(rng() % 60);
    const std::string customer = "c" + std::to_string(c);
    const std::string customer_json = c % 7 == 0 ? "\\u0063" + std::to_string(c) : customer;
    lines.push_back("{\"product_id\":" + std::to_string(product) + ",\"ts\":" + std::to_string(t) +
                    ",\"quantity\":" + std::to_string(quantity) + ",\"customer_id\":\"" + customer_json + "\"}");
    // Independently of the kind's code: the windows [s, s + 10) with s a
    // multiple of 5 that hold t.
    for (int64_t s = (t / 5) * 5 - 5; s <= t; s += 5) {
      Ref& r = ref[{s, product}];
      r.count += 1;
      r.distinct.insert(quantity);
      r.customers.insert(customer);
      r.sum += quantity;
    }
  }
  test_plugins::set_memory_lines(lines);

  // The config names only test-only kinds; each reads its own keys (chunk_bytes).
  const std::string toml = R"([pipeline]
name = "seams"
shards = 2

[[sources]]
name = "mem"
type = "test_memory"
chunk_bytes = 1024

[schema]
key = ["product_id"]
time = { field = "ts", format = "epoch_s" }
fields = { quantity = "int64", customer_id = "string" }

[window]
kind = "test_half_hop"
size = "10s"
watermark_delay = "1m"
idle_timeout = "0s"

[[aggregates]]
name = "n"
fn = "count"

[[aggregates]]
name = "distinct_q"
fn = "test_distinct"
field = "quantity"

[[aggregates]]
name = "q"
fn = "sum"
field = "quantity"

[[aggregates]]
name = "customers"
fn = "test_distinct"
field = "customer_id"

[[sinks]]
name = "rows"
type = "test_collect"

[dead_letter]
path = ")" + (dir / "dead_letter.ndjson").string() + "\"\n";
  ConfigResult parsed = parse_pipeline_config(toml, "seams.toml");
  ASSERT_TRUE(parsed.has_value()) << (parsed ? "" : parsed.error()[0].to_string());
  const PipelineConfig& cfg = *parsed;
  ASSERT_EQ(cfg.sources[0].type, test_plugins::kTestMemory);
  ASSERT_EQ(cfg.window.kind, test_plugins::kTestHalfHop);
  ASSERT_EQ(cfg.window.size_ns, kWindowNs);

  Engine engine(cfg);
  auto prepared = engine.prepare();
  ASSERT_TRUE(prepared.has_value()) << prepared.error();
  ASSERT_EQ(engine.run(), 0);
  EXPECT_EQ(engine.totals().sum.lines_in, lines.size());
  for (uint64_t d : engine.totals().sum.dead_letters) EXPECT_EQ(d, 0u);
  EXPECT_EQ(test_plugins::live_distinct_states(), 0) << "out-of-line state not given back";

  const std::vector<CollectedRow> rows = test_plugins::collected_rows();
  EXPECT_EQ(rows.size(), ref.size());
  EXPECT_EQ(engine.totals().sum.rows_out, ref.size());
  int64_t last_start = kTimeMin;
  std::set<std::pair<int64_t, int64_t>> seen;
  for (const CollectedRow& r : rows) {
    ASSERT_EQ(r.window_end - r.window_start, kWindowNs);
    ASSERT_GE(r.window_start, last_start) << "windows out of order";
    last_start = r.window_start;
    ASSERT_EQ(r.key.size(), 9u);  // one int key: 'i' + 8 bytes
    int64_t product;
    std::memcpy(&product, r.key.data() + 1, 8);
    const std::pair<int64_t, int64_t> at{r.window_start / kNsPerS, product};
    ASSERT_TRUE(seen.insert(at).second) << "row twice";
    auto it = ref.find(at);
    ASSERT_NE(it, ref.end()) << at.first << " " << product;
    ASSERT_EQ(r.values.size(), 4u);
    EXPECT_EQ(r.values[0].v.i, it->second.count);
    EXPECT_EQ(r.values[1].v.i, int64_t(it->second.distinct.size()));
    EXPECT_EQ(r.values[2].v.i, it->second.sum);
    EXPECT_EQ(r.values[3].v.i, int64_t(it->second.customers.size()));
  }
  std::filesystem::remove_all(dir);
}

// A test-only kind's keys are its own: the loader reports a misspelt one with
// its line and column, and calls it misplaced on another kind.
TEST(PluginSeams, AKindsOwnKeysAreCheckedLikeBuiltIns) {
  test_plugins::register_test_plugins();
  const std::string rest = R"(
[schema]
key = ["k"]
time = { field = "ts", format = "epoch_s" }

[window]
size = "1m"

[[sinks]]
name = "rows"
type = "test_collect"
)";
  ConfigResult typo = parse_pipeline_config("[[sources]]\nname = \"m\"\ntype = \"test_memory\"\nchunk_byte = 100\n" + rest, "p.toml");
  ASSERT_FALSE(typo.has_value());
  ASSERT_EQ(typo.error().size(), 1u);
  EXPECT_EQ(typo.error()[0].to_string(),
            "p.toml:4:1: unknown key \"chunk_byte\" in [[sources]] \"m\"; did you mean \"chunk_bytes\"?");
  ConfigResult range = parse_pipeline_config("[[sources]]\nname = \"m\"\ntype = \"test_memory\"\nchunk_bytes = 1\n" + rest, "p.toml");
  ASSERT_FALSE(range.has_value());
  EXPECT_EQ(range.error()[0].to_string(), "p.toml:4:15: [[sources]] \"m\" chunk_bytes: 1 is out of range 64..1048576");
  ConfigResult misplaced = parse_pipeline_config(
      "[[sources]]\nname = \"t\"\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\nchunk_bytes = 100\n" + rest, "p.toml");
  ASSERT_FALSE(misplaced.has_value());
  EXPECT_EQ(misplaced.error()[0].to_string(), "p.toml:5:1: key \"chunk_bytes\" is not valid for a tcp source");
}

}  // namespace
}  // namespace sluice
