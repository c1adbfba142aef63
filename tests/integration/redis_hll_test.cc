// Sluice's HyperLogLog against a real redis-server: the same values give the
// same registers (PFDEBUG GETREG) and the same count (PFCOUNT) as PFADD; a
// sketch written with SET in Redis's dense encoding is a HyperLogLog Redis
// counts, extends and merges; and `sluice run` with approx_count_distinct
// writes, for every window and key, the count Redis gives for that window's
// values (the test assigns the windows itself).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "operators/hyperloglog.h"
#include "tests/integration/harness.h"
#include "tests/integration/redis_peer.h"

namespace sluice::integration {
namespace {

// A value as PFADD would get it, and how Sluice hashes it.
struct Value {
  std::string bytes;
  bool integer = false;
  int64_t i = 0;
};

uint64_t sluice_hash(const Value& v) { return v.integer ? hll::hash_int(v.i) : hll::hash_bytes(v.bytes); }

std::vector<Value> random_values(std::mt19937_64& rng, size_t n) {
  std::vector<Value> out;
  std::set<std::string> seen;
  while (out.size() < n) {
    Value v;
    switch (rng() % 4) {
      case 0: {  // an integer, as its decimal text
        v.integer = true;
        v.i = int64_t(rng()) >> (rng() % 64);
        v.bytes = std::to_string(v.i);
        break;
      }
      case 1: {  // any bytes, 0 to 40 of them (every MurmurHash tail length)
        const size_t len = rng() % 41;
        for (size_t k = 0; k < len; ++k) v.bytes += char(rng() & 0xff);
        break;
      }
      case 2:
        v.bytes = fmt::format("c{:07}", rng() % 10'000'000);
        break;
      default:
        v.bytes = fmt::format("kund\xc3\xa9-{}-\xe2\x82\xac", rng() % 1'000'000);
        break;
    }
    if (seen.insert(v.bytes).second) out.push_back(std::move(v));
  }
  return out;
}

// PFADD in batches of 500 values per command line.
void pfadd(RedisServer& redis, const std::string& key, const std::vector<Value>& values) {
  std::string commands;
  for (size_t i = 0; i < values.size(); i += 500) {
    commands += "PFADD " + key;
    for (size_t k = i; k < values.size() && k < i + 500; ++k) commands += " " + redis_cli_quote(values[k].bytes);
    commands += "\n";
  }
  const CommandResult r = redis.cli({}, commands);
  ASSERT_TRUE(r.status.exited && r.status.code == 0) << r.err;
  ASSERT_EQ(r.out.find("ERR"), std::string::npos) << r.out.substr(0, 300);
}

std::vector<uint8_t> redis_registers(RedisServer& redis, const std::string& key) {
  std::vector<uint8_t> regs;
  for (const std::string& line : complete_lines(redis.reply({"PFDEBUG", "GETREG", key}))) {
    regs.push_back(uint8_t(std::stoi(line)));
  }
  return regs;
}

uint64_t redis_count(RedisServer& redis, const std::vector<std::string>& keys) {
  std::vector<std::string> args = {"PFCOUNT"};
  args.insert(args.end(), keys.begin(), keys.end());
  return std::stoull(redis.reply(args));
}

std::vector<uint8_t> sluice_registers(const hll::Sketch* s) {
  std::vector<uint8_t> r(size_t(1) << hll::precision(s));
  hll::registers(s, r.data());
  return r;
}

struct Owned {
  hll::Sketch* s = hll::create(hll::kRedisPrecision);
  ~Owned() { hll::destroy(s); }
};

TEST(RedisHyperLogLog, SameRegistersAndCountAsPfadd) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  std::mt19937_64 rng(20261207);
  int key = 0;
  for (size_t n : {1, 2, 3, 10, 50, 200, 700, 1000, 3000, 12000, 60000}) {
    const std::vector<Value> values = random_values(rng, n);
    const std::string name = "set" + std::to_string(key++);
    pfadd(redis, name, values);
    Owned ours;
    for (const Value& v : values) hll::add(ours.s, sluice_hash(v));
    const std::vector<uint8_t> theirs = redis_registers(redis, name);
    ASSERT_EQ(theirs.size(), size_t(1) << hll::kRedisPrecision);
    EXPECT_EQ(sluice_registers(ours.s), theirs) << n << " values";
    EXPECT_EQ(hll::count(ours.s), redis_count(redis, {name})) << n << " values";
  }
}

TEST(RedisHyperLogLog, ASketchWrittenWithSetIsAHyperLogLogRedisCountsExtendsAndMerges) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  std::mt19937_64 rng(77);
  std::vector<Owned> ours(3);
  std::vector<std::string> names;
  const size_t sizes[] = {5, 2500, 40000};  // sparse, sparse, dense in Sluice
  for (size_t i = 0; i < 3; ++i) {
    for (const Value& v : random_values(rng, sizes[i])) hll::add(ours[i].s, sluice_hash(v));
    std::string bytes(hll::kRedisDenseBytes, '\0');
    hll::write_redis_dense(ours[i].s, bytes.data());
    names.push_back("w" + std::to_string(i));
    const CommandResult r = redis.cli({"-x", "SET", names.back()}, bytes);
    ASSERT_EQ(r.out, "OK\n") << r.err;
    EXPECT_EQ(redis_count(redis, {names.back()}), hll::count(ours[i].s)) << sizes[i];
    EXPECT_EQ(redis_registers(redis, names.back()), sluice_registers(ours[i].s));
  }
  // Redis goes on adding to it: the same as Sluice adding the same values.
  const std::vector<Value> more = random_values(rng, 3000);
  pfadd(redis, names[0], more);
  for (const Value& v : more) hll::add(ours[0].s, sluice_hash(v));
  EXPECT_EQ(redis_registers(redis, names[0]), sluice_registers(ours[0].s));
  EXPECT_EQ(redis_count(redis, {names[0]}), hll::count(ours[0].s));
  // PFMERGE and a PFCOUNT over several keys: the union, as Sluice merges it.
  ASSERT_EQ(redis.reply({"PFMERGE", "all", names[0], names[1], names[2]}), "OK\n");
  Owned merged;
  for (const Owned& o : ours) hll::merge(merged.s, o.s);
  EXPECT_EQ(redis_registers(redis, "all"), sluice_registers(merged.s));
  EXPECT_EQ(redis_count(redis, {"all"}), hll::count(merged.s));
  EXPECT_EQ(redis_count(redis, names), hll::count(merged.s));
}

