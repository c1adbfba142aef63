// The Redis sink against a real redis-server: every hash holds the values of
// the last window its key had, computed here from the events (sums, counts,
// the window end, a distinct count as PFCOUNT gives it), with its TTL; over
// a Unix socket with a password and a database; a Redis that comes up only
// after the run has started loses nothing; a wrong password and a key of the wrong type stop the run with
// exit 1 and say why.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <atomic>
#include <map>
#include <regex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/redis_peer.h"

namespace sluice::integration {
namespace {

constexpr int64_t kWindowS = 60;
constexpr int64_t kT0 = 1'699'999'980;  // a whole minute (28 333 333 of them)

struct Expected {
  int64_t window = -1;  // start, epoch seconds
  int64_t quantity = 0;
  double revenue = 0;
  int64_t events = 0;
  std::set<std::string> customers;
};

// One random event of `product` at `t` (the store field alternates between
// two strings), as its NDJSON line; its key's last window in `expected`.
std::string make_event(std::mt19937_64& rng, int product, int64_t t, std::map<std::string, Expected>& expected) {
  const std::string store = product % 2 == 0 ? "north" : "s\xc3\xbc" "d";
  const int64_t quantity = int64_t(rng() % 9) + 1;
  const double revenue = double(rng() % 4000) * 0.25;  // exact in binary: sums are exact
  const std::string customer = fmt::format("c{:05}", rng() % 500);
  const int64_t window = t - (t % kWindowS);
  Expected& e = expected[fmt::format("product:{}:{}", product, store)];
  if (e.window != window) e = Expected{window};
  e.quantity += quantity;
  e.revenue += revenue;
  e.events += 1;
  e.customers.insert(customer);
  return fmt::format(R"({{"product_id":{},"store":"{}","customer_id":"{}","quantity":{},"revenue":{},"ts":{}}})",
                     product, store, customer, quantity, revenue, t) + "\n";
}

// Events over `minutes` minutes for random ones of `products` products.
std::string make_events(std::mt19937_64& rng, int events, int minutes, int products,
                        std::map<std::string, Expected>& expected) {
  std::string out;
  for (int i = 0; i < events; ++i) {
    out += make_event(rng, int(rng() % uint64_t(products)), kT0 + int64_t(i) * minutes * kWindowS / events, expected);
  }
  return out;
}

std::string config(const TempDir& dir, const std::string& address, const std::string& extra) {
  return fmt::format(R"(
[pipeline]
shards = 2
[[sources]]
name = "in"
type = "file"
path = {}
[schema]
key = ["product_id", "store"]
time = {{ field = "ts", format = "epoch_s" }}
fields = {{ quantity = "int64", revenue = "float64", customer_id = "string" }}
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
[[aggregates]]
name = "unique_customers"
fn = "approx_count_distinct"
field = "customer_id"
[[sinks]]
name = "cache"
type = "redis"
address = {}
key = "product:{{product_id}}:{{store}}"
fields = {{ quantity = "total_quantity", revenue = "total_revenue", events = "events", customers = "unique_customers", last_updated = "window_end" }}
buffer_bytes = 65536
{}
)",
                     toml_string(dir.file("events.ndjson")), toml_string(address), extra);
}

// Every expected hash, read back with redis-cli (db `db`), and the distinct
// counts Redis itself gives for each key's customers.
void expect_hashes(RedisServer& redis, const std::map<std::string, Expected>& expected, int db = 0,
                   int64_t ttl_ms = 0) {
  const std::vector<std::string> dbarg = {"-n", std::to_string(db)};
  std::string commands;
  for (const auto& [key, e] : expected) {
    commands += "HMGET " + redis_cli_quote(key) + " quantity revenue events customers last_updated\n";
    commands += fmt::format("PFADD tmp:{}", redis_cli_quote(key));
    for (const std::string& c : e.customers) commands += " " + c;
    commands += fmt::format("\nPFCOUNT tmp:{}\nPTTL {}\n", redis_cli_quote(key), redis_cli_quote(key));
  }
  std::vector<std::string> args = dbarg;
  const std::vector<std::string> lines = complete_lines(redis.cli(args, commands).out);
  size_t at = 0;
  for (const auto& [key, e] : expected) {
    std::map<std::string, std::string> hash;
    // HMGET prints one line per field (empty when missing).
    ASSERT_LT(at + 7, lines.size() + 1);
    for (const char* f : {"quantity", "revenue", "events", "customers", "last_updated"}) hash[f] = lines[at++];
    at += 1;  // PFADD's reply
    const std::string pfcount = lines[at++];
    const int64_t pttl = std::stoll(lines[at++]);
    EXPECT_EQ(hash["quantity"], std::to_string(e.quantity)) << key;
    EXPECT_EQ(hash["revenue"].empty() ? -1.0 : std::stod(hash["revenue"]), e.revenue) << key;
    EXPECT_EQ(hash["events"], std::to_string(e.events)) << key;
    EXPECT_EQ(hash["customers"], pfcount) << key;
    EXPECT_EQ(hash["last_updated"], rfc3339(e.window + kWindowS)) << key;
    if (ttl_ms > 0) {
      EXPECT_GT(pttl, ttl_ms - 60'000) << key;
      EXPECT_LE(pttl, ttl_ms) << key;
    } else {
      EXPECT_EQ(pttl, -1) << key;  // no expiry
    }
  }
  // Nothing else was written (the tmp: keys are the test's own).
  const std::string keys = redis.cli({"-n", std::to_string(db), "--scan", "--pattern", "product:*"}).out;
  EXPECT_EQ(complete_lines(keys).size(), expected.size());
}

TEST(RedisSink, EveryHashHoldsItsKeysLastWindowWithItsTtl) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  std::mt19937_64 rng(1);
  std::map<std::string, Expected> expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 30000, 7, 200, expected));
  write_file(dir.file("p.toml"), config(dir, fmt::format("127.0.0.1:{}", redis.port()), "ttl = \"2h\""));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  expect_hashes(redis, expected, 0, 2 * 3600 * 1000);
}

