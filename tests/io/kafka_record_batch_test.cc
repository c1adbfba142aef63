#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "io/kafka/record_batch.h"
#include "tests/io/kafka_batch_encoder.h"

namespace sluice::kafka {

static std::ostream& operator<<(std::ostream& os, BatchStatus s) { return os << to_string(s); }

namespace {

using namespace test;

constexpr size_t kScratchBytes = 4 << 20;

std::span<const uint8_t> span_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string from_hex(const char* hex) {
  std::string out;
  for (size_t i = 0; hex[i] != '\0' && hex[i + 1] != '\0'; i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  }
  return out;
}

// A record as the test expects it, owning its bytes.
struct Expected {
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<TestHeader> headers;
};

bool same_headers(const std::vector<TestHeader>& a, const std::vector<TestHeader>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].key != b[i].key || a[i].value != b[i].value) return false;
  }
  return true;
}

std::ostream& operator<<(std::ostream& os, const Expected& e) {
  os << "{offset " << e.offset << ", ts " << e.timestamp_ms << ", key "
     << (e.key ? "\"" + *e.key + "\"" : "null") << ", value "
     << (e.value ? "\"" + e.value->substr(0, 40) + "\"" : "null") << ", headers [";
  for (const TestHeader& h : e.headers) {
    os << h.key << "=" << (h.value ? *h.value : "null") << " ";
  }
  return os << "]}";
}

bool operator==(const Expected& a, const Expected& b) {
  return a.offset == b.offset && a.timestamp_ms == b.timestamp_ms && a.key == b.key &&
         a.value == b.value && same_headers(a.headers, b.headers);
}

Expected own(const Record& r) {
  Expected e;
  e.offset = r.offset;
  e.timestamp_ms = r.timestamp_ms;
  if (!r.key_null) e.key = std::string(r.key);
  if (!r.value_null) e.value = std::string(r.value);
  HeaderIterator it = r.headers();
  Header h;
  while (it.next(h)) {
    TestHeader th{std::string(h.key), std::nullopt};
    if (!h.value_null) th.value = std::string(h.value);
    e.headers.push_back(th);
  }
  EXPECT_EQ(e.headers.size(), r.header_count);
  return e;
}

// What the spec says the decoder must produce for `b`'s records (CreateTime: baseTimestamp +
// delta; LogAppendTime: maxTimestamp; offset: baseOffset + delta).
std::vector<Expected> expected_records(const TestBatch& b) {
  std::vector<Expected> out;
  for (const TestRecord& r : b.records) {
    out.push_back({b.base_offset + r.offset_delta,
                   b.log_append_time ? b.max_timestamp : b.base_timestamp + r.timestamp_delta,
                   r.key, r.value, r.headers});
  }
  return out;
}

struct Decoded {
  Batch batch;
  std::vector<Expected> records;
  BatchStatus records_status = BatchStatus::end;
};

// Iterates every batch and record of a record set; stops at the first non-ok batch status,
// which it returns.
BatchStatus decode_all(const std::string& record_set, std::vector<Decoded>& out,
                       BatchIteratorOptions options = {}) {
  static Decompressor decompressor;
  static std::vector<uint8_t> scratch(kScratchBytes);
  BatchIterator it(span_of(record_set), options);
  for (;;) {
    Decoded d;
    BatchStatus s = it.next(d.batch);
    if (s != BatchStatus::ok) return s;
    RecordReader reader;
    BatchStatus open = reader.open(d.batch, decompressor, scratch.data(), scratch.size());
    EXPECT_EQ(open, BatchStatus::ok) << reader.detail();
    Record r;
    while (reader.next(r)) d.records.push_back(own(r));
    d.records_status = reader.status();
    EXPECT_EQ(reader.status(), BatchStatus::end) << reader.detail();
    out.push_back(std::move(d));
  }
}