// The form PFADD itself would give: sparse for small sketches (a few dozen
// bytes), dense past 3000 bytes, a register above 32 or Sluice's own sparse
// limit; Redis reads both.
TEST(RedisHyperLogLog, SparseSketchesAreWhatPfaddWouldStore) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  std::mt19937_64 rng(91);
  for (size_t n : {0, 1, 5, 60, 400, 700, 1500, 9000}) {
    Owned ours;
    const std::vector<Value> values = random_values(rng, n);
    for (const Value& v : values) hll::add(ours.s, sluice_hash(v));
    std::vector<char> bytes(hll::serialized_bytes_max(hll::kRedisPrecision));
    const size_t len = n == 0 ? 0 : hll::serialize(ours.s, bytes.data());
    std::string text(hll::kRedisDenseBytes, '\0');
    text.resize(hll::write_redis(std::string_view(bytes.data(), len), text.data()));
    ASSERT_FALSE(text.empty());
    const std::string key = "sp" + std::to_string(n);
    ASSERT_EQ(redis.cli({"-x", "SET", key}, text).out, "OK\n");
    // PFADD's own key for the same values has the same size, sparse or dense
    // (before PFDEBUG GETREG, which turns a sparse key dense).
    pfadd(redis, "pf" + key, values);
    if (n == 0) redis.reply({"PFADD", "pf" + key});
    // (Past 768 set registers Sluice's own sketch is dense, and so is what it writes.)
    if (!hll::is_dense(ours.s)) {
      EXPECT_EQ(redis.reply({"STRLEN", key}), redis.reply({"STRLEN", "pf" + key})) << n;
    }
    if (n <= 60) {
      EXPECT_LT(text.size(), 200u) << n;
    }
    EXPECT_EQ(redis_count(redis, {key}), hll::count(ours.s)) << n;
    EXPECT_EQ(redis_registers(redis, key), sluice_registers(ours.s)) << n;
  }
}

