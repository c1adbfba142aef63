// Registering metrics costs allocations linear in the number of series.
//
// Regression: the duplicate check copied both label vectors of every series
// already in the family, so a family of N series (one per ordered pair of
// shards: 4032 at 64 shards) cost ~N^2 allocations at start-up: 1 million
// for an empty 32-shard job, whose freed memory the sanitizer build's
// quarantine then held (RSS 336 MiB instead of 112).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "tests/alloc/counting_new.h"

namespace sluice {
namespace {

uint64_t allocations_to_register(size_t series) {
  std::vector<Gauge> gauges(series);
  std::vector<std::string> from(series), to(series);
  for (size_t i = 0; i < series; ++i) {
    from[i] = std::to_string(i / 64);
    to[i] = std::to_string(i % 64);
  }
  MetricsRegistry r;
  const uint64_t before = alloc_test::allocations();
  for (size_t i = 0; i < series; ++i) {
    MetricsError e = r.add({.name = "channel_depth", .help = "h", .labels = {{"shard", from[i]}, {"to", to[i]}}},
                           gauges[i]);
    EXPECT_EQ(e, MetricsError::ok);
  }
  const uint64_t n = alloc_test::allocations() - before;
  // The duplicate check still works on a large family, whatever the label order.
  Gauge again;
  EXPECT_EQ(r.add({.name = "channel_depth", .help = "h", .labels = {{"to", to[series / 2]}, {"shard", from[series / 2]}}},
                  again),
            MetricsError::duplicate_series);
  return n;
}

TEST(MetricsAlloc, RegisteringSeriesCostsAllocationsLinearInTheirNumber) {
  const uint64_t small = allocations_to_register(256);
  const uint64_t large = allocations_to_register(4096);
  std::printf("[ measure  ] allocations to register 256 series: %llu, 4096 series: %llu\n",
              static_cast<unsigned long long>(small), static_cast<unsigned long long>(large));
  // 16 x the series: linear would be ~16 x the allocations (vectors double,
  // so a little less); quadratic would be ~256 x.
  EXPECT_LT(large, 24 * small);
}

}  // namespace
}  // namespace sluice
