// Failure paths of record-batch decoding: damaged and hostile bytes give a status, never a
// crash, an out-of-bounds view or a read past the record set.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "io/kafka/record_batch.h"
#include "tests/io/kafka_batch_encoder.h"

namespace sluice::kafka {

static std::ostream& operator<<(std::ostream& os, BatchStatus s) { return os << to_string(s); }

namespace {

using namespace test;

constexpr size_t kMiB = size_t{1} << 20;

std::span<const uint8_t> span_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TestBatch sample_batch(int64_t base_offset = 1000, TestCodec codec = TestCodec::none) {
  TestBatch b;
  b.base_offset = base_offset;
  b.codec = codec;
  b.base_timestamp = b.max_timestamp = 1700000000000;
  b.records = {
      {"alpha", "one", 0, 0, {{"h", "x"}}},
      {std::nullopt, "two", 1, 1, {}},
      {"gamma", std::nullopt, 2, 2, {{"k", std::nullopt}}},
  };
  return b;
}

// The outcome of reading one record set to the end: the first batch status that is not ok,
// and for each ok batch the record reader's open status, records read and final status.
struct Outcome {
  BatchStatus batch = BatchStatus::end;
  BatchStatus open = BatchStatus::ok;
  BatchStatus records = BatchStatus::end;
  int record_count = 0;
  std::string detail;
};

Outcome read_all(const std::string& set, BatchIteratorOptions options = {},
                 size_t scratch_cap = 4 * kMiB) {
  static Decompressor decompressor;
  static std::vector<uint8_t> scratch(16 * kMiB);
  Outcome o;
  BatchIterator it(span_of(set), options);
  Batch batch;
  while ((o.batch = it.next(batch)) == BatchStatus::ok) {
    RecordReader reader;
    o.open = reader.open(batch, decompressor, scratch.data(), scratch_cap);
    if (o.open != BatchStatus::ok) {
      o.detail = reader.detail();
      return o;
    }
    Record r;
    while (reader.next(r)) ++o.record_count;
    o.records = reader.status();
    if (o.records != BatchStatus::end) {
      o.detail = reader.detail();
      return o;
    }
  }
  o.detail = it.detail();
  return o;
}

// Builds a batch around hand-written record bytes (CRC computed by the encoder).
std::string batch_with_payload(const std::string& records, int32_t records_count,
                               TestCodec codec = TestCodec::none) {
  TestBatch b = sample_batch();
  b.payload = records;
  b.records_count = records_count;
  b.codec = codec;
  return encode_batch(b);
}

// A record's bytes from hand-picked pieces: `body` after the length varint, whose value is
// `length` (default: the body's size).
std::string raw_record(const std::string& body, std::optional<int64_t> length = std::nullopt) {
  std::string out;
  put_varint(out, length ? *length : static_cast<int64_t>(body.size()));
  return out + body;
}

// attributes, timestampDelta 0, offsetDelta 0.
std::string record_prefix() { return std::string("\x00\x00\x00", 3); }

void set_be32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * (3 - i)));
}

// ---- Batch framing --------------------------------------------------------------------------

TEST(KafkaRecordBatchError, CrcFlipAtEveryCoveredByte) {
  const std::string good = encode_batch(sample_batch(1000));
  const std::string next = encode_batch(sample_batch(1003));
  // The CRC covers attributes (byte 21) to the end; the CRC field itself is 17..20.
  for (size_t i = 17; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      std::string set = bad + next;
      BatchIterator it(span_of(set));
      Batch batch;
      ASSERT_EQ(it.next(batch), BatchStatus::crc_mismatch) << "byte " << i << " bit " << bit;
      // The caller can still report the offsets and skip to the next batch.
      EXPECT_EQ(batch.base_offset, 1000);
      if (i < 23 || i >= 27) {  // lastOffsetDelta intact
        EXPECT_EQ(batch.last_offset, 1002);
      }
      EXPECT_EQ(it.next(batch), BatchStatus::crc_mismatch);       // it stays until skip()
      ASSERT_TRUE(it.skip());
      EXPECT_FALSE(it.skip());
      ASSERT_EQ(it.next(batch), BatchStatus::ok);
      EXPECT_EQ(batch.base_offset, 1003);
      EXPECT_EQ(it.next(batch), BatchStatus::end);
    }
  }
}

