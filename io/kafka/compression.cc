#include "io/kafka/compression.h"

#include <lz4.h>
#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "core/assert.h"

namespace sluice::kafka {
namespace {

// zlib counts bytes in uInt (32 bits): longer buffers are handed over in pieces of this size.
constexpr size_t kZlibChunkBytes = UINT_MAX;

// Where output goes once `out` is full: one byte landing here proves the stream has more to
// give than the caller allowed (too_large), while a stream that ends exactly at out_cap still
// gets to check its trailer and finish ok.
constexpr size_t kOverflowProbeBytes = 64;

// Xerial snappy framing (snappy-java's SnappyOutputStream, used by Kafka's Java producer):
// this magic, int32 version, int32 minimum compatible version, then blocks of
// [int32 big-endian compressed length][raw snappy]. A raw snappy stream cannot begin with
// these bytes: it starts with a varint length, and 'N' after it would be a copy tag with no
// literal before it, which is invalid, so the magic tells the two framings apart exactly.
constexpr uint8_t kXerialMagic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr size_t kXerialHeaderBytes = sizeof kXerialMagic + 4 + 4;

uint32_t load_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[3]) << 24 | uint32_t(p[2]) << 16 | uint32_t(p[1]) << 8 | uint32_t(p[0]);
}

DecompressStatus snappy_block(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                              size_t& out_len) {
  out_len = 0;
  size_t len = 0;
  // Reads only the varint header; RawUncompress below checks the stream produces exactly
  // this many bytes, so the bound holds even when the header lies.
  if (!snappy::GetUncompressedLength(reinterpret_cast<const char*>(in), n, &len)) {
    return DecompressStatus::corrupt;
  }
  if (len > out_cap) return DecompressStatus::too_large;
  char empty = 0;
  char* dst = out != nullptr ? reinterpret_cast<char*>(out) : &empty;
  if (!snappy::RawUncompress(reinterpret_cast<const char*>(in), n, dst)) {
    return DecompressStatus::corrupt;
  }
  out_len = len;
  return DecompressStatus::ok;
}

}  // namespace

const char* to_string(DecompressStatus s) {
  switch (s) {
    case DecompressStatus::ok: return "ok";
    case DecompressStatus::corrupt: return "corrupt";
    case DecompressStatus::too_large: return "too_large";
    case DecompressStatus::unsupported: return "unsupported";
  }
  return "?";
}

const char* to_string(Codec c) {
  switch (c) {
    case Codec::none: return "none";
    case Codec::gzip: return "gzip";
    case Codec::snappy: return "snappy";
    case Codec::lz4: return "lz4";
    case Codec::zstd: return "zstd";
  }
  return "unknown";
}

struct Decompressor::State {
  z_stream zlib{};
  LZ4F_dctx* lz4 = nullptr;
  // The last LZ4 call stopped inside a frame (too_large or corrupt). LZ4F_resetDecompression-
  // Context before lz4 1.10.0 leaves the stopped frame's remaining content size behind, and
  // the next frame without a content size then fails with frameSize_wrong; so after such a
  // stop the context is recreated (an allocation, on failed batches only).
  bool lz4_stopped_in_frame = false;
  ZSTD_DCtx* zstd = nullptr;
};

Decompressor::Decompressor() : state_(std::make_unique<State>()) {
  // 15 + 32: a 32 KiB window (the most deflate uses) with gzip or zlib header detected.
  // These fail only when memory is exhausted at shard start, which is not an input error.
  int rc = inflateInit2(&state_->zlib, 15 + 32);
  SLUICE_ASSERT(rc == Z_OK);
  LZ4F_errorCode_t lz4_rc = LZ4F_createDecompressionContext(&state_->lz4, LZ4F_VERSION);
  SLUICE_ASSERT(!LZ4F_isError(lz4_rc));
  state_->zstd = ZSTD_createDCtx();
  SLUICE_ASSERT(state_->zstd != nullptr);
}

Decompressor::~Decompressor() {
  inflateEnd(&state_->zlib);
  LZ4F_freeDecompressionContext(state_->lz4);
  ZSTD_freeDCtx(state_->zstd);
}

