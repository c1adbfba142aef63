// The mission's streaming job as examples/sales_streaming.toml writes it, run
// end to end against real peers: sales events produced by kafkajs (keyed, with
// the headers the mission's producer sends) into librdkafka's mock cluster;
// Sluice's 5-minute windows with a 10-minute watermark; a Redis hash and a
// HyperLogLog per product in a real redis-server; the rows on a Kafka topic,
// read back with kcat; the file. The example is used as shipped, except for
// where its peers listen, where its files go, and `stop = "end"` so the
// replay ends by itself. Expectations are computed here from the events; the
// distinct counts are what Redis's own PFCOUNT gives for each window's
// customers.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <filesystem>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/kafka_peers.h"
#include "tests/integration/redis_peer.h"

namespace sluice::integration {
namespace {

constexpr int64_t kWindowS = 300;
constexpr int64_t kT0 = 1'711'533'600;  // 2024-03-27T10:00:00Z, a whole 5 minutes
constexpr int kPartitions = 4;

struct Expected {
  int64_t quantity = 0;
  double revenue = 0;
  std::set<std::string> customers;
};

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

TEST(ExampleStreamingTest, TheMissionsStreamingJobRunsAsShipped) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, true));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "1", "--topic", fmt::format("sales_events:{}", kPartitions),
                                      "--topic", fmt::format("sales_metrics:{}", kPartitions)}));
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());

  // 40 minutes of sales of 12 products, in time order per partition
  // (partition = product % 4, as a keyed producer would group them).
  std::mt19937_64 rng(2024);
  std::map<std::pair<int64_t, int>, Expected> rows;  // (window start, product)
  std::vector<std::vector<std::string>> partitions(kPartitions);
  for (int i = 0; i < 4000; ++i) {
    const int64_t t = kT0 + int64_t(i) * 40 * 60 / 4000;
    const int product = int(rng() % 12);
    const int64_t quantity = int64_t(rng() % 5) + 1;
    const double revenue = double(rng() % 2000) * 0.5;
    const std::string customer = fmt::format("cust-{}", rng() % 300);
    // One event in ten has no customer_id (as the mission's producer sends them):
    // it counts in the sums, not in the distinct customers.
    const bool anonymous = rng() % 10 == 0;
    Expected& e = rows[{t - t % kWindowS, product}];
    e.quantity += quantity;
    e.revenue += revenue;
    if (!anonymous) e.customers.insert(customer);
    partitions[size_t(product % kPartitions)].push_back(
        anonymous ? fmt::format(R"({{"product_id":{},"quantity":{},"revenue":{},"timestamp":"{}"}})", product,
                                quantity, revenue, rfc3339(t))
                  : fmt::format(R"({{"product_id":{},"quantity":{},"revenue":{},"customer_id":"{}","timestamp":"{}"}})",
                                product, quantity, revenue, customer, rfc3339(t)));
  }
  for (int p = 0; p < kPartitions; ++p) {
    ToolProduce how;
    how.topic = "sales_events";
    how.partition = p;
    how.key_field = "product_id";
    how.headers = {"source=pos-system", "version=1.0"};
    ASSERT_TRUE(kafkajs_produce(peers, dir, mock.bootstrap(), how, partitions[size_t(p)]));
  }

  // The example, pointed at this test's peers and directory.
  std::string toml = read_file(std::string(SLUICE_SOURCE_DIR) + "/examples/sales_streaming.toml");
  const std::string broker = split_brokers(mock.bootstrap()).front();
  toml = replace_all(toml, "brokers = [\"127.0.0.1:9092\"]", fmt::format("brokers = [\"{}\"]", broker));
  toml = replace_all(toml, "address = \"127.0.0.1:6379\"", fmt::format("address = \"127.0.0.1:{}\"", redis.port()));
  toml = replace_all(toml, "stop = \"none\"", "stop = \"end\"");
  toml = replace_all(toml, "\"out/", "\"" + dir.file("out") + "/");
  ASSERT_NE(toml.find(broker), std::string::npos);
  ASSERT_NE(toml.find(std::to_string(redis.port())), std::string::npos);
  std::filesystem::create_directories(dir.file("out"));
  write_file(dir.file("sales_streaming.toml"), toml);
  SluiceRun run(dir, dir.file("sales_streaming.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  EXPECT_TRUE(warnings_and_errors(run.stderr_text()).empty()) << run.stderr_text();

  // Distinct customers per (window, product), as Redis's own PFCOUNT gives them.
  std::string commands;
  for (const auto& [wk, e] : rows) {
    commands += fmt::format("PFADD ref:{}:{}", wk.first, wk.second);
    for (const std::string& c : e.customers) commands += " " + c;
    commands += fmt::format("\nPFCOUNT ref:{}:{}\n", wk.first, wk.second);
  }
  const std::vector<std::string> counted = complete_lines(redis.cli({}, commands).out);
  ASSERT_EQ(counted.size(), 2 * rows.size());
  std::map<std::pair<int64_t, int>, int64_t> distinct;
  size_t at = 0;
  for (const auto& [wk, e] : rows) {
    distinct[wk] = std::stoll(counted[at + 1]);
    at += 2;
  }

  // The topic: each row once, keyed by product, with the mission's aggregates.
  simdjson::dom::parser parser;
  std::map<std::pair<int64_t, int>, int> seen;
  const std::vector<InRecord> records = kcat_consume(peers, dir, mock.bootstrap(), "sales_metrics");
  for (const InRecord& r : records) {
    ASSERT_TRUE(r.value.has_value());
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(*r.value).get(doc), simdjson::SUCCESS) << *r.value;
    std::string_view ws;
    int64_t product = 0, quantity = 0, unique = 0;
    double revenue = 0;
    ASSERT_EQ(doc["window_start"].get(ws), simdjson::SUCCESS);
    ASSERT_EQ(doc["product_id"].get(product), simdjson::SUCCESS);
    ASSERT_EQ(doc["total_quantity"].get(quantity), simdjson::SUCCESS);
    ASSERT_EQ(doc["total_revenue"].get(revenue), simdjson::SUCCESS);
    ASSERT_EQ(doc["unique_customers"].get(unique), simdjson::SUCCESS);
    int64_t start = -1;
    for (const auto& [wk, e] : rows) {
      if (rfc3339(wk.first) == ws) start = wk.first;
    }
    const auto it = rows.find({start, int(product)});
    ASSERT_NE(it, rows.end()) << *r.value;
    ++seen[it->first];
    EXPECT_EQ(r.key, std::to_string(product));
    EXPECT_EQ(quantity, it->second.quantity) << *r.value;
    EXPECT_EQ(revenue, it->second.revenue) << *r.value;
    EXPECT_EQ(unique, distinct[it->first]) << *r.value;
  }
  EXPECT_EQ(records.size(), rows.size());
  for (const auto& [wk, e] : rows) EXPECT_EQ(seen[wk], 1) << wk.first << " " << wk.second;

  // Redis: each product's hash holds its last window; its HyperLogLogs count as PFCOUNT does.
  std::map<int, int64_t> last_window;
  for (const auto& [wk, e] : rows) last_window[wk.second] = std::max(last_window[wk.second], wk.first);
  for (const auto& [product, window] : last_window) {
    const Expected& e = rows.at({window, product});
    const std::vector<std::string> hash =
        complete_lines(redis.cli({"HMGET", fmt::format("product:{}", product), "quantity", "revenue",
                                  "unique_customers", "last_updated"})
                           .out);
    ASSERT_EQ(hash.size(), 4u) << product;
    EXPECT_EQ(hash[0], std::to_string(e.quantity)) << product;
    EXPECT_EQ(std::stod(hash[1]), e.revenue) << product;
    EXPECT_EQ(hash[2], std::to_string(distinct.at({window, product}))) << product;
    EXPECT_EQ(hash[3], rfc3339(window + kWindowS)) << product;
    for (const auto& [wk, d] : distinct) {
      if (wk.second != product) continue;
      EXPECT_EQ(redis.reply({"PFCOUNT", fmt::format("customers:{}:{}", product, rfc3339(wk.first))}),
                std::to_string(d) + "\n")
          << product << " " << wk.first;
    }
  }

  // The file: the same rows.
  EXPECT_EQ(complete_lines(read_file(dir.file("out") + "/sales_metrics.ndjson")).size(), rows.size());
}

}  // namespace
}  // namespace sluice::integration
