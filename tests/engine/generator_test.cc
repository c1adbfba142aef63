#include "tools/sluice/generator.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_model.h"

namespace sluice {
namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr int64_t k2024Ns = 1'704'067'200 * kNsPerSecond;  // 2024-01-01T00:00:00Z

GeneratorSourceConfig config(uint64_t count, uint64_t seed = 7) {
  GeneratorSourceConfig c;
  c.count = count;
  c.rate = 0;
  c.products = 50;
  c.customers = 300;
  c.start_ns = k2024Ns;
  c.step_ns = 1'000'000;
  c.jitter_ns = 0;
  c.seed = seed;
  return c;
}

// Runs a generator to completion (or `max_events`) in calls of `cap` bytes.
// Checks that no call writes past its cap.
std::string run(SalesGenerator& g, size_t cap, uint64_t max_events_per_call, uint64_t limit = UINT64_MAX) {
  std::string all;
  std::vector<char> buf(cap + 64);
  uint64_t total = 0;
  while (!g.finished() && total < limit) {
    std::memset(buf.data(), '#', buf.size());
    uint64_t events = 99;
    size_t n = g.generate(buf.data(), cap, std::min(max_events_per_call, limit - total), events);
    EXPECT_LE(n, cap);
    for (size_t i = cap; i < buf.size(); ++i) {
      if (buf[i] != '#') {
        ADD_FAILURE() << "wrote past cap";
        break;
      }
    }
    size_t lines = 0;
    for (size_t i = 0; i < n; ++i) lines += buf[i] == '\n';
    EXPECT_EQ(lines, events);
    if (events == 0) break;
    total += events;
    all.append(buf.data(), n);
  }
  return all;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    EXPECT_NE(nl, std::string::npos) << "output does not end in a newline";
    if (nl == std::string::npos) break;
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

// Independent RFC 3339 reader for the generator's output form
// (YYYY-MM-DDTHH:MM:SS[.fraction]Z), using timegm for the civil part.
std::optional<int64_t> read_rfc3339(std::string_view s) {
  int y, mo, d, h, mi, sec;
  char tail[32] = {};
  std::string str(s);
  if (std::sscanf(str.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%31s", &y, &mo, &d, &h, &mi, &sec, tail) != 7) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t ns = int64_t(timegm(&tm)) * kNsPerSecond;
  std::string_view t(tail);
  if (t.empty() || t.back() != 'Z') return std::nullopt;
  t.remove_suffix(1);
  if (!t.empty()) {
    if (t[0] != '.' || (t.size() != 4 && t.size() != 7 && t.size() != 10)) return std::nullopt;
    int64_t frac = 0;
    for (char c : t.substr(1)) {
      if (c < '0' || c > '9') return std::nullopt;
      frac = frac * 10 + (c - '0');
    }
    for (size_t k = t.size() - 1; k < 9; ++k) frac *= 10;
    ns += frac;
  }
  return ns;
}

int64_t floor_div_ref(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

struct Fields {
  int64_t product_id;
  std::string customer_id;
  int64_t quantity;
  double revenue;
  simdjson::dom::element timestamp;
};

// Checks one line against the documented shape; returns "" when it is fine.
std::string check_line(simdjson::dom::parser& parser, const std::string& line, const GeneratorSourceConfig& cfg,
                       TimeFormat tf, int64_t start_ns, uint64_t index, std::map<int64_t, int64_t>& price_cents) {
  if (line.size() + 1 > SalesGenerator::kLineBytesMax) return "line longer than kLineBytesMax";
  simdjson::padded_string json(line);
  simdjson::dom::object obj;
  if (parser.parse(json).get_object().get(obj)) return "not a JSON object";
  if (obj.size() != 5) return "expected five fields";
  Fields f;
  std::string_view customer;
  if (obj["product_id"].get_int64().get(f.product_id)) return "product_id";
  if (obj["customer_id"].get_string().get(customer)) return "customer_id";
  if (obj["quantity"].get_int64().get(f.quantity)) return "quantity";
  if (obj["revenue"].get_double().get(f.revenue)) return "revenue";
  if (obj["timestamp"].get(f.timestamp)) return "timestamp";
  if (f.product_id < 1 || f.product_id > int64_t(cfg.products)) return "product_id out of range";
  if (customer.size() < 7 || customer[0] != 'c') return "customer_id shape";
  uint64_t c = 0;
  for (char ch : customer.substr(1)) {
    if (ch < '0' || ch > '9') return "customer_id digits";
    c = c * 10 + uint64_t(ch - '0');
  }
  if (c >= cfg.customers) return "customer_id out of range";
  if (f.quantity < 1 || f.quantity > 10) return "quantity out of range";
  // Revenue is quantity x a fixed price per product, in whole cents.
  int64_t cents = std::llround(f.revenue * 100);
  if (std::fabs(double(cents) / 100 - f.revenue) > 1e-9) return "revenue is not in cents";
  if (cents <= 0 || cents % f.quantity != 0) return "revenue is not quantity x price";
  auto [it, fresh] = price_cents.emplace(f.product_id, cents / f.quantity);
  if (!fresh && it->second != cents / f.quantity) return "price of a product changed";
  // Time: start + i * step, moved back by at most jitter.
  int64_t hi = start_ns + int64_t(index) * cfg.step_ns;
  int64_t lo = hi - cfg.jitter_ns;
  if (tf == TimeFormat::rfc3339) {
    std::string_view ts;
    if (f.timestamp.get_string().get(ts)) return "timestamp is not a string";
    std::optional<int64_t> t = read_rfc3339(ts);
    if (!t) return "timestamp is not RFC 3339: " + std::string(ts);
    if (*t < lo || *t > hi) return "timestamp outside [start + i*step - jitter, start + i*step]";
  } else {
    int64_t v;
    if (f.timestamp.get_int64().get(v)) return "epoch timestamp is not an integer";
    int64_t unit = tf == TimeFormat::epoch_s ? kNsPerSecond : tf == TimeFormat::epoch_ms ? 1'000'000
                                                           : tf == TimeFormat::epoch_us ? 1'000 : 1;
    if (v < floor_div_ref(lo, unit) || v > floor_div_ref(hi, unit)) return "epoch timestamp out of range";
  }
  return "";
}

void check_output(const std::string& out, const GeneratorSourceConfig& cfg, TimeFormat tf, int64_t start_ns,
                  uint64_t want_lines) {
  std::vector<std::string> lines = split_lines(out);
  ASSERT_EQ(lines.size(), want_lines);
  simdjson::dom::parser parser;
  std::map<int64_t, int64_t> prices;
  for (size_t i = 0; i < lines.size(); ++i) {
    ASSERT_EQ(check_line(parser, lines[i], cfg, tf, start_ns, i, prices), "") << "line " << i << ": " << lines[i];
  }
}

TEST(SalesGenerator, DeterministicForASeed) {
  SalesGenerator a(config(2000, 7), TimeFormat::rfc3339, k2024Ns);
  SalesGenerator b(config(2000, 7), TimeFormat::rfc3339, k2024Ns);
  SalesGenerator c(config(2000, 8), TimeFormat::rfc3339, k2024Ns);
  std::string oa = run(a, 1 << 20, UINT64_MAX);
  std::string ob = run(b, 1 << 20, UINT64_MAX);
  std::string oc = run(c, 1 << 20, UINT64_MAX);
  EXPECT_EQ(oa, ob);
  EXPECT_NE(oa, oc);
  EXPECT_FALSE(oa.empty());
}

TEST(SalesGenerator, ChunkingDoesNotChangeTheOutput) {
  SalesGenerator whole(config(3000), TimeFormat::rfc3339, k2024Ns);
  std::string want = run(whole, 1 << 20, UINT64_MAX);
  SalesGenerator small(config(3000), TimeFormat::rfc3339, k2024Ns);
  EXPECT_EQ(run(small, SalesGenerator::kLineBytesMax, UINT64_MAX), want);
  SalesGenerator few(config(3000), TimeFormat::rfc3339, k2024Ns);
  EXPECT_EQ(run(few, 1 << 20, 7), want);
  SalesGenerator odd(config(3000), TimeFormat::rfc3339, k2024Ns);
  EXPECT_EQ(run(odd, 3 * SalesGenerator::kLineBytesMax + 5, 3), want);
}

TEST(SalesGenerator, CountIsRespected) {
  SalesGenerator g(config(1000), TimeFormat::rfc3339, k2024Ns);
  EXPECT_FALSE(g.finished());
  std::vector<char> buf(1 << 20);
  uint64_t events = 0;
  size_t n = g.generate(buf.data(), buf.size(), UINT64_MAX, events);
  EXPECT_EQ(events, 1000u);
  EXPECT_EQ(g.produced(), 1000u);
  EXPECT_TRUE(g.finished());
  EXPECT_EQ(std::count(buf.begin(), buf.begin() + long(n), '\n'), 1000);
  EXPECT_EQ(g.generate(buf.data(), buf.size(), UINT64_MAX, events), 0u);
  EXPECT_EQ(events, 0u);
  EXPECT_EQ(g.produced(), 1000u);
}

TEST(SalesGenerator, MaxEventsAndCapAreRespected) {
  SalesGenerator g(config(100), TimeFormat::rfc3339, k2024Ns);
  std::vector<char> buf(1 << 16);
  uint64_t events = 0;
  g.generate(buf.data(), buf.size(), 7, events);
  EXPECT_EQ(events, 7u);
  EXPECT_EQ(g.produced(), 7u);
  EXPECT_EQ(g.generate(buf.data(), SalesGenerator::kLineBytesMax - 1, UINT64_MAX, events), 0u);
  EXPECT_EQ(events, 0u) << "no room for a worst-case line: nothing written";
  g.generate(buf.data(), SalesGenerator::kLineBytesMax, UINT64_MAX, events);
  EXPECT_EQ(events, 1u);
  EXPECT_EQ(g.generate(buf.data(), buf.size(), 0, events), 0u);
  EXPECT_EQ(events, 0u);
  EXPECT_EQ(g.produced(), 8u);
}

TEST(SalesGenerator, UnlimitedCountNeverFinishes) {
  SalesGenerator g(config(0), TimeFormat::rfc3339, k2024Ns);
  std::string out = run(g, 1 << 16, 100, 5000);
  EXPECT_FALSE(g.finished());
  EXPECT_EQ(g.produced(), 5000u);
  check_output(out, config(0), TimeFormat::rfc3339, k2024Ns, 5000);
}

TEST(SalesGenerator, LinesAreValidAndTimesInRange) {
  for (int64_t jitter : {int64_t(0), int64_t(500), int64_t(5'000'000), int64_t(2'500'000)}) {
    GeneratorSourceConfig cfg = config(5000, 11);
    cfg.jitter_ns = jitter;
    SalesGenerator g(cfg, TimeFormat::rfc3339, k2024Ns);
    std::string out = run(g, 1 << 20, UINT64_MAX);
    SCOPED_TRACE("jitter " + std::to_string(jitter));
    check_output(out, cfg, TimeFormat::rfc3339, k2024Ns, 5000);
  }
}

TEST(SalesGenerator, JitterMovesSomeEventsBack) {
  GeneratorSourceConfig cfg = config(2000, 3);
  cfg.jitter_ns = 5'000'000;
  SalesGenerator g(cfg, TimeFormat::epoch_ns, k2024Ns);
  std::vector<std::string> lines = split_lines(run(g, 1 << 20, UINT64_MAX));
  ASSERT_EQ(lines.size(), 2000u);
  simdjson::dom::parser parser;
  int moved = 0, out_of_order = 0;
  int64_t prev = std::numeric_limits<int64_t>::min();
  for (size_t i = 0; i < lines.size(); ++i) {
    simdjson::padded_string json(lines[i]);
    int64_t t = 0;
    ASSERT_EQ(parser.parse(json)["timestamp"].get_int64().get(t), simdjson::SUCCESS);
    moved += t != k2024Ns + int64_t(i) * cfg.step_ns;
    out_of_order += t < prev;
    prev = std::max(prev, t);
  }
  EXPECT_GT(moved, 1000);
  EXPECT_GT(out_of_order, 100);
}

TEST(SalesGenerator, EpochFormats) {
  for (TimeFormat tf : {TimeFormat::epoch_s, TimeFormat::epoch_ms, TimeFormat::epoch_us, TimeFormat::epoch_ns}) {
    for (int64_t start : {k2024Ns + 123'456'789, int64_t(-5) * kNsPerSecond - 1}) {
      GeneratorSourceConfig cfg = config(3000, 5);
      cfg.step_ns = 333'333;
      cfg.jitter_ns = 2'000'000;
      SalesGenerator g(cfg, tf, start);
      std::string out = run(g, 1 << 20, UINT64_MAX);
      SCOPED_TRACE("format " + std::to_string(int(tf)) + ", start " + std::to_string(start));
      check_output(out, cfg, tf, start, 3000);
    }
  }
}

TEST(SalesGenerator, PreEpochRfc3339) {
  GeneratorSourceConfig cfg = config(2000, 9);
  cfg.step_ns = 7;  // nanosecond fractions
  cfg.jitter_ns = 300;
  const int64_t start = -kNsPerSecond / 2 - 3;
  SalesGenerator g(cfg, TimeFormat::rfc3339, start);
  check_output(run(g, 1 << 20, UINT64_MAX), cfg, TimeFormat::rfc3339, start, 2000);
}

TEST(SalesGenerator, WorstCaseLinesFit) {
  // The widest numbers the config allows: ten-digit product and customer ids,
  // twenty-character epoch_ns times and nine-digit RFC 3339 fractions.
  for (TimeFormat tf : {TimeFormat::rfc3339, TimeFormat::epoch_ns, TimeFormat::epoch_s}) {
    GeneratorSourceConfig cfg = config(3000, 13);
    cfg.products = std::numeric_limits<uint32_t>::max();
    cfg.customers = std::numeric_limits<uint32_t>::max();
    cfg.step_ns = 1;
    cfg.jitter_ns = 999;
    const int64_t start = tf == TimeFormat::rfc3339 ? int64_t(-9'000'000'000) * kNsPerSecond + 1
                                                    : std::numeric_limits<int64_t>::min() + 10'000;
    SalesGenerator g(cfg, tf, start);
    std::string out = run(g, 4096, UINT64_MAX);
    SCOPED_TRACE("format " + std::to_string(int(tf)));
    check_output(out, cfg, tf, start, 3000);
  }
}

}  // namespace
}  // namespace sluice