// Bytes before the CRC'd range: baseOffset and partitionLeaderEpoch are not covered (Kafka
// rewrites them without recomputing), length and magic are checked by their own rules.
TEST(KafkaRecordBatchError, FlipsOutsideTheCrcRange) {
  const std::string good = encode_batch(sample_batch(1000));
  for (size_t i = 0; i < 17; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      Outcome o = read_all(bad);
      SCOPED_TRACE(::testing::Message() << "byte " << i << " bit " << bit << ": " << o.batch
                                        << " " << o.detail);
      if (i < 8) {  // baseOffset: still a good batch, unless now negative
        EXPECT_TRUE(o.batch == BatchStatus::end || (i == 0 && bit == 7 &&
                                                    o.batch == BatchStatus::corrupt));
      } else if (i < 12) {  // batchLength: longer -> partial/too long; shorter -> CRC/short
        EXPECT_NE(o.batch, BatchStatus::end);
        EXPECT_NE(o.batch, BatchStatus::ok);
      } else if (i < 16) {  // partitionLeaderEpoch: not covered
        EXPECT_EQ(o.batch, BatchStatus::end);
        EXPECT_EQ(o.record_count, 3);
      } else {  // magic 2 -> 3, 0, 6, 10, ...: legacy sizes or unknown
        EXPECT_TRUE(o.batch == BatchStatus::corrupt || o.batch == BatchStatus::unsupported_magic);
      }
    }
  }
}

TEST(KafkaRecordBatchError, VerifyCrcOffReachesTheRecords) {
  std::string bad = encode_batch(sample_batch());
  bad[bad.size() - 1] = static_cast<char>(bad.back() ^ 0x01);  // inside the last header value
  EXPECT_EQ(read_all(bad).batch, BatchStatus::crc_mismatch);
  BatchIteratorOptions no_crc;
  no_crc.verify_crc = false;
  Outcome o = read_all(bad, no_crc);
  EXPECT_EQ(o.batch, BatchStatus::end);
  EXPECT_EQ(o.record_count, 3);
}

TEST(KafkaRecordBatchError, HostileBatchLengths) {
  const std::string good = encode_batch(sample_batch());
  struct Case {
    int32_t length;
    BatchStatus want;
    bool skippable;
  } cases[] = {
      {-1, BatchStatus::corrupt, false},
      {INT32_MIN, BatchStatus::corrupt, false},
      {INT32_MAX, BatchStatus::corrupt, false},  // above batch_bytes_max
      {0, BatchStatus::corrupt, false},
      {13, BatchStatus::corrupt, false},
      {48, BatchStatus::corrupt, false},  // one below the v2 header
      {49, BatchStatus::crc_mismatch, true},  // a header-only batch: the CRC now covers less
      {static_cast<int32_t>(good.size() - 12 - 1), BatchStatus::crc_mismatch, true},
      {static_cast<int32_t>(good.size() - 12 + 1), BatchStatus::partial, false},
      {static_cast<int32_t>(kBatchBytesMaxDefault - 12), BatchStatus::partial, false},
      {static_cast<int32_t>(kBatchBytesMaxDefault - 11), BatchStatus::corrupt, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.length);
    std::string bad = good;
    set_be32(bad, 8, static_cast<uint32_t>(c.length));
    BatchIterator it(span_of(bad));
    Batch batch;
    EXPECT_EQ(it.next(batch), c.want) << it.detail();
    EXPECT_EQ(batch.base_offset, 1000);
    EXPECT_EQ(it.skip(), c.skippable);
  }
  // A caller-chosen bound.
  BatchIteratorOptions small;
  small.batch_bytes_max = good.size() - 1;
  BatchIterator it(span_of(good), small);
  Batch batch;
  EXPECT_EQ(it.next(batch), BatchStatus::corrupt);
}

