// The HyperLogLog sketch on its own: the sparse and the dense form hold the
// same registers as a plain array kept beside them; estimates are accurate
// against exact distinct counts over many sets and seeds; merge is the union;
// small sets stay small; bytes round-trip and corrupt bytes are refused.
// (That its hash, registers and estimate are Redis's is tested against a real
// redis-server in tests/integration/redis_hll_test.cc.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "operators/hyperloglog.h"

namespace sluice {
namespace {

struct SketchPtr {
  hll::Sketch* s;
  explicit SketchPtr(uint32_t p) : s(hll::create(p)) {}
  explicit SketchPtr(hll::Sketch* from) : s(from) {}
  ~SketchPtr() {
    if (s != nullptr) hll::destroy(s);
  }
  SketchPtr(const SketchPtr&) = delete;
  SketchPtr& operator=(const SketchPtr&) = delete;
};

std::vector<uint8_t> registers_of(const hll::Sketch* s) {
  std::vector<uint8_t> r(size_t(1) << hll::precision(s));
  hll::registers(s, r.data());
  return r;
}

TEST(HyperLogLog, SlotIsTheLowBitsAndOnePlusTheZerosAbove) {
  // p = 14: index = low 14 bits; rank = trailing zeros of the rest + 1.
  EXPECT_EQ(hll::slot_of(0x3fffULL | (1ULL << 14), 14).index, 0x3fffu);
  EXPECT_EQ(hll::slot_of(0x3fffULL | (1ULL << 14), 14).rank, 1);
  EXPECT_EQ(hll::slot_of(1ULL << 20, 14).rank, 7);
  EXPECT_EQ(hll::slot_of(0, 14).rank, 51);  // no bit set: 64 - 14 zeros, then the guard bit
  EXPECT_EQ(hll::slot_of(0, 4).rank, 61);
}

// Registers are kept as a plain array would keep them, through the turn from
// sparse to dense, for every precision.
TEST(HyperLogLog, BothFormsHoldTheRegistersOfAPlainArray) {
  std::mt19937_64 rng(7);
  for (uint32_t p = hll::kPrecisionMin; p <= hll::kPrecisionMax; ++p) {
    SketchPtr s(p);
    std::vector<uint8_t> plain(size_t(1) << p, 0);
    bool was_sparse = !hll::is_dense(s.s);
    const size_t values = (size_t(1) << p) / 2 + 100;
    for (size_t i = 0; i < values; ++i) {
      const uint64_t h = rng();
      const hll::Slot slot = hll::slot_of(h, p);
      plain[slot.index] = std::max(plain[slot.index], slot.rank);
      hll::add(s.s, h);
      if (i % 97 == 0 || i + 1 == values) {
        ASSERT_EQ(registers_of(s.s), plain) << "p=" << p << " after " << i + 1;
        ASSERT_EQ(hll::get(s.s, slot.index), plain[slot.index]);
      }
    }
    EXPECT_TRUE(hll::is_dense(s.s)) << p;
    if (p >= 8) {
      EXPECT_TRUE(was_sparse) << p;
    }
  }
}

TEST(HyperLogLog, TheEstimateDoesNotDependOnTheForm) {
  std::mt19937_64 rng(11);
  for (size_t n : {1, 5, 100, 700, 769, 2000}) {
    SketchPtr sparse(14);
    std::vector<uint64_t> hashes(n);
    for (uint64_t& h : hashes) {
      h = rng();
      hll::add(sparse.s, h);
    }
    // The same registers in a dense sketch: an empty dense one (the bytes of
    // a dense sketch with every register cleared) with the sparse one merged in.
    SketchPtr filler(14);
    for (int i = 0; i < 5000; ++i) hll::add(filler.s, rng());
    ASSERT_TRUE(hll::is_dense(filler.s));
    std::vector<char> bytes(hll::serialized_bytes_max(14));
    const size_t len = hll::serialize(filler.s, bytes.data());
    std::memset(bytes.data() + 6, 0, len - 6);
    SketchPtr empty_dense(hll::deserialize(14, bytes.data(), len));
    ASSERT_NE(empty_dense.s, nullptr);
    ASSERT_TRUE(hll::is_dense(empty_dense.s));
    EXPECT_EQ(hll::count(empty_dense.s), 0u);
    hll::merge(empty_dense.s, sparse.s);
    EXPECT_EQ(registers_of(empty_dense.s), registers_of(sparse.s));
    EXPECT_EQ(hll::count(empty_dense.s), hll::count(sparse.s)) << n;
  }
}

// Over many random sets: the RMS relative error is within 1.1 x the standard
// error 1.04 / sqrt(m), the mean error shows no bias, and small sets are
// counted exactly or nearly.
TEST(HyperLogLog, AccurateAgainstExactCountsOverManySetsAndSeeds) {
  for (uint32_t p : {10u, 14u}) {
    const double std_error = 1.04 / std::sqrt(double(1u << p));
    double sum_sq = 0, sum = 0;
    int sets = 0;
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      std::mt19937_64 rng(seed * 1000 + p);
      SketchPtr s(p);
      std::unordered_set<std::string> exact;
      // Checkpoints along one growing set: each is a set of its own size.
      size_t next = 1000;
      while (exact.size() < 60000) {
        std::string v = "c" + std::to_string(rng() % 10'000'000);
        hll::add(s.s, hll::hash_bytes(v));
        exact.insert(std::move(v));
        if (exact.size() == next) {
          const double rel = (double(hll::count(s.s)) - double(exact.size())) / double(exact.size());
          sum_sq += rel * rel;
          sum += rel;
          ++sets;
          next *= 2;
        }
      }
    }
    const double rms = std::sqrt(sum_sq / sets);
    const double mean = sum / sets;
    RecordProperty("p" + std::to_string(p) + "_rms", std::to_string(rms));
    EXPECT_LE(rms, 1.1 * std_error) << "p=" << p << " over " << sets << " sets";
    // The mean of `sets` errors has a standard error of std_error / sqrt(sets);
    // four of those is far outside chance.
    EXPECT_LE(std::fabs(mean), 4 * std_error / std::sqrt(double(sets))) << "p=" << p;
  }
  // Small sets at p = 14 are counted nearly exactly: the estimate then works
  // as linear counting, whose error comes from values sharing a register
  // (about n^2 / 2m of them), so its spread is about n / sqrt(2m): within
  // 1 + 4 of those, and mostly exact up to 100 values.
  std::mt19937_64 rng(99);
  int exact_hits = 0, total = 0;
  const double spread_per_value = 1.0 / std::sqrt(2.0 * (1 << 14));
  for (size_t n = 1; n <= 400; n += (n < 20 ? 1 : 13)) {
    for (int rep = 0; rep < 5; ++rep) {
      SketchPtr s(14);
      std::unordered_set<int64_t> values;
      while (values.size() < n) {
        const int64_t v = int64_t(rng() % 1'000'000'000);
        if (values.insert(v).second) hll::add(s.s, hll::hash_int(v));
      }
      const int64_t err = std::llabs(int64_t(hll::count(s.s)) - int64_t(n));
      EXPECT_LE(double(err), 1 + 4 * double(n) * spread_per_value) << n;
      if (n <= 100) {
        exact_hits += err == 0;
        ++total;
      }
    }
  }
  EXPECT_GE(exact_hits * 10, total * 9) << exact_hits << " of " << total << " sets of at most 100 exact";
}

TEST(HyperLogLog, MergeIsTheUnion) {
  std::mt19937_64 rng(5);
  for (auto [na, nb] : {std::pair{10, 10}, {300, 5}, {3000, 40}, {5, 3000}, {4000, 4000}}) {
    SketchPtr a(14), b(14), both(14);
    for (int i = 0; i < na; ++i) {
      const uint64_t h = rng();
      hll::add(a.s, h);
      hll::add(both.s, h);
    }
    for (int i = 0; i < nb; ++i) {
      const uint64_t h = rng();
      hll::add(b.s, h);
      hll::add(both.s, h);
    }
    hll::merge(a.s, b.s);
    EXPECT_EQ(registers_of(a.s), registers_of(both.s)) << na << "+" << nb;
    EXPECT_EQ(hll::count(a.s), hll::count(both.s));
  }
}

TEST(HyperLogLog, SmallSetsCostBytesNotKilobytes) {
  std::mt19937_64 rng(3);
  SketchPtr s(14);
  for (int i = 0; i < 5; ++i) hll::add(s.s, rng());
  EXPECT_LE(hll::heap_bytes(s.s), 64u);
  for (int i = 0; i < 95; ++i) hll::add(s.s, rng());
  EXPECT_LE(hll::heap_bytes(s.s), 16u + 128 * 4);
  for (int i = 0; i < 10000; ++i) hll::add(s.s, rng());
  EXPECT_TRUE(hll::is_dense(s.s));
  EXPECT_LE(hll::heap_bytes(s.s), 16u + 12288 + 1);
}

TEST(HyperLogLog, BytesRoundTripInBothForms) {
  std::mt19937_64 rng(8);
  for (uint32_t p : {4u, 12u, 14u, 18u}) {
    for (int n : {0, 1, 50, 20000}) {
      SketchPtr s(p);
      for (int i = 0; i < n; ++i) hll::add(s.s, rng());
      std::vector<char> bytes(hll::serialized_bytes_max(p));
      const size_t len = hll::serialize(s.s, bytes.data());
      ASSERT_LE(len, bytes.size());
      SketchPtr back(hll::deserialize(p, bytes.data(), len));
      ASSERT_NE(back.s, nullptr) << p << " " << n;
      EXPECT_EQ(registers_of(back.s), registers_of(s.s));
      EXPECT_EQ(hll::is_dense(back.s), hll::is_dense(s.s));
      // Another precision's bytes are refused.
      EXPECT_EQ(hll::deserialize(p == 14 ? 12 : 14, bytes.data(), len), nullptr);
    }
  }
}

TEST(HyperLogLog, CorruptBytesAreRefusedNeverTrusted) {
  std::mt19937_64 rng(13);
  for (int n : {3, 40, 20000}) {
    SketchPtr s(14);
    for (int i = 0; i < n; ++i) hll::add(s.s, rng());
    std::vector<char> bytes(hll::serialized_bytes_max(14));
    const size_t len = hll::serialize(s.s, bytes.data());
    for (size_t cut = 0; cut < len; cut += 1 + len / 50) {
      EXPECT_EQ(hll::deserialize(14, bytes.data(), cut), nullptr) << "truncated to " << cut;
    }
    std::vector<char> bad(bytes.begin(), bytes.begin() + long(len));
    bad[1] = 7;  // no such form
    EXPECT_EQ(hll::deserialize(14, bad.data(), len), nullptr);
    if (!hll::is_dense(s.s)) {
      // A rank out of range, an index out of range, entries out of order.
      bad = std::vector<char>(bytes.begin(), bytes.begin() + long(len));
      bad[6] = char(60);
      EXPECT_EQ(hll::deserialize(14, bad.data(), len), nullptr);
      bad = std::vector<char>(bytes.begin(), bytes.begin() + long(len));
      bad[9] = char(0x7f);
      EXPECT_EQ(hll::deserialize(14, bad.data(), len), nullptr);
      if (n > 1) {
        bad = std::vector<char>(bytes.begin(), bytes.begin() + long(len));
        std::swap_ranges(bad.begin() + 6, bad.begin() + 10, bad.begin() + 10);
        EXPECT_EQ(hll::deserialize(14, bad.data(), len), nullptr);
      }
    } else {
      bad = std::vector<char>(bytes.begin(), bytes.begin() + long(len));
      bad[6] = char(0xff);  // registers 0 and 1 become 63 and 3+: 63 > 51
      EXPECT_EQ(hll::deserialize(14, bad.data(), len), nullptr);
    }
    // Random flips never crash; what is accepted is a valid sketch.
    for (int i = 0; i < 200; ++i) {
      bad = std::vector<char>(bytes.begin(), bytes.begin() + long(len));
      bad[rng() % len] ^= char(1 << (rng() % 8));
      SketchPtr back(hll::deserialize(14, bad.data(), len));
      if (back.s != nullptr) (void)hll::count(back.s);
    }
  }
}

TEST(HyperLogLog, RedisStringHasItsHeaderAndPackedRegisters) {
  std::mt19937_64 rng(21);
  for (int n : {7, 5000}) {
    SketchPtr s(14);
    for (int i = 0; i < n; ++i) hll::add(s.s, rng());
    std::vector<char> out(hll::kRedisDenseBytes);
    hll::write_redis_dense(s.s, out.data());
    EXPECT_EQ(std::string(out.data(), 4), "HYLL");
    EXPECT_EQ(out[4], 0);                   // dense
    EXPECT_EQ(uint8_t(out[15]) & 0x80, 0x80);  // cached cardinality invalid
    // Register i: 6 bits from bit 6i of the register bytes, low bits first.
    const auto* r = reinterpret_cast<const uint8_t*>(out.data() + 16);
    const std::vector<uint8_t> regs = registers_of(s.s);
    for (uint32_t i = 0; i < regs.size(); ++i) {
      uint32_t v = 0;
      for (uint32_t b = 0; b < 6; ++b) {
        const uint32_t bit = i * 6 + b;
        v |= uint32_t((r[bit / 8] >> (bit % 8)) & 1) << b;
      }
      ASSERT_EQ(v, regs[i]) << "register " << i;
    }
  }
}

}  // namespace
}  // namespace sluice
