// Decompression bombs: how long refusing one takes. A Fetch response may carry a small
// compressed payload that expands without bound; Sluice decompresses into a bounded buffer and
// must give up (too_large) after about the bound's worth of work, never after decoding
// everything. The unit tests (tests/io/kafka_compression_test.cc,
// tests/io/kafka_record_batch_error_test.cc) check the outcome; this measures the time, which
// the tests no longer assert (wall-clock limits fail in the -O0 sanitizer build under load).
//
// Workload: 1 GiB of zeros in each codec, built by the test encoder's zero_bomb()
// (tests/io/kafka_batch_encoder.h) before timing: 1.0 MB gzip, 50 MB raw snappy, 50 MB
// xerial snappy, 4.4 MB lz4, small zstd frames (exact sizes in the `compressed_bytes` counter).
// The bound is 1 MiB.
//
//   BM_BombDecompress/<codec>       Decompressor::decompress of the bomb into 1 MiB: too_large
//   BM_MiBDecompress/<codec>        baseline: decompress, in full, a stream of exactly 1 MiB of
//                                   zeros compressed by the codec's own library: the least any
//                                   decoder pays to fill the bound
//   BM_BombRecordBatch/<codec>      the bomb as a batch's records, as a fetch decodes it:
//                                   BatchIterator::next (length checks, CRC-32C over the whole
//                                   batch) + RecordReader::open into a 1 MiB scratch: too_large
//   BM_BombRecordBatchNoCrc/<codec> the same with CRC checking off: the decompression's share
//   BM_Crc32cBaseline/<codec>       baseline: crc32c over the batch's CRC-covered bytes alone
//
// Time per refusal is the figure (raw snappy refuses from its declared length before writing a
// byte, so a rate of output would mean nothing); the CRC baseline also reports the bytes/s it
// reads. `compressed_bytes` / `batch_bytes` say how much input each variant was handed.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "io/kafka/compression.h"
#include "io/kafka/crc32c.h"
#include "io/kafka/record_batch.h"
#include "tests/io/kafka_batch_encoder.h"

namespace sluice::bench {
namespace {

using kafka::Codec;
using kafka::test::TestCodec;

constexpr size_t kMiB = size_t{1} << 20;
constexpr size_t kBombZeros = size_t{1} << 30;

Codec wire_codec(TestCodec c) {
  switch (c) {
    case TestCodec::gzip: return Codec::gzip;
    case TestCodec::snappy:
    case TestCodec::snappy_xerial: return Codec::snappy;
    case TestCodec::lz4: return Codec::lz4;
    case TestCodec::zstd: return Codec::zstd;
    case TestCodec::none: break;
  }
  return Codec::none;
}

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

const std::string& bomb(TestCodec c) {
  static std::map<TestCodec, std::string> cache;
  auto it = cache.find(c);
  if (it == cache.end()) it = cache.emplace(c, kafka::test::zero_bomb(c, kBombZeros)).first;
  return it->second;
}

// A record set of one batch whose (compressed) records are the bomb.
const std::string& bomb_batch(TestCodec c) {
  static std::map<TestCodec, std::string> cache;
  auto it = cache.find(c);
  if (it == cache.end()) {
    kafka::test::TestBatch b;
    b.base_offset = 1000;
    b.codec = c;
    b.base_timestamp = b.max_timestamp = 1700000000000;
    b.payload = bomb(c);
    b.records_count = 1;
    it = cache.emplace(c, kafka::test::encode_batch(b)).first;
  }
  return it->second;
}

void BM_BombDecompress(benchmark::State& state, TestCodec c) {
  const std::string& in = bomb(c);
  kafka::Decompressor d;
  std::vector<uint8_t> out(kMiB);
  for (auto _ : state) {
    size_t len = 0;
    if (d.decompress(wire_codec(c), bytes(in), in.size(), out.data(), out.size(), len) !=
        kafka::DecompressStatus::too_large) {
      state.SkipWithError("not too_large");
      return;
    }
    benchmark::DoNotOptimize(len);
  }
  state.counters["compressed_bytes"] = double(in.size());
}

void BM_MiBDecompress(benchmark::State& state, TestCodec c) {
  const std::string in = kafka::test::compress(c, std::string(kMiB, '\0'));
  kafka::Decompressor d;
  std::vector<uint8_t> out(kMiB);
  for (auto _ : state) {
    size_t len = 0;
    if (d.decompress(wire_codec(c), bytes(in), in.size(), out.data(), out.size(), len) !=
            kafka::DecompressStatus::ok ||
        len != kMiB) {
      state.SkipWithError("not ok");
      return;
    }
    benchmark::DoNotOptimize(len);
  }
  state.counters["compressed_bytes"] = double(in.size());
}

void bomb_record_batch(benchmark::State& state, TestCodec c, bool verify_crc) {
  const std::string& set = bomb_batch(c);
  kafka::Decompressor d;
  std::vector<uint8_t> scratch(kMiB);
  kafka::BatchIteratorOptions options;
  options.batch_bytes_max = set.size();
  options.verify_crc = verify_crc;
  std::span<const uint8_t> span(bytes(set), set.size());
  for (auto _ : state) {
    kafka::BatchIterator it(span, options);
    kafka::Batch batch;
    kafka::RecordReader reader;
    if (it.next(batch) != kafka::BatchStatus::ok ||
        reader.open(batch, d, scratch.data(), scratch.size()) != kafka::BatchStatus::too_large) {
      state.SkipWithError("not too_large");
      return;
    }
  }
  state.counters["batch_bytes"] = double(set.size());
}

void BM_BombRecordBatch(benchmark::State& state, TestCodec c) { bomb_record_batch(state, c, true); }
void BM_BombRecordBatchNoCrc(benchmark::State& state, TestCodec c) {
  bomb_record_batch(state, c, false);
}

void BM_Crc32cBaseline(benchmark::State& state, TestCodec c) {
  const std::string& set = bomb_batch(c);
  // The batch CRC covers attributes (byte 21) to the end.
  const uint8_t* from = bytes(set) + 21;
  size_t n = set.size() - 21;
  for (auto _ : state) benchmark::DoNotOptimize(kafka::crc32c(0, from, n));
  state.SetBytesProcessed(int64_t(state.iterations() * n));
  state.counters["batch_bytes"] = double(set.size());
}

#define SLUICE_BOMB_BENCH(fn)                                                              \
  BENCHMARK_CAPTURE(fn, gzip, TestCodec::gzip)->Unit(benchmark::kMicrosecond);             \
  BENCHMARK_CAPTURE(fn, snappy, TestCodec::snappy)->Unit(benchmark::kMicrosecond);         \
  BENCHMARK_CAPTURE(fn, snappy_xerial, TestCodec::snappy_xerial)->Unit(benchmark::kMicrosecond); \
  BENCHMARK_CAPTURE(fn, lz4, TestCodec::lz4)->Unit(benchmark::kMicrosecond);               \
  BENCHMARK_CAPTURE(fn, zstd, TestCodec::zstd)->Unit(benchmark::kMicrosecond)

SLUICE_BOMB_BENCH(BM_BombDecompress);
SLUICE_BOMB_BENCH(BM_MiBDecompress);
SLUICE_BOMB_BENCH(BM_BombRecordBatch);
SLUICE_BOMB_BENCH(BM_BombRecordBatchNoCrc);
SLUICE_BOMB_BENCH(BM_Crc32cBaseline);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
