// Kafka's default partitioner hash: murmur2 as the Java client's Utils.murmur2 computes it
// (seed 0x9747b28c, little-endian 4-byte blocks), and the partition a keyed record goes to,
// toPositive(murmur2(key)) % partitions, so that Sluice puts a key where a Java (or
// librdkafka murmur2_random) producer would.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::kafka {

inline uint32_t murmur2(std::string_view data) {
  constexpr uint32_t m = 0x5bd1e995;
  const size_t n = data.size();
  uint32_t h = 0x9747b28cu ^ uint32_t(n);
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  for (size_t i = 0; i + 4 <= n; i += 4) {
    uint32_t k = uint32_t(p[i]) | uint32_t(p[i + 1]) << 8 | uint32_t(p[i + 2]) << 16 | uint32_t(p[i + 3]) << 24;
    k *= m;
    k ^= k >> 24;
    k *= m;
    h *= m;
    h ^= k;
  }
  const size_t tail = n & ~size_t(3);
  switch (n % 4) {
    case 3: h ^= uint32_t(p[tail + 2]) << 16; [[fallthrough]];
    case 2: h ^= uint32_t(p[tail + 1]) << 8; [[fallthrough]];
    case 1:
      h ^= uint32_t(p[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return h;
}

inline int32_t partition_for_key(std::string_view key, int32_t partitions) {
  return int32_t((murmur2(key) & 0x7fffffffu) % uint32_t(partitions));
}

}  // namespace sluice::kafka