TEST(RedisSink, UnixSocketPasswordAndDatabase) {
  TempDir dir;
  RedisServer redis(dir);
  redis.set_cli_password("s3cret pass");
  ASSERT_TRUE(redis.start({"--requirepass", "s3cret pass"}));
  std::mt19937_64 rng(2);
  std::map<std::string, Expected> expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 5000, 3, 40, expected));
  write_file(dir.file("p.toml"),
             config(dir, "unix:" + redis.socket_path(), "password = \"s3cret pass\"\ndb = 3"));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  expect_hashes(redis, expected, 3);
  EXPECT_EQ(redis.reply({"-n", "0", "DBSIZE"}), "0\n");
}

TEST(RedisSink, AWrongPasswordStopsTheRunWithExitOne) {
  TempDir dir;
  RedisServer redis(dir);
  redis.set_cli_password("right");
  ASSERT_TRUE(redis.start({"--requirepass", "right"}));
  std::mt19937_64 rng(3);
  std::map<std::string, Expected> expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 500, 2, 10, expected));
  write_file(dir.file("p.toml"), config(dir, "unix:" + redis.socket_path(), "password = \"wrong\""));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const auto st = run.process().wait_exit(kExitTimeout);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe() << run.stderr_text();
  EXPECT_NE(run.stderr_text().find("refused AUTH: WRONGPASS"), std::string::npos) << run.stderr_text();
}

TEST(RedisSink, AKeyOfAnotherTypeStopsTheRunAndNamesTheKey) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  std::mt19937_64 rng(4);
  std::map<std::string, Expected> expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 500, 2, 10, expected));
  const std::string taken = expected.begin()->first;
  ASSERT_EQ(redis.reply({"SET", taken, "a string"}), "OK\n");
  write_file(dir.file("p.toml"), config(dir, "unix:" + redis.socket_path(), ""));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const auto st = run.process().wait_exit(kExitTimeout);
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe();
  const std::string log = run.stderr_text();
  EXPECT_NE(log.find("for key \"" + taken + "\": WRONGTYPE"), std::string::npos) << log;
  EXPECT_NE(log.find("rows not written"), std::string::npos) << log;
}