DecompressStatus Decompressor::decompress(Codec codec, const uint8_t* in, size_t n, uint8_t* out,
                                          size_t out_cap, size_t& out_len) {
  SLUICE_ASSERT(in != nullptr || n == 0);
  SLUICE_ASSERT(out != nullptr || out_cap == 0);
  out_len = 0;
  switch (codec) {
    case Codec::gzip: return gzip(in, n, out, out_cap, out_len);
    case Codec::snappy: return snappy_decompress(in, n, out, out_cap, out_len);
    case Codec::lz4: return lz4(in, n, out, out_cap, out_len);
    case Codec::zstd: return zstd(in, n, out, out_cap, out_len);
    case Codec::none: break;
  }
  return DecompressStatus::unsupported;
}

// Kafka's Java producer writes one gzip member; Java's GZIPInputStream also reads members
// concatenated after it, and so does this. Anything else after the last member is corrupt.
DecompressStatus Decompressor::gzip(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                                    size_t& out_len) {
  z_stream& zs = state_->zlib;
  if (inflateReset(&zs) != Z_OK) return DecompressStatus::corrupt;
  uint8_t probe[kOverflowProbeBytes];
  size_t in_left = n;    // not yet handed to zlib
  size_t out_left = out_cap;
  zs.next_in = const_cast<Bytef*>(in);  // zlib's API is not const-correct; it does not write
  zs.avail_in = 0;
  zs.next_out = out;
  zs.avail_out = 0;
  bool probing = false;
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      size_t chunk = std::min(in_left, kZlibChunkBytes);
      zs.avail_in = static_cast<uInt>(chunk);
      in_left -= chunk;
    }
    if (zs.avail_out == 0 && !probing) {
      if (out_left > 0) {
        size_t chunk = std::min(out_left, kZlibChunkBytes);
        zs.avail_out = static_cast<uInt>(chunk);
        out_left -= chunk;
      } else {
        out_len = out_cap;
        probing = true;
        zs.next_out = probe;
        zs.avail_out = sizeof probe;
      }
    }
    int rc = inflate(&zs, Z_NO_FLUSH);
    if (!probing) out_len = static_cast<size_t>(zs.next_out - out);
    if (probing && zs.avail_out < sizeof probe) return DecompressStatus::too_large;
    if (rc == Z_STREAM_END) {
      size_t rest = zs.avail_in + in_left;
      if (rest == 0) return DecompressStatus::ok;
      // Another gzip member must start right here (0x1f 0x8b); the auto-detecting header
      // parser would also take a zlib header, so check the magic ourselves.
      if (zs.avail_in < 2 || zs.next_in[0] != 0x1f || zs.next_in[1] != 0x8b) {
        return DecompressStatus::corrupt;
      }
      if (inflateReset(&zs) != Z_OK) return DecompressStatus::corrupt;
      continue;
    }
    // Z_BUF_ERROR: no progress possible, i.e. the input ended inside the stream (output space
    // is never the cause: it is refilled above). Z_DATA_ERROR, Z_NEED_DICT: bad stream.
    // Z_MEM_ERROR (the window allocated on first use): reported as corrupt too, the batch
    // cannot be read either way.
    if (rc != Z_OK) return DecompressStatus::corrupt;
  }
}

DecompressStatus snappy_decompress(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                                   size_t& out_len) {
  out_len = 0;
  if (n < kXerialHeaderBytes || std::memcmp(in, kXerialMagic, sizeof kXerialMagic) != 0) {
    return snappy_block(in, n, out, out_cap, out_len);
  }
  // The two version fields are not checked: there has only ever been version 1, and a block
  // format change would show up as corrupt blocks anyway.
  size_t pos = kXerialHeaderBytes;
  while (pos < n) {
    if (n - pos < 4) return DecompressStatus::corrupt;
    uint32_t block_bytes = load_be32(in + pos);  // an int32 in Java; negative reads as huge
    pos += 4;
    if (block_bytes > n - pos) return DecompressStatus::corrupt;
    size_t produced = 0;
    uint8_t* dst = out == nullptr ? nullptr : out + out_len;
    DecompressStatus s = snappy_block(in + pos, block_bytes, dst, out_cap - out_len, produced);
    out_len += produced;
    if (s != DecompressStatus::ok) return s;
    pos += block_bytes;
  }
  return DecompressStatus::ok;
}

