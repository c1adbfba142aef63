// The producer's codec pieces: InitProducerId and Produce requests and responses byte for
// byte against the Kafka spec (built field by field here), BatchBuilder against the tests'
// own batch encoder (tests/io/kafka_batch_encoder.h, written from the spec) and through the
// batch reader for every codec, and the Compressor through the Decompressor.
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "io/kafka/compression.h"
#include "io/kafka/murmur2.h"
#include "io/kafka/protocol.h"
#include "io/kafka/record_batch.h"
#include "tests/io/kafka_batch_encoder.h"
#include "tests/util/kafka_bytes.h"

namespace sluice::kafka {
namespace {

using Bytes = std::vector<uint8_t>;
using Build = testing_util::KafkaBytes;

Bytes request_frame(int api_key, int version, int32_t correlation_id, std::string_view client_id, const Build& body) {
  Build header;
  header.i16(api_key).i16(version).i32(correlation_id).str(client_id);
  Build frame;
  frame.i32(int64_t(header.size() + body.size()));
  Bytes out = frame.bytes();
  out.insert(out.end(), header.bytes().begin(), header.bytes().end());
  out.insert(out.end(), body.bytes().begin(), body.bytes().end());
  return out;
}

TEST(KafkaProduce, InitProducerIdRequestAndResponse) {
  for (int16_t v = 0; v <= 1; ++v) {
    Bytes out;
    Writer w(out);
    ASSERT_EQ(encode_init_producer_id_request(w, v, 5, "sluice"), EncodeStatus::ok);
    Build body;
    body.null_str().i32(60000);
    EXPECT_EQ(out, request_frame(22, v, 5, "sluice", body));

    Build resp;
    resp.i32(3).i16(0).i64(4242).i16(7);
    Reader r(resp.bytes().data(), resp.bytes().size());
    InitProducerIdResponse got;
    ASSERT_TRUE(decode_init_producer_id_response(r, v, got).ok());
    EXPECT_EQ(got.throttle_time_ms, 3);
    EXPECT_EQ(got.error, ErrorCode::none);
    EXPECT_EQ(got.producer_id, 4242);
    EXPECT_EQ(got.producer_epoch, 7);
  }
  Bytes out;
  Writer w(out);
  EXPECT_EQ(encode_init_producer_id_request(w, 2, 5, "sluice"), EncodeStatus::unsupported_version);
  Build cut;
  cut.i32(0).i16(0).i64(1);
  Reader r(cut.bytes().data(), cut.bytes().size());
  InitProducerIdResponse got;
  EXPECT_EQ(decode_init_producer_id_response(r, 0, got).status, ResponseStatus::malformed);
}

TEST(KafkaProduce, ProduceRequestEachVersion) {
  const Bytes a = {1, 2, 3};
  const Bytes b = {9};
  const ProducePartitionRequest parts[] = {{.partition = 0, .records = a}, {.partition = 5, .records = b}};
  ProduceRequest req;
  req.acks = kAcksAll;
  req.timeout_ms = 1500;
  req.topic = "metrics";
  req.partitions = parts;
  for (int16_t v = 3; v <= 8; ++v) {
    SCOPED_TRACE(v);
    Bytes out;
    Writer w(out);
    ASSERT_EQ(encode_produce_request(w, v, 11, "sluice", req), EncodeStatus::ok);
    Build body;
    body.null_str()   // transactional_id
        .i16(-1)      // acks
        .i32(1500)    // timeout_ms
        .count(1)     // topics
        .str("metrics")
        .count(2)     // partitions
        .i32(0)
        .blob(a)
        .i32(5)
        .blob(b);
    EXPECT_EQ(out, request_frame(0, v, 11, "sluice", body));
  }
  Bytes out;
  Writer w(out);
  EXPECT_EQ(encode_produce_request(w, 2, 11, "sluice", req), EncodeStatus::unsupported_version);
  EXPECT_EQ(encode_produce_request(w, 9, 11, "sluice", req), EncodeStatus::unsupported_version);
}

TEST(KafkaProduce, ProduceResponseEachVersion) {
  for (int16_t v = 3; v <= 8; ++v) {
    SCOPED_TRACE(v);
    Build body;
    body.count(1).str("metrics").count(2);
    body.i32(0).i16(0).i64(100).i64(-1);
    if (v >= 5) body.i64(7);
    if (v >= 8) body.count(0).null_str();
    body.i32(3).i16(6).i64(-1).i64(-1);
    if (v >= 5) body.i64(-1);
    if (v >= 8) body.count(1).i32(2).str("bad record").str("batch dropped");
    body.i32(25);  // throttle_time_ms
    Reader r(body.bytes().data(), body.bytes().size());
    ProduceResponse got;
    DecodeResult d = decode_produce_response(r, v, got);
    ASSERT_TRUE(d.ok()) << d.reason;
    ASSERT_EQ(got.partitions.size(), 2u);
    EXPECT_EQ(got.partitions[0].topic, "metrics");
    EXPECT_EQ(got.partitions[0].partition, 0);
    EXPECT_EQ(got.partitions[0].error, ErrorCode::none);
    EXPECT_EQ(got.partitions[0].base_offset, 100);
    EXPECT_EQ(got.partitions[0].log_start_offset, v >= 5 ? 7 : -1);
    EXPECT_EQ(got.partitions[1].partition, 3);
    EXPECT_EQ(got.partitions[1].error, ErrorCode::not_leader_or_follower);
    if (v >= 8) {
      ASSERT_TRUE(got.partitions[1].error_message.has_value());
      EXPECT_EQ(*got.partitions[1].error_message, "batch dropped");
    }
    EXPECT_EQ(got.throttle_time_ms, 25);

    // Every cut is malformed, and leaves nothing behind.
    for (size_t n = 0; n < body.bytes().size(); ++n) {
      Reader cut(body.bytes().data(), n);
      EXPECT_FALSE(decode_produce_response(cut, v, got).ok()) << n;
      EXPECT_TRUE(got.partitions.empty());
    }
  }
}

TEST(KafkaProduce, ProducerNegotiationNeedsProduceNotFetch) {
  const ApiVersionRange broker[] = {{ApiKey::api_versions, 0, 3},
                                    {ApiKey::metadata, 0, 12},
                                    {ApiKey::init_producer_id, 0, 5},
                                    {ApiKey::produce, 0, 11}};
  NegotiatedVersions out;
  VersionMismatch m;
  ASSERT_TRUE(negotiate_versions(broker, out, m, kProducerVersions));
  EXPECT_EQ(out.produce, 8);
  EXPECT_EQ(out.init_producer_id, 1);
  EXPECT_EQ(out.metadata, 8);
  EXPECT_FALSE(negotiate_versions(broker, out, m));  // a consumer needs Fetch
  EXPECT_EQ(m.key, ApiKey::list_offsets);
  const ApiVersionRange old_broker[] = {{ApiKey::api_versions, 0, 2},
                                        {ApiKey::metadata, 0, 2},
                                        {ApiKey::init_producer_id, 0, 1},
                                        {ApiKey::produce, 0, 2}};
  EXPECT_FALSE(negotiate_versions(old_broker, out, m, kProducerVersions));
  EXPECT_EQ(m.key, ApiKey::produce);
  EXPECT_EQ(m.broker_max, 2);
}


// Records with and without keys and headers, of assorted sizes.
std::vector<test::TestRecord> some_records(std::mt19937_64& rng, int n) {
  std::vector<test::TestRecord> out;
  int64_t ts = 0;
  for (int i = 0; i < n; ++i) {
    test::TestRecord r;
    if (i % 3 != 0) r.key = "key-" + std::to_string(rng() % 1000);
    r.value = std::string(size_t(rng() % 300), char('a' + i % 26));
    r.timestamp_delta = ts;  // the first record's is 0: the batch's base timestamp is its own
    ts += int64_t(rng() % 5000);
    r.offset_delta = i;
    if (i % 2 == 0) r.headers = {{"sluice.window", "2024-03-27T10:00:00Z"}, {"h", std::string(size_t(i % 7), 'x')}};
    out.push_back(r);
  }
  return out;
}

void build(BatchBuilder& builder, int64_t base_ts, const std::vector<test::TestRecord>& records) {
  builder.reset();
  for (const test::TestRecord& r : records) {
    std::vector<OutHeader> headers;
    for (const test::TestHeader& h : r.headers) headers.push_back({h.key, *h.value});
    const std::string_view key = r.key ? std::string_view(*r.key) : std::string_view();
    const size_t before = builder.bytes();
    const size_t predicted = BatchBuilder::record_bytes(r.timestamp_delta, builder.records(),
                                                        r.key ? &key : nullptr, *r.value, headers);
    builder.append(base_ts + r.timestamp_delta, r.key ? &key : nullptr, *r.value, headers);
    EXPECT_EQ(builder.bytes() - before, predicted);
  }
}

TEST(KafkaProduce, BatchBuilderMatchesTheSpecEncoder) {
  std::mt19937_64 rng(7);
  Compressor compressor;
  BatchBuilder builder;
  for (int n : {1, 2, 50}) {
    test::TestBatch want;
    want.partition_leader_epoch = -1;
    want.base_timestamp = 1'711'533'600'000;
    want.producer_id = 123456789;
    want.producer_epoch = 3;
    want.base_sequence = 2'147'483'000;
    want.records = some_records(rng, n);
    want.max_timestamp = want.base_timestamp + want.records.back().timestamp_delta;
    build(builder, want.base_timestamp, want.records);
    std::vector<uint8_t> out;
    ASSERT_TRUE(builder.finish(Codec::none, compressor, 123456789, 3, 2'147'483'000, out));
    const std::string expected = test::encode_batch(want);
    EXPECT_EQ(std::string(out.begin(), out.end()), expected) << n;
    EXPECT_EQ(builder.bytes(), expected.size());
  }
}

TEST(KafkaProduce, EveryCodecReadsBackThroughTheBatchReader) {
  std::mt19937_64 rng(11);
  Compressor compressor;
  Decompressor decompressor;
  BatchBuilder builder;
  std::vector<uint8_t> scratch(4 << 20);
  const std::vector<test::TestRecord> records = some_records(rng, 400);
  for (Codec codec : {Codec::none, Codec::gzip, Codec::snappy, Codec::lz4, Codec::zstd}) {
    SCOPED_TRACE(to_string(codec));
    for (int round = 0; round < 2; ++round) {  // the contexts are reused
      build(builder, 5000, records);
      std::vector<uint8_t> out;
      ASSERT_TRUE(builder.finish(codec, compressor, 77, 0, 10, out));
      if (codec != Codec::none) {
        EXPECT_LT(out.size(), builder.bytes() / 2);
      }
      BatchIterator it(out);
      Batch batch;
      ASSERT_EQ(it.next(batch), BatchStatus::ok) << it.detail();
      EXPECT_EQ(batch.codec(), codec);
      EXPECT_EQ(batch.producer_id, 77);
      EXPECT_EQ(batch.producer_epoch, 0);
      EXPECT_EQ(batch.base_sequence, 10);
      EXPECT_EQ(batch.records_count, int32_t(records.size()));
      EXPECT_EQ(batch.last_offset_delta, int32_t(records.size()) - 1);
      EXPECT_EQ(batch.base_timestamp_ms, 5000);
      EXPECT_EQ(batch.max_timestamp_ms, 5000 + records.back().timestamp_delta);
      RecordReader reader;
      ASSERT_EQ(reader.open(batch, decompressor, scratch.data(), scratch.size()), BatchStatus::ok);
      Record r;
      size_t i = 0;
      while (reader.next(r)) {
        ASSERT_LT(i, records.size());
        const test::TestRecord& want = records[i];
        EXPECT_EQ(r.offset, int64_t(i));
        EXPECT_EQ(r.timestamp_ms, 5000 + want.timestamp_delta);
        EXPECT_EQ(r.key_null, !want.key.has_value());
        if (want.key) {
          EXPECT_EQ(r.key, *want.key);
        }
        EXPECT_EQ(r.value, *want.value);
        EXPECT_EQ(r.header_count, want.headers.size());
        HeaderIterator hi = r.headers();
        Header h;
        for (const test::TestHeader& wh : want.headers) {
          ASSERT_TRUE(hi.next(h));
          EXPECT_EQ(h.key, wh.key);
          EXPECT_EQ(h.value, *wh.value);
        }
        ++i;
      }
      EXPECT_EQ(reader.status(), BatchStatus::end) << reader.detail();
      EXPECT_EQ(i, records.size());
      EXPECT_EQ(it.next(batch), BatchStatus::end);
    }
  }
}

TEST(KafkaProduce, CompressorRoundTripsAndAppends) {
  Compressor compressor;
  Decompressor decompressor;
  std::mt19937_64 rng(3);
  for (size_t n : {size_t(0), size_t(1), size_t(1000), size_t(300000)}) {
    std::string text;
    while (text.size() < n) text += "{\"product_id\":" + std::to_string(rng() % 100) + ",\"q\":3}\n";
    text.resize(n);
    for (Codec codec : {Codec::gzip, Codec::snappy, Codec::lz4, Codec::zstd}) {
      SCOPED_TRACE(std::string(to_string(codec)) + " " + std::to_string(n));
      std::vector<uint8_t> out = {0xAB};  // appended after what is there
      ASSERT_TRUE(compressor.compress(codec, reinterpret_cast<const uint8_t*>(text.data()), n, out));
      EXPECT_EQ(out[0], 0xAB);
      std::vector<uint8_t> back(n + 1);
      size_t len = 0;
      ASSERT_EQ(decompressor.decompress(codec, out.data() + 1, out.size() - 1, back.data(), back.size(), len),
                DecompressStatus::ok);
      EXPECT_EQ(std::string(back.begin(), back.begin() + long(len)), text);
    }
  }
}

// Kafka's own vectors (UtilsTest.testMurmur2 in the Java client), as signed ints.
TEST(KafkaProduce, Murmur2MatchesTheJavaClient) {
  const std::pair<std::string_view, int32_t> cases[] = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
  };
  for (const auto& [key, want] : cases) EXPECT_EQ(int32_t(murmur2(key)), want) << key;
  // toPositive(-973932308) % 10 = (0x7fffffff & -973932308) % 10
  EXPECT_EQ(partition_for_key("21", 10), int32_t((uint32_t(-973932308) & 0x7fffffffu) % 10));
}

}  // namespace
}  // namespace sluice::kafka