TEST(KafkaRecordBatchError, ImpossibleHeaderFieldsAreCorruptButSkippable) {
  const std::string next = encode_batch(sample_batch(2000));
  struct Case {
    const char* name;
    void (*edit)(TestBatch&);
  } cases[] = {
      {"negative records count", [](TestBatch& b) { b.records_count = -1; }},
      {"negative last offset delta", [](TestBatch& b) { b.last_offset_delta = -5; }},
      {"negative base offset", [](TestBatch& b) { b.base_offset = -7; }},
      {"last offset overflows",
       [](TestBatch& b) {
         b.base_offset = INT64_MAX - 1;
         b.last_offset_delta = 2;
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TestBatch b = sample_batch();
    c.edit(b);
    std::string set = encode_batch(b) + next;
    BatchIterator it(span_of(set));
    Batch batch;
    EXPECT_EQ(it.next(batch), BatchStatus::corrupt);
    EXPECT_STREQ(it.detail(), c.name);
    ASSERT_TRUE(it.skip());
    EXPECT_EQ(it.next(batch), BatchStatus::ok);
    EXPECT_EQ(batch.base_offset, 2000);
  }
}

TEST(KafkaRecordBatchError, UnknownMagicIsCorruptButSkippable) {
  std::string bad = encode_batch(sample_batch());
  bad[16] = 3;
  std::string set = bad + encode_batch(sample_batch(2000));
  BatchIterator it(span_of(set));
  Batch batch;
  EXPECT_EQ(it.next(batch), BatchStatus::corrupt);
  EXPECT_EQ(batch.magic, 3);
  ASSERT_TRUE(it.skip());
  EXPECT_EQ(it.next(batch), BatchStatus::ok);
}

TEST(KafkaRecordBatchError, LegacyMessageShorterThanItsHeader) {
  std::string legacy;
  put_i64(legacy, 0);
  put_i32(legacy, 13);  // magic 0 needs 14
  put_i32(legacy, 0);
  put_i8(legacy, 0);
  legacy += std::string(8, '\0');
  BatchIterator it(span_of(legacy));
  Batch batch;
  EXPECT_EQ(it.next(batch), BatchStatus::corrupt);
  EXPECT_FALSE(it.skip());
}

TEST(KafkaRecordBatchError, TinyRecordSets) {
  for (size_t n = 1; n < 17; ++n) {
    std::string set = encode_batch(sample_batch()).substr(0, n);
    EXPECT_EQ(read_all(set).batch, BatchStatus::partial) << n;
  }
  // A length field below any header, seen before the magic byte.
  std::string tiny(12, '\0');
  tiny[11] = 5;
  EXPECT_EQ(read_all(tiny).batch, BatchStatus::corrupt);
}

// ---- Records -------------------------------------------------------------------------------

struct RecordCase {
  const char* name;
  std::string records;
  int32_t count;
  const char* detail;  // RecordReader::detail()
  int good_before = 0;
};

std::vector<RecordCase> malformed_records() {
  const std::string good = encode_record({"k", "v", 0, 0, {}});  // 9 bytes
  // RecordReader::open refuses a count the bytes cannot hold at 7 bytes a record before any
  // record is read; padding after a malformed record keeps these cases past that check.
  const std::string pad(8, '\0');
  std::vector<RecordCase> c;
  c.push_back({"record length beyond the batch", raw_record(record_prefix() + "\x02k\x02v\x00", 50),
               1, "record length beyond the batch"});
  c.push_back({"negative record length", raw_record("", -2) + pad, 1, "negative record length"});
  c.push_back({"zero record length", raw_record("") + pad, 1, "record ends before its attributes"});
  c.push_back({"key length beyond the record",
               raw_record(record_prefix() + std::string("\x14k\x02v\x00", 5)), 1,
               "bad key length"});
  c.push_back({"key length -2", raw_record(record_prefix() + std::string("\x03\x02v\x00", 4)), 1,
               "bad key length"});
  c.push_back({"value length beyond the record",
               raw_record(record_prefix() + std::string("\x02k\x7fv\x00", 5)), 1,
               "bad value length"});
  c.push_back({"value length -3", raw_record(record_prefix() + std::string("\x02k\x05\x00", 4)),
               1, "bad value length"});
  c.push_back({"negative header count",
               raw_record(record_prefix() + std::string("\x02k\x02v\x01", 5)), 1,
               "negative header count"});
  c.push_back({"header count larger than the record",
               raw_record(record_prefix() + std::string("\x02k\x02v\x08\x02h\x01", 8)), 1,
               "header count larger than the record can hold"});
  c.push_back({"null header key",
               raw_record(record_prefix() + std::string("\x02k\x02v\x02\x01\x01", 7)), 1,
               "bad header key length"});
  c.push_back({"header value beyond the record",
               raw_record(record_prefix() + std::string("\x02k\x02v\x02\x02h\x10", 8)), 1,
               "bad header value length"});
  c.push_back({"fields shorter than the record length",
               raw_record(record_prefix() + std::string("\x02k\x02v\x00\x00", 6)), 1,
               "record fields do not fill its length"});
  // Varints: 11 continuation bytes; 6 bytes for an int32; bits past 32 in the 5th byte.
  c.push_back({"record length varint with 11 continuation bytes",
               std::string(11, '\x80') + "\x01" + record_prefix(), 1,
               "records end before the records count (or a bad record length varint)"});
  c.push_back({"record length varint of 6 bytes", std::string("\x80\x80\x80\x80\x80\x00", 6) + pad,
               1, "records end before the records count (or a bad record length varint)"});
  c.push_back({"record length varint overflowing 32 bits",
               std::string("\x80\x80\x80\x80\x10", 5) + std::string(10, '\0'), 1,
               "records end before the records count (or a bad record length varint)"});
  c.push_back({"timestamp delta varlong with 11 bytes",
               raw_record(std::string("\x00", 1) + std::string(10, '\xff') + "\x01" +
                          std::string("\x00\x02k\x02v\x00", 6)),
               1, "bad timestamp delta"});
  c.push_back({"timestamp delta varlong overflowing 64 bits",
               raw_record(std::string("\x00", 1) + std::string(9, '\xff') + "\x02" +
                          std::string("\x00\x02k\x02v\x00", 6)),
               1, "bad timestamp delta"});
  c.push_back({"offset delta varint of 6 bytes",
               raw_record(std::string("\x00\x00", 2) + std::string(5, '\x80') + "\x00" +
                          std::string("\x02k\x02v\x00", 5)),
               1, "bad offset delta"});
  c.push_back({"varint cut by the record end", raw_record(std::string("\x00\x80", 2)) + pad, 1,
               "bad timestamp delta"});
  // Counts that do not match the records.
  c.push_back({"records count larger than actual", good + good + good + good, 5,
               "records end before the records count (or a bad record length varint)", 4});
  c.push_back({"records count smaller than actual", good + good + good, 2,
               "bytes left after the last record (records count too small)", 2});
  c.push_back({"records count zero with records", good, 0,
               "bytes left after the last record (records count too small)"});
  c.push_back({"good records then a zero length", good + good + good + good + pad, 5,
               "record ends before its attributes", 4});
  return c;
}

TEST(KafkaRecordBatchError, MalformedRecordsAreCorrupt) {
  for (const RecordCase& c : malformed_records()) {
    SCOPED_TRACE(c.name);
    // Uncompressed, and the same record bytes inside a zstd batch.
    for (TestCodec codec : {TestCodec::none, TestCodec::zstd}) {
      Outcome o = read_all(batch_with_payload(compress(codec, c.records), c.count, codec));
      EXPECT_EQ(o.batch, BatchStatus::ok);
      EXPECT_EQ(o.open, BatchStatus::ok) << o.detail;
      EXPECT_EQ(o.records, BatchStatus::corrupt);
      EXPECT_EQ(o.detail, c.detail);
      EXPECT_EQ(o.record_count, c.good_before);
    }
  }
}

TEST(KafkaRecordBatchError, RecordsCountBeyondWhatTheBytesHold) {
  const std::string good = encode_record({"k", "v", 0, 0, {}});
  for (int32_t count : {INT32_MAX, 1 << 20, 3}) {
    Outcome o = read_all(batch_with_payload(good + good, count));
    EXPECT_EQ(o.open, BatchStatus::corrupt) << count;
    EXPECT_EQ(o.detail, "records count larger than the records bytes can hold") << count;
  }
}

TEST(KafkaRecordBatchError, OffsetAndTimestampOverflow) {
  {
    TestBatch b = sample_batch();
    b.base_offset = INT64_MAX - 5;
    b.last_offset_delta = 0;
    b.records = {{"k", "v", 0, 10, {}}};
    Outcome o = read_all(encode_batch(b));
    EXPECT_EQ(o.records, BatchStatus::corrupt);
    EXPECT_EQ(o.detail, "record offset overflows");
  }
  {
    TestBatch b = sample_batch();
    b.base_timestamp = INT64_MAX - 1;
    b.records = {{"k", "v", 5, 0, {}}};
    Outcome o = read_all(encode_batch(b));
    EXPECT_EQ(o.records, BatchStatus::corrupt);
    EXPECT_EQ(o.detail, "record timestamp overflows");
    // The same with LogAppendTime: the delta is not used.
    b.log_append_time = true;
    EXPECT_EQ(read_all(encode_batch(b)).records, BatchStatus::end);
  }
}

TEST(KafkaRecordBatchError, UnknownCodecs) {
  for (uint16_t codec : {5, 6, 7}) {
    TestBatch b = sample_batch();
    b.extra_attributes = codec;
    Outcome o = read_all(encode_batch(b));
    EXPECT_EQ(o.open, BatchStatus::unsupported_codec) << codec;
  }
}

TEST(KafkaRecordBatchError, CompressedGarbage) {
  const std::string garbage = "this is not compressed at all, in any codec";
  for (TestCodec codec : {TestCodec::gzip, TestCodec::snappy, TestCodec::lz4, TestCodec::zstd}) {
    Outcome o = read_all(batch_with_payload(garbage, 1, codec));
    EXPECT_EQ(o.open, BatchStatus::corrupt) << static_cast<int>(codec);
    EXPECT_EQ(o.detail, "compressed records do not decompress");
  }
}

// 1 GiB of zeros as a batch's compressed records against a 1 MiB scratch buffer: refused
// once the scratch is full. The time this takes (dominated by the batch CRC over up to 50 MB of
// compressed input; decompression stops at 1 MiB) is measured by
// bench/decompression_bomb_bench.cc, not asserted here.
TEST(KafkaRecordBatchError, DecompressionBombsStopAtTheScratchBound) {
  for (TestCodec codec : {TestCodec::gzip, TestCodec::snappy, TestCodec::snappy_xerial,
                          TestCodec::lz4, TestCodec::zstd}) {
    SCOPED_TRACE(static_cast<int>(codec));
    std::string set = batch_with_payload(zero_bomb(codec, size_t{1} << 30), 1, codec);
    Outcome o = read_all(set, {.batch_bytes_max = set.size()}, kMiB);
    EXPECT_EQ(o.open, BatchStatus::too_large);
    EXPECT_EQ(o.detail, "decompressed records exceed the scratch buffer");
    EXPECT_EQ(o.record_count, 0);
  }
}

// Random edits of valid batches (CRC recomputed so the records are reached): whatever the
// outcome, record views stay inside the record set or the scratch buffer.
TEST(KafkaRecordBatchError, RandomEditsNeverEscapeTheBuffers) {
  static Decompressor decompressor;
  std::vector<uint8_t> scratch(64 * 1024);
  std::mt19937_64 rng(99);
  int outcomes[8] = {};
  for (TestCodec codec : {TestCodec::none, TestCodec::gzip, TestCodec::snappy,
                          TestCodec::snappy_xerial, TestCodec::lz4, TestCodec::zstd}) {
    const std::string good = encode_batch(sample_batch(1000, codec));
    for (int round = 0; round < 3000; ++round) {
      std::string bad = good;
      int edits = 1 + int(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        size_t at = 21 + rng() % (bad.size() - 21);
        switch (rng() % 3) {
          case 0: bad[at] = static_cast<char>(rng()); break;
          case 1: bad[at] = static_cast<char>(bad[at] ^ (1 << (rng() % 8))); break;
          case 2: bad.erase(at, 1 + rng() % 4); break;
        }
      }
      if (bad.size() >= 12) set_be32(bad, 8, static_cast<uint32_t>(bad.size() - 12));
      if (bad.size() >= 21) fix_crc(bad);
      BatchIterator it(span_of(bad));
      Batch batch;
      BatchStatus s = it.next(batch);
      ++outcomes[static_cast<int>(s)];
      if (s != BatchStatus::ok) continue;
      RecordReader reader;
      if (reader.open(batch, decompressor, scratch.data(), scratch.size()) != BatchStatus::ok) {
        continue;
      }
      const uint8_t* lo = reinterpret_cast<const uint8_t*>(bad.data());
      const uint8_t* hi = lo + bad.size();
      if (batch.codec() != Codec::none) {
        lo = scratch.data();
        hi = lo + scratch.size();
      }
      Record r;
      int n = 0;
      while (reader.next(r)) {
        ++n;
        auto inside = [&](std::string_view v) {
          const uint8_t* p = reinterpret_cast<const uint8_t*>(v.data());
          return v.empty() || (p >= lo && p + v.size() <= hi);
        };
        ASSERT_TRUE(inside(r.key));
        ASSERT_TRUE(inside(r.value));
        HeaderIterator hit = r.headers();
        Header h;
        uint32_t headers = 0;
        while (hit.next(h)) {
          ++headers;
          ASSERT_TRUE(inside(h.key));
          ASSERT_TRUE(inside(h.value));
        }
        ASSERT_EQ(headers, r.header_count);
      }
      ASSERT_LE(n, batch.records_count);
    }
  }
  // The edits reach both outcomes, so the loop above exercised the record decoder.
  EXPECT_GT(outcomes[static_cast<int>(BatchStatus::ok)], 1000);
}

}  // namespace
}  // namespace sluice::kafka