std::vector<TestRecord> assorted_records() {
  std::vector<TestRecord> r(8);
  r[0] = {"key-0", "{\"v\":0}", 0, 0, {}};
  r[1] = {std::nullopt, "value with null key", 5, 1, {{"trace", "abc"}}};
  r[2] = {"tombstone", std::nullopt, -3, 2, {}};  // a negative delta: CreateTime need not be sorted
  r[3] = {"", "", 100000, 3, {{"", ""}, {"null-value", std::nullopt}}};  // empty is not null
  r[4] = {std::string(300, 'k'), std::string(20000, 'v'), 1, 4, {}};     // multi-byte varints
  r[5] = {"k5", "v5", 70000000000LL, 200, {{"a", "1"}, {"b", "2"}, {"c", std::string(200, 'c')}}};
  r[6] = {std::nullopt, std::nullopt, -1000000, 201, {}};
  r[7] = {"last", "x", 2, 1000, {}};
  return r;
}

TestBatch assorted_batch(TestCodec codec) {
  TestBatch b;
  b.base_offset = 1234567;
  b.partition_leader_epoch = 42;
  b.codec = codec;
  b.base_timestamp = 1700000000123;
  b.max_timestamp = 1700070000123;
  b.producer_id = 9876543210;
  b.producer_epoch = 3;
  b.base_sequence = 77;
  b.records = assorted_records();
  return b;
}

// The test encoder against the format description, byte for byte: one record, key "k",
// value "vv", no headers, written out by hand.
TEST(KafkaRecordBatch, EncoderMatchesTheSpecByteForByte) {
  const uint8_t hand[] = {
      0, 0, 0, 0, 0, 0, 0, 100,                 // baseOffset 100
      0, 0, 0, 59,                              // batchLength: 49 header bytes + 10 record bytes
      0, 0, 0, 7,                               // partitionLeaderEpoch
      2,                                        // magic
      0, 0, 0, 0,                               // crc (filled below)
      0, 0,                                     // attributes
      0, 0, 0, 0,                               // lastOffsetDelta
      0, 0, 0, 0, 0, 0, 0x03, 0xE8,             // baseTimestamp 1000
      0, 0, 0, 0, 0, 0, 0x03, 0xE8,             // maxTimestamp 1000
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // producerId -1
      0xFF, 0xFF,                               // producerEpoch -1
      0xFF, 0xFF, 0xFF, 0xFF,                   // baseSequence -1
      0, 0, 0, 1,                               // recordsCount
      0x12,                                     // record length 9 (zigzag 18)
      0x00,                                     // attributes
      0x00,                                     // timestampDelta 0
      0x00,                                     // offsetDelta 0
      0x02, 'k',                                // keyLength 1, key
      0x04, 'v', 'v',                           // valueLength 2, value
      0x00,                                     // headerCount 0
  };
  std::string expected(reinterpret_cast<const char*>(hand), sizeof hand);
  uint32_t crc = bitwise_crc32c(hand + 21, sizeof hand - 21);
  for (int i = 0; i < 4; ++i) expected[17 + i] = static_cast<char>(crc >> (8 * (3 - i)));

  TestBatch b;
  b.base_offset = 100;
  b.partition_leader_epoch = 7;
  b.base_timestamp = b.max_timestamp = 1000;
  b.records = {{"k", "vv", 0, 0, {}}};
  EXPECT_EQ(encode_batch(b), expected);

  std::vector<Decoded> out;
  EXPECT_EQ(decode_all(expected, out), BatchStatus::end);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].batch.crc, crc);
  ASSERT_EQ(out[0].records.size(), 1u);
  EXPECT_EQ(out[0].records[0], (Expected{100, 1000, "k", "vv", {}}));
}