// Redis is not there when the run starts and comes up a second later: the
// sink reconnects with back-off, sends what waited, and the run exits 0 with
// every key right. Then Redis crashes (SIGKILL, nothing persisted) and a
// second run writes everything again.
TEST(RedisSink, ARedisThatComesLateOrRestartsLosesNothingAfterwards) {
  TempDir dir;
  RedisServer redis(dir);
  const uint16_t port = redis.reserve_port();
  std::mt19937_64 rng(5);
  std::map<std::string, Expected> expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 20000, 4, 100, expected));
  write_file(dir.file("p.toml"),
             config(dir, fmt::format("127.0.0.1:{}", port), "[metrics]\nlisten = \"127.0.0.1:0\""));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  std::this_thread::sleep_for(1s);
  ASSERT_TRUE(run.process().running()) << run.stderr_text();  // waiting for Redis, not failed
  // The lost connections are counted where an operator looks.
  std::smatch m;
  const std::string log = run.stderr_text();
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(metrics: http://(127\.0\.0\.1:[0-9]+)/metrics)"))) << log;
  const CommandResult scrape = run_command({"/usr/bin/curl", "-sS", "http://" + m[1].str() + "/metrics"}, dir);
  ASSERT_TRUE(std::regex_search(scrape.out, m, std::regex(R"(sluice_sink_reconnects_total\{sink="cache"\} ([0-9]+))")))
      << scrape.out;
  EXPECT_GE(std::stoi(m[1].str()), 2);  // 100 ms, 200 ms, 400 ms ... within the second
  ASSERT_TRUE(redis.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  expect_hashes(redis, expected);
  EXPECT_NE(run.stderr_text().find("reconnecting in"), std::string::npos);
  // A crash of Redis between runs and a second run: everything again.
  redis.kill();
  ASSERT_TRUE(redis.start());
  EXPECT_EQ(redis.reply({"DBSIZE"}), "0\n");
  SluiceRun again(dir, dir.file("p.toml"));
  ASSERT_TRUE(again.start());
  ASSERT_TRUE(again.exits_cleanly()) << again.stderr_text();
  expect_hashes(redis, expected);
}

// With `sketches`, each window's HyperLogLog is SET as a Redis HyperLogLog:
// Redis's PFCOUNT of it equals its PFCOUNT of the window's customers added
// with PFADD (and so the hash's count), and PFMERGE over a product's windows
// counts the customers of the whole run, computed here.
TEST(RedisSink, SketchesAreHyperLogLogsRedisCountsAndMerges) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  std::mt19937_64 rng(6);
  std::map<std::pair<int, int64_t>, std::set<std::string>> per_window;  // (product, window) -> customers
  std::map<int, std::set<std::string>> per_product;
  std::string input;
  for (int i = 0; i < 30000; ++i) {
    const int64_t t = kT0 + int64_t(i) * 5 * kWindowS / 30000;
    const int product = rng() % 2 == 0 ? 0 : int(rng() % 20);
    // Product 0 sees thousands of customers (a dense sketch), the others a few dozen.
    const std::string customer = fmt::format("c{:06}", rng() % (product == 0 ? 100000 : 60));
    input += fmt::format(R"({{"product_id":{},"store":"x","customer_id":"{}","quantity":1,"revenue":1.0,"ts":{}}})",
                         product, customer, t);
    input += "\n";
    per_window[{product, t - t % kWindowS}].insert(customer);
    per_product[product].insert(customer);
  }
  write_file(dir.file("events.ndjson"), input);
  write_file(dir.file("p.toml"),
             config(dir, "unix:" + redis.socket_path(),
                    "ttl = \"1h\"\nsketches = { unique_customers = \"customers:{product_id}:{window_start}\" }"));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();

  std::string commands;
  for (const auto& [k, customers] : per_window) {
    const std::string sketch = fmt::format("customers:{}:{}", k.first, rfc3339(k.second));
    commands += fmt::format("PFCOUNT {}\nPFADD exact:{}", sketch, sketch);
    for (const std::string& c : customers) commands += " " + c;
    commands += fmt::format("\nPFCOUNT exact:{}\nPTTL {}\n", sketch, sketch);
  }
  const std::vector<std::string> lines = complete_lines(redis.cli({}, commands).out);
  ASSERT_EQ(lines.size(), 4 * per_window.size());
  size_t at = 0, large = 0;
  for (const auto& [k, customers] : per_window) {
    const std::string& ours = lines[at];
    EXPECT_EQ(ours, lines[at + 2]) << "product " << k.first << " window " << k.second;
    EXPECT_GT(std::stoll(lines[at + 3]), 3600'000 - 60'000);
    large += customers.size() > 800;  // past 768 registers: dense
    at += 4;
  }
  EXPECT_GT(large, 0u);
  // Registers equal too, for one dense and one sparse sketch.
  for (int product : {0, 7}) {
    const std::string sketch = fmt::format("customers:{}:{}", product, rfc3339(kT0));
    EXPECT_EQ(redis.reply({"PFDEBUG", "GETREG", sketch}), redis.reply({"PFDEBUG", "GETREG", "exact:" + sketch}));
  }
  // The distinct customers of a whole run, merged in Redis without Sluice.
  for (const auto& [product, customers] : per_product) {
    std::vector<std::string> merge = {"PFMERGE", fmt::format("run:{}", product)};
    for (const auto& [k, c] : per_window) {
      if (k.first == product) merge.push_back(fmt::format("customers:{}:{}", product, rfc3339(k.second)));
    }
    ASSERT_EQ(redis.reply(merge), "OK\n");
    std::string add = fmt::format("PFADD all:{}", product);
    for (const std::string& c : customers) add += " " + c;
    redis.cli({}, add + "\n");
    EXPECT_EQ(redis.reply({"PFCOUNT", fmt::format("run:{}", product)}),
              redis.reply({"PFCOUNT", fmt::format("all:{}", product)}))
        << product;
  }
  // And the hash of each product holds the count of its last window's sketch.
  const int64_t last = per_window.rbegin()->first.second;
  for (int product : {0, 7}) {
    EXPECT_EQ(redis.reply({"HGET", fmt::format("product:{}:x", product), "customers"}),
              redis.reply({"PFCOUNT", fmt::format("customers:{}:{}", product, rfc3339(last))}));
  }
}

