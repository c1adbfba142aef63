// The Kafka sink against real peers: librdkafka's mock cluster as the broker,
// `kcat -C` and a kafkajs consumer (tests/peers/kafkajs/consume.js) as readers.
// Every expected row (window and key, computed here from the events) must be
// in the topic exactly once, with its values, its key, the window end as its
// timestamp, its headers, and in the partition librdkafka's murmur2_random
// partitioner (the Java client's) puts that key in; with every codec; through
// injected retriable errors, leader moves and a broker taken down mid-run;
// and a batch the broker refuses for good stops the run with exit 1.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/kafka_peers.h"

namespace sluice::integration {
namespace {

constexpr int64_t kWindowS = 60;
constexpr int64_t kT0 = 1'699'999'980;  // a whole minute
constexpr int kPartitions = 4;

struct Expected {
  int64_t quantity = 0;
  double revenue = 0;
  int64_t events = 0;
};
// (window start in epoch seconds, "product:store") -> the row.
using Rows = std::map<std::pair<int64_t, std::string>, Expected>;

// `events` events over `minutes` minutes, in time order, for random ones of
// `products` products and two stores (one name not ASCII).
std::string make_events(std::mt19937_64& rng, int events, int minutes, int products, Rows& rows,
                        int64_t t0 = kT0) {
  std::string out;
  for (int i = 0; i < events; ++i) {
    const int64_t t = t0 + int64_t(i) * minutes * kWindowS / events;
    const int product = int(rng() % uint64_t(products));
    const std::string store = rng() % 2 == 0 ? "north" : "s\xc3\xbc" "d";
    const int64_t quantity = int64_t(rng() % 9) + 1;
    const double revenue = double(rng() % 4000) * 0.25;  // exact in binary
    Expected& e = rows[{t - t % kWindowS, fmt::format("{}:{}", product, store)}];
    e.quantity += quantity;
    e.revenue += revenue;
    e.events += 1;
    out += fmt::format(R"({{"product_id":{},"store":"{}","quantity":{},"revenue":{},"ts":{}}})", product, store,
                       quantity, revenue, t) +
           "\n";
  }
  return out;
}

std::string config(const std::string& source, const std::string& bootstrap, const std::string& extra) {
  return fmt::format(R"(
[pipeline]
name = "sales-kafka"
shards = 2
{}
[schema]
key = ["product_id", "store"]
time = {{ field = "ts", format = "epoch_s" }}
fields = {{ quantity = "int64", revenue = "float64" }}
[window]
size = "1m"
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
name = "topic"
type = "kafka"
brokers = [{}]
topic = "metrics"
key = "{{product_id}}:{{store}}"
linger = "2ms"
{}
)",
                     source, toml_string(split_brokers(bootstrap).front()), extra);
}

std::string file_source(const TempDir& dir) {
  return fmt::format("[[sources]]\nname = \"in\"\ntype = \"file\"\npath = {}\n", toml_string(dir.file("events.ndjson")));
}

// Where librdkafka's murmur2_random partitioner (the Java client's default)
// puts each key among kPartitions: the keys produced with kcat to topic "ref".
std::map<std::string, int32_t> reference_partitions(const KafkaPeers& peers, KafkaMock& mock, const TempDir& dir,
                                                    const Rows& rows) {
  EXPECT_TRUE(mock.ok(fmt::format("create ref {}", kPartitions)));
  std::set<std::string> keys;
  for (const auto& [wk, e] : rows) keys.insert(wk.second);
  std::string input;
  for (const std::string& k : keys) input += k + "\tx\n";
  const std::vector<std::string> argv = {peers.kcat, "-P", "-b", mock.bootstrap(), "-t", "ref", "-K", "\t",
                                         "-X",       "topic.partitioner=murmur2_random"};
  CommandResult r = run_command(argv, dir, kPeerTimeout, input);
  EXPECT_TRUE(command_ok(argv, r));
  std::map<std::string, int32_t> out;
  for (const InRecord& rec : kcat_consume(peers, dir, mock.bootstrap(), "ref")) out[*rec.key] = rec.partition;
  EXPECT_EQ(out.size(), keys.size());
  return out;
}

// One record as a consumer saw it.
struct Seen {
  int32_t partition = 0;
  int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;
};

// kcat's "%h": "k=v,k=v,..." in record order. The values here hold no '=' or
// ",sluice." except the last (sluice.key), so split on the known names.
std::map<std::string, std::string> parse_kcat_headers(std::string_view text) {
  std::map<std::string, std::string> out;
  const char* names[] = {"sluice.pipeline", "sluice.window_start", "sluice.window_end", "sluice.key"};
  for (size_t i = 0; i < 4; ++i) {
    const std::string at = std::string(i == 0 ? "" : ",") + names[i] + "=";
    const size_t p = text.find(at);
    if (p == std::string_view::npos) continue;
    const size_t from = p + at.size();
    const size_t to = i + 1 < 4 ? text.find(std::string(",") + names[i + 1] + "=", from) : text.size();
    out[names[i]] = std::string(text.substr(from, to == std::string_view::npos ? text.size() - from : to - from));
  }
  return out;
}

std::vector<Seen> consume_with_kcat(const KafkaPeers& peers, const TempDir& dir, const std::string& bootstrap) {
  std::vector<Seen> out;
  for (const InRecord& r : kcat_consume(peers, dir, bootstrap, "metrics")) {
    out.push_back(Seen{r.partition, r.timestamp_ms, r.key.value_or("<null>"), r.value.value_or("<null>"), {}});
  }
  // Headers, by partition and offset (one line per record; no value holds a newline).
  const std::vector<std::string> argv = {peers.kcat, "-C", "-b", bootstrap, "-t", "metrics", "-o", "beginning",
                                         "-e",       "-q", "-f", "%p %o %h\n"};
  CommandResult r = run_command(argv, dir, kPeerTimeout);
  EXPECT_TRUE(command_ok(argv, r));
  std::map<std::pair<int32_t, int64_t>, std::string> headers;
  for (const std::string& line : complete_lines(r.out)) {
    int partition = 0;
    long long offset = 0;
    int n = 0;
    if (std::sscanf(line.c_str(), "%d %lld %n", &partition, &offset, &n) >= 2) {
      headers[{partition, offset}] = line.substr(size_t(n));
    }
  }
  const std::vector<InRecord> records = kcat_consume(peers, dir, bootstrap, "metrics");
  for (size_t i = 0; i < out.size() && i < records.size(); ++i) {
    out[i].headers = parse_kcat_headers(headers[{records[i].partition, records[i].offset}]);
  }
  return out;
}

// Every expected row exactly once, nothing else; values, key, timestamp,
// headers and partition as they must be.
void expect_topic(const std::vector<Seen>& seen, const Rows& rows, const std::map<std::string, int32_t>& partition_of) {
  simdjson::dom::parser parser;
  std::map<std::pair<int64_t, std::string>, int> count;
  for (const Seen& s : seen) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(s.value).get(doc), simdjson::SUCCESS) << s.value;
    std::string_view ws, we, store;
    int64_t product = 0, quantity = 0, events = 0;
    double revenue = 0;
    ASSERT_EQ(doc["window_start"].get(ws), simdjson::SUCCESS) << s.value;
    ASSERT_EQ(doc["window_end"].get(we), simdjson::SUCCESS) << s.value;
    ASSERT_EQ(doc["product_id"].get(product), simdjson::SUCCESS) << s.value;
    ASSERT_EQ(doc["store"].get(store), simdjson::SUCCESS) << s.value;
    ASSERT_EQ(doc["total_quantity"].get(quantity), simdjson::SUCCESS) << s.value;
    ASSERT_EQ(doc["total_revenue"].get(revenue), simdjson::SUCCESS) << s.value;
    ASSERT_EQ(doc["events"].get(events), simdjson::SUCCESS) << s.value;
    const std::string key = fmt::format("{}:{}", product, store);
    int64_t start = -1;
    for (const auto& [wk, e] : rows) {
      if (rfc3339(wk.first) == ws) start = wk.first;
    }
    ASSERT_GE(start, 0) << "a window no event falls in: " << s.value;
    const auto it = rows.find({start, key});
    ASSERT_NE(it, rows.end()) << "a row not expected: " << s.value;
    ++count[{start, key}];
    EXPECT_EQ(we, rfc3339(start + kWindowS));
    EXPECT_EQ(quantity, it->second.quantity) << s.value;
    EXPECT_EQ(revenue, it->second.revenue) << s.value;
    EXPECT_EQ(events, it->second.events) << s.value;
    EXPECT_EQ(s.key, key);
    EXPECT_EQ(s.timestamp_ms, (start + kWindowS) * 1000) << s.value;
    EXPECT_EQ(s.partition, partition_of.at(key)) << key;
    EXPECT_EQ(s.headers.size(), 4u) << s.value;
    if (s.headers.size() == 4) {
      EXPECT_EQ(s.headers.at("sluice.pipeline"), "sales-kafka");
      EXPECT_EQ(s.headers.at("sluice.window_start"), rfc3339(start));
      EXPECT_EQ(s.headers.at("sluice.window_end"), rfc3339(start + kWindowS));
      EXPECT_EQ(s.headers.at("sluice.key"), fmt::format("[{},\"{}\"]", product, store));
    }
  }
  for (const auto& [wk, e] : rows) {
    EXPECT_EQ(count[wk], 1) << "row " << wk.first << " " << wk.second << " seen " << count[wk] << " times";
  }
  EXPECT_EQ(seen.size(), rows.size());
}

class KafkaSinkCodecTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KafkaSinkCodecTest, EachRowIsOneRecordInItsKeysPartition) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, true));  // node, for kafka-probe.js
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "2", "--topic", fmt::format("metrics:{}", kPartitions),
                                      "--leaders", "round-robin"}));
  std::mt19937_64 rng(std::hash<std::string>{}(GetParam()));
  Rows rows;
  write_file(dir.file("events.ndjson"), make_events(rng, 6000, 6, 40, rows));
  write_file(dir.file("p.toml"), config(file_source(dir), mock.bootstrap(),
                                        fmt::format("compression = \"{}\"\nbatch_bytes_max = 4096", GetParam())));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  EXPECT_TRUE(warnings_and_errors(run.stderr_text()).empty()) << run.stderr_text();
  const auto summary = parse_summary(run.stderr_text());
  ASSERT_TRUE(summary.has_value());
  EXPECT_EQ(summary->rows_out, rows.size());
  expect_topic(consume_with_kcat(peers, dir, mock.bootstrap()), rows, reference_partitions(peers, mock, dir, rows));
  // The batches are stored as sent: the first one of partition 0 (led by broker 1) has the
  // codec asked for and a good CRC (read by tests/peers/kafka-probe.js, not by Sluice).
  const std::string probe = std::string(SLUICE_SOURCE_DIR) + "/tests/peers/kafka-probe.js";
  const std::vector<std::string> argv = {peers.node, probe, "fetch", "--broker", mock.brokers()[0], "--topic",
                                         "metrics", "--partition", "0", "--offset", "0"};
  CommandResult r = run_command(argv, dir, kPeerTimeout);
  ASSERT_TRUE(command_ok(argv, r));
  EXPECT_NE(r.out.find(fmt::format("\"codec\":\"{}\"", GetParam())), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"crc_ok\":true"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"crc_ok\":false"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Codecs, KafkaSinkCodecTest, ::testing::Values("none", "gzip", "snappy", "lz4", "zstd"));