TEST(KafkaRecordBatch, DecodesEveryHeaderField) {
  TestBatch b = assorted_batch(TestCodec::none);
  b.transactional = true;
  std::string bytes = encode_batch(b);
  BatchIterator it(span_of(bytes));
  Batch batch;
  ASSERT_EQ(it.next(batch), BatchStatus::ok);
  EXPECT_EQ(batch.base_offset, 1234567);
  EXPECT_EQ(batch.batch_length, static_cast<int32_t>(bytes.size() - 12));
  EXPECT_EQ(batch.size_bytes(), bytes.size());
  EXPECT_EQ(batch.partition_leader_epoch, 42);
  EXPECT_EQ(batch.magic, 2);
  EXPECT_EQ(batch.crc, bitwise_crc32c(bytes.data() + 21, bytes.size() - 21));
  EXPECT_EQ(batch.attributes, 0x10);
  EXPECT_EQ(batch.codec(), Codec::none);
  EXPECT_FALSE(batch.log_append_time());
  EXPECT_TRUE(batch.transactional());
  EXPECT_FALSE(batch.control());
  EXPECT_FALSE(batch.has_delete_horizon());
  EXPECT_EQ(batch.last_offset_delta, 1000);  // the largest offsetDelta
  EXPECT_EQ(batch.last_offset, 1234567 + 1000);
  EXPECT_EQ(batch.base_timestamp_ms, 1700000000123);
  EXPECT_EQ(batch.max_timestamp_ms, 1700070000123);
  EXPECT_EQ(batch.producer_id, 9876543210);
  EXPECT_EQ(batch.producer_epoch, 3);
  EXPECT_EQ(batch.base_sequence, 77);
  EXPECT_EQ(batch.records_count, 8);
  EXPECT_EQ(batch.records.data(), reinterpret_cast<const uint8_t*>(bytes.data()) + 61);
  EXPECT_EQ(batch.records.size(), bytes.size() - 61);
  EXPECT_EQ(it.position(), bytes.size());
  EXPECT_EQ(it.next(batch), BatchStatus::end);
}

TEST(KafkaRecordBatch, DecodesEveryRecordField) {
  TestBatch b = assorted_batch(TestCodec::none);
  std::vector<Decoded> out;
  EXPECT_EQ(decode_all(encode_batch(b), out), BatchStatus::end);
  ASSERT_EQ(out.size(), 1u);
  std::vector<Expected> want = expected_records(b);
  ASSERT_EQ(out[0].records.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(out[0].records[i], want[i]) << i;
  // Spot checks written out, not derived: null vs empty, offsets and timestamps.
  EXPECT_EQ(out[0].records[1].key, std::nullopt);
  EXPECT_EQ(out[0].records[2].value, std::nullopt);
  EXPECT_EQ(out[0].records[2].timestamp_ms, 1700000000120);
  EXPECT_EQ(out[0].records[3].key, std::optional<std::string>(""));
  EXPECT_EQ(out[0].records[3].headers[1].value, std::nullopt);
  EXPECT_EQ(out[0].records[5].offset, 1234767);
  EXPECT_EQ(out[0].records[5].timestamp_ms, 1770000000123);
  EXPECT_EQ(out[0].records[7].offset, 1235567);
}

TEST(KafkaRecordBatch, EveryCodecDecodesToTheSameRecords) {
  static Decompressor decompressor;
  std::vector<uint8_t> scratch(kScratchBytes);
  for (TestCodec codec : {TestCodec::none, TestCodec::gzip, TestCodec::snappy,
                          TestCodec::snappy_xerial, TestCodec::lz4, TestCodec::zstd}) {
    SCOPED_TRACE(static_cast<int>(codec));
    TestBatch b = assorted_batch(codec);
    std::string bytes = encode_batch(b);
    BatchIterator it(span_of(bytes));
    Batch batch;
    ASSERT_EQ(it.next(batch), BatchStatus::ok);
    EXPECT_EQ(batch.codec(), static_cast<Codec>(codec_bits(codec)));
    RecordReader reader;
    ASSERT_EQ(reader.open(batch, decompressor, scratch.data(), scratch.size()), BatchStatus::ok);
    // Views point into the batch when uncompressed, into scratch otherwise.
    const uint8_t* lo = codec == TestCodec::none ? batch.records.data() : scratch.data();
    const uint8_t* hi = codec == TestCodec::none ? batch.records.data() + batch.records.size()
                                                 : scratch.data() + scratch.size();
    EXPECT_EQ(reader.records_bytes().data(), lo);
    std::vector<Expected> got;
    Record r;
    while (reader.next(r)) {
      for (std::string_view v : {r.key, r.value}) {
        if (v.empty()) continue;
        EXPECT_GE(reinterpret_cast<const uint8_t*>(v.data()), lo);
        EXPECT_LE(reinterpret_cast<const uint8_t*>(v.data() + v.size()), hi);
      }
      got.push_back(own(r));
    }
    EXPECT_EQ(reader.status(), BatchStatus::end) << reader.detail();
    std::vector<Expected> want = expected_records(b);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], want[i]) << i;
  }
}