// Mid-run, over TCP: Redis is killed and restarted (empty) after the first
// windows are in it; then it is paused (SIGSTOP) while hours of rows come:
// the sink holds them within pending_bytes_max, windows stop firing, the
// sources pause (the sender blocks), memory stays flat; after SIGCONT
// everything lands. Every product is in the last window, so the expected
// hashes are all written after the restart.
TEST(RedisSink, ARedisRestartedOrPausedMidRunHoldsRowsBackAndLosesNone) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  constexpr int kProducts = 3000;
  std::mt19937_64 rng(7);
  std::map<std::string, Expected> expected;
  auto event = [&](int product, int64_t t) { return make_event(rng, product, t, expected); };

  std::string phase_a, phase_b;
  for (int i = 0; i < 4000; ++i) phase_a += event(int(rng() % kProducts), kT0 + i * 2 * kWindowS / 4000);
  const size_t keys_after_a = expected.size();  // each written by minute 0 or 1
  phase_a += event(0, kT0 + 2 * kWindowS + 30);  // in minute 2: minutes 0 and 1 fire
  for (int minute = 2; minute < 62; ++minute) {  // ~60 MB: more than the sockets' buffers (tcp_rmem up to 32 MB)
    for (int p = 0; p < kProducts; ++p) {
      for (int k = 0; k < 3; ++k) phase_b += event(p, kT0 + minute * kWindowS + (p * 3 + k) % kWindowS);
    }
  }
  std::string text = config(dir, fmt::format("127.0.0.1:{}", redis.port()),
                            "pending_bytes_max = 262144\nflush_interval = \"10ms\"");
  const std::string file_keys = "type = \"file\"\npath = " + toml_string(dir.file("events.ndjson"));
  text.replace(text.find(file_keys), file_keys.size(), tcp_source_keys());
  write_file(dir.file("p.toml"), text);
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const auto port = run.wait_for_port("in");
  ASSERT_TRUE(port.has_value());
  TcpClient client;
  ASSERT_EQ(client.connect(*port), "");
  ASSERT_EQ(client.send_all(phase_a), "");
  auto dbsize = [&] { return std::stoull(redis.reply({"DBSIZE"})); };
  const Clock::time_point deadline = Clock::now() + kRowsTimeout;
  while (dbsize() < keys_after_a && Clock::now() < deadline) std::this_thread::sleep_for(kPollInterval);
  ASSERT_EQ(dbsize(), keys_after_a) << run.stderr_text();

  redis.kill();
  ASSERT_TRUE(redis.start());
  redis.signal(SIGSTOP);
  const uint64_t rss_before = rss_bytes(run.process().pid());
  std::string send_error = "not done";
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    send_error = client.send_all(phase_b);
    sent = true;
  });
  std::this_thread::sleep_for(3s);
  const uint64_t rss_paused = rss_bytes(run.process().pid());
  EXPECT_TRUE(run.process().running());
  EXPECT_FALSE(sent.load()) << "the input was not held back";
  // Held back: the sink's buffers and the bounded queues, not the input.
  EXPECT_LT(rss_paused, rss_before + (32u << 20)) << rss_before << " -> " << rss_paused;
  redis.signal(SIGCONT);
  sender.join();
  EXPECT_EQ(send_error, "");
  EXPECT_EQ(client.finish(), "");
  ASSERT_TRUE(run.terminates_cleanly()) << run.stderr_text();
  expect_hashes(redis, expected);
  const std::string log = run.stderr_text();
  EXPECT_NE(log.find("reconnected to Redis"), std::string::npos) << log;
  RecordProperty("rss_before", std::to_string(rss_before));
  RecordProperty("rss_paused", std::to_string(rss_paused));
}

