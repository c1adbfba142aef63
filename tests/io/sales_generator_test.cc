#include "io/sources/sales_generator.h"

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

#include "core/clock.h"
#include "core/config_model.h"
#include "core/timestamp.h"
#include "operators/json_text.h"
#include "tools/gen/lag_histogram.h"

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

// ---------------------------------------------------------------------------
// Compatibility: the faster formatter writes exactly what the first one did.

// The generator as it was first written (splitmix64, snprintf, format_rfc3339),
// kept as the reference the current one must match byte for byte: the engine's
// generator source, sluice-gen files and tests compare on the text for a seed.
std::string reference_output(const GeneratorSourceConfig& cfg, TimeFormat tf, int64_t start_ns) {
  uint64_t state = cfg.seed;
  auto next_random = [&state] {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  std::string all;
  char line[256];
  for (uint64_t i = 0; i < cfg.count; ++i) {
    uint64_t product = 1 + next_random() % cfg.products;
    uint64_t customer = next_random() % cfg.customers;
    int64_t quantity = int64_t(1 + next_random() % 10);
    int64_t price_cents = 199 + int64_t(product * 37 % 5000);
    int64_t revenue_cents = quantity * price_cents;
    int64_t t = start_ns + int64_t(i) * cfg.step_ns;
    if (cfg.jitter_ns >= kNsPerMs) {
      t -= int64_t(next_random() % uint64_t(cfg.jitter_ns / kNsPerMs + 1)) * kNsPerMs;
    } else if (cfg.jitter_ns > 0) {
      t -= int64_t(next_random() % uint64_t(cfg.jitter_ns + 1));
    }
    char* p = line;
    p += std::snprintf(p, 192,
                       "{\"product_id\":%llu,\"customer_id\":\"c%06llu\",\"quantity\":%lld,"
                       "\"revenue\":%lld.%02lld,\"timestamp\":",
                       static_cast<unsigned long long>(product),
                       static_cast<unsigned long long>(customer), static_cast<long long>(quantity),
                       static_cast<long long>(revenue_cents / 100),
                       static_cast<long long>(revenue_cents % 100));
    switch (tf) {
      case TimeFormat::rfc3339:
        *p++ = '"';
        p += format_rfc3339(t, p);
        *p++ = '"';
        break;
      case TimeFormat::epoch_s: p += write_int64(floor_div(t, kNsPerS), p); break;
      case TimeFormat::epoch_ms: p += write_int64(floor_div(t, kNsPerMs), p); break;
      case TimeFormat::epoch_us: p += write_int64(floor_div(t, kNsPerUs), p); break;
      case TimeFormat::epoch_ns: p += write_int64(t, p); break;
    }
    *p++ = '}';
    *p++ = '\n';
    all.append(line, size_t(p - line));
  }
  return all;
}

TEST(SalesGeneratorCompat, MatchesTheFirstFormatterByteForByte) {
  struct Case {
    int64_t start;
    int64_t step;
    int64_t jitter;
    uint32_t ids;  // products and customers
  };
  const int64_t min_ns = std::numeric_limits<int64_t>::min();
  const int64_t max_ns = std::numeric_limits<int64_t>::max();
  const Case cases[] = {
      {k2024Ns, 1'000'000, 0, 1000},                 // the defaults
      {k2024Ns, 1'000'000, 30 * kNsPerSecond, 300},  // whole-ms jitter across seconds
      {k2024Ns + 123'456'789, 333'333, 2'000'000, 7},
      {-kNsPerSecond / 2 - 3, 7, 300, 1},       // before 1970, nanosecond fractions
      {min_ns + 10'000, 1, 999, UINT32_MAX},    // the lowest second, widest ids
      {min_ns + 86'400 * kNsPerSecond, 3'600 * kNsPerSecond, 999'000'000, 50},  // day changes
      {max_ns - 4'000'000'000, 1'000'000, 0, 100'000'000},  // up to the last second of int64
      {0, 17 * 60 * kNsPerSecond, 3 * 3'600 * kNsPerSecond, 1'000'000},  // 1970 and before
  };
  for (TimeFormat tf : {TimeFormat::rfc3339, TimeFormat::epoch_s, TimeFormat::epoch_ms,
                        TimeFormat::epoch_us, TimeFormat::epoch_ns}) {
    for (const Case& c : cases) {
      GeneratorSourceConfig cfg = config(3000, 17);
      cfg.start_ns = c.start;
      cfg.step_ns = c.step;
      cfg.jitter_ns = c.jitter;
      cfg.products = c.ids;
      cfg.customers = c.ids;
      SCOPED_TRACE("format " + std::to_string(int(tf)) + ", start " + std::to_string(c.start));
      SalesGenerator g(cfg, tf, c.start);
      std::string got = run(g, 1 << 20, UINT64_MAX);
      std::string want = reference_output(cfg, tf, c.start);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_TRUE(got == want) << "first difference at byte "
                               << std::mismatch(got.begin(), got.end(), want.begin()).first -
                                      got.begin();
    }
  }
}

TEST(SalesGeneratorCompat, GenerateOneWritesWhatGenerateWrites) {
  GeneratorSourceConfig cfg = config(2000, 21);
  cfg.jitter_ns = 30 * kNsPerSecond;
  SalesGenerator whole(cfg, TimeFormat::rfc3339, k2024Ns);
  std::string want = run(whole, 1 << 20, UINT64_MAX);
  SalesGenerator one(cfg, TimeFormat::rfc3339, k2024Ns);
  std::string got;
  char line[SalesGenerator::kLineBytesMax];
  while (!one.finished()) got.append(line, one.generate_one(line));
  EXPECT_EQ(got, want);
  EXPECT_EQ(one.produced(), 2000u);
  EXPECT_EQ(one.late_produced(), 0u);
}

// ---------------------------------------------------------------------------
// Late events

struct TimedLine {
  std::string rest;  // the line without its timestamp
  int64_t time_ns;
};

// Splits epoch_ns lines into their timestamp and everything else.
std::vector<TimedLine> timed_lines(const std::string& text) {
  std::vector<TimedLine> out;
  for (const std::string& line : split_lines(text)) {
    size_t at = line.find("\"timestamp\":");
    EXPECT_NE(at, std::string::npos) << line;
    if (at == std::string::npos) break;
    size_t begin = at + std::strlen("\"timestamp\":");
    size_t end = line.find('}', begin);
    out.push_back({line.substr(0, begin) + line.substr(end),
                   std::stoll(line.substr(begin, end - begin))});
  }
  return out;
}

TEST(SalesGeneratorLate, FractionWithinStatisticalBounds) {
  constexpr uint64_t kEvents = 100'000;
  GeneratorSourceConfig cfg = config(kEvents, 5);
  cfg.jitter_ns = 2 * kNsPerSecond;
  const LateEvents late{0.1, 60 * kNsPerSecond};
  SalesGenerator g(cfg, TimeFormat::epoch_ns, k2024Ns, late);
  std::vector<TimedLine> lines = timed_lines(run(g, 1 << 20, UINT64_MAX));
  ASSERT_EQ(lines.size(), kEvents);
  uint64_t late_seen = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    int64_t nominal = k2024Ns + int64_t(i) * cfg.step_ns;
    int64_t t = lines[i].time_ns;
    // late_by exceeds the jitter, so the two kinds of event cannot be confused.
    if (t <= nominal - late.late_by_ns) {
      ++late_seen;
      EXPECT_GE(t, nominal - late.late_by_ns - cfg.jitter_ns) << "line " << i;
    } else {
      EXPECT_GE(t, nominal - cfg.jitter_ns) << "line " << i;
      EXPECT_LE(t, nominal) << "line " << i;
    }
  }
  EXPECT_EQ(late_seen, g.late_produced());
  // Binomial(100 000, 0.1): sigma = sqrt(n p (1 - p)) ~ 95; five sigma either side.
  EXPECT_GT(late_seen, 10'000u - 475);
  EXPECT_LT(late_seen, 10'000u + 475);
}

TEST(SalesGeneratorLate, OnlyTheLateEventsTimesChange) {
  GeneratorSourceConfig cfg = config(20'000, 8);
  cfg.jitter_ns = 250'000'000;
  SalesGenerator plain(cfg, TimeFormat::epoch_ns, k2024Ns);
  const LateEvents late{0.3, 10 * kNsPerSecond};
  SalesGenerator with_late(cfg, TimeFormat::epoch_ns, k2024Ns, late);
  std::vector<TimedLine> a = timed_lines(run(plain, 1 << 20, UINT64_MAX));
  std::vector<TimedLine> b = timed_lines(run(with_late, 1 << 20, UINT64_MAX));
  ASSERT_EQ(a.size(), b.size());
  uint64_t moved = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].rest, b[i].rest) << "line " << i;
    if (a[i].time_ns != b[i].time_ns) {
      ++moved;
      EXPECT_EQ(b[i].time_ns, a[i].time_ns - late.late_by_ns) << "line " << i;
    }
  }
  EXPECT_EQ(moved, with_late.late_produced());
  EXPECT_GT(moved, 0u);
}

TEST(SalesGeneratorLate, FractionZeroIsTheDefaultAndOneIsEveryEvent) {
  GeneratorSourceConfig cfg = config(3000, 4);
  cfg.jitter_ns = 5'000'000;
  SalesGenerator plain(cfg, TimeFormat::rfc3339, k2024Ns);
  SalesGenerator zero(cfg, TimeFormat::rfc3339, k2024Ns, LateEvents{0, kNsPerSecond});
  EXPECT_EQ(run(zero, 1 << 20, UINT64_MAX), run(plain, 1 << 20, UINT64_MAX));
  EXPECT_EQ(zero.late_produced(), 0u);

  SalesGenerator all(cfg, TimeFormat::epoch_ns, k2024Ns, LateEvents{1, 3 * kNsPerSecond});
  std::vector<TimedLine> lines = timed_lines(run(all, 1 << 20, UINT64_MAX));
  ASSERT_EQ(lines.size(), 3000u);
  EXPECT_EQ(all.late_produced(), 3000u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].time_ns, k2024Ns + int64_t(i) * cfg.step_ns - 3 * kNsPerSecond);
  }
}

// ---------------------------------------------------------------------------
// Real-time event time: the caller's due time

TEST(SalesGeneratorRealTime, TimestampIsTheDueTimeGiven) {
  GeneratorSourceConfig cfg = config(1000, 12);
  SalesGenerator synthetic(cfg, TimeFormat::epoch_ns, k2024Ns);
  SalesGenerator real(cfg, TimeFormat::epoch_ns, k2024Ns);
  std::string want, got;
  char line[SalesGenerator::kLineBytesMax];
  // Due times unrelated to start + i * step, not monotonic, with nanoseconds.
  std::mt19937_64 rng(3);
  std::vector<int64_t> due(1000);
  for (int64_t& d : due) d = 1'795'000'000 * kNsPerSecond + int64_t(rng() % (3600 * kNsPerSecond));
  for (size_t i = 0; i < due.size(); ++i) {
    want.append(line, synthetic.generate_one(line));
    got.append(line, real.generate_one_at(line, due[i]));
  }
  std::vector<TimedLine> a = timed_lines(want), b = timed_lines(got);
  ASSERT_EQ(b.size(), due.size());
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].time_ns, due[i]) << "line " << i;
    EXPECT_EQ(b[i].rest, a[i].rest) << "line " << i;  // every other field as generate_one()'s
  }
}

