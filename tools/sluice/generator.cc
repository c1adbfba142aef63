#include "tools/sluice/generator.h"

#include <cstdio>
#include <cstring>

#include "core/clock.h"
#include "core/timestamp.h"
#include "operators/json_text.h"

namespace sluice {

SalesGenerator::SalesGenerator(const GeneratorSourceConfig& cfg, TimeFormat time_format,
                               int64_t start_ns)
    : cfg_(cfg), time_format_(time_format), start_ns_(start_ns), state_(cfg.seed) {}

// splitmix64: tiny, fast, and good enough for synthetic data.
uint64_t SalesGenerator::next_random() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

size_t SalesGenerator::generate(char* out, size_t cap, uint64_t max_events, uint64_t& events) {
  size_t used = 0;
  events = 0;
  while (events < max_events && !finished() && cap - used >= kLineBytesMax) {
    uint64_t product = 1 + next_random() % cfg_.products;
    uint64_t customer = next_random() % cfg_.customers;
    int64_t quantity = int64_t(1 + next_random() % 10);
    // A fixed price per product, in cents, so revenue = quantity x price.
    int64_t price_cents = 199 + int64_t(product * 37 % 5000);
    int64_t revenue_cents = quantity * price_cents;
    int64_t t = start_ns_ + int64_t(produced_) * cfg_.step_ns;
    if (cfg_.jitter_ns >= kNsPerMs) {
      // Whole milliseconds keep the timestamps readable.
      t -= int64_t(next_random() % uint64_t(cfg_.jitter_ns / kNsPerMs + 1)) * kNsPerMs;
    } else if (cfg_.jitter_ns > 0) {
      t -= int64_t(next_random() % uint64_t(cfg_.jitter_ns + 1));
    }

    char* p = out + used;
    int n = std::snprintf(p, kLineBytesMax,
                          "{\"product_id\":%llu,\"customer_id\":\"c%06llu\",\"quantity\":%lld,"
                          "\"revenue\":%lld.%02lld,\"timestamp\":",
                          static_cast<unsigned long long>(product),
                          static_cast<unsigned long long>(customer),
                          static_cast<long long>(quantity),
                          static_cast<long long>(revenue_cents / 100),
                          static_cast<long long>(revenue_cents % 100));
    p += n;
    switch (time_format_) {
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
    used = size_t(p - out);
    ++produced_;
    ++events;
  }
  return used;
}

}  // namespace sluice