TEST(KafkaRecordBatch, LogAppendTimeUsesTheBatchMaxTimestamp) {
  TestBatch b = assorted_batch(TestCodec::lz4);
  b.log_append_time = true;
  b.max_timestamp = 1800000000000;
  std::vector<Decoded> out;
  EXPECT_EQ(decode_all(encode_batch(b), out), BatchStatus::end);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].batch.log_append_time());
  ASSERT_EQ(out[0].records.size(), 8u);
  for (const Expected& e : out[0].records) EXPECT_EQ(e.timestamp_ms, 1800000000000);
}

// A transaction marker: control flag, key = int16 version 0 + int16 type, value = version +
// coordinator epoch.
TEST(KafkaRecordBatch, ControlBatchesAreIdentifiable) {
  for (int16_t type : {0, 1, 2}) {
    TestBatch b;
    b.base_offset = 50;
    b.control = true;
    b.transactional = true;
    b.producer_id = 4000;
    b.producer_epoch = 1;
    std::string key, value;
    put_i16(key, 0);
    put_i16(key, type);
    put_i16(value, 0);
    put_i32(value, 5);
    b.records = {{key, value, 0, 0, {}}};
    std::vector<Decoded> out;
    EXPECT_EQ(decode_all(encode_batch(b), out), BatchStatus::end);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].batch.control());
    EXPECT_TRUE(out[0].batch.transactional());
    ASSERT_EQ(out[0].records.size(), 1u);
    Record r;
    r.key = *out[0].records[0].key;
    r.key_null = false;
    EXPECT_EQ(control_type(r), type == 0   ? ControlType::abort
                               : type == 1 ? ControlType::commit
                                           : ControlType::other);
  }
  Record null_key;
  EXPECT_EQ(control_type(null_key), ControlType::malformed);
  Record short_key;
  short_key.key = "ab";
  short_key.key_null = false;
  EXPECT_EQ(control_type(short_key), ControlType::malformed);
}

TEST(KafkaRecordBatch, DeleteHorizonFlagIsExposed) {
  TestBatch b = assorted_batch(TestCodec::none);
  b.delete_horizon = true;
  std::vector<Decoded> out;
  EXPECT_EQ(decode_all(encode_batch(b), out), BatchStatus::end);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].batch.has_delete_horizon());
  EXPECT_EQ(out[0].batch.attributes, 0x40);
  // Timestamps stay baseTimestamp + delta: the cleaner rewrites the deltas with the horizon.
  EXPECT_EQ(out[0].records[0].timestamp_ms, b.base_timestamp);
}

TEST(KafkaRecordBatch, EmptyBatchesHaveNoRecords) {
  // Compaction can leave a batch with no records; Kafka does not decompress it.
  for (TestCodec codec : {TestCodec::none, TestCodec::zstd}) {
    TestBatch b;
    b.base_offset = 10;
    b.codec = codec;
    b.last_offset_delta = 4;
    b.payload = "";
    std::vector<Decoded> out;
    EXPECT_EQ(decode_all(encode_batch(b), out), BatchStatus::end);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].batch.records_count, 0);
    EXPECT_EQ(out[0].batch.last_offset, 14);
    EXPECT_TRUE(out[0].records.empty());
  }
}

