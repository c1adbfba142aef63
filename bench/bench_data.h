// Shared inputs of the micro-benchmarks: the sales pipeline's schema and
// aggregates (the DESIGN.md example job), encoded integer keys, and NDJSON
// text from the engine's own SalesGenerator. Built before timing starts.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "operators/event.h"
#include "operators/framing.h"
#include "io/sources/sales_generator.h"

namespace sluice::bench {

// 2024-03-28T09:00:00Z, the demo pipeline's start: any fixed instant will do.
constexpr int64_t kStartNs = 1'711'616'400 * kNsPerS;

// The generator's fields, sorted by name as the config loader leaves them.
inline SchemaConfig sales_schema() {
  SchemaConfig s;
  s.key = {"product_id"};
  s.time_field = "timestamp";
  s.time_format = TimeFormat::rfc3339;
  s.fields = {{"customer_id", FieldType::string},
              {"quantity", FieldType::int64},
              {"revenue", FieldType::float64}};
  return s;
}
constexpr int kQuantityField = 1;  // index into sales_schema().fields
constexpr int kRevenueField = 2;

// sum(quantity) (int64), sum(revenue) (float64), count.
inline std::vector<AggregateConfig> sales_aggregates() {
  return {{"total_quantity", AggFn::sum, "quantity", kQuantityField},
          {"total_revenue", AggFn::sum, "revenue", kRevenueField},
          {"events", AggFn::count, "", -1}};
}

// An int64 key in the engine's encoding (operators/event.h): 'i' + 8 bytes LE.
constexpr size_t kIntKeyBytes = 9;
inline void encode_int_key(int64_t v, char* out) {
  out[0] = kKeyInt;
  std::memcpy(out + 1, &v, 8);
}

inline uint64_t hash_key(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

// splitmix64, as in the generator: reproducible pseudo-random workloads.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// `events` sales lines ("...\n" each) followed by kLinePadding zero bytes that
// are not part of the size, so every line (and the last chunk) has the slack
// the framer and simdjson require.
struct NdjsonText {
  std::string bytes;  // size() includes the padding
  size_t size = 0;    // text bytes, without the padding
  uint64_t lines = 0;
  const char* data() const { return bytes.data(); }
};

inline NdjsonText sales_ndjson(uint64_t events, uint32_t products = 1000, uint32_t customers = 10000) {
  GeneratorSourceConfig g;
  g.count = events;
  g.products = products;
  g.customers = customers;
  g.step_ns = kNsPerMs;
  g.jitter_ns = 20 * kNsPerS;  // out-of-order input gives varied millisecond fractions
  g.seed = 42;
  SalesGenerator gen(g, TimeFormat::rfc3339, kStartNs);
  NdjsonText t;
  std::vector<char> chunk(1 << 20);
  while (!gen.finished()) {
    uint64_t n = 0;
    size_t len = gen.generate(chunk.data(), chunk.size(), UINT64_MAX, n);
    t.bytes.append(chunk.data(), len);
    t.lines += n;
  }
  t.size = t.bytes.size();
  t.bytes.append(kLinePadding, '\0');
  return t;
}

// Views of the lines of `text` (without their newlines).
inline std::vector<std::string_view> split_lines(const NdjsonText& text) {
  std::vector<std::string_view> lines;
  lines.reserve(text.lines);
  const char* p = text.data();
  const char* end = p + text.size;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
    lines.emplace_back(p, size_t(nl - p));
    p = nl + 1;
  }
  return lines;
}

}  // namespace sluice::bench
