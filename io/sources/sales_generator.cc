#include "io/sources/sales_generator.h"

#include <cstring>

#include "core/clock.h"
#include "core/timestamp.h"
#include "operators/json_text.h"

namespace sluice {

namespace {

// splitmix64: tiny, fast, and good enough for synthetic data.
uint64_t next_random(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Seeds the late/not-late stream away from the field stream: the fraction
// bits of sqrt(2), a constant with no structure. Both streams step through the
// same splitmix64 sequence, this one at an offset too far away to ever meet.
constexpr uint64_t kLateSeedMix = 0x6a09e667f3bcc908ULL;

// "00" .. "99", for writing two digits per division.
constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

// Writes the `digits` lowest decimal digits of `v` ending just before `end`.
void put_digits_backwards(char* end, uint64_t v, size_t digits) {
  for (; digits >= 2; digits -= 2) {
    end -= 2;
    std::memcpy(end, kDigitPairs + 2 * (v % 100), 2);
    v /= 100;
  }
  if (digits == 1) end[-1] = char('0' + v % 10);
}

// Writes `v` in decimal with at least `width` digits, zero-padded: printf's
// "%0*llu", which the line format was first written with. Hand-written (as is
// the time below) because snprintf took three quarters of the generator's time,
// and sluice-gen has to outrun a shard.
char* put_decimal(char* p, uint64_t v, size_t width) {
  size_t n = 1;
  for (uint64_t x = v; x >= 10; x /= 10) ++n;
  if (n < width) n = width;
  put_digits_backwards(p + n, v, n);
  return p + n;
}

template <size_t N>
char* put_text(char* p, const char (&text)[N]) {
  std::memcpy(p, text, N - 1);
  return p + N - 1;
}

// The line's fixed pieces, in order, each followed by a value.
constexpr char kProductKey[] = "{\"product_id\":";
constexpr char kCustomerKey[] = ",\"customer_id\":\"c";
constexpr char kQuantityKey[] = "\",\"quantity\":";
constexpr char kRevenueKey[] = ",\"revenue\":";
constexpr char kTimeKey[] = ",\"timestamp\":";
// Bytes before the time value with the widest values: ids of 10 digits
// (uint32 counts), quantity 10, revenue "519.80" (10 x 51.98).
constexpr size_t kBytesBeforeTimeMax = sizeof kProductKey - 1 + 10 + sizeof kCustomerKey - 1 + 10 +
                                       sizeof kQuantityKey - 1 + 2 + sizeof kRevenueKey - 1 + 6 +
                                       sizeof kTimeKey - 1;
// The time is at most kRfc3339BytesMax in quotes (epoch_ns text is shorter:
// 20 bytes), then '}' and '\n'.
static_assert(kBytesBeforeTimeMax + 1 + kRfc3339BytesMax + 3 <= SalesGenerator::kLineBytesMax);

}  // namespace

SalesGenerator::SalesGenerator(const GeneratorSourceConfig& cfg, TimeFormat time_format,
                               int64_t start_ns, const LateEvents& late)
    : cfg_(cfg),
      time_format_(time_format),
      start_ns_(start_ns),
      late_(late),
      state_(cfg.seed),
      late_state_(cfg.seed ^ kLateSeedMix) {}

size_t SalesGenerator::generate(char* out, size_t cap, uint64_t max_events, uint64_t& events) {
  size_t used = 0;
  events = 0;
  while (events < max_events && !finished() && cap - used >= kLineBytesMax) {
    used += write_line(out + used, nominal_ns(produced_));
    ++events;
  }
  return used;
}

// Exactly format_rfc3339(t) (core/timestamp.cc), faster: the calendar date
// comes from civil_from_days once per day, the rest is digit pairs. Jittered
// times jump back and forth across seconds, so a cache of the day, not of the
// second, is the one that hits.
char* SalesGenerator::put_rfc3339(char* p, int64_t t) {
  int64_t secs = floor_div(t, kNsPerS);
  int64_t frac = t % kNsPerS;  // not t - secs * 1e9: that overflows for the lowest second
  if (frac < 0) frac += kNsPerS;
  int64_t days = floor_div(secs, 86400);
  int64_t sod = secs - days * 86400;
  if (days != cached_day_) {
    int64_t year;
    unsigned month, day;
    civil_from_days(days, year, month, day);
    // int64 ns spans the years 1677..2262: always four digits.
    put_digits_backwards(day_text_ + 4, uint64_t(year), 4);
    day_text_[4] = '-';
    put_digits_backwards(day_text_ + 7, month, 2);
    day_text_[7] = '-';
    put_digits_backwards(day_text_ + 10, day, 2);
    day_text_[10] = 'T';
    cached_day_ = days;
  }
  std::memcpy(p, day_text_, sizeof day_text_);
  p += sizeof day_text_;
  put_digits_backwards(p + 2, uint64_t(sod / 3600), 2);
  p[2] = ':';
  put_digits_backwards(p + 5, uint64_t(sod / 60 % 60), 2);
  p[5] = ':';
  put_digits_backwards(p + 8, uint64_t(sod % 60), 2);
  p += 8;
  if (frac != 0) {
    *p++ = '.';
    size_t digits = frac % 1'000'000 == 0 ? 3 : frac % 1'000 == 0 ? 6 : 9;
    uint64_t shown = uint64_t(digits == 3 ? frac / 1'000'000 : digits == 6 ? frac / 1'000 : frac);
    put_digits_backwards(p + digits, shown, digits);
    p += digits;
  }
  *p++ = 'Z';
  return p;
}

size_t SalesGenerator::write_line(char* out, int64_t nominal_ns) {
  // The draws from state_ and their order are part of the output format: every
  // seed must keep giving the same events.
  uint64_t product = 1 + next_random(state_) % cfg_.products;
  uint64_t customer = next_random(state_) % cfg_.customers;
  int64_t quantity = int64_t(1 + next_random(state_) % 10);
  // A fixed price per product, in cents, so revenue = quantity x price.
  int64_t price_cents = 199 + int64_t(product * 37 % 5000);
  int64_t revenue_cents = quantity * price_cents;
  int64_t t = nominal_ns;
  if (cfg_.jitter_ns >= kNsPerMs) {
    // Whole milliseconds keep the timestamps readable.
    t -= int64_t(next_random(state_) % uint64_t(cfg_.jitter_ns / kNsPerMs + 1)) * kNsPerMs;
  } else if (cfg_.jitter_ns > 0) {
    t -= int64_t(next_random(state_) % uint64_t(cfg_.jitter_ns + 1));
  }
  if (late_.fraction > 0) {
    // 53 random bits as a double in [0, 1): fraction 1 makes every event late.
    double u = double(next_random(late_state_) >> 11) * 0x1p-53;
    if (u < late_.fraction) {
      t = sub_sat(t, late_.late_by_ns);
      ++late_produced_;
    }
  }

  char* p = out;
  p = put_text(p, kProductKey);
  p = put_decimal(p, product, 1);
  p = put_text(p, kCustomerKey);
  p = put_decimal(p, customer, 6);
  p = put_text(p, kQuantityKey);
  p = put_decimal(p, uint64_t(quantity), 1);
  p = put_text(p, kRevenueKey);
  p = put_decimal(p, uint64_t(revenue_cents / 100), 1);
  *p++ = '.';
  p = put_decimal(p, uint64_t(revenue_cents % 100), 2);
  p = put_text(p, kTimeKey);
  switch (time_format_) {
    case TimeFormat::rfc3339:
      *p++ = '"';
      p = put_rfc3339(p, t);
      *p++ = '"';
      break;
    case TimeFormat::epoch_s: p += write_int64(floor_div(t, kNsPerS), p); break;
    case TimeFormat::epoch_ms: p += write_int64(floor_div(t, kNsPerMs), p); break;
    case TimeFormat::epoch_us: p += write_int64(floor_div(t, kNsPerUs), p); break;
    case TimeFormat::epoch_ns: p += write_int64(t, p); break;
  }
  *p++ = '}';
  *p++ = '\n';
  ++produced_;
  return size_t(p - out);
}

}  // namespace sluice