std::string three_batch_record_set(std::vector<TestBatch>& batches) {
  batches.clear();
  int64_t offset = 500;
  for (TestCodec codec : {TestCodec::none, TestCodec::snappy_xerial, TestCodec::gzip}) {
    TestBatch b;
    b.base_offset = offset;
    b.codec = codec;
    b.base_timestamp = b.max_timestamp = 1600000000000 + offset;
    for (int i = 0; i < 3; ++i) {
      b.records.push_back({"k" + std::to_string(offset + i), "v" + std::to_string(offset + i),
                           i, i, {}});
    }
    offset += 3;
    batches.push_back(b);
  }
  std::string set;
  for (const TestBatch& b : batches) set += encode_batch(b);
  return set;
}

TEST(KafkaRecordBatch, SeveralBatchesInOneRecordSet) {
  std::vector<TestBatch> batches;
  std::string set = three_batch_record_set(batches);
  std::vector<Decoded> out;
  EXPECT_EQ(decode_all(set, out), BatchStatus::end);
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].batch.base_offset, 500 + 3 * int64_t(i));
    EXPECT_EQ(out[i].batch.last_offset, 502 + 3 * int64_t(i));
    std::vector<Expected> want = expected_records(batches[i]);
    ASSERT_EQ(out[i].records.size(), want.size());
    for (size_t j = 0; j < want.size(); ++j) EXPECT_EQ(out[i].records[j], want[j]);
  }
}

// A fetch's max_bytes cuts the last batch anywhere: the whole batches before it are still
// yielded, then partial (with the cut batch's base offset once its first 8 bytes are there).
TEST(KafkaRecordBatch, PartialTrailingBatchAtEveryCut) {
  std::vector<TestBatch> batches;
  std::string set = three_batch_record_set(batches);
  const size_t last_start = encode_batch(batches[0]).size() + encode_batch(batches[1]).size();
  for (size_t cut = last_start; cut < set.size(); ++cut) {
    SCOPED_TRACE(cut);
    std::string truncated = set.substr(0, cut);
    std::vector<Decoded> out;
    BatchIterator it(span_of(truncated));
    Batch batch;
    int whole = 0;
    BatchStatus s;
    while ((s = it.next(batch)) == BatchStatus::ok) ++whole;
    EXPECT_EQ(whole, 2);
    if (cut == last_start) {
      EXPECT_EQ(s, BatchStatus::end);
      continue;
    }
    ASSERT_EQ(s, BatchStatus::partial) << it.detail();
    EXPECT_EQ(batch.base_offset, cut - last_start >= 8 ? 506 : -1);
    EXPECT_EQ(it.position(), last_start);
    EXPECT_EQ(it.next(batch), BatchStatus::partial);  // it stays there
    EXPECT_FALSE(it.skip());
  }
}

// Magic 0/1 messages (pre-0.11 format) are reported and stepped over by their length.
TEST(KafkaRecordBatch, LegacyMessageSetsAreSkipped) {
  // offset, size, crc (CRC-32, unchecked here), magic 1, attributes, timestamp, key -1,
  // value "abc".
  std::string legacy;
  put_i64(legacy, 7);
  std::string message;
  put_i32(message, 0x12345678);
  put_i8(message, 1);
  put_i8(message, 0);
  put_i64(message, 1500000000000);
  put_i32(message, -1);
  put_i32(message, 3);
  message += "abc";
  put_i32(legacy, static_cast<int32_t>(message.size()));
  legacy += message;

  TestBatch b;
  b.base_offset = 8;
  b.records = {{"k", "v", 0, 0, {}}};
  std::string set = legacy + legacy + encode_batch(b);
  BatchIterator it(span_of(set));
  Batch batch;
  EXPECT_EQ(it.next(batch), BatchStatus::unsupported_magic);
  EXPECT_EQ(batch.magic, 1);
  EXPECT_EQ(batch.base_offset, 7);
  EXPECT_EQ(it.position(), legacy.size());
  EXPECT_EQ(it.next(batch), BatchStatus::unsupported_magic);
  EXPECT_EQ(it.next(batch), BatchStatus::ok);
  EXPECT_EQ(batch.base_offset, 8);
  EXPECT_EQ(it.next(batch), BatchStatus::end);
}

