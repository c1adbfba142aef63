// Test-only Kafka record batch v2 ENCODER, written from the format description (Kafka's
// protocol guide, DefaultRecordBatch / DefaultRecord) independently of io/kafka/record_batch.cc
// so the decoder is checked against something it did not produce. It compresses with the codec
// libraries directly (zlib, snappy raw and xerial-framed, LZ4 frame, zstd) and computes the
// CRC-32C bit by bit. Used by the unit tests, the fuzz corpus and the benchmark.
#pragma once

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace sluice::kafka::test {

// CRC-32C by its definition: reflected polynomial 0x82F63B78, init and final xor ~0, one bit
// at a time. The 256-entry table only caches the bitwise result for each byte value (the
// 50 MB bomb batches would take seconds otherwise).
inline uint32_t bitwise_crc32c(const void* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[b] = c;
    }
    return t;
  }();
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = (c >> 8) ^ table[(c ^ p[i]) & 0xFFu];
  return ~c;
}

inline void put_be(std::string& s, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
inline void put_i8(std::string& s, int8_t v) { s.push_back(static_cast<char>(v)); }
inline void put_i16(std::string& s, int16_t v) { put_be(s, static_cast<uint16_t>(v), 2); }
inline void put_i32(std::string& s, int32_t v) { put_be(s, static_cast<uint32_t>(v), 4); }
inline void put_i64(std::string& s, int64_t v) { put_be(s, static_cast<uint64_t>(v), 8); }

// Unsigned LEB128 (7 bits per byte, low first, high bit = more).
inline void put_uvarint(std::string& s, uint64_t v) {
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
}
// Zigzag: 0,-1,1,-2,... -> 0,1,2,3,...
inline void put_varint(std::string& s, int64_t v) {
  put_uvarint(s, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}
inline void put_nullable(std::string& s, const std::optional<std::string>& v) {
  if (!v) {
    put_varint(s, -1);
    return;
  }
  put_varint(s, static_cast<int64_t>(v->size()));
  s += *v;
}

struct TestHeader {
  std::string key;
  std::optional<std::string> value;
};

struct TestRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  int64_t timestamp_delta = 0;
  int32_t offset_delta = 0;
  std::vector<TestHeader> headers;
  int8_t attributes = 0;
};

inline std::string encode_record(const TestRecord& r) {
  std::string body;
  put_i8(body, r.attributes);
  put_varint(body, r.timestamp_delta);
  put_varint(body, r.offset_delta);
  put_nullable(body, r.key);
  put_nullable(body, r.value);
  put_varint(body, static_cast<int64_t>(r.headers.size()));
  for (const TestHeader& h : r.headers) {
    put_varint(body, static_cast<int64_t>(h.key.size()));
    body += h.key;
    put_nullable(body, h.value);
  }
  std::string out;
  put_varint(out, static_cast<int64_t>(body.size()));
  return out + body;
}

inline std::string encode_records(const std::vector<TestRecord>& records) {
  std::string out;
  for (const TestRecord& r : records) out += encode_record(r);
  return out;
}

enum class TestCodec : uint8_t {
  none = 0,
  gzip = 1,
  snappy = 2,  // raw snappy, as librdkafka writes it
  lz4 = 3,
  zstd = 4,
  snappy_xerial = 5,  // encoded as codec 2, xerial-framed as Kafka's Java client writes it
};

inline uint16_t codec_bits(TestCodec c) {
  return c == TestCodec::snappy_xerial ? 2 : static_cast<uint16_t>(c);
}

inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "test encoder: %s failed\n", what);
    std::abort();
  }
}