// One or more LZ4 frames (the lz4 tool and the format allow concatenation; skippable frames
// are skipped by LZ4F). LZ4F verifies the header checksum and, when the frame has them, the
// block and content checksums.
DecompressStatus Decompressor::lz4(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                                   size_t& out_len) {
  if (state_->lz4_stopped_in_frame && LZ4_versionNumber() < 11000) {
    LZ4F_freeDecompressionContext(state_->lz4);
    LZ4F_errorCode_t rc = LZ4F_createDecompressionContext(&state_->lz4, LZ4F_VERSION);
    SLUICE_ASSERT(!LZ4F_isError(rc));  // out of memory, not an input error
  }
  LZ4F_dctx* ctx = state_->lz4;
  LZ4F_resetDecompressionContext(ctx);
  state_->lz4_stopped_in_frame = true;  // until a clean end below
  if (n == 0) return DecompressStatus::corrupt;
  uint8_t probe[kOverflowProbeBytes];
  size_t in_pos = 0;
  for (;;) {
    const bool probing = out_len == out_cap;
    uint8_t* dst = probing ? probe : out + out_len;
    size_t dst_bytes = probing ? sizeof probe : out_cap - out_len;
    size_t src_bytes = n - in_pos;
    size_t hint = LZ4F_decompress(ctx, dst, &dst_bytes, in + in_pos, &src_bytes, nullptr);
    if (LZ4F_isError(hint)) return DecompressStatus::corrupt;
    in_pos += src_bytes;
    if (probing && dst_bytes > 0) return DecompressStatus::too_large;
    if (!probing) out_len += dst_bytes;
    if (hint == 0) {
      // A frame ended and was fully flushed; the context is ready for the next one.
      if (in_pos == n) {
        state_->lz4_stopped_in_frame = false;
        return DecompressStatus::ok;
      }
      continue;
    }
    // Mid-frame with nothing consumed and nothing produced: the input ended inside a frame.
    if (src_bytes == 0 && dst_bytes == 0) return DecompressStatus::corrupt;
  }
}

// One-shot ZSTD_decompressDCtx rather than ZSTD_decompressStream: the streaming decoder
// allocates a window buffer of the size the frame header asks for (up to 128 MiB at the
// library's default windowLogMax), an allocation the input controls; the one-shot decoder uses
// the caller's output buffer as its window, needs no content size in the header, and fails
// with dstSize_tooSmall as soon as a block would pass out_cap.
DecompressStatus Decompressor::zstd(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                                    size_t& out_len) {
  // Only zstd frames (magic 0xFD2FB528) and skippable frames: libzstd may be built with the
  // pre-1.0 "legacy" formats, whose decoders allocate per call and are not what any Kafka
  // client writes. Walking the frame headers costs a hop per block, not a pass over the data.
  if (n == 0) return DecompressStatus::corrupt;
  for (size_t pos = 0; pos < n;) {
    if (n - pos < 4) return DecompressStatus::corrupt;
    uint32_t magic = load_le32(in + pos);
    if (magic != ZSTD_MAGICNUMBER &&
        (magic & ZSTD_MAGIC_SKIPPABLE_MASK) != ZSTD_MAGIC_SKIPPABLE_START) {
      return DecompressStatus::corrupt;
    }
    size_t frame_bytes = ZSTD_findFrameCompressedSize(in + pos, n - pos);
    if (ZSTD_isError(frame_bytes) || frame_bytes == 0) return DecompressStatus::corrupt;
    pos += frame_bytes;
  }
  ZSTD_DCtx_reset(state_->zstd, ZSTD_reset_session_only);
  uint8_t empty = 0;
  size_t rc = ZSTD_decompressDCtx(state_->zstd, out != nullptr ? out : &empty, out_cap, in, n);
  if (ZSTD_isError(rc)) {
    return ZSTD_getErrorCode(rc) == ZSTD_error_dstSize_tooSmall ? DecompressStatus::too_large
                                                                : DecompressStatus::corrupt;
  }
  out_len = rc;
  return DecompressStatus::ok;
}