// ---- Batches written by librdkafka 2.0.2 --------------------------------------------------
// Captured from librdkafka 2.0.2's mock broker (a producer with compression.codec set, five
// messages, then a Fetch v4 for the partition): key "key-<i>" (null for i = 1), value
// {"id":<i>,"name":"value number <i>","pad":"aaaaaaaaaaaaaaaaaaaa"} (null for i = 2),
// timestamp 1700000000000 + 7 i, headers h1=v1 and hnull=null. The transactional capture
// has three of those messages from a transactional producer.
constexpr const char* kRdkafkaUncompressed =  // 429 bytes
    "0000000000000000000001a1000000000246daad6e0000000000040000018bcfe568000000018bcfe5681cff"
    "ffffffffffffffffffffffffff00000005aa010000000a6b65792d307a7b226964223a302c226e616d65223a"
    "2276616c7565206e756d6265722030222c22706164223a226161616161616161616161616161616161616161"
    "227d040468310476310a686e756c6c01a001000e02017a7b226964223a312c226e616d65223a2276616c7565"
    "206e756d6265722031222c22706164223a226161616161616161616161616161616161616161227d04046831"
    "0476310a686e756c6c0130001c040a6b65792d3201040468310476310a686e756c6c01aa01002a060a6b6579"
    "2d337a7b226964223a332c226e616d65223a2276616c7565206e756d6265722033222c22706164223a226161"
    "616161616161616161616161616161616161227d040468310476310a686e756c6c01aa010038080a6b65792d"
    "347a7b226964223a342c226e616d65223a2276616c7565206e756d6265722034222c22706164223a22616161"
    "6161616161616161616161616161616161227d040468310476310a686e756c6c01";
constexpr const char* kRdkafkaGzip =  // 208 bytes
    "0000000000000000000000c4000000000207307d120001000000040000018bcfe568000000018bcfe5681cff"
    "ffffffffffffffffffffffffff000000051f8b08000000000000035bc5c8c0c0c0959d5aa96b5055ad9499a2"
    "6465a0a39497989baa64a5549698539aaa90579a9b945aa460a0a4a354900894574ac402946a5958320c59ca"
    "0cb932f24a737218173032f03131424d34c46ea22149261a30c8b080dd69c4882ab18a91418b0d2c630cb5cf"
    "18bb7dc624d90734d682036cac09d45813ecc69a90642c006191cb0470010000";
constexpr const char* kRdkafkaSnappy =  // 215 bytes
    "0000000000000000000000cb000000000222f3e2e20002000000040000018bcfe568000000018bcfe5681cff"
    "ffffffffffffffffffffffffff00000005f002d0aa010000000a6b65792d307a7b226964223a302c226e616d"
    "65223a2276616c7565206e756d6265722030222c22706164223a22616146020054227d040468310476310a68"
    "6e756c6c01a001000e02010d520031565200043122ae52001030001c040a01a8043201366b0014aa01002a06"
    "0a011a00330d7000335670000033b2700010aa01003808055700340d5700345657000034b25700";
