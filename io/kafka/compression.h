// Compression and decompression of Kafka record-batch payloads: gzip, snappy, lz4, zstd.
//
// Every call writes into a caller-owned buffer and stops at its capacity: the compressed bytes
// come from the network, so a small input that expands without bound (a decompression bomb)
// must cost at most `out_cap` bytes of output and the time to produce them, then fail with
// too_large. The codec libraries' own state is allocated once per Decompressor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::kafka {

// Record batch attributes bits 0-2. Values 5-7 are unassigned by Kafka; a batch carrying one
// decompresses to `unsupported`.
enum class Codec : uint8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };

enum class DecompressStatus : uint8_t {
  ok = 0,
  corrupt,      ///< not a valid stream: bad header/data/checksum, truncated, trailing bytes
  too_large,    ///< the output would exceed out_cap; decompression stopped there
  unsupported,  ///< a codec value Sluice does not know (5-7), or Codec::none
};

const char* to_string(DecompressStatus s);
const char* to_string(Codec c);

// Owns the decompression state of every codec, created once so that per-batch calls do not
// allocate: a z_stream (inflateReset between batches keeps its 32 KiB window), an LZ4F
// decompression context (it keeps its block buffers, at most 2 x 4 MiB + 128 KiB for the
// largest LZ4 block size, and reuses them), and a ZSTD_DCtx.
//
// Thread/shard: one per shard, used only by the shard that created it; not copyable.
// Each decompress() call starts from a reset state, so a failed batch leaves nothing behind.
class Decompressor {
 public:
  Decompressor();
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  // Decompresses a whole record-batch payload `in[0, n)` into `out[0, out_cap)`; on ok,
  // out_len is the number of bytes written. On too_large, out holds the first out_cap bytes
  // of output (out_len == out_cap); on corrupt, out_len says how far decoding got (the bytes
  // are not to be trusted).
  //
  // gzip: one or more gzip members (zlib streams are accepted too); snappy: xerial framing
  // (Kafka's Java client: "\x82SNAPPY\0", two int32 versions, then int32-length-prefixed raw
  // snappy blocks) or a single raw snappy block (librdkafka), told apart by the magic; lz4:
  // LZ4 frame format, one or more frames; zstd: one or more frames, content size known or not.
  // REQUIRES: in != nullptr || n == 0; out != nullptr || out_cap == 0.
  [[nodiscard]] DecompressStatus decompress(Codec codec, const uint8_t* in, size_t n,
                                            uint8_t* out, size_t out_cap, size_t& out_len);

 private:
  struct State;

  DecompressStatus gzip(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                        size_t& out_len);
  DecompressStatus lz4(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                       size_t& out_len);
  DecompressStatus zstd(const uint8_t* in, size_t n, uint8_t* out, size_t out_cap,
                        size_t& out_len);

  std::unique_ptr<State> state_;
};

// Compresses record-batch payloads, as Kafka's clients do: gzip (a gzip member, zlib level 6),
// snappy (one raw block, as librdkafka writes it; Kafka's Java client reads it), lz4 (LZ4
// frame format, independent 64 KiB blocks, no checksums beyond the frame's), zstd (one frame
// with its content size, level 3). The codec contexts are created once and reset per call, so
// compressing a batch allocates only when `out` must grow.
//
// Thread/shard: one per producer, used by the thread that created it; not copyable.
class Compressor {
 public:
  Compressor();
  ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;

  // Appends the compressed form of in[0, n) to `out`. False only on a library failure (out
  // keeps its size from before the call). REQUIRES: codec is not none.
  [[nodiscard]] bool compress(Codec codec, const uint8_t* in, size_t n, std::vector<uint8_t>& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Snappy, stateless (the library keeps no context); exposed for tests of the two framings.
[[nodiscard]] DecompressStatus snappy_decompress(const uint8_t* in, size_t n, uint8_t* out,
                                                 size_t out_cap, size_t& out_len);

}  // namespace sluice::kafka