TEST(KafkaSinkTest, KafkajsConsumerReadsEveryRow) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, true));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "1", "--topic", fmt::format("metrics:{}", kPartitions)}));
  std::mt19937_64 rng(5);
  Rows rows;
  write_file(dir.file("events.ndjson"), make_events(rng, 2000, 3, 20, rows));
  write_file(dir.file("p.toml"), config(file_source(dir), mock.bootstrap(), "compression = \"gzip\""));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  const std::string consume = peers.kafkajs.substr(0, peers.kafkajs.rfind('/')) + "/consume.js";
  const std::vector<std::string> argv = {peers.node, consume, "--brokers", mock.bootstrap(), "--topic", "metrics",
                                         "--count", std::to_string(rows.size())};
  CommandResult r = run_command(argv, dir, kPeerTimeout);
  ASSERT_TRUE(command_ok(argv, r)) << r.err;
  std::vector<Seen> seen;
  simdjson::dom::parser parser;
  for (const std::string& line : complete_lines(r.out)) {
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
    Seen s;
    int64_t partition = 0;
    std::string_view key, value, ts;
    ASSERT_EQ(doc["partition"].get(partition), simdjson::SUCCESS);
    ASSERT_EQ(doc["key"].get(key), simdjson::SUCCESS);
    ASSERT_EQ(doc["value"].get(value), simdjson::SUCCESS);
    ASSERT_EQ(doc["timestamp"].get(ts), simdjson::SUCCESS);
    s.partition = int32_t(partition);
    s.key = std::string(key);
    s.value = std::string(value);
    s.timestamp_ms = std::stoll(std::string(ts));
    simdjson::dom::object headers;
    ASSERT_EQ(doc["headers"].get(headers), simdjson::SUCCESS);
    for (auto [k, v] : headers) s.headers[std::string(k)] = std::string(v.get_string().value());
    seen.push_back(std::move(s));
  }
  expect_topic(seen, rows, reference_partitions(peers, mock, dir, rows));
}

