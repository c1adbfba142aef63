// Kafka record batch decoding: a partition's record set (what a Fetch response carries) ->
// records.
//
// Workload: 16 batches of 1000 records, the size a producer with linger/batching sends for
// small JSON events. Values are sales lines from the engine's generator (112 bytes on average,
// the JSON the source decodes next), keys "product-<id>" (9-12 bytes), no headers, CreateTime
// deltas of a millisecond apart. 2.0 MB uncompressed: past L2, inside L3, like a fetch buffer
// being drained. Batches are built before timing by the test encoder
// (tests/io/kafka_batch_encoder.h), compressed with each codec library directly.
//
//   BM_Decode/<codec>   BatchIterator::next (length checks, CRC-32C over the batch) +
//                       RecordReader::open (decompression into a reused 16 MiB scratch) +
//                       RecordReader::next for every record, touching key and value (sizes,
//                       first and last byte)
//   BM_DecodeNoCrc/none the same, uncompressed, with CRC checking off: the CRC's share
//   BM_MemcpyBaseline   std::memcpy of the uncompressed record set into a buffer: the floor
//                       of any decoder that must see every byte once
//
// Bytes/s count the UNCOMPRESSED record-set bytes in every variant, so the rows compare;
// `records` is records per second.
#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_data.h"
#include "io/kafka/record_batch.h"
#include "tests/io/kafka_batch_encoder.h"

namespace sluice::bench {
namespace {

using kafka::test::TestBatch;
using kafka::test::TestCodec;
using kafka::test::TestRecord;

constexpr int kBatches = 16;
constexpr int kRecordsPerBatch = 1000;

std::vector<TestBatch> workload_batches(TestCodec codec) {
  static const NdjsonText text = sales_ndjson(uint64_t{kBatches} * kRecordsPerBatch);
  std::vector<TestBatch> batches;
  std::string_view all(text.data(), text.size);
  uint64_t state = 7;
  int64_t offset = 0;
  for (int b = 0; b < kBatches; ++b) {
    TestBatch batch;
    batch.base_offset = offset;
    batch.codec = codec;
    batch.base_timestamp = 1711616400000;
    batch.max_timestamp = batch.base_timestamp + kRecordsPerBatch - 1;
    batch.records.reserve(kRecordsPerBatch);
    for (int i = 0; i < kRecordsPerBatch; ++i) {
      size_t eol = all.find('\n');
      std::string value(all.substr(0, eol));
      all.remove_prefix(eol + 1);
      std::string key = "product-" + std::to_string(splitmix64(state) % 1000);
      batch.records.push_back({key, value, i, i, {}});
    }
    offset += kRecordsPerBatch;
    batches.push_back(std::move(batch));
  }
  return batches;
}

struct RecordSet {
  std::string bytes;
  size_t uncompressed_bytes = 0;
};

const RecordSet& record_set(TestCodec codec) {
  static RecordSet sets[6];
  RecordSet& s = sets[static_cast<int>(codec)];
  if (s.bytes.empty()) {
    for (const TestBatch& b : workload_batches(codec)) s.bytes += kafka::test::encode_batch(b);
    for (const TestBatch& b : workload_batches(TestCodec::none)) {
      s.uncompressed_bytes += kafka::test::encode_batch(b).size();
    }
  }
  return s;
}

void decode(benchmark::State& state, TestCodec codec, bool verify_crc) {
  const RecordSet& set = record_set(codec);
  kafka::Decompressor decompressor;
  std::vector<uint8_t> scratch(kafka::kRecordsScratchBytesDefault);
  kafka::BatchIteratorOptions options;
  options.verify_crc = verify_crc;
  std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(set.bytes.data()),
                                 set.bytes.size());
  uint64_t records = 0, touched = 0;
  for (auto _ : state) {
    kafka::BatchIterator it(bytes, options);
    kafka::Batch batch;
    while (it.next(batch) == kafka::BatchStatus::ok) {
      kafka::RecordReader reader;
      if (reader.open(batch, decompressor, scratch.data(), scratch.size()) !=
          kafka::BatchStatus::ok) {
        state.SkipWithError("open failed");
        return;
      }
      kafka::Record r;
      while (reader.next(r)) {
        ++records;
        touched += r.key.size() + r.value.size() + uint8_t(r.value.front()) +
                   uint8_t(r.value.back()) + uint8_t(r.key.back());
      }
      if (reader.status() != kafka::BatchStatus::end) {
        state.SkipWithError("records failed");
        return;
      }
    }
  }
  benchmark::DoNotOptimize(touched);
  state.SetBytesProcessed(int64_t(state.iterations() * set.uncompressed_bytes));
  state.counters["records"] = benchmark::Counter(double(records), benchmark::Counter::kIsRate);
  state.counters["wire_bytes"] = double(set.bytes.size());
}

void BM_Decode(benchmark::State& state, TestCodec codec) { decode(state, codec, true); }
void BM_DecodeNoCrc(benchmark::State& state, TestCodec codec) { decode(state, codec, false); }

void BM_MemcpyBaseline(benchmark::State& state) {
  const RecordSet& set = record_set(TestCodec::none);
  std::vector<char> out(set.bytes.size());
  for (auto _ : state) {
    std::memcpy(out.data(), set.bytes.data(), set.bytes.size());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(out.data());
  state.SetBytesProcessed(int64_t(state.iterations() * set.uncompressed_bytes));
  state.counters["records"] = benchmark::Counter(
      double(state.iterations() * uint64_t{kBatches} * kRecordsPerBatch), benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_Decode, none, TestCodec::none);
BENCHMARK_CAPTURE(BM_Decode, lz4, TestCodec::lz4);
BENCHMARK_CAPTURE(BM_Decode, zstd, TestCodec::zstd);
BENCHMARK_CAPTURE(BM_Decode, snappy, TestCodec::snappy);
BENCHMARK_CAPTURE(BM_Decode, snappy_xerial, TestCodec::snappy_xerial);
BENCHMARK_CAPTURE(BM_Decode, gzip, TestCodec::gzip);
BENCHMARK_CAPTURE(BM_DecodeNoCrc, none, TestCodec::none);
BENCHMARK(BM_MemcpyBaseline);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