constexpr const char* kRdkafkaLz4 =  // 231 bytes
    "0000000000000000000000db000000000212a1753a0003000000040000018bcfe568000000018bcfe5681cff"
    "ffffffffffffffffffffffffff0000000504224d186040829b000000ff25aa010000000a6b65792d307a7b22"
    "6964223a302c226e616d65223a2276616c7565206e756d6265722030222c22706164223a2261010000f30722"
    "7d040468310476310a686e756c6c01a001000e020152001f315200031f3152001a4130001c04a8002a32016b"
    "0051aa01002a061a00133370001f337000031f3370001a51aa010038085700133457001f345700031f345700"
    "15506e756c6c0100000000";
constexpr const char* kRdkafkaZstd =  // 204 bytes
    "0000000000000000000000c000000000025bede3090004000000040000018bcfe568000000018bcfe5681cff"
    "ffffffffffffffffffffffffff0000000528b52ffd00583504002406aa010000000a6b65792d307a7b226964"
    "223a302c226e616d65223a2276616c7565206e756d6265722030222c22706164223a2261227d040468310476"
    "310a686e756c6c01a001000e0201313130001c043201aa01002a06333333aa010038083434340e000253803a"
    "48a685f6094c01757348d6d33e17655b3d210526032554216b940028";
constexpr const char* kRdkafkaTransactional =  // 255 bytes
    "0000000000000000000000f300000000021641b1c10010000000020000018bcfe568000000018bcfe5680e00"
    "0000000415613000000000000000000003aa010000000a6b65792d307a7b226964223a302c226e616d65223a"
    "2276616c7565206e756d6265722030222c22706164223a226161616161616161616161616161616161616161"
    "227d040468310476310a686e756c6c01a001000e02017a7b226964223a312c226e616d65223a2276616c7565"
    "206e756d6265722031222c22706164223a226161616161616161616161616161616161616161227d04046831"
    "0476310a686e756c6c0130001c040a6b65792d3201040468310476310a686e756c6c01";

struct Capture {
  const char* name;
  const char* hex;
  Codec codec;
  int records;
  bool transactional;
};

constexpr Capture kCaptures[] = {
    {"none", kRdkafkaUncompressed, Codec::none, 5, false},
    {"gzip", kRdkafkaGzip, Codec::gzip, 5, false},
    {"snappy", kRdkafkaSnappy, Codec::snappy, 5, false},
    {"lz4", kRdkafkaLz4, Codec::lz4, 5, false},
    {"zstd", kRdkafkaZstd, Codec::zstd, 5, false},
    {"transactional", kRdkafkaTransactional, Codec::none, 3, true},
};

TEST(KafkaRecordBatch, DecodesBatchesWrittenByLibrdkafka) {
  for (const Capture& c : kCaptures) {
    SCOPED_TRACE(c.name);
    std::string set = from_hex(c.hex);
    std::vector<Decoded> out;
    EXPECT_EQ(decode_all(set, out), BatchStatus::end);
    ASSERT_EQ(out.size(), 1u);
    const Batch& batch = out[0].batch;
    EXPECT_EQ(batch.codec(), c.codec);
    EXPECT_EQ(batch.base_offset, 0);
    EXPECT_EQ(batch.last_offset, c.records - 1);
    EXPECT_EQ(batch.records_count, c.records);
    EXPECT_EQ(batch.base_timestamp_ms, 1700000000000);
    EXPECT_EQ(batch.max_timestamp_ms, 1700000000000 + 7 * (c.records - 1));
    EXPECT_FALSE(batch.log_append_time());
    EXPECT_FALSE(batch.control());
    EXPECT_EQ(batch.transactional(), c.transactional);
    if (c.transactional) {
      EXPECT_GE(batch.producer_id, 0);
      EXPECT_GE(batch.producer_epoch, 0);
    } else {
      EXPECT_EQ(batch.producer_id, -1);
    }
    ASSERT_EQ(out[0].records.size(), size_t(c.records));
    for (int i = 0; i < c.records; ++i) {
      Expected want;
      want.offset = i;
      want.timestamp_ms = 1700000000000 + 7 * i;
      if (i != 1) want.key = "key-" + std::to_string(i);
      if (i != 2) {
        want.value = "{\"id\":" + std::to_string(i) + ",\"name\":\"value number " +
                     std::to_string(i) + "\",\"pad\":\"aaaaaaaaaaaaaaaaaaaa\"}";
      }
      want.headers = {{"h1", "v1"}, {"hnull", std::nullopt}};
      EXPECT_EQ(out[0].records[i], want) << i;
    }
  }
  // librdkafka writes raw snappy (no xerial magic) and zstd frames without a content size.
  std::string snappy = from_hex(kRdkafkaSnappy);
  EXPECT_NE(static_cast<uint8_t>(snappy[61]), 0x82);
  std::string zstd = from_hex(kRdkafkaZstd);
  EXPECT_EQ(zstd.substr(61, 4), std::string("\x28\xb5\x2f\xfd", 4));
  EXPECT_EQ(static_cast<uint8_t>(zstd[65]) & 0xC0, 0);  // Frame_Content_Size_flag 0
  EXPECT_EQ(static_cast<uint8_t>(zstd[65]) & 0x20, 0);  // not single-segment: no size at all
}

