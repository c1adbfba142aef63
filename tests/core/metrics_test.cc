#include "core/metrics.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

namespace sluice {
namespace {

TEST(Counter, AddsAndReads) {
  Counter c;
  EXPECT_EQ(c.value(), 0u);
  c.add();
  c.add(41);
  EXPECT_EQ(c.value(), 42u);
}

TEST(Gauge, SetsAndAdds) {
  Gauge g;
  g.set(10);
  g.add(-25);
  EXPECT_EQ(g.value(), -15);
  g.add(15);
  EXPECT_EQ(g.value(), 0);
}

TEST(LatencyHistogram, NegativeIntervalRecordsZero) {
  auto h = std::make_unique<LatencyHistogram>();
  h->record_interval_ns(1'000, 1'500);
  h->record_interval_ns(2'000, 1'000);  // the event's clock runs ahead of ours
  HistogramSnapshot s = h->snapshot();
  EXPECT_EQ(s.count(), 2u);
  EXPECT_EQ(s.min(), 0u);
  EXPECT_EQ(s.max(), 500u);
}

TEST(MetricsRegistry, RefusesBadNames) {
  // "b", "m", "s", "h", "d" are unit abbreviations to promtool's linter.
  Counter c;
  MetricsRegistry r;
  const char* const bad_names[] = {"",
                                   "Events",
                                   "events_",
                                   "_events",
                                   "ev__in",
                                   "9lives",
                                   "events-in",
                                   "events:in",
                                   "events_total",
                                   "rows_count",
                                   "latency_sum",
                                   "x_bucket",
                                   "lag_ms",
                                   "lag_ns",
                                   "size_kb",
                                   "read_bytes",
                                   "lag_seconds",
                                   "lag_milliseconds",
                                   "events_counter",
                                   "depth_gauge",
                                   "b",
                                   "queue_m"};
  for (const char* name : bad_names) {
    EXPECT_EQ(r.add({.name = name, .help = "h"}, c), MetricsError::bad_name) << name;
  }
  EXPECT_EQ(r.family_count(), 0u);
  EXPECT_EQ(r.add({.name = "events_in2", .help = "h"}, c), MetricsError::ok);
}

TEST(MetricsRegistry, RefusesBadLabelsAndMissingHelp) {
  Counter c;
  MetricsRegistry r;
  EXPECT_EQ(r.add({.name = "a", .help = ""}, c), MetricsError::missing_help);
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"Shard", "0"}}}, c),
            MetricsError::bad_label_name);
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"__name", "0"}}}, c),
            MetricsError::bad_label_name);
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"quantile", "0"}}}, c),
            MetricsError::bad_label_name);
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"le", "0"}}}, c),
            MetricsError::bad_label_name);
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"1x", "0"}}}, c),
            MetricsError::bad_label_name);
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"source", "\xff"}}}, c),
            MetricsError::bad_label_value);
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"source", "\xc0\xaf"}}}, c),
            MetricsError::bad_label_value);  // overlong '/'
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"source", "\xed\xa0\x80"}}}, c),
            MetricsError::bad_label_value);  // a surrogate
  EXPECT_EQ(r.add({.name = "a", .help = "h", .labels = {{"s", "1"}, {"s", "2"}}}, c),
            MetricsError::duplicate_label);
  EXPECT_EQ(r.family_count(), 0u);
  EXPECT_EQ(
      r.add({.name = "a", .help = "h", .labels = {{"_ok", "caf\xc3\xa9 \xf0\x9f\x8d\xb0"}}}, c),
      MetricsError::ok);
}

TEST(MetricsRegistry, FamiliesKeepOneKindAndDistinctLabelSets) {
  Counter c1, c2, c3;
  Gauge g;
  MetricsRegistry r;
  ASSERT_EQ(
      r.add({.name = "events_in", .help = "h", .labels = {{"shard", "0"}, {"source", "a"}}}, c1),
      MetricsError::ok);
  EXPECT_EQ(
      r.add({.name = "events_in", .help = "h", .labels = {{"source", "a"}, {"shard", "0"}}}, c2),
      MetricsError::duplicate_series);
  EXPECT_EQ(r.add({.name = "events_in", .help = "h", .labels = {{"shard", "1"}}}, g),
            MetricsError::family_mismatch);
  EXPECT_EQ(
      r.add(
          {.name = "events_in", .help = "h", .unit = MetricUnit::bytes, .labels = {{"shard", "1"}}},
          c2),
      MetricsError::family_mismatch);
  EXPECT_EQ(
      r.add({.name = "events_in", .help = "h", .labels = {{"shard", "1"}, {"source", "a"}}}, c3),
      MetricsError::ok);
  EXPECT_EQ(r.family_count(), 1u);
  EXPECT_EQ(r.series_count(), 2u);
}

