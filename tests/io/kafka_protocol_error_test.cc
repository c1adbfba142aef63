#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "io/kafka/protocol.h"
#include "tests/util/kafka_bytes.h"

// Failure paths of the Kafka codec: truncated, hostile and oversized responses, unsupported
// versions, and encoders that run out of room. Responses are built field by field here (see
// kafka_protocol_test.cc for the field-by-field layouts), never by code under test.

namespace sluice::kafka {

static std::ostream& operator<<(std::ostream& os, ResponseStatus s) {
  return os << to_string(s);
}
static std::ostream& operator<<(std::ostream& os, EncodeStatus s) {
  return os << to_string(s);
}

namespace {

using Bytes = std::vector<uint8_t>;

using Build = testing_util::KafkaBytes;

// The first n bytes of `b` in an allocation of exactly n bytes: AddressSanitizer reports a
// read of even one byte past the cut.
struct Exact {
  Exact(const Bytes& b, size_t n) : data(new uint8_t[n == 0 ? 1 : n]), size(n) {
    std::copy(b.begin(), b.begin() + ptrdiff_t(n), data.get());
  }
  Reader reader() const { return Reader(data.get(), size); }
  std::unique_ptr<uint8_t[]> data;
  size_t size;
};

enum class Api { api_versions, metadata, list_offsets, fetch };

struct Decoded {
  DecodeResult result;
  size_t capacity_max;  // the largest vector capacity the decoder left
};

// Decodes `bytes` as (api, version) into fresh objects.
Decoded decode(Api api, int16_t v, const uint8_t* data, size_t size) {
  Reader r(data, size);
  switch (api) {
    case Api::api_versions: {
      ApiVersionsResponse out;
      DecodeResult res = decode_api_versions_response(r, v, out);
      return {res, out.apis.capacity()};
    }
    case Api::metadata: {
      MetadataResponse out;
      DecodeResult res = decode_metadata_response(r, v, out);
      return {res,
              std::max({out.brokers.capacity(), out.topics.capacity(), out.partitions.capacity()})};
    }
    case Api::list_offsets: {
      ListOffsetsResponse out;
      DecodeResult res = decode_list_offsets_response(r, v, out);
      return {res, std::max(out.topics.capacity(), out.partitions.capacity())};
    }
    case Api::fetch: {
      FetchResponse out;
      DecodeResult res = decode_fetch_response(r, v, out);
      return {res, std::max({out.topics.capacity(), out.partitions.capacity(),
                             out.aborted_transactions.capacity()})};
    }
  }
  return {};
}

Decoded decode(Api api, int16_t v, const Build& b) {
  return decode(api, v, b.bytes().data(), b.size());
}

// ---- Valid responses of every version (the same shapes as kafka_protocol_test.cc) ----------

Build api_versions_body(int16_t v) {
  Build b;
  b.i16(0);                 // error_code: NONE
  b.count(3);               // api_keys
  b.i16(1).i16(4).i16(13);  //   Fetch
  b.i16(3).i16(1).i16(12);  //   Metadata
  b.i16(18).i16(0).i16(3);  //   ApiVersions
  if (v >= 1) b.i32(0);     // throttle_time_ms
  return b;
}

Build metadata_body(int16_t v) {
  Build b;
  if (v >= 3) b.i32(0);                   // throttle_time_ms
  b.count(2);                             // brokers
  b.i32(1).str("k1").i32(9092).str("r");  //   node_id, host, port, rack
  b.i32(2).str("k2").i32(9092).i16(-1);   //   node_id, host, port, rack: null
  if (v >= 2) b.str("cid");               // cluster_id
  b.i32(1);                               // controller_id
  b.count(2);                             // topics
  for (std::string_view name : {"a", "bb"}) {
    b.i16(0).str(name).i8(0);  //   error_code, name, is_internal
    b.count(2);                //   partitions
    for (int p = 0; p < 2; ++p) {
      b.i16(0).i32(p).i32(1);         //     error_code, partition_index, leader_id
      if (v >= 7) b.i32(3);           //     leader_epoch
      b.count(2).i32(1).i32(2);       //     replica_nodes
      b.count(1).i32(1);              //     isr_nodes
      if (v >= 5) b.count(1).i32(2);  //     offline_replicas
    }
    if (v >= 8) b.i32(0);  //   topic_authorized_operations
  }
  if (v >= 8) b.i32(0);  // cluster_authorized_operations
  return b;
}

Build list_offsets_body(int16_t v) {
  Build b;
  if (v >= 2) b.i32(0);  // throttle_time_ms
  b.count(2);            // topics
  for (std::string_view name : {"a", "bb"}) {
    b.str(name);  //   name
    b.count(2);   //   partitions
    for (int p = 0; p < 2; ++p) {
      b.i32(p).i16(0).i64(-1).i64(42);  //     partition_index, error_code, timestamp, offset
      if (v >= 4) b.i32(1);             //     leader_epoch
    }
  }
  return b;
}

Build fetch_body(int16_t v) {
  Build b;
  b.i32(0);                     // throttle_time_ms
  if (v >= 7) b.i16(0).i32(0);  // error_code, session_id
  b.count(2);                   // responses
  for (std::string_view name : {"a", "bb"}) {
    b.str(name);  //   topic
    b.count(2);   //   partitions
    // with aborted transactions and records
    b.i32(0).i16(0).i64(10).i64(9);  //     partition_index, error_code, hw, lso
    if (v >= 5) b.i64(0);            //     log_start_offset
    b.count(1).i64(7).i64(3);        //     aborted_transactions
    if (v >= 11) b.i32(-1);          //     preferred_read_replica
    b.blob({1, 2, 3, 4, 5});         //     records
    // null aborted transactions, null records
    b.i32(1).i16(1).i64(0).i64(0);  //     partition_index, error_code, hw, lso
    if (v >= 5) b.i64(0);           //     log_start_offset
    b.count(-1);                    //     aborted_transactions: null
    if (v >= 11) b.i32(-1);         //     preferred_read_replica
    b.i32(-1);                      //     records: null
  }
  return b;
}

struct Versions {
  Api api;
  int16_t min;
  int16_t max;
  Build (*body)(int16_t);
};
const Versions kAll[] = {
    {Api::api_versions, 0, 2, api_versions_body},
    {Api::metadata, 1, 8, metadata_body},
    {Api::list_offsets, 1, 5, list_offsets_body},
    {Api::fetch, 4, 11, fetch_body},
};

TEST(KafkaProtocolError, ValidBodiesDecode) {
  for (const Versions& api : kAll) {
    for (int16_t v = api.min; v <= api.max; ++v) {
      Decoded d = decode(api.api, v, api.body(v));
      EXPECT_TRUE(d.result.ok()) << int(api.api) << " v" << v << ": " << d.result.reason;
    }
  }
}

// ---- Truncation -----------------------------------------------------------------------------

TEST(KafkaProtocolError, EveryTruncationIsMalformed) {
  for (const Versions& api : kAll) {
    for (int16_t v = api.min; v <= api.max; ++v) {
      Build b = api.body(v);
      for (size_t cut = 0; cut < b.size(); ++cut) {
        Exact part(b.bytes(), cut);
        Decoded d = decode(api.api, v, part.data.get(), part.size);
        ASSERT_EQ(d.result.status, ResponseStatus::malformed)
            << "api " << int(api.api) << " v" << v << " cut at " << cut << " of " << b.size();
        ASSERT_NE(std::string_view(d.result.reason), "");
      }
    }
  }
}

TEST(KafkaProtocolError, TruncatedResponseInsideALargerBufferReadsOnlyItsOwnBytes) {
  // The response is followed by bytes of the next one; a sub-reader must stop at its end.
  Build b = fetch_body(11);
  Bytes two = b.bytes();
  two.insert(two.end(), b.bytes().begin(), b.bytes().end());
  for (size_t cut = 0; cut < b.size(); ++cut) {
    Reader outer(two.data(), two.size());
    Reader r = outer.sub(cut);
    FetchResponse out;
    ASSERT_EQ(decode_fetch_response(r, 11, out).status, ResponseStatus::malformed) << cut;
    EXPECT_TRUE(out.partitions.empty());
    EXPECT_TRUE(outer.ok());
  }
}

TEST(KafkaProtocolError, TrailingBytesAreMalformed) {
  for (const Versions& api : kAll) {
    for (int16_t v = api.min; v <= api.max; ++v) {
      Build b = api.body(v);
      b.i8(0);
      Decoded d = decode(api.api, v, b);
      EXPECT_EQ(d.result.status, ResponseStatus::malformed) << int(api.api) << " v" << v;
    }
  }
}

TEST(KafkaProtocolError, ResponseHeaderTruncated) {
  const uint8_t bytes[] = {0, 0, 1};
  for (size_t n = 0; n < 4; ++n) {
    Bytes b(bytes, bytes + std::min<size_t>(n, 3));
    Exact e(b, b.size());
    Reader r = e.reader();
    int32_t correlation_id = 5;
    EXPECT_FALSE(decode_response_header(r, correlation_id));
  }
}

// ---- Hostile lengths ------------------------------------------------------------------------

constexpr int64_t kInt32Max = 0x7FFFFFFF;
constexpr size_t kSmallCapacity = 16;  // what a decoder may reserve for a response this small

void expect_malformed(Api api, int16_t v, const Build& b, const char* what) {
  Decoded d = decode(api, v, b);
  EXPECT_EQ(d.result.status, ResponseStatus::malformed) << what;
  EXPECT_LE(d.capacity_max, kSmallCapacity) << what;
}

TEST(KafkaProtocolError, HostileFetchLengths) {
  const int64_t bad_counts[] = {kInt32Max, 1'000'000, -2, -int64_t(0x80000000)};
  for (int64_t n : bad_counts) {
    SCOPED_TRACE(n);
    Build topics;
    topics.i32(0).i16(0).i32(0);  // throttle_time_ms, error_code, session_id
    topics.count(n);              // responses: hostile
    topics.zeros(64);
    expect_malformed(Api::fetch, 11, topics, "topics count");

    Build partitions;
    partitions.i32(0).i16(0).i32(0);  // throttle_time_ms, error_code, session_id
    partitions.count(1).str("t");     // responses, topic
    partitions.count(n);              //   partitions: hostile
    partitions.zeros(64);
    expect_malformed(Api::fetch, 11, partitions, "partitions count");

    Build aborted;
    aborted.i32(0).i16(0).i32(0);                // throttle_time_ms, error_code, session_id
    aborted.count(1).str("t").count(1);          // responses, topic, partitions
    aborted.i32(0).i16(0).i64(0).i64(0).i64(0);  // partition, error, hw, lso, log_start
    aborted.count(n);                            //     aborted_transactions: hostile
    aborted.zeros(64);
    expect_malformed(Api::fetch, 11, aborted, "aborted_transactions count");

    Build records;
    records.i32(0).i16(0).i32(0);                // throttle_time_ms, error_code, session_id
    records.count(1).str("t").count(1);          // responses, topic, partitions
    records.i32(0).i16(0).i64(0).i64(0).i64(0);  // partition, error, hw, lso, log_start
    records.count(0).i32(-1);                    //     aborted_transactions, preferred_read_replica
    records.i32(n);                              //     records length: hostile
    records.zeros(64);
    expect_malformed(Api::fetch, 11, records, "records length");
  }
}

TEST(KafkaProtocolError, HostileStringLengths) {
  for (int64_t n : {0x7FFF, 200, -1, -2, -0x8000}) {
    SCOPED_TRACE(n);
    Build fetch;
    fetch.i32(0).i16(0).i32(0);  // throttle_time_ms, error_code, session_id
    fetch.count(1);              // responses
    fetch.i16(n);                //   topic name length: hostile (-1: null, not allowed)
    fetch.zeros(100);
    expect_malformed(Api::fetch, 11, fetch, "topic name");

    Build host;
    host.i32(0).count(1);  // throttle_time_ms, brokers
    host.i32(1).i16(n);    //   node_id, host length: hostile
    host.zeros(100);
    expect_malformed(Api::metadata, 8, host, "broker host");

    Build list;
    list.i32(0).count(1);  // throttle_time_ms, topics
    list.i16(n);           //   name length: hostile
    list.zeros(100);
    expect_malformed(Api::list_offsets, 5, list, "ListOffsets topic name");
  }
  // Nullable strings accept -1 but not other negative lengths.
  for (int64_t n : {-2, -0x8000, 0x7FFF}) {
    Build rack;
    rack.i32(0).count(1);            // throttle_time_ms, brokers
    rack.i32(1).str("h").i32(9092);  //   node_id, host, port
    rack.i16(n);                     //   rack length: hostile
    rack.zeros(40);
    expect_malformed(Api::metadata, 8, rack, "broker rack");
  }
}

TEST(KafkaProtocolError, HostileMetadataAndApiVersionsCounts) {
  for (int64_t n : {kInt32Max, int64_t(100'000), int64_t(-1), int64_t(-2)}) {
    SCOPED_TRACE(n);
    Build brokers;
    brokers.i32(0).count(n).zeros(64);  // throttle_time_ms, brokers: hostile
    expect_malformed(Api::metadata, 8, brokers, "brokers count");

    Build topics;
    topics.i32(0).count(0).str("c").i32(1);  // throttle, brokers, cluster_id, controller_id
    topics.count(n).zeros(64);               // topics: hostile
    expect_malformed(Api::metadata, 8, topics, "topics count");

    Build replicas;
    replicas.i32(0).count(0).str("c").i32(1);       // throttle, brokers, cluster_id, controller_id
    replicas.count(1).i16(0).str("t").i8(0);        // topics, error_code, name, is_internal
    replicas.count(1).i16(0).i32(0).i32(1).i32(0);  // partitions, error, index, leader, epoch
    replicas.count(n);                              //     replica_nodes: hostile
    replicas.zeros(64);
    expect_malformed(Api::metadata, 8, replicas, "replica_nodes count");

    Build apis;
    apis.i16(0).count(n).zeros(64);  // error_code, api_keys: hostile
    expect_malformed(Api::api_versions, 2, apis, "api_keys count");

    Build list;
    list.i32(0).count(1).str("t");  // throttle_time_ms, topics, name
    list.count(n).zeros(64);        //   partitions: hostile
    expect_malformed(Api::list_offsets, 5, list, "ListOffsets partitions count");
  }
}

// ---- Limits ---------------------------------------------------------------------------------

TEST(KafkaProtocolError, PartitionCountAboveTheLimit) {
  // Well-formed, and every partition is there, but one more than kPartitionsMax.
  const int16_t v = 4;
  const size_t partition_bytes = 4 + 2 + 8 + 8 + 4 + 4;  // v4: no log_start_offset
  Build b;
  b.i32(0);                     // throttle_time_ms
  b.count(1).str("t");          // responses, topic
  b.count(kPartitionsMax + 1);  //   partitions
  for (int32_t i = 0; i <= kPartitionsMax; ++i) {
    b.i32(i).i16(0).i64(0).i64(0);  //     partition, error, hw, lso
    b.count(-1).i32(-1);            //     aborted_transactions, records: null
  }
  ASSERT_EQ(b.size(), 4 + 4 + 3 + 4 + size_t(kPartitionsMax + 1) * partition_bytes);
  Decoded d = decode(Api::fetch, v, b);
  EXPECT_EQ(d.result.status, ResponseStatus::limit_exceeded);
  EXPECT_LE(d.capacity_max, 1u);  // the one topic; refused before reserving partitions

  // The limit is on the whole response: two topics of 50 001 partitions exceed it too.
  Build two;
  two.i32(0).count(2);  // throttle_time_ms, responses
  for (int t = 0; t < 2; ++t) {
    two.str(t == 0 ? "a" : "b").count(kPartitionsMax / 2 + 1);
    for (int32_t i = 0; i <= kPartitionsMax / 2; ++i) {
      two.i32(i).i16(0).i64(0).i64(0).count(-1).i32(-1);
    }
  }
  EXPECT_EQ(decode(Api::fetch, v, two).result.status, ResponseStatus::limit_exceeded);

  // Exactly at the limit is fine.
  Build at;
  at.i32(0).count(1).str("t").count(kPartitionsMax);
  for (int32_t i = 0; i < kPartitionsMax; ++i) at.i32(i).i16(0).i64(0).i64(0).count(-1).i32(-1);
  Decoded ok = decode(Api::fetch, v, at);
  EXPECT_TRUE(ok.result.ok()) << ok.result.reason;
}

TEST(KafkaProtocolError, AbortedTransactionsAboveTheLimit) {
  Build b;
  b.i32(0).i16(0).i32(0);                // throttle_time_ms, error_code, session_id
  b.count(1).str("t").count(1);          // responses, topic, partitions
  b.i32(0).i16(0).i64(0).i64(0).i64(0);  //   partition, error, hw, lso, log_start
  b.count(kAbortedTransactionsMax + 1);  //   aborted_transactions
  b.zeros(size_t(kAbortedTransactionsMax + 1) * 16);
  b.i32(-1).i32(-1);  //   preferred_read_replica, records
  Decoded d = decode(Api::fetch, 11, b);
  EXPECT_EQ(d.result.status, ResponseStatus::limit_exceeded);
  EXPECT_LE(d.capacity_max, kSmallCapacity);
}

TEST(KafkaProtocolError, TopicsBrokersAndApisAboveTheirLimits) {
  Build topics;
  topics.i32(0).count(kTopicsMax + 1);  // throttle_time_ms, topics
  for (int32_t i = 0; i <= kTopicsMax; ++i) topics.str("t").count(0);
  EXPECT_EQ(decode(Api::list_offsets, 5, topics).result.status, ResponseStatus::limit_exceeded);

  Build brokers;
  brokers.i32(0).count(kBrokersMax + 1);  // throttle_time_ms, brokers
  for (int32_t i = 0; i <= kBrokersMax; ++i) brokers.i32(i).str("h").i32(1).i16(-1);
  brokers.str("c").i32(0).count(0).i32(0);  // cluster_id, controller_id, topics, cluster ops
  EXPECT_EQ(decode(Api::metadata, 8, brokers).result.status, ResponseStatus::limit_exceeded);

  Build apis;
  apis.i16(0).count(kApiVersionsEntriesMax + 1);  // error_code, api_keys
  apis.zeros(size_t(kApiVersionsEntriesMax + 1) * 6).i32(0);
  EXPECT_EQ(decode(Api::api_versions, 2, apis).result.status, ResponseStatus::limit_exceeded);
}

// ---- Versions -------------------------------------------------------------------------------

TEST(KafkaProtocolError, DecodersRefuseVersionsOutsideTheirRange) {
  const Bytes any(64, 0);
  const std::pair<Api, int16_t> cases[] = {
      {Api::api_versions, -1}, {Api::api_versions, 3}, {Api::metadata, 0},
      {Api::metadata, 9},      {Api::list_offsets, 0}, {Api::list_offsets, 6},
      {Api::fetch, 3},         {Api::fetch, 12},       {Api::fetch, 32767},
  };
  for (auto [api, v] : cases) {
    EXPECT_EQ(decode(api, v, any.data(), any.size()).result.status,
              ResponseStatus::unsupported_version)
        << int(api) << " v" << v;
  }
}

TEST(KafkaProtocolError, EncodersRefuseVersionsOutsideTheirRange) {
  Bytes out{0xEE};
  Writer w(out);
  const std::string_view topics[] = {"t"};
  FetchRequest fetch;
  EXPECT_EQ(encode_api_versions_request(w, 3, 1, "c"), EncodeStatus::unsupported_version);
  EXPECT_EQ(encode_metadata_request(w, 0, 1, "c", topics), EncodeStatus::unsupported_version);
  EXPECT_EQ(encode_metadata_request(w, 9, 1, "c", topics), EncodeStatus::unsupported_version);
  EXPECT_EQ(encode_list_offsets_request(w, 0, 1, "c", IsolationLevel::read_uncommitted, {}),
            EncodeStatus::unsupported_version);
  EXPECT_EQ(encode_list_offsets_request(w, 6, 1, "c", IsolationLevel::read_uncommitted, {}),
            EncodeStatus::unsupported_version);
  EXPECT_EQ(encode_fetch_request(w, 3, 1, "c", fetch), EncodeStatus::unsupported_version);
  EXPECT_EQ(encode_fetch_request(w, 12, 1, "c", fetch), EncodeStatus::unsupported_version);
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(out, Bytes{0xEE});  // nothing written
}

// ---- Encoders out of room or length --------------------------------------------------------

TEST(KafkaProtocolError, EncoderOutOfRoomLeavesNothing) {
  const FetchPartitionRequest parts[] = {{.partition = 0, .fetch_offset = 5}};
  const FetchTopicRequest topics[] = {{"orders", parts}};
  FetchRequest request;
  request.topics = topics;
  // Every region size short of the full request fails with no_room and leaves size() at 0.
  Bytes full;
  Writer fw(full);
  ASSERT_EQ(encode_fetch_request(fw, 11, 1, "sluice", request), EncodeStatus::ok);
  for (size_t room = 0; room < full.size(); ++room) {
    std::vector<uint8_t> region(room + 1);
    Writer w(region.data(), room);
    EXPECT_EQ(encode_fetch_request(w, 11, 1, "sluice", request), EncodeStatus::no_room) << room;
    EXPECT_EQ(w.size(), 0u) << room;
  }
  std::vector<uint8_t> region(full.size());
  Writer w(region.data(), region.size());
  ASSERT_EQ(encode_fetch_request(w, 11, 1, "sluice", request), EncodeStatus::ok);
  EXPECT_EQ(region, full);
}

TEST(KafkaProtocolError, EncoderTooLongNameLeavesThePreviousBytes) {
  Bytes out;
  Writer w(out);
  ASSERT_EQ(encode_api_versions_request(w, 2, 1, "c"), EncodeStatus::ok);
  const size_t before = out.size();
  std::string long_name(40'000, 't');
  const std::string_view topics[] = {"ok", long_name};
  EXPECT_EQ(encode_metadata_request(w, 8, 2, "c", topics), EncodeStatus::too_long);
  EXPECT_EQ(out.size(), before);
  std::string long_client(32'768, 'c');
  Bytes out2;
  Writer w2(out2);
  EXPECT_EQ(encode_api_versions_request(w2, 2, 1, long_client), EncodeStatus::too_long);
  EXPECT_TRUE(out2.empty());
}

// ---- Framing --------------------------------------------------------------------------------

TEST(KafkaProtocolError, FrameSizes) {
  size_t body = 99;
  const uint8_t partial_prefix[] = {0, 0, 0};
  EXPECT_EQ(peek_response_frame(partial_prefix, 1000, body), FrameStatus::need_more);
  const uint8_t negative[] = {0xFF, 0xFF, 0xFF, 0xFE, 0};
  EXPECT_EQ(peek_response_frame(negative, 1000, body), FrameStatus::bad_size);
  const uint8_t huge[] = {0x7F, 0xFF, 0xFF, 0xFF};
  EXPECT_EQ(peek_response_frame(huge, 1000, body), FrameStatus::bad_size);
  const uint8_t over[] = {0, 0, 0x03, 0xE9};  // 1001
  EXPECT_EQ(peek_response_frame(over, 1000, body), FrameStatus::bad_size);
  const uint8_t partial[] = {0, 0, 0, 3, 1, 2};
  EXPECT_EQ(peek_response_frame(partial, 1000, body), FrameStatus::need_more);
  EXPECT_EQ(body, 3u);
  const uint8_t complete[] = {0, 0, 0, 3, 1, 2, 3, 9};  // and the next response's first byte
  EXPECT_EQ(peek_response_frame(complete, 1000, body), FrameStatus::complete);
  EXPECT_EQ(body, 3u);
  const uint8_t empty[] = {0, 0, 0, 0};
  EXPECT_EQ(peek_response_frame(empty, 1000, body), FrameStatus::complete);
  EXPECT_EQ(body, 0u);
}

TEST(KafkaProtocolError, FailedDecodeEmptiesReusedVectors) {
  FetchResponse out;
  Build good = fetch_body(11);
  {
    Reader r(good.bytes().data(), good.size());
    ASSERT_TRUE(decode_fetch_response(r, 11, out).ok());
    ASSERT_EQ(out.partitions.size(), 4u);
  }
  Reader r(good.bytes().data(), good.size() - 1);
  EXPECT_EQ(decode_fetch_response(r, 11, out).status, ResponseStatus::malformed);
  EXPECT_TRUE(out.topics.empty());
  EXPECT_TRUE(out.partitions.empty());
  EXPECT_TRUE(out.aborted_transactions.empty());
  EXPECT_GE(out.partitions.capacity(), 4u);
}

}  // namespace
}  // namespace sluice::kafka