TEST(KafkaRecordBatch, HeaderIteratorOfARecordWithoutHeaders) {
  Record r;
  HeaderIterator it = r.headers();
  Header h;
  EXPECT_FALSE(it.next(h));
}

// A record's headers by name: the last of each name wins (Kafka's
// lastHeader), a null value is found and null, a name not there is not found.
TEST(KafkaRecordBatch, LastHeadersTakesTheLastOfEachName) {
  TestBatch b;
  b.records = {
      {"k", "v", 0, 0, {{"source", "pos-a"}, {"version", "1.0"}, {"source", "pos-b"}, {"sourc", "x"}}},
      {"k", "v", 0, 1, {{"source", "pos-a"}, {"source", std::nullopt}}},
      {"k", "v", 0, 2, {{"source", std::nullopt}, {"source", ""}, {"Source", "case"}}},
      {"k", "v", 0, 3, {}},
  };
  const std::string bytes = encode_batch(b);
  BatchIterator it(span_of(bytes));
  Batch batch;
  ASSERT_EQ(it.next(batch), BatchStatus::ok);
  Decompressor decompressor;
  RecordReader reader;
  ASSERT_EQ(reader.open(batch, decompressor, nullptr, 0), BatchStatus::ok);
  const std::string_view names[] = {"version", "source", "missing"};
  struct Want {
    uint32_t found, null;
    std::string_view version, source;
  };
  const Want want[] = {{0b011, 0, "1.0", "pos-b"}, {0b010, 0b010, "", ""}, {0b010, 0, "", ""}, {0, 0, "", ""}};
  Record r;
  for (const Want& w : want) {
    ASSERT_TRUE(reader.next(r));
    std::string_view values[3] = {"unset", "unset", "unset"};
    const LastHeaders got = last_headers(r, names, values);
    EXPECT_EQ(got.found, w.found) << r.offset;
    EXPECT_EQ(got.null, w.null) << r.offset;
    if (w.found & 1) {
      EXPECT_EQ(values[0], w.version) << r.offset;
    }
    if ((w.found & 2) && !(w.null & 2)) {
      EXPECT_EQ(values[1], w.source) << r.offset;
    }
    EXPECT_EQ(values[2], "unset") << r.offset;  // never found: left alone
  }
  EXPECT_FALSE(reader.next(r));
}

TEST(KafkaRecordBatch, StatusNames) {
  EXPECT_STREQ(to_string(BatchStatus::partial), "partial");
  EXPECT_STREQ(to_string(BatchStatus::crc_mismatch), "crc_mismatch");
  EXPECT_STREQ(to_string(BatchStatus::unsupported_codec), "unsupported_codec");
}

}  // namespace
}  // namespace sluice::kafka