// End to end: events with string and integer values through `sluice run`
// (two shards, so keys are spread), and Redis's PFCOUNT of each window's values.
TEST(RedisHyperLogLog, SluiceRunCountsWhatRedisCountsPerWindowAndKey) {
  TempDir dir;
  RedisServer redis(dir);
  ASSERT_TRUE(redis.start());
  std::mt19937_64 rng(4242);
  constexpr int64_t kWindowS = 60;
  const int64_t t0 = 1'700'000'000;  // whole minutes: 1700000000 = 28333333 min + 20 s
  std::map<std::pair<int64_t, int>, std::set<std::string>> customers, stores;
  std::string input;
  for (int i = 0; i < 40000; ++i) {
    const int64_t t = t0 + i / 100;  // 400 s of event time, in order
    const int product = rng() % 10 < 6 ? int(rng() % 3) : int(rng() % 30);
    // Skewed: a few products see thousands of customers, most a handful.
    const uint64_t span = product < 3 ? 100'000 : product < 10 ? 300 : 8;
    const std::string customer = fmt::format("c{:06}", rng() % span);
    const int64_t store = int64_t(rng() % 50) - 25;
    const int64_t window = t - (t % kWindowS + kWindowS) % kWindowS;
    customers[{window, product}].insert(customer);
    stores[{window, product}].insert(std::to_string(store));
    input += fmt::format(R"({{"product_id":{},"customer_id":"{}","store":{},"ts":{}}})", product, customer, store, t);
    input += "\n";
  }
  write_file(dir.file("events.ndjson"), input);
  const std::string config = fmt::format(R"(
[pipeline]
shards = 2
[[sources]]
name = "in"
type = "file"
path = {}
[schema]
key = ["product_id"]
time = {{ field = "ts", format = "epoch_s" }}
fields = {{ customer_id = "string", store = "int64" }}
[window]
size = "1m"
[[aggregates]]
name = "unique_customers"
fn = "approx_count_distinct"
field = "customer_id"
[[aggregates]]
name = "stores"
fn = "approx_count_distinct"
field = "store"
precision = 14
[[sinks]]
name = "out"
type = "file"
path = {}
format = "csv"
)",
                                         toml_string(dir.file("events.ndjson")), toml_string(dir.file("out.csv")));
  write_file(dir.file("p.toml"), config);
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly()) << run.stderr_text();

  // Redis's counts of the same values per (window, product).
  std::string commands;
  std::vector<std::pair<int64_t, int>> order;
  for (const auto& [k, set] : customers) {
    order.push_back(k);
    auto add = [&](const char* prefix, const std::set<std::string>& values) {
      commands += fmt::format("PFADD {}:{}:{}", prefix, k.first, k.second);
      for (const std::string& v : values) commands += " " + redis_cli_quote(v);
      commands += "\n";
    };
    add("c", set);
    add("s", stores[k]);
  }
  ASSERT_EQ(redis.cli({}, commands).status.code, 0);
  commands.clear();
  for (const auto& k : order) commands += fmt::format("PFCOUNT c:{0}:{1}\nPFCOUNT s:{0}:{1}\n", k.first, k.second);
  const std::vector<std::string> counts = complete_lines(redis.cli({}, commands).out);
  ASSERT_EQ(counts.size(), 2 * order.size());
  std::map<std::pair<int64_t, int>, std::pair<std::string, std::string>> expected;
  for (size_t i = 0; i < order.size(); ++i) expected[order[i]] = {counts[2 * i], counts[2 * i + 1]};

  const std::vector<std::string> lines = complete_lines(read_file(dir.file("out.csv")));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], "window_start,window_end,product_id,unique_customers,stores");
  std::map<std::pair<int64_t, int>, std::pair<std::string, std::string>> got;
  size_t large = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    // window_start is RFC 3339 UTC: YYYY-MM-DDTHH:MM:SSZ
    std::vector<std::string> f;
    size_t at = 0;
    for (size_t c; (c = lines[i].find(',', at)) != std::string::npos; at = c + 1) f.push_back(lines[i].substr(at, c - at));
    f.push_back(lines[i].substr(at));
    ASSERT_EQ(f.size(), 5u) << lines[i];
    std::tm tm{};
    ASSERT_NE(strptime(f[0].c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm), nullptr) << f[0];
    const int64_t start = int64_t(timegm(&tm));
    got[{start, std::stoi(f[2])}] = {f[3], f[4]};
    large += std::stoull(f[3]) > 800;
  }
  EXPECT_EQ(got, expected);
  EXPECT_GT(large, 0u);  // some sketches went dense (past 768 registers set)
}

}  // namespace
}  // namespace sluice::integration