// A Redis that accepts connections but never answers (stopped): after
// `timeout` the sink drops the connection and tries again, and once Redis
// answers everything lands.
TEST(RedisSink, ASilentRedisTimesOutAndIsTriedAgain) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  redis.signal(SIGSTOP);
  std::mt19937_64 rng(8);
  std::map<std::string, Expected> expected;
  write_file(dir.file("events.ndjson"), make_events(rng, 3000, 3, 50, expected));
  write_file(dir.file("p.toml"), config(dir, fmt::format("127.0.0.1:{}", redis.port()), "timeout = \"300ms\""));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  std::this_thread::sleep_for(1500ms);
  ASSERT_TRUE(run.process().running()) << run.stderr_text();
  redis.signal(SIGCONT);
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();
  EXPECT_NE(run.stderr_text().find("no answer within 300 ms"), std::string::npos) << run.stderr_text();
  expect_hashes(redis, expected);
}

TEST(RedisSink, ConfigErrorsNameTheKey) {
  TempDir dir;
  write_file(dir.file("events.ndjson"), "");
  const std::string base = config(dir, "127.0.0.1:6379", "");
  struct Case {
    std::string from, to, message;
  };
  const std::vector<Case> cases = {
      {"key = \"product:{product_id}:{store}\"", "key = \"product:{sku}\"",
       "key: \"sku\" is not a key field, an aggregate, window_start or window_end"},
      {"key = \"product:{product_id}:{store}\"", "key = \"product:{product_id\"", "key: a \"{\" without its \"}\""},
      {"quantity = \"total_quantity\"", "quantity = \"qty\"",
       "fields: quantity: \"qty\" is not a key field, an aggregate"},
      {"address = \"127.0.0.1:6379\"", "address = \"127.0.0.1\"", "address: expected \"host:port\""},
      {"buffer_bytes = 65536", "buffer_bytes = 65536\npath = \"x\"", "key \"path\" is not valid for a redis sink"},
      {"buffer_bytes = 65536", "buffer_bytes = 65536\nsketches = { total_quantity = \"q:{store}\" }",
       "sketches: total_quantity: not an approx_count_distinct aggregate"},
      {"field = \"customer_id\"\n[[sinks]]",
       "field = \"customer_id\"\nprecision = 12\n[[sinks]]\nsketches = { unique_customers = \"c:{store}\" }",
       "sketches: unique_customers: Redis keeps HyperLogLogs of precision 14 only; this aggregate has precision 12"},
  };
  for (const Case& c : cases) {
    std::string text = base;
    const size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.from;
    text.replace(at, c.from.size(), c.to);
    write_file(dir.file("bad.toml"), text);
    const CommandResult r = run_command({sluice_bin(), "check", dir.file("bad.toml")}, dir);
    EXPECT_EQ(r.status.code, 2) << c.to;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << c.to << "\n" << r.err;
    EXPECT_NE(r.err.find("bad.toml:"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace sluice::integration