// Retriable errors on Produce, every leader moved to the other broker and the
// first broker taken down mid-run: each row still lands once. (The mock writes
// nothing for a request it answers with an injected error or NOT_LEADER, so a
// row seen twice would be Sluice's doing.)
TEST(KafkaSinkTest, RetriesLeaderMovesAndABrokerDownLoseAndDoubleNothing) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, false));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "2", "--topic", fmt::format("metrics:{}", kPartitions),
                                      "--leaders", "round-robin"}));
  std::mt19937_64 rng(9);
  Rows rows;
  const std::string first = make_events(rng, 3000, 5, 30, rows);
  const std::string second = make_events(rng, 3000, 5, 30, rows, kT0 + 5 * kWindowS);
  const std::string source = "[[sources]]\nname = \"in\"\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\n";
  write_file(dir.file("p.toml"), config(source, mock.bootstrap(),
                                        "compression = \"zstd\"\nbatch_bytes_max = 2048\n"
                                        "[metrics]\nlisten = \"127.0.0.1:0\""));
  ASSERT_TRUE(mock.ok("errors Produce 5 NOT_LEADER_OR_FOLLOWER REQUEST_TIMED_OUT NOT_ENOUGH_REPLICAS "
                      "NOT_ENOUGH_REPLICAS_AFTER_APPEND LEADER_NOT_AVAILABLE"));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const auto port = run.wait_for_port("in");
  ASSERT_TRUE(port.has_value());
  {
    TcpClient client;
    ASSERT_EQ(client.connect(*port), "");
    ASSERT_EQ(client.send_all(first), "");
  }
  // Rows of the first part reach the topic (windows before the last one fire).
  const auto deadline = Clock::now() + kRowsTimeout;
  while (kcat_consume(peers, dir, mock.bootstrap(), "metrics").empty()) {
    ASSERT_LT(Clock::now(), deadline) << run.stderr_text();
    std::this_thread::sleep_for(100ms);
  }
  for (int p = 0; p < kPartitions; ++p) ASSERT_TRUE(mock.ok(fmt::format("leader metrics {} 2", p)));
  ASSERT_TRUE(mock.ok("broker_down 1"));
  ASSERT_TRUE(mock.ok("errors Produce 2 NOT_LEADER_OR_FOLLOWER NOT_ENOUGH_REPLICAS"));
  {
    TcpClient client;
    ASSERT_EQ(client.connect(*port), "");
    ASSERT_EQ(client.send_all(second), "");
  }
  std::this_thread::sleep_for(300ms);
  // The retries are counted where an operator looks.
  std::smatch m;
  const std::string log = run.stderr_text();
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(metrics: http://(127\.0\.0\.1:[0-9]+)/metrics)"))) << log;
  const CommandResult scrape = run_command({"/usr/bin/curl", "-sS", "http://" + m[1].str() + "/metrics"}, dir);
  for (const char* series : {"sluice_sink_retries_total", "sluice_sink_errors_total", "sluice_sink_writes_total"}) {
    ASSERT_TRUE(std::regex_search(scrape.out, m, std::regex(std::string(series) + R"(\{sink="topic"\} ([0-9]+))")))
        << series << "\n" << scrape.out;
    EXPECT_GE(std::stoi(m[1].str()), 5) << series;  // 7 Produce requests failed, each resent
  }
  ASSERT_TRUE(run.terminates_cleanly()) << run.stderr_text();
  const std::string err = run.stderr_text();
  EXPECT_NE(err.find("sending the batch again"), std::string::npos) << err;
  for (const std::string& w : warnings_and_errors(err)) {
    EXPECT_TRUE(w.find("sending the batch again") != std::string::npos || w.find("reconnecting") != std::string::npos)
        << w;
  }
  ASSERT_TRUE(mock.ok("broker_up 1"));
  expect_topic(consume_with_kcat(peers, dir, mock.bootstrap()), rows, reference_partitions(peers, mock, dir, rows));
}

