// Kafka record batches: any bytes, taken as a partition's record set from a Fetch response,
// are iterated batch by batch and record by record. Properties: no crash or sanitizer report;
// iteration ends (every step moves forward or stops); every batch lies inside the input and
// every record view inside the bytes being read (the input for uncompressed batches, the
// scratch buffer for compressed ones); a batch read to the end has exactly recordsCount
// records.
//
// Random bytes rarely carry a valid CRC-32C, so each input is read three ways: as is; with
// CRC checking off (Kafka's check.crcs=false); and as a copy whose batches get their CRC
// recomputed, which reaches the record decoder through the normal, checking path.
//
// Seed corpus (corpus/kafka_record_batch/): batches written by tests/io/kafka_batch_encoder.h
// for each codec (gzip, raw and xerial snappy, lz4, zstd), a control batch, a LogAppendTime
// batch, several batches in one set, a magic 1 message before a batch, and record sets
// captured from librdkafka 2.0.2 (the fixtures of tests/io/kafka_record_batch_test.cc).
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "io/kafka/crc32c.h"
#include "io/kafka/record_batch.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::kafka;

namespace {

// Small enough that decompression often hits too_large, large enough for the seeds.
constexpr size_t kScratchBytes = 256 * 1024;

bool inside(std::string_view v, const uint8_t* lo, const uint8_t* hi) {
  if (v.empty()) return true;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(v.data());
  return p >= lo && p + v.size() <= hi;
}

void read_records(const Batch& batch) {
  static Decompressor decompressor;
  static std::vector<uint8_t> scratch_buffer(kScratchBytes);
  RecordReader reader;
  if (reader.open(batch, decompressor, scratch_buffer.data(), scratch_buffer.size()) !=
      BatchStatus::ok) {
    return;
  }
  std::span<const uint8_t> bytes = reader.records_bytes();
  const uint8_t* lo = bytes.data();
  const uint8_t* hi = bytes.data() + bytes.size();
  // An empty batch is not decompressed (as in Kafka), so its view is the batch's own bytes.
  if (batch.codec() == Codec::none || batch.records_count == 0) {
    FUZZ_CHECK(lo == batch.records.data());
    FUZZ_CHECK(hi == batch.records.data() + batch.records.size());
  } else {
    FUZZ_CHECK(lo == scratch_buffer.data());
    FUZZ_CHECK(hi <= scratch_buffer.data() + scratch_buffer.size());
  }
  Record r;
  int64_t count = 0;
  while (reader.next(r)) {
    ++count;
    FUZZ_CHECK(count <= batch.records_count);
    FUZZ_CHECK(inside(r.key, lo, hi));
    FUZZ_CHECK(inside(r.value, lo, hi));
    FUZZ_CHECK(!r.key_null || r.key.empty());
    FUZZ_CHECK(!r.value_null || r.value.empty());
    FUZZ_CHECK(r.header_bytes.empty() ||
               (r.header_bytes.data() >= lo && r.header_bytes.data() + r.header_bytes.size() <= hi));
    if (batch.log_append_time()) FUZZ_CHECK(r.timestamp_ms == batch.max_timestamp_ms);
    HeaderIterator headers = r.headers();
    Header h;
    uint32_t header_count = 0;
    while (headers.next(h)) {
      ++header_count;
      FUZZ_CHECK(inside(h.key, lo, hi));
      FUZZ_CHECK(inside(h.value, lo, hi));
    }
    // The reader validated every header, so re-reading them finds all of them.
    FUZZ_CHECK(header_count == r.header_count);
    // Looked up by name (the last of each), as the Kafka source does: views
    // inside the record; null ones found; none found without headers.
    static constexpr std::string_view kNames[] = {"", "a", "source", "version"};
    std::string_view values[4];
    const LastHeaders last = last_headers(r, kNames, values);
    FUZZ_CHECK((last.null & ~last.found) == 0);
    FUZZ_CHECK(r.header_count != 0 || last.found == 0);
    for (size_t i = 0; i < 4; ++i) {
      if ((last.found >> i & 1) && !(last.null >> i & 1)) FUZZ_CHECK(inside(values[i], lo, hi));
    }
  }
  FUZZ_CHECK(reader.status() == BatchStatus::end || reader.status() == BatchStatus::corrupt);
  if (reader.status() == BatchStatus::end) FUZZ_CHECK(count == batch.records_count);
}

void read_set(std::span<const uint8_t> set, bool verify_crc) {
  BatchIteratorOptions options;
  options.verify_crc = verify_crc;
  BatchIterator it(set, options);
  Batch batch;
  for (;;) {
    const size_t before = it.position();
    BatchStatus s = it.next(batch);
    FUZZ_CHECK(it.position() <= set.size());
    if (s == BatchStatus::ok) {
      FUZZ_CHECK(it.position() == before + batch.size_bytes());
      FUZZ_CHECK(batch.magic == 2);
      FUZZ_CHECK(batch.records_count >= 0);
      FUZZ_CHECK(batch.last_offset >= batch.base_offset);
      FUZZ_CHECK(batch.records.data() >= set.data());
      FUZZ_CHECK(batch.records.data() + batch.records.size() == set.data() + it.position());
      read_records(batch);
      continue;
    }
    if (s == BatchStatus::unsupported_magic) {
      FUZZ_CHECK(it.position() > before);
      continue;
    }
    if (s == BatchStatus::corrupt || s == BatchStatus::crc_mismatch) {
      if (it.skip()) {
        FUZZ_CHECK(it.position() > before);
        FUZZ_CHECK(it.position() <= set.size());
        continue;
      }
      return;
    }
    FUZZ_CHECK(s == BatchStatus::end || s == BatchStatus::partial);
    FUZZ_CHECK(it.position() == before);
    return;
  }
}

uint32_t load_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

// Rewrites the CRC of every batch whose length field stays inside the buffer.
void recompute_crcs(std::vector<uint8_t>& set) {
  size_t pos = 0;
  while (set.size() - pos >= kBatchHeaderBytes) {
    const int32_t length = static_cast<int32_t>(load_be32(set.data() + pos + 8));
    if (length < kBatchLengthMin || size_t(length) > set.size() - pos - kLogOverheadBytes) return;
    const size_t total = kLogOverheadBytes + size_t(length);
    uint32_t crc = crc32c(0, set.data() + pos + 21, total - 21);
    for (int i = 0; i < 4; ++i) set[pos + 17 + i] = static_cast<uint8_t>(crc >> (8 * (3 - i)));
    pos += total;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> input(data, size);
  read_set(input, /*verify_crc=*/true);
  read_set(input, /*verify_crc=*/false);
  std::vector<uint8_t> fixed(data, data + size);
  recompute_crcs(fixed);
  read_set(fixed, /*verify_crc=*/true);
  return 0;
}