// gzip (windowBits 16 + 15) or, with `zlib_header`, a zlib stream.
inline std::string gzip_compress(const std::string& in, bool zlib_header = false, int level = 6) {
  z_stream zs{};
  require(deflateInit2(&zs, level, Z_DEFLATED, zlib_header ? 15 : 16 + 15, 8,
                       Z_DEFAULT_STRATEGY) == Z_OK,
          "deflateInit2");
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  require(deflate(&zs, Z_FINISH) == Z_STREAM_END, "deflate");
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline std::string snappy_raw_compress(const std::string& in) {
  std::string out;
  snappy::Compress(in.data(), in.size(), &out);
  return out;
}

// snappy-java's SnappyOutputStream framing: magic, version 1, compatible version 1, then
// [int32 BE length][raw snappy block] per `block_bytes` of input (32 KiB by default there).
inline std::string snappy_xerial_compress(const std::string& in, size_t block_bytes = 32 * 1024) {
  std::string out("\x82SNAPPY\0", 8);
  put_i32(out, 1);
  put_i32(out, 1);
  for (size_t pos = 0; pos < in.size(); pos += block_bytes) {
    std::string block = snappy_raw_compress(in.substr(pos, block_bytes));
    put_i32(out, static_cast<int32_t>(block.size()));
    out += block;
  }
  return out;
}

struct Lz4Options {
  LZ4F_blockSizeID_t block_size = LZ4F_max64KB;  // Kafka's Java client uses 64 KB blocks
  bool linked_blocks = false;
  bool block_checksum = false;
  bool content_checksum = false;
  bool content_size = false;
};

inline std::string lz4_compress(const std::string& in, const Lz4Options& o = {}) {
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockSizeID = o.block_size;
  prefs.frameInfo.blockMode = o.linked_blocks ? LZ4F_blockLinked : LZ4F_blockIndependent;
  prefs.frameInfo.blockChecksumFlag = o.block_checksum ? LZ4F_blockChecksumEnabled
                                                       : LZ4F_noBlockChecksum;
  prefs.frameInfo.contentChecksumFlag = o.content_checksum ? LZ4F_contentChecksumEnabled
                                                           : LZ4F_noContentChecksum;
  prefs.frameInfo.contentSize = o.content_size ? in.size() : 0;
  std::string out(LZ4F_compressFrameBound(in.size(), &prefs), '\0');
  size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
  require(!LZ4F_isError(n), "LZ4F_compressFrame");
  out.resize(n);
  return out;
}

// One-shot (content size in the frame header) or, with `stream`, streaming without a pledged
// size (no content size, as librdkafka and zstd-jni's output stream write).
inline std::string zstd_compress(const std::string& in, bool stream = false, int level = 3) {
  if (!stream) {
    std::string out(ZSTD_compressBound(in.size()), '\0');
    size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
    require(!ZSTD_isError(n), "ZSTD_compress");
    out.resize(n);
    return out;
  }
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  std::string out(ZSTD_compressBound(in.size()) + 1024, '\0');
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  ZSTD_outBuffer dst{out.data(), out.size(), 0};
  size_t left;
  do {
    left = ZSTD_compressStream2(cctx, &dst, &src, ZSTD_e_end);
    require(!ZSTD_isError(left), "ZSTD_compressStream2");
  } while (left != 0);
  out.resize(dst.pos);
  ZSTD_freeCCtx(cctx);
  return out;
}

inline std::string compress(TestCodec codec, const std::string& in) {
  switch (codec) {
    case TestCodec::none: return in;
    case TestCodec::gzip: return gzip_compress(in);
    case TestCodec::snappy: return snappy_raw_compress(in);
    case TestCodec::snappy_xerial: return snappy_xerial_compress(in);
    case TestCodec::lz4: return lz4_compress(in);
    case TestCodec::zstd: return zstd_compress(in, /*stream=*/true);
  }
  return in;
}

// Decompression bombs: `zeros` bytes of zeros (1 GiB in the tests) in each codec, built by
// repeating one compressed piece instead of compressing the whole output, which would take
// seconds. Each is a complete, valid stream (smaller instances are decoded in full by the
// tests to show the construction is right).
inline std::string zero_bomb(TestCodec codec, size_t zeros) {
  constexpr size_t kPiece = size_t{1} << 20;
  require(zeros % kPiece == 0 && zeros >= 2 * kPiece, "zero_bomb size");
  const std::string piece(kPiece, '\0');
  switch (codec) {
    case TestCodec::gzip: {
      // Member header and the first MiB, then the deflate blocks of one more MiB, which only
      // refer back into zeros and so can be repeated; a final empty fixed-Huffman block
      // (bits 1, 01, end-of-block 0000000 = bytes 03 00) and the trailer: CRC-32 and size mod
      // 2^32, little-endian.
      z_stream zs{};
      require(deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) == Z_OK, "init");
      std::string buf(2 * kPiece, '\0');
      auto feed = [&] {
        zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
        zs.avail_in = static_cast<uInt>(piece.size());
        zs.next_out = reinterpret_cast<Bytef*>(buf.data());
        zs.avail_out = static_cast<uInt>(buf.size());
        require(deflate(&zs, Z_SYNC_FLUSH) == Z_OK && zs.avail_in == 0, "deflate");
        return buf.substr(0, buf.size() - zs.avail_out);
      };
      std::string out = feed();
      const std::string repeat = feed();
      deflateEnd(&zs);
      for (size_t done = 2 * kPiece; done <= zeros; done += kPiece) out += repeat;
      out += std::string("\x03\x00", 2);
      uLong piece_crc = crc32(0, reinterpret_cast<const Bytef*>(piece.data()), kPiece);
      uLong crc = piece_crc;
      for (size_t done = kPiece; done < zeros; done += kPiece) {
        crc = crc32_combine(crc, piece_crc, kPiece);
      }
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
      for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((zeros >> (8 * i)) & 0xFF));
      return out;
    }
    case TestCodec::snappy: {
      // Raw snappy by hand: length varint, a 1-byte literal (tag 00, byte 00), then copies of
      // 64 bytes at offset 1 (tag (64-1)<<2 | 2, offset 01 00 little-endian), a shorter last.
      std::string out;
      put_uvarint(out, zeros);
      out += std::string("\x00\x00", 2);
      size_t left = zeros - 1;
      for (; left >= 64; left -= 64) out.append("\xFE\x01\x00", 3);
      if (left > 0) {
        out.push_back(static_cast<char>(((left - 1) << 2) | 2));
        out += std::string("\x01\x00", 2);
      }
      return out;
    }
    case TestCodec::snappy_xerial: {
      std::string block = snappy_raw_compress(std::string(32 * 1024, '\0'));
      std::string out("\x82SNAPPY\0", 8);
      put_i32(out, 1);
      put_i32(out, 1);
      for (size_t done = 0; done < zeros; done += 32 * 1024) {
        put_i32(out, static_cast<int32_t>(block.size()));
        out += block;
      }
      return out;
    }
    case TestCodec::lz4: {
      // Independent 64 KiB blocks, no content size: 7-byte frame header, blocks, 4-byte end
      // mark. One compressed block of zeros, repeated.
      std::string one = lz4_compress(std::string(64 * 1024, '\0'));
      std::string header = one.substr(0, 7), block = one.substr(7, one.size() - 7 - 4);
      std::string out = header;
      for (size_t done = 0; done < zeros; done += 64 * 1024) out += block;
      return out + one.substr(one.size() - 4);
    }
    case TestCodec::zstd: {
      // Frames of 64 MiB without a content size (so the decoder cannot refuse up front),
      // concatenated.
      const size_t frame_bytes = std::min(zeros, size_t{64} << 20);
      std::string frame = zstd_compress(std::string(frame_bytes, '\0'), /*stream=*/true, 1);
      std::string out;
      for (size_t done = 0; done < zeros; done += frame_bytes) out += frame;
      return out;
    }
    case TestCodec::none: break;
  }
  return piece;
}