// The bootstrap broker is down when the run starts and for a while after rows
// are due: the sink waits without spinning (a loop polling the dead broker
// would burn a core), and once the broker is back every row lands. Then a
// leader goes down while the sink has nothing for it: its lost connection is
// not wanted until there is, and costs no CPU either.
TEST(KafkaSinkTest, BrokersThatAreAwayAreWaitedForWithoutSpinning) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, false));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "2", "--topic", fmt::format("metrics:{}", kPartitions),
                                      "--leaders", "round-robin"}));
  ASSERT_TRUE(mock.ok("broker_down 1"));
  std::mt19937_64 rng(21);
  Rows rows;
  const std::string events = make_events(rng, 2000, 4, 10, rows);
  const std::string source = "[[sources]]\nname = \"in\"\ntype = \"tcp\"\nlisten = \"127.0.0.1:0\"\n";
  write_file(dir.file("p.toml"), config(source, mock.bootstrap(), ""));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const auto port = run.wait_for_port("in");
  ASSERT_TRUE(port.has_value());
  {
    TcpClient client;
    ASSERT_EQ(client.connect(*port), "");
    ASSERT_EQ(client.send_all(events), "");
  }
  ASSERT_TRUE(wait_for_log(run, "Connection refused"));
  auto cpu_over_2s = [&] {
    std::this_thread::sleep_for(500ms);
    const double before = process_cpu_seconds(run.process().pid());
    std::this_thread::sleep_for(2s);
    return process_cpu_seconds(run.process().pid()) - before;
  };
  // A spinning shard uses ~2 s here; waiting costs a few ms of reconnection attempts.
  EXPECT_LT(cpu_over_2s(), 0.5) << "CPU seconds in 2 s while the bootstrap broker was away";
  ASSERT_TRUE(mock.ok("broker_up 1"));
  // Every window but the last fires (the last waits for the stop).
  const auto deadline = Clock::now() + kRowsTimeout;
  while (kcat_consume(peers, dir, mock.bootstrap(), "metrics").size() + 50 < rows.size()) {
    ASSERT_LT(Clock::now(), deadline) << run.stderr_text();
    std::this_thread::sleep_for(100ms);
  }
  // Broker 2 holds its next Produce for 3 s (then refuses it, writing nothing);
  // meanwhile its partitions move to broker 1 and it goes down: the request is
  // lost with the connection, sent again to broker 1, and the connection to
  // broker 2, in back-off, is wanted by nobody.
  ASSERT_TRUE(mock.ok("broker_errors 2 Produce NOT_LEADER_OR_FOLLOWER:3000"));
  {
    TcpClient client;
    ASSERT_EQ(client.connect(*port), "");
    ASSERT_EQ(client.send_all(make_events(rng, 500, 2, 10, rows, kT0 + 4 * kWindowS)), "");
  }
  std::this_thread::sleep_for(500ms);
  for (int p = 1; p < kPartitions; p += 2) ASSERT_TRUE(mock.ok(fmt::format("leader metrics {} 1", p)));
  ASSERT_TRUE(mock.ok("broker_down 2"));
  EXPECT_LT(cpu_over_2s(), 0.5) << "CPU seconds in 2 s after a leader went away";
  ASSERT_TRUE(mock.ok("broker_up 2"));
  ASSERT_TRUE(run.terminates_cleanly()) << run.stderr_text();
  expect_topic(consume_with_kcat(peers, dir, mock.bootstrap()), rows, reference_partitions(peers, mock, dir, rows));
}

TEST(KafkaSinkTest, ABatchTheBrokerRefusesStopsTheRun) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, false));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "1", "--topic", "metrics:1"}));
  std::mt19937_64 rng(1);
  Rows rows;
  write_file(dir.file("events.ndjson"), make_events(rng, 500, 3, 5, rows));
  write_file(dir.file("p.toml"), config(file_source(dir), mock.bootstrap(), ""));
  ASSERT_TRUE(mock.ok("errors Produce 1 MESSAGE_TOO_LARGE"));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const std::optional<ExitStatus> status = run.process().wait_exit(kExitTimeout);
  ASSERT_TRUE(status.has_value()) << run.stderr_text();
  EXPECT_TRUE(status->exited && status->code == 1) << run.stderr_text();
  const std::string err = run.stderr_text();
  EXPECT_NE(err.find("the broker refused a batch"), std::string::npos) << err;
  EXPECT_NE(err.find("MESSAGE_TOO_LARGE"), std::string::npos) << err;
  EXPECT_NE(err.find("rows not written"), std::string::npos) << err;
}

TEST(KafkaSinkTest, ConfigErrorsNameTheLine) {
  TempDir dir;
  std::string toml = config(file_source(dir), "127.0.0.1:9092", "compression = \"brotli\"\nacks = \"0\"\nformat = \"csv\"");
  const size_t at = toml.find("{product_id}:{store}");
  ASSERT_NE(at, std::string::npos);
  toml.replace(at, 20, "{nope}");
  write_file(dir.file("p.toml"), toml);
  CommandResult r = run_command({sluice_bin(), "check", dir.file("p.toml")}, dir);
  EXPECT_EQ(r.status.code, 2) << r.err;
  EXPECT_NE(r.err.find("compression"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("brotli"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("acks"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("one NDJSON value"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\"nope\" is not a key field"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("p.toml:"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sluice::integration