TEST(MetricsRegistry, ErrorsHaveNames) {
  EXPECT_STREQ(to_string(MetricsError::ok), "ok");
  EXPECT_STREQ(to_string(MetricsError::duplicate_series),
               "metric already registered with these labels");
}

TEST(RenderPrometheus, CounterWithLabelsAndEscapes) {
  Counter c;
  c.add(7);
  MetricsRegistry r;
  ASSERT_EQ(r.add({.name = "dead_letters",
                   .help = "Events refused, by reason. Path C:\\x\nnext line \"quoted\".",
                   .labels = {{"reason", "late"}, {"source", "a\\b\"c\nd"}}},
                  c),
            MetricsError::ok);
  std::string out;
  r.render_prometheus(out);
  EXPECT_EQ(out,
            "# HELP sluice_dead_letters_total Events refused, by reason. Path C:\\\\x\\nnext line "
            "\"quoted\".\n"
            "# TYPE sluice_dead_letters_total counter\n"
            "sluice_dead_letters_total{reason=\"late\",source=\"a\\\\b\\\"c\\nd\"} 7\n");
}

TEST(RenderPrometheus, UnitsAndGauges) {
  Counter bytes;
  bytes.add(1'048'576);
  Counter busy;
  busy.add(2'500'000'000);  // ns -> 2.5 s
  Gauge depth;
  depth.set(-3);
  Gauge lag;
  lag.set(1'500'000);  // ns -> 0.0015 s
  MetricsRegistry r;
  ASSERT_EQ(r.add({.name = "source_read", .help = "Bytes read.", .unit = MetricUnit::bytes}, bytes),
            MetricsError::ok);
  ASSERT_EQ(
      r.add({.name = "shard_busy", .help = "Time busy.", .unit = MetricUnit::nanoseconds}, busy),
      MetricsError::ok);
  ASSERT_EQ(r.add({.name = "channel_depth", .help = "Batches queued."}, depth), MetricsError::ok);
  ASSERT_EQ(r.add({.name = "watermark_lag",
                   .help = "Wall clock minus watermark.",
                   .unit = MetricUnit::nanoseconds,
                   .labels = {{"shard", "0"}}},
                  lag),
            MetricsError::ok);
  std::string out;
  r.render_prometheus(out);
  EXPECT_EQ(out,
            "# HELP sluice_source_read_bytes_total Bytes read.\n"
            "# TYPE sluice_source_read_bytes_total counter\n"
            "sluice_source_read_bytes_total 1048576\n"
            "# HELP sluice_shard_busy_seconds_total Time busy.\n"
            "# TYPE sluice_shard_busy_seconds_total counter\n"
            "sluice_shard_busy_seconds_total 2.5\n"
            "# HELP sluice_channel_depth Batches queued.\n"
            "# TYPE sluice_channel_depth gauge\n"
            "sluice_channel_depth -3\n"
            "# HELP sluice_watermark_lag_seconds Wall clock minus watermark.\n"
            "# TYPE sluice_watermark_lag_seconds gauge\n"
            "sluice_watermark_lag_seconds{shard=\"0\"} 0.0015\n");
}

TEST(RenderPrometheus, LatencyIsASummaryInSeconds) {
  auto h = std::make_unique<LatencyHistogram>();
  auto empty = std::make_unique<LatencyHistogram>();
  h->record(100);  // exact below 256 ns, so the quantiles are exact too
  h->record(200);
  MetricsRegistry r;
  ASSERT_EQ(r.add({.name = "window_fire", .help = "Fire latency.", .labels = {{"shard", "0"}}}, *h),
            MetricsError::ok);
  ASSERT_EQ(
      r.add({.name = "window_fire", .help = "Fire latency.", .labels = {{"shard", "1"}}}, *empty),
      MetricsError::ok);
  std::string out;
  r.render_prometheus(out);
  EXPECT_EQ(out,
            "# HELP sluice_window_fire_seconds Fire latency.\n"
            "# TYPE sluice_window_fire_seconds summary\n"
            "sluice_window_fire_seconds{shard=\"0\",quantile=\"0.5\"} 1e-07\n"
            "sluice_window_fire_seconds{shard=\"0\",quantile=\"0.9\"} 2e-07\n"
            "sluice_window_fire_seconds{shard=\"0\",quantile=\"0.99\"} 2e-07\n"
            "sluice_window_fire_seconds{shard=\"0\",quantile=\"0.999\"} 2e-07\n"
            "sluice_window_fire_seconds_sum{shard=\"0\"} 3e-07\n"
            "sluice_window_fire_seconds_count{shard=\"0\"} 2\n"
            "sluice_window_fire_seconds{shard=\"1\",quantile=\"0.5\"} NaN\n"
            "sluice_window_fire_seconds{shard=\"1\",quantile=\"0.9\"} NaN\n"
            "sluice_window_fire_seconds{shard=\"1\",quantile=\"0.99\"} NaN\n"
            "sluice_window_fire_seconds{shard=\"1\",quantile=\"0.999\"} NaN\n"
            "sluice_window_fire_seconds_sum{shard=\"1\"} 0\n"
            "sluice_window_fire_seconds_count{shard=\"1\"} 0\n");
}

TEST(RenderPrometheus, FamiliesAreGroupedWhateverTheRegistrationOrder) {
  Counter a0, a1, b0;
  MetricsRegistry r;
  ASSERT_EQ(r.add({.name = "alpha", .help = "A.", .labels = {{"shard", "0"}}}, a0),
            MetricsError::ok);
  ASSERT_EQ(r.add({.name = "beta", .help = "B.", .labels = {{"shard", "0"}}}, b0),
            MetricsError::ok);
  ASSERT_EQ(r.add({.name = "alpha", .help = "ignored", .labels = {{"shard", "1"}}}, a1),
            MetricsError::ok);
  std::string out;
  r.render_prometheus(out);
  EXPECT_EQ(out,
            "# HELP sluice_alpha_total A.\n"
            "# TYPE sluice_alpha_total counter\n"
            "sluice_alpha_total{shard=\"0\"} 0\n"
            "sluice_alpha_total{shard=\"1\"} 0\n"
            "# HELP sluice_beta_total B.\n"
            "# TYPE sluice_beta_total counter\n"
            "sluice_beta_total{shard=\"0\"} 0\n");
}

TEST(RenderPrometheus, AppendsToWhatIsThere) {
  Counter c;
  MetricsRegistry r;
  ASSERT_EQ(r.add({.name = "a", .help = "A."}, c), MetricsError::ok);
  std::string out = "# before\n";
  r.render_prometheus(out);
  EXPECT_TRUE(out.starts_with("# before\n# HELP sluice_a_total A.\n")) << out;
}

// The engine's metric set in miniature, every kind, label escapes, an empty
// summary: what a scrape of a running engine looks like.
struct SampleMetrics {
  Counter events_in[2];
  Counter bytes_in;
  Counter late;
  Gauge depth;
  Gauge lag;
  std::unique_ptr<LatencyHistogram> ingest[2] = {std::make_unique<LatencyHistogram>(),
                                                 std::make_unique<LatencyHistogram>()};
  std::unique_ptr<LatencyHistogram> fire = std::make_unique<LatencyHistogram>();
  MetricsRegistry registry;

  SampleMetrics() {
    for (int s = 0; s < 2; ++s) {
      std::string shard = std::to_string(s);
      EXPECT_EQ(registry.add({.name = "events_in",
                              .help = "Events read, by shard and source.",
                              .labels = {{"shard", shard}, {"source", "pos \"tills\"\\eu\n2"}}},
                             events_in[s]),
                MetricsError::ok);
      EXPECT_EQ(registry.add({.name = "ingest_latency",
                              .help = "Socket read to window update.",
                              .labels = {{"shard", shard}}},
                             *ingest[s]),
                MetricsError::ok);
    }
    EXPECT_EQ(registry.add({.name = "source_read",
                            .help = "Bytes read.",
                            .unit = MetricUnit::bytes,
                            .labels = {{"source", "caf\xc3\xa9"}}},
                           bytes_in),
              MetricsError::ok);
    EXPECT_EQ(registry.add({.name = "dead_letters",
                            .help = "Events refused.\nBy reason.",
                            .labels = {{"reason", "late"}}},
                           late),
              MetricsError::ok);
    EXPECT_EQ(
        registry.add(
            {.name = "sink_queue_depth", .help = "Rows waiting.", .labels = {{"sink", "metrics"}}},
            depth),
        MetricsError::ok);
    EXPECT_EQ(registry.add({.name = "watermark_lag",
                            .help = "Wall clock minus watermark.",
                            .unit = MetricUnit::nanoseconds},
                           lag),
              MetricsError::ok);
    EXPECT_EQ(registry.add({.name = "window_fire", .help = "Watermark to rows written."}, *fire),
              MetricsError::ok);
  }

  // Values to render. Not in the constructor: the thread that first writes
  // a metric owns it (debug builds check), and a test may want another one.
  void fill() {
    events_in[0].add(1000);
    events_in[1].add(234);
    bytes_in.add(1 << 20);
    late.add(3);
    depth.set(17);
    lag.set(-2'000'000);
    for (uint64_t i = 1; i <= 1000; ++i) ingest[0]->record(i * 1'000);  // 1 us .. 1 ms
    ingest[1]->record(5'000'000, 10);                                   // 5 ms x 10
  }
};

TEST(RenderJson, ShapeAndValues) {
  SampleMetrics m;
  m.fill();
  std::string out;
  m.registry.render_json(out);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS) << out;

  simdjson::dom::object events = doc["counters"]["events_in"];
  EXPECT_EQ(uint64_t(events["total"]), 1234u);
  simdjson::dom::array series = events["series"];
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(std::string_view(series.at(0)["labels"]["shard"]), "0");
  EXPECT_EQ(std::string_view(series.at(0)["labels"]["source"]), "pos \"tills\"\\eu\n2");
  EXPECT_EQ(uint64_t(series.at(1)["value"]), 234u);
  EXPECT_EQ(uint64_t(doc["counters"]["source_read_bytes"]["total"]), 1u << 20);
  EXPECT_EQ(
      std::string_view(doc["counters"]["source_read_bytes"]["series"].at(0)["labels"]["source"]),
      "caf\xc3\xa9");
  EXPECT_EQ(int64_t(doc["gauges"]["sink_queue_depth"]["series"].at(0)["value"]), 17);
  EXPECT_EQ(int64_t(doc["gauges"]["watermark_lag_ns"]["series"].at(0)["value"]), -2'000'000);

  simdjson::dom::object ingest = doc["latency"]["ingest_latency"];
  EXPECT_EQ(uint64_t(ingest["count"]), 1010u);  // merged over both shards
  // Merged: 1000 values 1 us..1 ms and ten of 5 ms; p99.9 is the 1009th: 5 ms.
  EXPECT_NEAR(double(ingest["p50_ms"]), 0.505, 0.505 / 128);
  EXPECT_NEAR(double(ingest["p999_ms"]), 5.0, 5.0 / 128);
  EXPECT_DOUBLE_EQ(double(ingest["max_ms"]), 5.0);
  simdjson::dom::array shards = ingest["series"];
  ASSERT_EQ(shards.size(), 2u);
  EXPECT_EQ(uint64_t(shards.at(0)["count"]), 1000u);
  EXPECT_NEAR(double(shards.at(0)["p99_ms"]), 0.99, 0.99 / 128);
  EXPECT_DOUBLE_EQ(double(shards.at(0)["max_ms"]), 1.0);
  EXPECT_EQ(uint64_t(shards.at(1)["count"]), 10u);
  EXPECT_DOUBLE_EQ(double(shards.at(1)["p50_ms"]), 5.0);

  simdjson::dom::object fire = doc["latency"]["window_fire"];
  EXPECT_EQ(uint64_t(fire["count"]), 0u);
  EXPECT_TRUE(fire["p50_ms"].is_null());
  EXPECT_TRUE(fire["max_ms"].is_null());
}

TEST(RenderJson, EmptyRegistry) {
  MetricsRegistry r;
  std::string out;
  r.render_json(out);
  EXPECT_EQ(out, R"({"counters":{},"gauges":{},"latency":{}})");
}

TEST(RenderJson, ExactTextOfASmallRegistry) {
  Counter c;
  c.add(5);
  Gauge g;
  g.set(-1);
  auto h = std::make_unique<LatencyHistogram>();
  h->record(2'000'000);
  MetricsRegistry r;
  ASSERT_EQ(r.add({.name = "rows_out", .help = "h", .labels = {{"sink", "a\tb"}}}, c),
            MetricsError::ok);
  ASSERT_EQ(r.add({.name = "lag", .help = "h", .unit = MetricUnit::nanoseconds}, g),
            MetricsError::ok);
  ASSERT_EQ(r.add({.name = "fire", .help = "h"}, *h), MetricsError::ok);
  std::string out;
  r.render_json(out);
  EXPECT_EQ(
      out,
      R"({"counters":{"rows_out":{"total":5,"series":[{"labels":{"sink":"a\u0009b"},"value":5}]}},)"
      R"("gauges":{"lag_ns":{"series":[{"labels":{},"value":-1}]}},)"
      R"("latency":{"fire":{"count":1,"p50_ms":2,"p90_ms":2,"p99_ms":2,"p999_ms":2,"max_ms":2,)"
      R"("series":[{"labels":{},"count":1,"p50_ms":2,"p90_ms":2,"p99_ms":2,"p999_ms":2,)"
      R"("max_ms":2}]}}})");
}

// Runs `promtool check metrics` on `text`; returns its exit status and output.
struct PromtoolResult {
  int exit_code = -1;
  std::string output;
};

PromtoolResult run_promtool(const std::string& text) {
  PromtoolResult result;
  std::filesystem::path dir = std::filesystem::temp_directory_path();
  std::string stem = "sluice_metrics_" + std::to_string(getpid()) + "_" +
                     std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  std::filesystem::path in = dir / (stem + ".prom");
  std::filesystem::path log = dir / (stem + ".log");
  {
    std::ofstream f(in, std::ios::binary);
    f << text;
  }
  std::string cmd = "promtool check metrics < '" + in.string() + "' > '" + log.string() + "' 2>&1";
  int status = std::system(cmd.c_str());
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream l(log);
  result.output.assign(std::istreambuf_iterator<char>(l), std::istreambuf_iterator<char>());
  std::filesystem::remove(in);
  std::filesystem::remove(log);
  return result;
}

bool promtool_installed() {
  return std::system("command -v promtool > /dev/null 2>&1") == 0;
}

// CI installs Debian's `prometheus` package for promtool (scripts/install-deps.sh).
TEST(RenderPrometheus, PassesPromtoolCheckMetrics) {
  ASSERT_TRUE(promtool_installed())
      << "promtool not found: install it with `apt-get install -y prometheus` (Debian's "
         "package ships /usr/bin/promtool); this test checks the exposition format with it";
  SampleMetrics m;
  m.fill();
  std::string out;
  m.registry.render_prometheus(out);
  PromtoolResult r = run_promtool(out);
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n--- exposition ---\n" << out;
}

// The check above would pass vacuously if promtool accepted anything.
TEST(RenderPrometheus, PromtoolRejectsWhatItShould) {
  ASSERT_TRUE(promtool_installed()) << "promtool not found: apt-get install -y prometheus";
  PromtoolResult lint = run_promtool("# HELP x_ms X.\n# TYPE x_ms counter\nx_ms 1\n");
  EXPECT_NE(lint.exit_code, 0) << lint.output;
  PromtoolResult syntax = run_promtool("# HELP x_total X.\n# TYPE x_total counter\nx_total{a=\"\n");
  EXPECT_NE(syntax.exit_code, 0) << syntax.output;
}

// Rendering while the owners write: every rendering parses (JSON) and the
// counters it shows never go backwards.
TEST(MetricsRegistry, RenderWhileWritersRun) {
  SampleMetrics m;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    uint64_t i = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      m.events_in[0].add();
      m.ingest[0]->record(++i % 1'000'000);
      m.depth.set(int64_t(i % 100));
    }
  });
  simdjson::dom::parser parser;
  uint64_t last = 0;
  std::string out;
  for (int i = 0; i < 200; ++i) {
    out.clear();
    m.registry.render_json(out);
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS);
    uint64_t total = doc["counters"]["events_in"]["total"];
    ASSERT_GE(total, last);
    last = total;
    out.clear();
    m.registry.render_prometheus(out);
  }
  stop = true;
  writer.join();
}

}  // namespace
}  // namespace sluice
