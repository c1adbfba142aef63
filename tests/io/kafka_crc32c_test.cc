#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "io/kafka/crc32c.h"
#include "tests/io/kafka_batch_encoder.h"

namespace sluice::kafka {
namespace {

using test::bitwise_crc32c;

struct Vector {
  std::vector<uint8_t> bytes;
  uint32_t crc;
};

std::vector<Vector> known_vectors() {
  std::vector<Vector> v;
  const char* check = "123456789";  // the CRC catalogue's "check" value for CRC-32C
  v.push_back({std::vector<uint8_t>(check, check + 9), 0xE3069283u});
  v.push_back({{}, 0x00000000u});
  // RFC 3720 (iSCSI) appendix B.4 test patterns.
  v.push_back({std::vector<uint8_t>(32, 0x00), 0x8A9136AAu});
  v.push_back({std::vector<uint8_t>(32, 0xFF), 0x62A8AB43u});
  std::vector<uint8_t> up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = uint8_t(i);
    down[i] = uint8_t(31 - i);
  }
  v.push_back({up, 0x46DD794Eu});
  v.push_back({down, 0x113FDB5Cu});
  // An iSCSI read command PDU (RFC 3720 B.4, last pattern).
  v.push_back({{0x01, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
               0xD9963A56u});
  return v;
}

TEST(KafkaCrc32c, KnownVectors) {
  for (const Vector& v : known_vectors()) {
    SCOPED_TRACE(::testing::Message() << "length " << v.bytes.size());
    EXPECT_EQ(bitwise_crc32c(v.bytes.data(), v.bytes.size()), v.crc);
    EXPECT_EQ(crc32c_portable(0, v.bytes.data(), v.bytes.size()), v.crc);
    EXPECT_EQ(crc32c(0, v.bytes.data(), v.bytes.size()), v.crc);
  }
}

TEST(KafkaCrc32c, HardwarePathWhenBuiltWithSse42) {
#if defined(__SSE4_2__)
  EXPECT_TRUE(crc32c_is_hardware());
#else
  EXPECT_FALSE(crc32c_is_hardware());
#endif
}

TEST(KafkaCrc32c, ExtendingEqualsOneShotAtEverySplit) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> data(300);
  for (auto& b : data) b = uint8_t(rng());
  const uint32_t whole = bitwise_crc32c(data.data(), data.size());
  for (size_t split = 0; split <= data.size(); ++split) {
    uint32_t a = crc32c(0, data.data(), split);
    EXPECT_EQ(crc32c(a, data.data() + split, data.size() - split), whole) << split;
    uint32_t b = crc32c_portable(0, data.data(), split);
    EXPECT_EQ(crc32c_portable(b, data.data() + split, data.size() - split), whole) << split;
  }
}

// Every length 0..1100 at every alignment 0..7: both implementations against the bitwise
// definition, so the 8-byte loops, the tails and unaligned loads are all covered.
TEST(KafkaCrc32c, ImplementationsAgreeOnRandomData) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(1100 + 8);
  for (auto& b : buf) b = uint8_t(rng());
  for (size_t align = 0; align < 8; ++align) {
    for (size_t n = 0; n <= 1100; ++n) {
      const uint8_t* p = buf.data() + align;
      uint32_t want = bitwise_crc32c(p, n);
      ASSERT_EQ(crc32c_portable(0, p, n), want) << "n=" << n << " align=" << align;
      ASSERT_EQ(crc32c(0, p, n), want) << "n=" << n << " align=" << align;
    }
  }
  // Lengths around the hardware path's interleaved blocks (3 x 256 and 3 x 8192 bytes) and
  // a large buffer, with a non-zero starting CRC.
  std::vector<uint8_t> big((1 << 20) + 8);
  for (auto& b : big) b = uint8_t(rng());
  for (size_t n : {767, 768, 769, 775, 776, 1535, 1536, 1543, 24575, 24576, 24577, 24583, 25343,
                   25344, 49152 + 768 + 7, 100003, 1 << 20}) {
    for (size_t align : {0, 3}) {
      const uint8_t* p = big.data() + align;
      uint32_t want = bitwise_crc32c(p, n);
      EXPECT_EQ(crc32c_portable(0, p, n), want) << "n=" << n << " align=" << align;
      EXPECT_EQ(crc32c(0, p, n), want) << "n=" << n << " align=" << align;
      EXPECT_EQ(crc32c(0x12345678u, p, n), crc32c_portable(0x12345678u, p, n)) << n;
    }
  }
}

}  // namespace
}  // namespace sluice::kafka