// ---- Compression ------------------------------------------------------------------------

struct Compressor::State {
  z_stream zlib{};
  LZ4F_cctx* lz4 = nullptr;
  ZSTD_CCtx* zstd = nullptr;
};

Compressor::Compressor() : state_(std::make_unique<State>()) {
  // 15 + 16: a 32 KiB window with a gzip header; level 6 (zlib's and Kafka's default).
  int rc = deflateInit2(&state_->zlib, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  SLUICE_ASSERT(rc == Z_OK);
  LZ4F_errorCode_t lz4_rc = LZ4F_createCompressionContext(&state_->lz4, LZ4F_VERSION);
  SLUICE_ASSERT(!LZ4F_isError(lz4_rc));
  state_->zstd = ZSTD_createCCtx();
  SLUICE_ASSERT(state_->zstd != nullptr);
  ZSTD_CCtx_setParameter(state_->zstd, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(state_->zstd, ZSTD_c_contentSizeFlag, 1);
}

Compressor::~Compressor() {
  deflateEnd(&state_->zlib);
  LZ4F_freeCompressionContext(state_->lz4);
  ZSTD_freeCCtx(state_->zstd);
}

bool Compressor::compress(Codec codec, const uint8_t* in, size_t n, std::vector<uint8_t>& out) {
  SLUICE_ASSERT(in != nullptr || n == 0);
  const size_t at = out.size();
  auto fail = [&] {
    out.resize(at);
    return false;
  };
  switch (codec) {
    case Codec::gzip: {
      z_stream& z = state_->zlib;
      if (deflateReset(&z) != Z_OK) return fail();
      out.resize(at + deflateBound(&z, uLong(n)) + 32);
      z.next_in = const_cast<Bytef*>(in);
      z.avail_in = uInt(n);
      z.next_out = out.data() + at;
      z.avail_out = uInt(out.size() - at);
      if (n > kZlibChunkBytes || deflate(&z, Z_FINISH) != Z_STREAM_END) return fail();
      out.resize(out.size() - z.avail_out);
      return true;
    }
    case Codec::snappy: {
      out.resize(at + snappy::MaxCompressedLength(n));
      size_t len = 0;
      snappy::RawCompress(reinterpret_cast<const char*>(in), n, reinterpret_cast<char*>(out.data() + at), &len);
      out.resize(at + len);
      return true;
    }
    case Codec::lz4: {
      LZ4F_preferences_t prefs{};
      prefs.frameInfo.blockSizeID = LZ4F_max64KB;
      prefs.frameInfo.blockMode = LZ4F_blockIndependent;
      prefs.frameInfo.contentSize = n;
      out.resize(at + LZ4F_compressBound(n, &prefs) + LZ4F_HEADER_SIZE_MAX + 8);
      uint8_t* p = out.data() + at;
      size_t room = out.size() - at;
      size_t r = LZ4F_compressBegin(state_->lz4, p, room, &prefs);
      if (LZ4F_isError(r)) return fail();
      size_t len = r;
      r = LZ4F_compressUpdate(state_->lz4, p + len, room - len, in, n, nullptr);
      if (LZ4F_isError(r)) return fail();
      len += r;
      r = LZ4F_compressEnd(state_->lz4, p + len, room - len, nullptr);
      if (LZ4F_isError(r)) return fail();
      len += r;
      out.resize(at + len);
      return true;
    }
    case Codec::zstd: {
      out.resize(at + ZSTD_compressBound(n));
      const size_t r = ZSTD_compress2(state_->zstd, out.data() + at, out.size() - at, in, n);
      if (ZSTD_isError(r)) return fail();
      out.resize(at + r);
      return true;
    }
    case Codec::none: break;
  }
  return fail();
}

}  // namespace sluice::kafka
