// The [metrics] endpoint, scraped by real clients while the engine runs:
// curl fetches /metrics and /status, promtool validates the exposition, and
// the counters must equal what the test sent.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <regex>
#include <string>
#include <thread>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

std::string pipeline(const TempDir& dir) {
  return R"([pipeline]
shards = 2

[[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"

[schema]
key = ["k"]
time = { field = "ts", format = "epoch_s" }

[window]
size = "1m"
watermark_delay = "0s"
idle_timeout = "1h"

[[aggregates]]
name = "n"
fn = "count"

[[sinks]]
name = "rows"
type = "file"
path = )" + toml_string(dir.file("rows.ndjson")) + R"(
flush_interval = "0s"

[dead_letter]
path = )" + toml_string(dir.file("dead.ndjson")) + R"(

[metrics]
listen = "127.0.0.1:0"
)";
}

// The metrics port from the start-up log line "metrics: http://127.0.0.1:PORT/metrics ...".
std::string metrics_address(const std::string& stderr_text) {
  std::smatch m;
  static const std::regex re(R"(metrics: http://(127\.0\.0\.1:[0-9]+)/metrics)");
  return std::regex_search(stderr_text, m, re) ? m[1].str() : std::string();
}

// The value of a sample line `name{labels} value` summed over its series.
double sum_samples(const std::string& exposition, const std::string& name) {
  double total = 0;
  const std::regex re("^" + name + R"((\{[^}]*\})? ([0-9.eE+-]+)$)");
  for (const std::string& line : complete_lines(exposition)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) total += std::stod(m[2].str());
  }
  return total;
}

TEST(MetricsEndpointTest, ScrapesPassPromtoolAndCountWhatWasSent) {
  TempDir dir;
  write_file(dir.file("pipeline.toml"), pipeline(dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  std::optional<uint16_t> port = run.wait_for_port("pos");
  ASSERT_TRUE(port);
  const std::string address = metrics_address(run.stderr_text());
  ASSERT_FALSE(address.empty()) << run.stderr_text();

  // 1000 events for 10 keys in minute 1, one bad line, then one event in
  // minute 3 so minute 1's window fires (watermark_delay 0).
  std::string data;
  for (int i = 0; i < 1000; ++i) {
    data += R"({"k":)" + std::to_string(i % 10) + R"(,"ts":)" + std::to_string(60 + i % 60) + "}\n";
  }
  data += "not json\n";
  data += R"({"k":1,"ts":180})" "\n";
  TcpClient client;
  ASSERT_EQ(client.connect(*port), "");
  ASSERT_EQ(client.send_all(data), "");
  ASSERT_EQ(client.finish(), "");

  // Gauges refresh every 100 ms and the window's rows are written at once;
  // poll (bounded) until the counters show everything.
  std::string metrics;
  for (int attempt = 0; attempt < 100; ++attempt) {
    CommandResult r = run_command({"/usr/bin/curl", "-sS", "http://" + address + "/metrics"}, dir);
    ASSERT_TRUE(r.status.exited && r.status.code == 0) << "curl: " << r.err;
    metrics = r.out;
    // Every figure asserted below settles at its own moment (lines when read,
    // events when the owning shard applies them, emit latency when the write
    // completes), so wait for all of them.
    if (sum_samples(metrics, "sluice_lines_read_total") == 1002 &&
        sum_samples(metrics, "sluice_events_applied_total") == 1001 &&
        sum_samples(metrics, "sluice_dead_letters_total") == 1 &&
        sum_samples(metrics, "sluice_rows_written_total") == 10 &&
        sum_samples(metrics, "sluice_source_lines_total") == 1002 &&
        sum_samples(metrics, "sluice_ingest_latency_seconds_count") >= 1001 &&
        sum_samples(metrics, "sluice_emit_latency_seconds_count") >= 1) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(sum_samples(metrics, "sluice_lines_read_total"), 1002) << metrics;
  EXPECT_EQ(sum_samples(metrics, "sluice_events_applied_total"), 1001) << metrics;
  EXPECT_EQ(sum_samples(metrics, "sluice_dead_letters_total"), 1) << metrics;
  EXPECT_EQ(sum_samples(metrics, "sluice_rows_written_total"), 10) << metrics;
  EXPECT_EQ(sum_samples(metrics, "sluice_source_lines_total"), 1002) << metrics;
  EXPECT_EQ(sum_samples(metrics, "sluice_connections_accepted_total"), 1) << metrics;
  EXPECT_GE(sum_samples(metrics, "sluice_ingest_latency_seconds_count"), 1001) << metrics;
  EXPECT_GE(sum_samples(metrics, "sluice_emit_latency_seconds_count"), 1) << metrics;

  // promtool, the Prometheus project's own checker, accepts the page.
  write_file(dir.file("metrics.txt"), metrics);
  CommandResult check = run_command({"/bin/sh", "-c", "promtool check metrics < " + dir.file("metrics.txt")}, dir);
  EXPECT_TRUE(check.status.exited && check.status.code == 0) << check.out << check.err;

  // /status is JSON with the same counts.
  CommandResult status = run_command({"/usr/bin/curl", "-sS", "http://" + address + "/status"}, dir);
  ASSERT_TRUE(status.status.exited && status.status.code == 0);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(status.out).get(doc), simdjson::SUCCESS) << status.out;
  uint64_t lines = 0;
  ASSERT_EQ(doc["counters"]["lines_read"]["total"].get(lines), simdjson::SUCCESS) << status.out;
  EXPECT_EQ(lines, 1002u);

  // Other paths and methods.
  CommandResult missing = run_command(
      {"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://" + address + "/nope"}, dir);
  EXPECT_EQ(missing.out, "404");
  CommandResult post = run_command({"/usr/bin/curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X",
                                    "POST", "http://" + address + "/metrics"},
                                   dir);
  EXPECT_EQ(post.out, "405");
  CommandResult head = run_command({"/usr/bin/curl", "-sI", "http://" + address + "/metrics"}, dir);
  EXPECT_NE(head.out.find("200"), std::string::npos) << head.out;

  EXPECT_TRUE(run.terminates_cleanly());
}

}  // namespace
}  // namespace sluice::integration
