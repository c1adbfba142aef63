#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "io/kafka/compression.h"
#include "tests/io/kafka_batch_encoder.h"

namespace sluice::kafka {

static std::ostream& operator<<(std::ostream& os, DecompressStatus s) { return os << to_string(s); }

namespace {

using namespace test;

constexpr size_t kMiB = size_t{1} << 20;

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Text that compresses the way record payloads do: JSON-ish, repetitive, some randomness.
std::string sample_text(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s;
  while (s.size() < n) {
    s += "{\"id\":" + std::to_string(rng() % 100000) + ",\"sku\":\"SKU-" +
         std::to_string(rng() % 977) + "\",\"qty\":" + std::to_string(rng() % 9) + "}\n";
  }
  s.resize(n);
  return s;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

struct Result {
  DecompressStatus status;
  std::string out;
};

Result run(Decompressor& d, Codec codec, const std::string& in, size_t cap) {
  std::vector<uint8_t> out(cap);
  size_t len = 12345;
  DecompressStatus s = d.decompress(codec, bytes(in), in.size(), out.data(), cap, len);
  EXPECT_LE(len, cap);
  return {s, std::string(reinterpret_cast<const char*>(out.data()), std::min(len, cap))};
}

// The encodings a Kafka producer may send for each codec.
struct Encoding {
  const char* name;
  Codec codec;
  std::string (*encode)(const std::string&);
};

const std::vector<Encoding>& encodings() {
  static const std::vector<Encoding> e = {
      {"gzip", Codec::gzip, [](const std::string& s) { return gzip_compress(s); }},
      {"zlib", Codec::gzip, [](const std::string& s) { return gzip_compress(s, true); }},
      {"snappy_raw", Codec::snappy, [](const std::string& s) { return snappy_raw_compress(s); }},
      {"snappy_xerial", Codec::snappy,
       [](const std::string& s) { return snappy_xerial_compress(s); }},
      {"snappy_xerial_1k_blocks", Codec::snappy,
       [](const std::string& s) { return snappy_xerial_compress(s, 1024); }},
      {"lz4", Codec::lz4, [](const std::string& s) { return lz4_compress(s); }},
      {"lz4_checksums_size_linked", Codec::lz4,
       [](const std::string& s) {
         Lz4Options o;
         o.block_checksum = o.content_checksum = o.content_size = o.linked_blocks = true;
         return lz4_compress(s, o);
       }},
      {"lz4_4mb_blocks", Codec::lz4,
       [](const std::string& s) {
         Lz4Options o;
         o.block_size = LZ4F_max4MB;
         return lz4_compress(s, o);
       }},
      {"zstd_with_size", Codec::zstd, [](const std::string& s) { return zstd_compress(s); }},
      {"zstd_streamed", Codec::zstd, [](const std::string& s) { return zstd_compress(s, true); }},
      // The slow strategies (btultra, large windows); capped at level 9 above 300 KB, where
      // level 19 would take seconds.
      {"zstd_level_19", Codec::zstd,
       [](const std::string& s) { return zstd_compress(s, false, s.size() > 300000 ? 9 : 19); }},
  };
  return e;
}

TEST(KafkaCompression, RoundTripsEveryEncoding) {
  Decompressor d;
  const size_t sizes[] = {0, 1, 100, 4096, 65536, 65537, 300000, 3 * kMiB};
  for (const Encoding& e : encodings()) {
    for (size_t n : sizes) {
      for (const std::string& original : {sample_text(n, n), random_bytes(n, n + 1)}) {
        SCOPED_TRACE(::testing::Message() << e.name << " n=" << n);
        std::string compressed = e.encode(original);
        Result r = run(d, e.codec, compressed, original.size() + 100);
        ASSERT_EQ(r.status, DecompressStatus::ok);
        ASSERT_EQ(r.out, original);
      }
    }
  }
}

// out_cap exactly the decompressed size is enough; one byte less is too_large.
TEST(KafkaCompression, BoundIsExact) {
  Decompressor d;
  for (const Encoding& e : encodings()) {
    for (size_t n : {size_t{1}, size_t{1000}, size_t{70000}}) {
      SCOPED_TRACE(::testing::Message() << e.name << " n=" << n);
      std::string original = sample_text(n, 3);
      std::string compressed = e.encode(original);
      Result exact = run(d, e.codec, compressed, n);
      EXPECT_EQ(exact.status, DecompressStatus::ok);
      EXPECT_EQ(exact.out, original);
      EXPECT_EQ(run(d, e.codec, compressed, n - 1).status, DecompressStatus::too_large);
      EXPECT_EQ(run(d, e.codec, compressed, 0).status, DecompressStatus::too_large);
    }
  }
}

TEST(KafkaCompression, EmptyOutputWithZeroCapacityAndNullBuffer) {
  Decompressor d;
  for (const Encoding& e : encodings()) {
    SCOPED_TRACE(e.name);
    std::string compressed = e.encode("");
    size_t len = 99;
    EXPECT_EQ(d.decompress(e.codec, bytes(compressed), compressed.size(), nullptr, 0, len),
              DecompressStatus::ok);
    EXPECT_EQ(len, 0u);
  }
}

TEST(KafkaCompression, ConcatenatedStreams) {
  Decompressor d;
  std::string a = sample_text(5000, 1), b = sample_text(7000, 2);
  struct Case {
    Codec codec;
    std::string bytes;
  } cases[] = {
      {Codec::gzip, gzip_compress(a) + gzip_compress(b)},  // gzip members, as GZIPInputStream reads
      {Codec::lz4, lz4_compress(a) + lz4_compress(b)},     // LZ4 frames
      {Codec::zstd, zstd_compress(a) + zstd_compress(b, true)},  // zstd frames
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(to_string(c.codec));
    Result r = run(d, c.codec, c.bytes, a.size() + b.size());
    EXPECT_EQ(r.status, DecompressStatus::ok);
    EXPECT_EQ(r.out, a + b);
  }
}

TEST(KafkaCompression, ZstdSkippableFrameIsSkipped) {
  Decompressor d;
  std::string a = sample_text(3000, 4);
  // Skippable frame: magic 0x184D2A5? (little-endian), 4-byte little-endian size, content.
  std::string skippable("\x50\x2A\x4D\x18\x03\x00\x00\x00xyz", 11);
  Result r = run(d, Codec::zstd, skippable + zstd_compress(a) + skippable, a.size());
  EXPECT_EQ(r.status, DecompressStatus::ok);
  EXPECT_EQ(r.out, a);
}

TEST(KafkaCompression, SnappyFramingIsDetectedByMagic) {
  Decompressor d;
  std::string original = sample_text(100000, 5);
  std::string xerial = snappy_xerial_compress(original);
  ASSERT_EQ(xerial.compare(0, 8, std::string("\x82SNAPPY\0", 8)), 0);
  Result r = run(d, Codec::snappy, xerial, original.size());
  EXPECT_EQ(r.status, DecompressStatus::ok);
  EXPECT_EQ(r.out, original);
  // A xerial stream with a header and no blocks is an empty payload.
  std::string header_only = xerial.substr(0, 16);
  EXPECT_EQ(run(d, Codec::snappy, header_only, 10).status, DecompressStatus::ok);
}

TEST(KafkaCompression, StateIsResetBetweenCalls) {
  // A failure in the middle of a stream must not leak into the next call.
  Decompressor d;
  std::string original = sample_text(200000, 6);
  for (const Encoding& e : encodings()) {
    SCOPED_TRACE(e.name);
    std::string compressed = e.encode(original);
    EXPECT_NE(run(d, e.codec, compressed.substr(0, compressed.size() / 2), original.size()).status,
              DecompressStatus::ok);
    EXPECT_EQ(run(d, e.codec, compressed, 1000).status, DecompressStatus::too_large);
    Result r = run(d, e.codec, compressed, original.size());
    EXPECT_EQ(r.status, DecompressStatus::ok);
    EXPECT_EQ(r.out, original);
  }
}

// lz4 1.9.4's LZ4F_resetDecompressionContext keeps the remaining content size of a frame that
// was stopped early; the next frame without a content size then failed as corrupt.
TEST(KafkaCompression, Lz4ContextReusableAfterStoppingInFrameWithContentSize) {
  Decompressor d;
  Lz4Options sized;
  sized.content_size = true;
  std::string original = sample_text(70000, 12);
  EXPECT_EQ(run(d, Codec::lz4, lz4_compress(original, sized), 10).status,
            DecompressStatus::too_large);
  Result r = run(d, Codec::lz4, lz4_compress(original), original.size());
  EXPECT_EQ(r.status, DecompressStatus::ok);
  EXPECT_EQ(r.out, original);
  // And after a corrupt one.
  std::string truncated = lz4_compress(original, sized);
  truncated.resize(truncated.size() / 2);
  EXPECT_EQ(run(d, Codec::lz4, truncated, original.size()).status, DecompressStatus::corrupt);
  r = run(d, Codec::lz4, lz4_compress(original), original.size());
  EXPECT_EQ(r.status, DecompressStatus::ok);
  EXPECT_EQ(r.out, original);
}

TEST(KafkaCompression, NoneAndUnknownCodecsAreUnsupported) {
  Decompressor d;
  std::string in = "abc";
  for (int c : {0, 5, 6, 7}) {
    EXPECT_EQ(run(d, static_cast<Codec>(c), in, 100).status, DecompressStatus::unsupported) << c;
  }
}

TEST(KafkaCompression, Names) {
  EXPECT_STREQ(to_string(Codec::lz4), "lz4");
  EXPECT_STREQ(to_string(static_cast<Codec>(6)), "unknown");
  EXPECT_STREQ(to_string(DecompressStatus::too_large), "too_large");
}

// ---- Failure paths -------------------------------------------------------------------------

// Every proper prefix of a stream fails (or, for xerial framing, which can end after any
// block, yields a prefix of the original) and never writes past out_cap.
TEST(KafkaCompressionError, TruncatedAtEveryByte) {
  Decompressor d;
  std::string original = sample_text(3000, 8);
  for (const Encoding& e : encodings()) {
    SCOPED_TRACE(e.name);
    std::string compressed = e.encode(original);
    for (size_t cut = 0; cut < compressed.size(); ++cut) {
      Result r = run(d, e.codec, compressed.substr(0, cut), original.size());
      if (e.codec == Codec::snappy && compressed[0] == '\x82') {
        if (r.status == DecompressStatus::ok) {
          EXPECT_EQ(original.compare(0, r.out.size(), r.out), 0) << cut;
        }
        continue;
      }
      EXPECT_EQ(r.status, DecompressStatus::corrupt) << "cut at " << cut;
    }
  }
}

TEST(KafkaCompressionError, TrailingGarbage) {
  Decompressor d;
  std::string original = sample_text(2000, 9);
  for (const Encoding& e : encodings()) {
    SCOPED_TRACE(e.name);
    for (std::string garbage :
         {std::string("\x00", 1), std::string("x"), std::string("xyzw1234")}) {
      std::string in = e.encode(original) + garbage;
      EXPECT_EQ(run(d, e.codec, in, original.size() + 100).status, DecompressStatus::corrupt);
    }
  }
  // A zlib stream is accepted on its own, but not as a second member after a gzip one.
  std::string mixed = gzip_compress("abc") + gzip_compress("def", /*zlib_header=*/true);
  EXPECT_EQ(run(d, Codec::gzip, mixed, 100).status, DecompressStatus::corrupt);
}

// Flipping any bit of a checksummed stream (gzip's CRC-32, LZ4 with content checksum) must not
// pass; for formats without a checksum a flip may decode to other bytes (that is what the batch
// CRC is for) but must stay within out_cap and not crash.
TEST(KafkaCompressionError, BitFlipsAnywhere) {
  Decompressor d;
  std::string original = sample_text(1500, 10);
  for (const Encoding& e : encodings()) {
    SCOPED_TRACE(e.name);
    const bool checksummed = e.codec == Codec::gzip ||
                             std::string(e.name) == "lz4_checksums_size_linked";
    std::string compressed = e.encode(original);
    for (size_t i = 0; i < compressed.size(); ++i) {
      for (int bit : {0, 7}) {
        std::string in = compressed;
        in[i] = static_cast<char>(in[i] ^ (1 << bit));
        Result r = run(d, e.codec, in, original.size() + 64);
        if (checksummed && r.status == DecompressStatus::ok) {
          // The gzip header's flag/OS/mtime bytes are not covered by a checksum: a flip there
          // may still decode to exactly the original.
          EXPECT_EQ(r.out, original) << "byte " << i << " bit " << bit;
        }
      }
    }
  }
}

TEST(KafkaCompressionError, RandomBytes) {
  Decompressor d;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    std::string in = random_bytes(seed % 97 + (seed % 5) * 1000, seed);
    for (Codec c : {Codec::gzip, Codec::snappy, Codec::lz4, Codec::zstd}) {
      Result r = run(d, c, in, 4096);
      EXPECT_NE(r.status, DecompressStatus::unsupported);
    }
    // The same bytes behind each format's magic, to get past the first check.
    for (auto [c, magic] :
         {std::pair{Codec::gzip, std::string("\x1f\x8b\x08\x00", 4)},
          std::pair{Codec::snappy, std::string("\x82SNAPPY\0\0\0\0\1\0\0\0\1", 16)},
          std::pair{Codec::lz4, std::string("\x04\x22\x4d\x18", 4)},
          std::pair{Codec::zstd, std::string("\x28\xb5\x2f\xfd", 4)}}) {
      Result r = run(d, c, magic + in, 4096);
      EXPECT_NE(r.status, DecompressStatus::unsupported);
    }
  }
}

TEST(KafkaCompressionError, XerialBlockLengths) {
  Decompressor d;
  const std::string header("\x82SNAPPY\0\0\0\0\1\0\0\0\1", 16);
  std::string block = snappy_raw_compress("hello hello hello");
  auto framed = [&](int32_t len, const std::string& body) {
    std::string s = header;
    put_i32(s, len);
    return s + body;
  };
  EXPECT_EQ(run(d, Codec::snappy, framed(int32_t(block.size()), block), 100).status,
            DecompressStatus::ok);
  EXPECT_EQ(run(d, Codec::snappy, framed(-1, block), 100).status, DecompressStatus::corrupt);
  EXPECT_EQ(run(d, Codec::snappy, framed(INT32_MIN, block), 100).status,
            DecompressStatus::corrupt);
  EXPECT_EQ(run(d, Codec::snappy, framed(int32_t(block.size()) + 1, block), 100).status,
            DecompressStatus::corrupt);
  EXPECT_EQ(run(d, Codec::snappy, framed(0, ""), 100).status, DecompressStatus::corrupt);
  EXPECT_EQ(run(d, Codec::snappy, header + std::string("\0\0", 2), 100).status,
            DecompressStatus::corrupt);
  // A raw block whose length header claims more than it holds.
  std::string liar = block;
  liar[0] = static_cast<char>(liar[0] + 1);
  EXPECT_EQ(run(d, Codec::snappy, liar, 100).status, DecompressStatus::corrupt);
  EXPECT_EQ(run(d, Codec::snappy, "", 100).status, DecompressStatus::corrupt);
}

TEST(KafkaCompressionError, ZstdLegacyAndDictionaryFramesAreRefused) {
  Decompressor d;
  std::string frame = zstd_compress(sample_text(1000, 11));
  std::string legacy = frame;
  legacy[0] = '\x27';  // 0xFD2FB527: the v0.7 format's magic
  EXPECT_EQ(run(d, Codec::zstd, legacy, 2000).status, DecompressStatus::corrupt);
  EXPECT_EQ(run(d, Codec::zstd, "", 2000).status, DecompressStatus::corrupt);
  EXPECT_EQ(run(d, Codec::zstd, frame.substr(0, 3), 2000).status, DecompressStatus::corrupt);
}

// Empty payloads are not valid streams of any codec.
TEST(KafkaCompressionError, EmptyInput) {
  Decompressor d;
  for (Codec c : {Codec::gzip, Codec::snappy, Codec::lz4, Codec::zstd}) {
    EXPECT_EQ(run(d, c, "", 100).status, DecompressStatus::corrupt) << to_string(c);
  }
}

struct Bomb {
  const char* name;
  Codec codec;
  TestCodec test_codec;
};

constexpr Bomb kBombs[] = {
    {"gzip", Codec::gzip, TestCodec::gzip},
    {"snappy_raw", Codec::snappy, TestCodec::snappy},
    {"snappy_xerial", Codec::snappy, TestCodec::snappy_xerial},
    {"lz4", Codec::lz4, TestCodec::lz4},
    {"zstd", Codec::zstd, TestCodec::zstd},
};

// The bomb construction itself is right: a small one decodes in full to zeros.
TEST(KafkaCompressionError, BombConstructionDecodesToZeros) {
  Decompressor d;
  for (const Bomb& b : kBombs) {
    SCOPED_TRACE(b.name);
    std::string bomb = zero_bomb(b.test_codec, 4 * kMiB);
    Result r = run(d, b.codec, bomb, 4 * kMiB);
    ASSERT_EQ(r.status, DecompressStatus::ok);
    EXPECT_EQ(r.out, std::string(4 * kMiB, '\0'));
  }
}

// 1 GiB of zeros against a 1 MiB bound: too_large in every codec, what was reported written is
// zeros, and nothing is written past the bound (raw snappy refuses up front from its declared
// length; zstd's one-shot decoder reports no length when it stops). How long stopping takes (about a
// millisecond, against seconds for decoding the whole GiB) is measured by
// bench/decompression_bomb_bench.cc, not asserted here: wall-clock limits do not hold in the
// -O0 sanitizer build under `ctest -j`.
TEST(KafkaCompressionError, OneGibZeroBombStopsAtOneMibBound) {
  Decompressor d;
  constexpr size_t kGuardBytes = 64;
  std::vector<uint8_t> out(kMiB + kGuardBytes, 0xA5);
  for (const Bomb& b : kBombs) {
    SCOPED_TRACE(b.name);
    std::fill(out.begin(), out.end(), uint8_t{0xA5});
    std::string bomb = zero_bomb(b.test_codec, size_t{1} << 30);
    size_t len = 0;
    DecompressStatus s =
        d.decompress(b.codec, bytes(bomb), bomb.size(), out.data(), kMiB, len);
    EXPECT_EQ(s, DecompressStatus::too_large);
    ASSERT_LE(len, kMiB);
    EXPECT_EQ(std::count(out.begin(), out.begin() + len, uint8_t{0}), static_cast<long>(len));
    EXPECT_EQ(std::count(out.begin() + kMiB, out.end(), uint8_t{0xA5}),
              static_cast<long>(kGuardBytes));
  }
}

}  // namespace
}  // namespace sluice::kafka