struct TestBatch {
  int64_t base_offset = 0;
  int32_t partition_leader_epoch = 0;
  TestCodec codec = TestCodec::none;
  bool log_append_time = false;
  bool transactional = false;
  bool control = false;
  bool delete_horizon = false;
  uint16_t extra_attributes = 0;  // or-ed in (e.g. a codec value 5-7)
  std::optional<int32_t> last_offset_delta;  // default: the largest record offset delta
  int64_t base_timestamp = 0;
  int64_t max_timestamp = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  std::optional<int32_t> records_count;  // default: records.size()
  std::vector<TestRecord> records;
  std::optional<std::string> payload;  // replaces the encoded (and compressed) records
};

// The 61-byte header and the payload; the CRC-32C covers attributes to the end.
inline std::string encode_batch(const TestBatch& b) {
  std::string payload = b.payload ? *b.payload : compress(b.codec, encode_records(b.records));
  int32_t last_delta = 0;
  for (const TestRecord& r : b.records) last_delta = std::max(last_delta, r.offset_delta);
  if (b.last_offset_delta) last_delta = *b.last_offset_delta;
  uint16_t attributes = codec_bits(b.codec) | b.extra_attributes;
  if (b.log_append_time) attributes |= 0x08;
  if (b.transactional) attributes |= 0x10;
  if (b.control) attributes |= 0x20;
  if (b.delete_horizon) attributes |= 0x40;

  std::string after_crc;  // attributes .. end
  put_i16(after_crc, static_cast<int16_t>(attributes));
  put_i32(after_crc, last_delta);
  put_i64(after_crc, b.base_timestamp);
  put_i64(after_crc, b.max_timestamp);
  put_i64(after_crc, b.producer_id);
  put_i16(after_crc, b.producer_epoch);
  put_i32(after_crc, b.base_sequence);
  put_i32(after_crc, b.records_count ? *b.records_count : static_cast<int32_t>(b.records.size()));
  after_crc += payload;

  std::string out;
  put_i64(out, b.base_offset);
  put_i32(out, static_cast<int32_t>(4 + 1 + 4 + after_crc.size()));  // bytes after this field
  put_i32(out, b.partition_leader_epoch);
  put_i8(out, 2);
  put_be(out, bitwise_crc32c(after_crc.data(), after_crc.size()), 4);
  return out + after_crc;
}

// Recomputes the CRC of an encoded batch after a test edited its bytes.
inline void fix_crc(std::string& batch) {
  uint32_t crc = bitwise_crc32c(batch.data() + 21, batch.size() - 21);
  for (int i = 0; i < 4; ++i) batch[17 + i] = static_cast<char>(crc >> (8 * (3 - i)));
}

}  // namespace sluice::kafka::test