TEST(SalesGeneratorRealTime, JitterAndLatenessApplyToTheDueTime) {
  GeneratorSourceConfig cfg = config(5000, 14);
  cfg.jitter_ns = 20'000'000;
  const LateEvents late{0.2, 5 * kNsPerSecond};
  SalesGenerator g(cfg, TimeFormat::rfc3339, k2024Ns, late);
  const int64_t due0 = 1'795'624'391'781'123'457;  // nanosecond fraction: 9 digits
  std::string text;
  char line[SalesGenerator::kLineBytesMax];
  for (int64_t i = 0; i < 5000; ++i) text.append(line, g.generate_one_at(line, due0 + i * 1'000));
  std::vector<std::string> lines = split_lines(text);
  ASSERT_EQ(lines.size(), 5000u);
  simdjson::dom::parser parser;
  uint64_t late_seen = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    simdjson::padded_string json(lines[i]);
    std::string_view ts;
    ASSERT_EQ(parser.parse(json)["timestamp"].get_string().get(ts), simdjson::SUCCESS);
    std::optional<int64_t> t = read_rfc3339(ts);
    ASSERT_TRUE(t) << lines[i];
    int64_t due = due0 + int64_t(i) * 1'000;
    bool is_late = *t <= due - late.late_by_ns;
    late_seen += is_late;
    int64_t hi = is_late ? due - late.late_by_ns : due;
    EXPECT_LE(*t, hi) << lines[i];
    EXPECT_GE(*t, hi - cfg.jitter_ns) << lines[i];
  }
  EXPECT_EQ(late_seen, g.late_produced());
  EXPECT_GT(late_seen, 0u);
}

// ---------------------------------------------------------------------------
// sluice-gen's lag histogram (tools/gen/lag_histogram.h), header-only: tested
// here beside the generator it reports on.

TEST(LagHistogram, BucketsCoverEveryValueInOrder) {
  using gen::LagHistogram;
  std::mt19937_64 rng(9);
  for (int k = 0; k < 200'000; ++k) {
    uint64_t v = rng() >> (rng() % 64);
    size_t i = LagHistogram::index(v);
    ASSERT_LT(i, LagHistogram::kBuckets);
    ASSERT_GE(LagHistogram::upper(i), v);
    if (i > 0) {
      ASSERT_LT(LagHistogram::upper(i - 1), v);
    }
    // Relative width: a bucket is at most 1/32 of its values wide.
    ASSERT_LE(LagHistogram::upper(i) - v, v / LagHistogram::kSubBuckets);
  }
  EXPECT_EQ(LagHistogram::index(UINT64_MAX), LagHistogram::kBuckets - 1);
  EXPECT_EQ(LagHistogram::upper(LagHistogram::kBuckets - 1), UINT64_MAX);
}

TEST(LagHistogram, QuantilesAreNeverBelowAndAtMostOneBucketAbove) {
  gen::LagHistogram h;
  EXPECT_EQ(h.quantile(0.99), 0u);
  EXPECT_EQ(h.max(), 0u);
  for (int64_t v = 1; v <= 100'000; ++v) h.record(v * 1'000);  // 1 us .. 100 ms
  EXPECT_EQ(h.total(), 100'000u);
  EXPECT_EQ(h.max(), 100'000'000u);
  uint64_t p99 = h.quantile(0.99);
  EXPECT_GE(p99, 99'000'000u);
  EXPECT_LE(p99, 99'000'000u + 99'000'000u / 32);
  EXPECT_EQ(h.quantile(1.0), 100'000'000u);  // capped at the largest value seen

  gen::LagHistogram small;
  for (int64_t v : {3, 5, 7, -2}) small.record(v);  // small values are exact; negative counts as 0
  EXPECT_EQ(small.quantile(0.5), 3u);
  EXPECT_EQ(small.quantile(1.0), 7u);
  EXPECT_EQ(small.quantile(0.25), 0u);
}

}  // namespace
}  // namespace sluice
