#include "io/kafka/protocol.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/util/kafka_bytes.h"

// Expected requests and test responses are built field by field from the message definitions
// in Kafka's clients/src/main/resources/common/message/*.json (one comment per field naming
// it), with the byte builder of tests/util/kafka_bytes.h, never with the Writer/encoders under test.

namespace sluice::kafka {

static std::ostream& operator<<(std::ostream& os, ResponseStatus s) {
  return os << to_string(s);
}
static std::ostream& operator<<(std::ostream& os, EncodeStatus s) {
  return os << to_string(s);
}
static std::ostream& operator<<(std::ostream& os, ErrorCode e) {
  return os << to_string(e);
}

namespace {

using Bytes = std::vector<uint8_t>;

using Build = testing_util::KafkaBytes;

// A request as Kafka frames it: int32 size, request header v1, body.
Bytes request_frame(int api_key, int version, int32_t correlation_id, std::string_view client_id,
                    const Build& body) {
  Build header;
  header
      .i16(api_key)         // request_api_key
      .i16(version)         // request_api_version
      .i32(correlation_id)  // correlation_id
      .str(client_id);      // client_id
  Build frame;
  frame.i32(int64_t(header.size() + body.size()));  // message size
  Bytes out = frame.bytes();
  out.insert(out.end(), header.bytes().begin(), header.bytes().end());
  out.insert(out.end(), body.bytes().begin(), body.bytes().end());
  return out;
}

Bytes encoded(auto&& encode) {
  Bytes out;
  Writer w(out);
  EXPECT_EQ(encode(w), EncodeStatus::ok);
  return out;
}

// ---- Requests -----------------------------------------------------------------------------

TEST(KafkaProtocol, ApiVersionsRequestLiteralBytes) {
  // Worked out on paper: size 16 = api_key 2 + api_version 2 + correlation_id 4 + client_id 8.
  const Bytes expected{0x00, 0x00, 0x00, 0x10,                       // message size
                       0x00, 0x12,                                   // request_api_key 18
                       0x00, 0x02,                                   // request_api_version 2
                       0x00, 0x00, 0x00, 0x07,                       // correlation_id 7
                       0x00, 0x06, 's',  'l',  'u', 'i', 'c', 'e'};  // client_id
  EXPECT_EQ(encoded([](Writer& w) { return encode_api_versions_request(w, 2, 7, "sluice"); }),
            expected);
}

TEST(KafkaProtocol, ApiVersionsRequestEachVersion) {
  for (int16_t v = 0; v <= 2; ++v) {
    SCOPED_TRACE(v);
    Build body;  // v0-v2: no fields
    EXPECT_EQ(encoded([&](Writer& w) { return encode_api_versions_request(w, v, 42, "c"); }),
              request_frame(18, v, 42, "c", body));
  }
}

TEST(KafkaProtocol, MetadataRequestEachVersion) {
  const std::string_view topics[] = {"orders", "clicks"};
  for (int16_t v = 1; v <= 8; ++v) {
    SCOPED_TRACE(v);
    Build body;
    body.count(2)                     // topics
        .str("orders")                //   name
        .str("clicks");               //   name
    if (v >= 4) body.boolean(false);  // allow_auto_topic_creation
    if (v >= 8) {
      body.boolean(false);  // include_cluster_authorized_operations
      body.boolean(false);  // include_topic_authorized_operations
    }
    EXPECT_EQ(encoded([&](Writer& w) {
                return encode_metadata_request(w, v, 1000 + v, "sluice-1", topics);
              }),
              request_frame(3, v, 1000 + v, "sluice-1", body));
  }
}

TEST(KafkaProtocol, MetadataRequestForNoTopicsIsAnEmptyArrayNotNull) {
  Build body;
  body.count(0)         // topics: empty = none (null would mean all)
      .boolean(false);  // allow_auto_topic_creation
  EXPECT_EQ(encoded([](Writer& w) { return encode_metadata_request(w, 5, 9, "x", {}); }),
            request_frame(3, 5, 9, "x", body));
}

TEST(KafkaProtocol, ListOffsetsRequestEachVersion) {
  const ListOffsetsPartitionRequest orders[] = {
      {.partition = 0, .timestamp = kListOffsetsEarliest},
      {.partition = 3, .timestamp = kListOffsetsLatest, .current_leader_epoch = 12},
  };
  const ListOffsetsPartitionRequest clicks[] = {
      {.partition = 1, .timestamp = 1'700'000'000'123},
  };
  const ListOffsetsTopicRequest topics[] = {{"orders", orders}, {"clicks", clicks}};
  for (int16_t v = 1; v <= 5; ++v) {
    SCOPED_TRACE(v);
    Build body;
    body.i32(-1);                 // replica_id
    if (v >= 2) body.i8(1);       // isolation_level: READ_COMMITTED
    body.count(2);                // topics
    body.str("orders");           //   name
    body.count(2);                //   partitions
    body.i32(0);                  //     partition_index
    if (v >= 4) body.i32(-1);     //     current_leader_epoch
    body.i64(-2);                 //     timestamp: earliest
    body.i32(3);                  //     partition_index
    if (v >= 4) body.i32(12);     //     current_leader_epoch
    body.i64(-1);                 //     timestamp: latest
    body.str("clicks");           //   name
    body.count(1);                //   partitions
    body.i32(1);                  //     partition_index
    if (v >= 4) body.i32(-1);     //     current_leader_epoch
    body.i64(1'700'000'000'123);  //     timestamp
    EXPECT_EQ(encoded([&](Writer& w) {
                return encode_list_offsets_request(w, v, -5, "sl", IsolationLevel::read_committed,
                                                   topics);
              }),
              request_frame(2, v, -5, "sl", body));
  }
}

TEST(KafkaProtocol, FetchRequestEachVersion) {
  const FetchPartitionRequest orders[] = {
      {.partition = 0, .fetch_offset = 100, .partition_max_bytes = 65536},
      {.partition = 2,
       .fetch_offset = int64_t(1) << 40,
       .partition_max_bytes = 1 << 20,
       .current_leader_epoch = 9},
  };
  const FetchPartitionRequest clicks[] = {
      {.partition = 7, .fetch_offset = 0, .partition_max_bytes = 4096},
  };
  const FetchTopicRequest topics[] = {{"orders", orders}, {"clicks", clicks}};
  FetchRequest request;
  request.max_wait_ms = 250;
  request.min_bytes = 16;
  request.max_bytes = 8 << 20;
  request.topics = topics;
  for (IsolationLevel level : {IsolationLevel::read_uncommitted, IsolationLevel::read_committed}) {
    request.isolation_level = level;
    for (int16_t v = 4; v <= 11; ++v) {
      SCOPED_TRACE(v);
      Build body;
      body.i32(-1);         // replica_id
      body.i32(250);        // max_wait_ms
      body.i32(16);         // min_bytes
      body.i32(8 << 20);    // max_bytes (v3+)
      body.i8(int(level));  // isolation_level (v4+)
      if (v >= 7) {
        body.i32(0);   // session_id
        body.i32(-1);  // session_epoch
      }
      body.count(2);               // topics
      body.str("orders");          //   topic
      body.count(2);               //   partitions
      body.i32(0);                 //     partition
      if (v >= 9) body.i32(-1);    //     current_leader_epoch
      body.i64(100);               //     fetch_offset
      if (v >= 5) body.i64(-1);    //     log_start_offset
      body.i32(65536);             //     partition_max_bytes
      body.i32(2);                 //     partition
      if (v >= 9) body.i32(9);     //     current_leader_epoch
      body.i64(int64_t(1) << 40);  //     fetch_offset
      if (v >= 5) body.i64(-1);    //     log_start_offset
      body.i32(1 << 20);           //     partition_max_bytes
      body.str("clicks");          //   topic
      body.count(1);               //   partitions
      body.i32(7);                 //     partition
      if (v >= 9) body.i32(-1);    //     current_leader_epoch
      body.i64(0);                 //     fetch_offset
      if (v >= 5) body.i64(-1);    //     log_start_offset
      body.i32(4096);              //     partition_max_bytes
      if (v >= 7) body.count(0);   // forgotten_topics_data
      if (v >= 11) body.str("");   // rack_id
      EXPECT_EQ(
          encoded([&](Writer& w) { return encode_fetch_request(w, v, 77, "sluice", request); }),
          request_frame(1, v, 77, "sluice", body));
    }
  }
}

TEST(KafkaProtocol, RequestsAppendAfterExistingBytes) {
  // Requests pipelined into one buffer each carry their own size prefix.
  Bytes out;
  Writer w(out);
  ASSERT_EQ(encode_api_versions_request(w, 0, 1, "a"), EncodeStatus::ok);
  ASSERT_EQ(encode_api_versions_request(w, 1, 2, "b"), EncodeStatus::ok);
  Bytes expected = request_frame(18, 0, 1, "a", Build{});
  Bytes second = request_frame(18, 1, 2, "b", Build{});
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(out, expected);
}

TEST(KafkaProtocol, RequestIntoAFixedRegion) {
  uint8_t region[64];
  Writer w(region, sizeof region);
  ASSERT_EQ(encode_api_versions_request(w, 2, 3, "id"), EncodeStatus::ok);
  Bytes expected = request_frame(18, 2, 3, "id", Build{});
  EXPECT_EQ(Bytes(region, region + w.size()), expected);
}

// ---- Response header ------------------------------------------------------------------------

TEST(KafkaProtocol, ResponseHeaderAndFrame) {
  Build b;
  b.i32(14)         // message size
      .i32(123456)  // correlation_id
      .i16(0)       // (body) error_code
      .count(0)     // (body) api_keys
      .i32(0);      // (body) throttle_time_ms
  size_t body_bytes = 0;
  ASSERT_EQ(peek_response_frame(b.bytes(), 1 << 20, body_bytes), FrameStatus::complete);
  EXPECT_EQ(body_bytes, 14u);
  Reader r(b.bytes().data() + 4, body_bytes);
  int32_t correlation_id = 0;
  ASSERT_TRUE(decode_response_header(r, correlation_id));
  EXPECT_EQ(correlation_id, 123456);
  ApiVersionsResponse out;
  EXPECT_TRUE(decode_api_versions_response(r, 1, out).ok());
}

// ---- ApiVersions ----------------------------------------------------------------------------

Build api_versions_body(int16_t v, int16_t error) {
  Build b;
  b.i16(error);               // error_code
  b.count(5);                 // api_keys
  b.i16(0).i16(0).i16(9);     //   Produce v0-v9
  b.i16(1).i16(4).i16(13);    //   Fetch v4-v13
  b.i16(3).i16(1).i16(12);    //   Metadata v1-v12
  b.i16(18).i16(0).i16(3);    //   ApiVersions v0-v3
  b.i16(1000).i16(0).i16(1);  //   an API Sluice does not know
  if (v >= 1) b.i32(250);     // throttle_time_ms
  return b;
}

TEST(KafkaProtocol, ApiVersionsResponseEachVersion) {
  for (int16_t v = 0; v <= 2; ++v) {
    SCOPED_TRACE(v);
    Build b = api_versions_body(v, 0);
    Reader r(b.bytes().data(), b.size());
    ApiVersionsResponse out;
    DecodeResult res = decode_api_versions_response(r, v, out);
    ASSERT_TRUE(res.ok()) << res.reason;
    EXPECT_EQ(out.error, ErrorCode::none);
    ASSERT_EQ(out.apis.size(), 5u);
    EXPECT_EQ(out.apis[0], (ApiVersionRange{ApiKey::produce, 0, 9}));
    EXPECT_EQ(out.apis[1], (ApiVersionRange{ApiKey::fetch, 4, 13}));
    EXPECT_EQ(out.apis[2], (ApiVersionRange{ApiKey::metadata, 1, 12}));
    EXPECT_EQ(out.apis[3], (ApiVersionRange{ApiKey::api_versions, 0, 3}));
    EXPECT_EQ(int(out.apis[4].key), 1000);
    EXPECT_EQ(out.throttle_time_ms, v >= 1 ? 250 : 0);
  }
}

TEST(KafkaProtocol, ApiVersionsUnsupportedVersionAnswerIsReadAsV0) {
  // We asked with v2; the broker knows only v0-v1 and answers in v0 shape.
  Build b;
  b.i16(35)      // error_code: UNSUPPORTED_VERSION
      .count(1)  // api_keys
      .i16(18)
      .i16(0)
      .i16(1);  //   ApiVersions v0-v1
  Reader r(b.bytes().data(), b.size());
  ApiVersionsResponse out;
  ASSERT_TRUE(decode_api_versions_response(r, 2, out).ok());
  EXPECT_EQ(out.error, ErrorCode::unsupported_version);
  ASSERT_EQ(out.apis.size(), 1u);
  EXPECT_EQ(pick_version(kApiVersionsVersions, out.apis), 1);  // retry with v1
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(KafkaProtocol, ApiVersionsV0ShapeWithoutUnsupportedVersionIsMalformed) {
  Build b;
  b.i16(0)       // error_code: NONE
      .count(1)  // api_keys
      .i16(18)
      .i16(0)
      .i16(1);
  // (no throttle_time_ms: a v1 body cut short, not a fallback answer)
  Reader r(b.bytes().data(), b.size());
  ApiVersionsResponse out;
  EXPECT_EQ(decode_api_versions_response(r, 1, out).status, ResponseStatus::malformed);
  EXPECT_TRUE(out.apis.empty());
}

// ---- Metadata -------------------------------------------------------------------------------

Build metadata_body(int16_t v, bool null_cluster_id) {
  Build b;
  if (v >= 3) b.i32(17);                                  // throttle_time_ms
  b.count(2);                                             // brokers
  b.i32(1).str("kafka-1.local").i32(9092).str("rack-a");  // node_id, host, port, rack
  b.i32(2).str("kafka-2.local").i32(9093).null_str();     // node_id, host, port, rack: null
  if (v >= 2) {
    if (null_cluster_id) {
      b.null_str();  // cluster_id: null
    } else {
      b.str("cluster-x");  // cluster_id
    }
  }
  b.i32(2);    // controller_id
  b.count(3);  // topics
  // topic 1
  b.i16(0);                         //   error_code
  b.str("orders");                  //   name
  b.boolean(false);                 //   is_internal
  b.count(2);                       //   partitions
  b.i16(0);                         //     error_code
  b.i32(0);                         //     partition_index
  b.i32(1);                         //     leader_id
  if (v >= 7) b.i32(7);             //     leader_epoch
  b.count(2).i32(1).i32(2);         //     replica_nodes
  b.count(2).i32(1).i32(2);         //     isr_nodes
  if (v >= 5) b.count(0);           //     offline_replicas
  b.i16(5);                         //     error_code: LEADER_NOT_AVAILABLE
  b.i32(1);                         //     partition_index
  b.i32(-1);                        //     leader_id
  if (v >= 7) b.i32(8);             //     leader_epoch
  b.count(3).i32(2).i32(1).i32(3);  //     replica_nodes
  b.count(1).i32(2);                //     isr_nodes
  if (v >= 5) b.count(1).i32(1);    //     offline_replicas
  if (v >= 8) b.i32(0x0F00);        //   topic_authorized_operations
  // topic 2
  b.i16(3);                                //   error_code: UNKNOWN_TOPIC_OR_PARTITION
  b.str("missing");                        //   name
  b.boolean(false);                        //   is_internal
  b.count(0);                              //   partitions
  if (v >= 8) b.i32(int32_t(0x80000000));  //   topic_authorized_operations: not requested
  // topic 3
  b.i16(0);                                //   error_code
  b.str("__consumer_offsets");             //   name
  b.boolean(true);                         //   is_internal
  b.count(1);                              //   partitions
  b.i16(0);                                //     error_code
  b.i32(49);                               //     partition_index
  b.i32(2);                                //     leader_id
  if (v >= 7) b.i32(0);                    //     leader_epoch
  b.count(1).i32(2);                       //     replica_nodes
  b.count(1).i32(2);                       //     isr_nodes
  if (v >= 5) b.count(0);                  //     offline_replicas
  if (v >= 8) b.i32(int32_t(0x80000000));  //   topic_authorized_operations
  if (v >= 8) b.i32(int32_t(0x80000000));  // cluster_authorized_operations
  return b;
}

TEST(KafkaProtocol, MetadataResponseEachVersion) {
  for (int16_t v = 1; v <= 8; ++v) {
    for (bool null_cluster_id : {false, true}) {
      SCOPED_TRACE(testing::Message() << "v" << v << " null_cluster_id " << null_cluster_id);
      Build b = metadata_body(v, null_cluster_id);
      Reader r(b.bytes().data(), b.size());
      MetadataResponse out;
      DecodeResult res = decode_metadata_response(r, v, out);
      ASSERT_TRUE(res.ok()) << res.reason;
      EXPECT_EQ(out.throttle_time_ms, v >= 3 ? 17 : 0);
      ASSERT_EQ(out.brokers.size(), 2u);
      EXPECT_EQ(out.brokers[0].node_id, 1);
      EXPECT_EQ(out.brokers[0].host, "kafka-1.local");
      EXPECT_EQ(out.brokers[0].port, 9092);
      ASSERT_TRUE(out.brokers[0].rack.has_value());
      EXPECT_EQ(*out.brokers[0].rack, "rack-a");
      EXPECT_EQ(out.brokers[1].node_id, 2);
      EXPECT_EQ(out.brokers[1].host, "kafka-2.local");
      EXPECT_EQ(out.brokers[1].port, 9093);
      EXPECT_FALSE(out.brokers[1].rack.has_value());
      if (v >= 2 && !null_cluster_id) {
        ASSERT_TRUE(out.cluster_id.has_value());
        EXPECT_EQ(*out.cluster_id, "cluster-x");
      } else {
        EXPECT_FALSE(out.cluster_id.has_value());
      }
      EXPECT_EQ(out.controller_id, 2);
      ASSERT_EQ(out.topics.size(), 3u);
      ASSERT_EQ(out.partitions.size(), 3u);

      const MetadataTopic& orders = out.topics[0];
      EXPECT_EQ(orders.error, ErrorCode::none);
      EXPECT_EQ(orders.name, "orders");
      EXPECT_FALSE(orders.is_internal);
      auto op = out.partitions_of(orders);
      ASSERT_EQ(op.size(), 2u);
      EXPECT_EQ(op[0].topic, "orders");
      EXPECT_EQ(op[0].error, ErrorCode::none);
      EXPECT_EQ(op[0].partition, 0);
      EXPECT_EQ(op[0].leader, 1);
      EXPECT_EQ(op[0].leader_epoch, v >= 7 ? 7 : -1);
      EXPECT_EQ(op[1].topic, "orders");
      EXPECT_EQ(op[1].error, ErrorCode::leader_not_available);
      EXPECT_EQ(op[1].partition, 1);
      EXPECT_EQ(op[1].leader, -1);
      EXPECT_EQ(op[1].leader_epoch, v >= 7 ? 8 : -1);

      const MetadataTopic& missing = out.topics[1];
      EXPECT_EQ(missing.error, ErrorCode::unknown_topic_or_partition);
      EXPECT_EQ(missing.name, "missing");
      EXPECT_FALSE(missing.is_internal);
      EXPECT_TRUE(out.partitions_of(missing).empty());

      const MetadataTopic& internal = out.topics[2];
      EXPECT_EQ(internal.error, ErrorCode::none);
      EXPECT_EQ(internal.name, "__consumer_offsets");
      EXPECT_TRUE(internal.is_internal);
      auto ip = out.partitions_of(internal);
      ASSERT_EQ(ip.size(), 1u);
      EXPECT_EQ(ip[0].topic, "__consumer_offsets");
      EXPECT_EQ(ip[0].partition, 49);
      EXPECT_EQ(ip[0].leader, 2);
      EXPECT_EQ(ip[0].leader_epoch, v >= 7 ? 0 : -1);

      ASSERT_NE(out.find_broker(2), nullptr);
      EXPECT_EQ(out.find_broker(2)->port, 9093);
      EXPECT_EQ(out.find_broker(3), nullptr);
    }
  }
}

TEST(KafkaProtocol, MetadataStringsAreViewsIntoTheResponse) {
  Build b = metadata_body(8, false);
  const Bytes& bytes = b.bytes();
  Reader r(bytes.data(), bytes.size());
  MetadataResponse out;
  ASSERT_TRUE(decode_metadata_response(r, 8, out).ok());
  auto inside = [&](std::string_view s) {
    auto* p = reinterpret_cast<const uint8_t*>(s.data());
    return p >= bytes.data() && p + s.size() <= bytes.data() + bytes.size();
  };
  EXPECT_TRUE(inside(out.brokers[0].host));
  EXPECT_TRUE(inside(*out.cluster_id));
  EXPECT_TRUE(inside(out.topics[2].name));
}

// ---- ListOffsets ----------------------------------------------------------------------------

Build list_offsets_body(int16_t v) {
  Build b;
  if (v >= 2) b.i32(3);      // throttle_time_ms
  b.count(2);                // topics
  b.str("orders");           //   name
  b.count(2);                //   partitions
  b.i32(0);                  //     partition_index
  b.i16(0);                  //     error_code
  b.i64(-1);                 //     timestamp
  b.i64(100);                //     offset
  if (v >= 4) b.i32(4);      //     leader_epoch
  b.i32(1);                  //     partition_index
  b.i16(6);                  //     error_code: NOT_LEADER_OR_FOLLOWER
  b.i64(-1);                 //     timestamp
  b.i64(-1);                 //     offset
  if (v >= 4) b.i32(-1);     //     leader_epoch
  b.str("clicks");           //   name
  b.count(1);                //   partitions
  b.i32(3);                  //     partition_index
  b.i16(0);                  //     error_code
  b.i64(1'700'000'000'000);  //     timestamp
  b.i64(int64_t(1) << 33);   //     offset
  if (v >= 4) b.i32(11);     //     leader_epoch
  return b;
}

TEST(KafkaProtocol, ListOffsetsResponseEachVersion) {
  for (int16_t v = 1; v <= 5; ++v) {
    SCOPED_TRACE(v);
    Build b = list_offsets_body(v);
    Reader r(b.bytes().data(), b.size());
    ListOffsetsResponse out;
    DecodeResult res = decode_list_offsets_response(r, v, out);
    ASSERT_TRUE(res.ok()) << res.reason;
    EXPECT_EQ(out.throttle_time_ms, v >= 2 ? 3 : 0);
    ASSERT_EQ(out.topics.size(), 2u);
    EXPECT_EQ(out.topics[0].name, "orders");
    auto o = out.partitions_of(out.topics[0]);
    ASSERT_EQ(o.size(), 2u);
    EXPECT_EQ(o[0].topic, "orders");
    EXPECT_EQ(o[0].partition, 0);
    EXPECT_EQ(o[0].error, ErrorCode::none);
    EXPECT_EQ(o[0].timestamp, -1);
    EXPECT_EQ(o[0].offset, 100);
    EXPECT_EQ(o[0].leader_epoch, v >= 4 ? 4 : -1);
    EXPECT_EQ(o[1].partition, 1);
    EXPECT_EQ(o[1].error, ErrorCode::not_leader_or_follower);
    EXPECT_EQ(o[1].timestamp, -1);
    EXPECT_EQ(o[1].offset, -1);
    EXPECT_EQ(o[1].leader_epoch, -1);
    EXPECT_EQ(out.topics[1].name, "clicks");
    auto c = out.partitions_of(out.topics[1]);
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].topic, "clicks");
    EXPECT_EQ(c[0].partition, 3);
    EXPECT_EQ(c[0].error, ErrorCode::none);
    EXPECT_EQ(c[0].timestamp, 1'700'000'000'000);
    EXPECT_EQ(c[0].offset, int64_t(1) << 33);
    EXPECT_EQ(c[0].leader_epoch, v >= 4 ? 11 : -1);
  }
}

// ---- Fetch ----------------------------------------------------------------------------------

const Bytes kRecordsA{0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9};
const Bytes kRecordsC{0xAB, 0xCD};

Build fetch_body(int16_t v) {
  Build b;
  b.i32(11);  // throttle_time_ms
  if (v >= 7) {
    b.i16(0);  // error_code
    b.i32(0);  // session_id
  }
  b.count(2);       // responses (topics)
  b.str("orders");  //   topic
  b.count(2);       //   partitions
  // partition 0: data and two aborted transactions
  b.i32(0);               //     partition_index
  b.i16(0);               //     error_code
  b.i64(1000);            //     high_watermark
  b.i64(990);             //     last_stable_offset
  if (v >= 5) b.i64(10);  //     log_start_offset
  b.count(2);             //     aborted_transactions
  b.i64(77).i64(950);     //       producer_id, first_offset
  b.i64(78).i64(960);     //       producer_id, first_offset
  if (v >= 11) b.i32(2);  //     preferred_read_replica
  b.blob(kRecordsA);      //     records
  // partition 1: an error, null aborted transactions, null records
  b.i32(1);                //     partition_index
  b.i16(1);                //     error_code: OFFSET_OUT_OF_RANGE
  b.i64(5);                //     high_watermark
  b.i64(5);                //     last_stable_offset
  if (v >= 5) b.i64(0);    //     log_start_offset
  b.count(-1);             //     aborted_transactions: null
  if (v >= 11) b.i32(-1);  //     preferred_read_replica
  b.null_blob();           //     records: null
  b.str("clicks");         //   topic
  b.count(2);              //   partitions
  // partition 2: empty (not null) aborted list, empty records
  b.i32(2);                //     partition_index
  b.i16(0);                //     error_code
  b.i64(0);                //     high_watermark
  b.i64(0);                //     last_stable_offset
  if (v >= 5) b.i64(0);    //     log_start_offset
  b.count(0);              //     aborted_transactions: empty
  if (v >= 11) b.i32(-1);  //     preferred_read_replica
  b.blob({});              //     records: empty
  // partition 3: one aborted transaction, a few bytes of records
  b.i32(3);                             //     partition_index
  b.i16(0);                             //     error_code
  b.i64(int64_t(1) << 35);              //     high_watermark
  b.i64((int64_t(1) << 35) - 1);        //     last_stable_offset
  if (v >= 5) b.i64(int64_t(1) << 34);  //   log_start_offset
  b.count(1);                           //     aborted_transactions
  b.i64(-5).i64(int64_t(1) << 34);      //       producer_id, first_offset
  if (v >= 11) b.i32(-1);               //     preferred_read_replica
  b.blob(kRecordsC);                    //     records
  return b;
}

// Where kRecordsA sits in fetch_body(v): after everything before partition 0's records.
size_t records_a_offset(int16_t v) {
  size_t at = 4 + (v >= 7 ? 6 : 0) + 4 + 8 + 4;  // throttle, error+session, topics, "orders", count
  at += 4 + 2 + 8 + 8 + (v >= 5 ? 8 : 0) + 4 + 32 + (v >= 11 ? 4 : 0);
  return at + 4;  // the records' int32 length
}

TEST(KafkaProtocol, FetchResponseEachVersion) {
  for (int16_t v = 4; v <= 11; ++v) {
    SCOPED_TRACE(v);
    Build b = fetch_body(v);
    const Bytes& bytes = b.bytes();
    Reader r(bytes.data(), bytes.size());
    FetchResponse out;
    DecodeResult res = decode_fetch_response(r, v, out);
    ASSERT_TRUE(res.ok()) << res.reason;
    EXPECT_EQ(out.throttle_time_ms, 11);
    EXPECT_EQ(out.error, ErrorCode::none);
    EXPECT_EQ(out.session_id, 0);
    ASSERT_EQ(out.topics.size(), 2u);
    ASSERT_EQ(out.partitions.size(), 4u);
    ASSERT_EQ(out.aborted_transactions.size(), 3u);

    EXPECT_EQ(out.topics[0].name, "orders");
    auto o = out.partitions_of(out.topics[0]);
    ASSERT_EQ(o.size(), 2u);
    const FetchPartition& p0 = o[0];
    EXPECT_EQ(p0.topic, "orders");
    EXPECT_EQ(p0.partition, 0);
    EXPECT_EQ(p0.error, ErrorCode::none);
    EXPECT_EQ(p0.high_watermark, 1000);
    EXPECT_EQ(p0.last_stable_offset, 990);
    EXPECT_EQ(p0.log_start_offset, v >= 5 ? 10 : -1);
    EXPECT_FALSE(p0.aborted_null);
    auto a0 = out.aborted_of(p0);
    ASSERT_EQ(a0.size(), 2u);
    EXPECT_EQ(a0[0].producer_id, 77);
    EXPECT_EQ(a0[0].first_offset, 950);
    EXPECT_EQ(a0[1].producer_id, 78);
    EXPECT_EQ(a0[1].first_offset, 960);
    EXPECT_EQ(p0.preferred_read_replica, v >= 11 ? 2 : -1);
    EXPECT_FALSE(p0.records_null);
    ASSERT_EQ(p0.records.size(), kRecordsA.size());
    EXPECT_EQ(p0.records.data(), bytes.data() + records_a_offset(v));  // a view, not a copy
    EXPECT_TRUE(std::equal(p0.records.begin(), p0.records.end(), kRecordsA.begin()));

    const FetchPartition& p1 = o[1];
    EXPECT_EQ(p1.topic, "orders");
    EXPECT_EQ(p1.partition, 1);
    EXPECT_EQ(p1.error, ErrorCode::offset_out_of_range);
    EXPECT_EQ(p1.high_watermark, 5);
    EXPECT_EQ(p1.last_stable_offset, 5);
    EXPECT_EQ(p1.log_start_offset, v >= 5 ? 0 : -1);
    EXPECT_TRUE(p1.aborted_null);
    EXPECT_TRUE(out.aborted_of(p1).empty());
    EXPECT_EQ(p1.preferred_read_replica, -1);
    EXPECT_TRUE(p1.records_null);
    EXPECT_TRUE(p1.records.empty());

    EXPECT_EQ(out.topics[1].name, "clicks");
    auto c = out.partitions_of(out.topics[1]);
    ASSERT_EQ(c.size(), 2u);
    const FetchPartition& p2 = c[0];
    EXPECT_EQ(p2.topic, "clicks");
    EXPECT_EQ(p2.partition, 2);
    EXPECT_EQ(p2.high_watermark, 0);
    EXPECT_FALSE(p2.aborted_null);
    EXPECT_TRUE(out.aborted_of(p2).empty());
    EXPECT_FALSE(p2.records_null);
    EXPECT_TRUE(p2.records.empty());

    const FetchPartition& p3 = c[1];
    EXPECT_EQ(p3.partition, 3);
    EXPECT_EQ(p3.high_watermark, int64_t(1) << 35);
    EXPECT_EQ(p3.last_stable_offset, (int64_t(1) << 35) - 1);
    EXPECT_EQ(p3.log_start_offset, v >= 5 ? int64_t(1) << 34 : -1);
    auto a3 = out.aborted_of(p3);
    ASSERT_EQ(a3.size(), 1u);
    EXPECT_EQ(a3[0].producer_id, -5);
    EXPECT_EQ(a3[0].first_offset, int64_t(1) << 34);
    ASSERT_EQ(p3.records.size(), 2u);
    EXPECT_EQ(p3.records[0], 0xAB);
    EXPECT_EQ(p3.records[1], 0xCD);
    EXPECT_EQ(p3.records.data() + 2, bytes.data() + bytes.size());  // the last field
  }
}

TEST(KafkaProtocol, FetchTopLevelErrorAndSession) {
  Build b;
  b.i32(0);      // throttle_time_ms
  b.i16(70);     // error_code: FETCH_SESSION_ID_NOT_FOUND
  b.i32(12345);  // session_id
  b.count(0);    // responses
  Reader r(b.bytes().data(), b.size());
  FetchResponse out;
  ASSERT_TRUE(decode_fetch_response(r, 7, out).ok());
  EXPECT_EQ(out.error, ErrorCode::fetch_session_id_not_found);
  EXPECT_EQ(out.session_id, 12345);
  EXPECT_TRUE(out.topics.empty());
}

TEST(KafkaProtocol, DecodersReuseTheirVectors) {
  Build b = fetch_body(11);
  FetchResponse out;
  {
    Reader r(b.bytes().data(), b.size());
    ASSERT_TRUE(decode_fetch_response(r, 11, out).ok());
  }
  const FetchTopic* topics = out.topics.data();
  const FetchPartition* partitions = out.partitions.data();
  const AbortedTransaction* aborted = out.aborted_transactions.data();
  for (int i = 0; i < 3; ++i) {
    Reader r(b.bytes().data(), b.size());
    ASSERT_TRUE(decode_fetch_response(r, 11, out).ok());
    // Same storage: nothing was reallocated for a response of the same shape.
    EXPECT_EQ(out.topics.data(), topics);
    EXPECT_EQ(out.partitions.data(), partitions);
    EXPECT_EQ(out.aborted_transactions.data(), aborted);
    EXPECT_EQ(out.partitions.size(), 4u);
  }
  // A smaller response after a larger one keeps the capacity.
  Build empty;
  empty.i32(0).i16(0).i32(0).count(0);
  Reader r(empty.bytes().data(), empty.size());
  ASSERT_TRUE(decode_fetch_response(r, 11, out).ok());
  EXPECT_TRUE(out.partitions.empty());
  EXPECT_GE(out.partitions.capacity(), 4u);
}

// ---- Versions -------------------------------------------------------------------------------

TEST(KafkaProtocol, NegotiationPicksHighestCommonVersions) {
  // Broker ranges overlapping ours on both sides, in any order, with APIs we do not use.
  const ApiVersionRange broker[] = {
      {ApiKey::fetch, 0, 9},        {ApiKey::produce, 0, 9},      {ApiKey::metadata, 0, 7},
      {ApiKey::list_offsets, 0, 4}, {ApiKey::api_versions, 0, 2}, {ApiKey(77), 0, 1},
  };
  NegotiatedVersions v;
  VersionMismatch m;
  ASSERT_TRUE(negotiate_versions(broker, v, m));
  EXPECT_EQ(v.api_versions, 2);
  EXPECT_EQ(v.metadata, 7);
  EXPECT_EQ(v.list_offsets, 4);
  EXPECT_EQ(v.fetch, 9);
}

TEST(KafkaProtocol, NegotiationWithAnOlderBroker) {
  // Kafka 1.0-like ranges: below our maxima everywhere, still overlapping.
  const ApiVersionRange broker[] = {
      {ApiKey::api_versions, 0, 1},
      {ApiKey::metadata, 0, 5},
      {ApiKey::list_offsets, 0, 2},
      {ApiKey::fetch, 0, 6},
  };
  NegotiatedVersions v;
  VersionMismatch m;
  ASSERT_TRUE(negotiate_versions(broker, v, m));
  EXPECT_EQ(v.api_versions, 1);
  EXPECT_EQ(v.metadata, 5);
  EXPECT_EQ(v.list_offsets, 2);
  EXPECT_EQ(v.fetch, 6);
}

TEST(KafkaProtocol, NegotiationWithANewerBroker) {
  // Kafka 4.0-like ranges: above our maxima, minima raised by KIP-896.
  const ApiVersionRange broker[] = {
      {ApiKey::api_versions, 0, 4},
      {ApiKey::metadata, 0, 13},
      {ApiKey::list_offsets, 1, 10},
      {ApiKey::fetch, 4, 17},
  };
  NegotiatedVersions v;
  VersionMismatch m;
  ASSERT_TRUE(negotiate_versions(broker, v, m));
  EXPECT_EQ(v.api_versions, 2);
  EXPECT_EQ(v.metadata, 8);
  EXPECT_EQ(v.list_offsets, 5);
  EXPECT_EQ(v.fetch, 11);
}

TEST(KafkaProtocol, NegotiationFailsNamingTheApi) {
  // Fetch only from v12: no overlap with v4-v11.
  const ApiVersionRange too_new[] = {
      {ApiKey::api_versions, 0, 4},
      {ApiKey::metadata, 0, 13},
      {ApiKey::list_offsets, 1, 10},
      {ApiKey::fetch, 12, 17},
  };
  NegotiatedVersions v;
  VersionMismatch m;
  ASSERT_FALSE(negotiate_versions(too_new, v, m));
  EXPECT_EQ(m.key, ApiKey::fetch);
  EXPECT_TRUE(m.broker_has_api);
  EXPECT_EQ(m.broker_min, 12);
  EXPECT_EQ(m.broker_max, 17);
  EXPECT_EQ(m.sluice_min, 4);
  EXPECT_EQ(m.sluice_max, 11);
  char text[128];
  size_t n = format_version_mismatch(m, text, sizeof text);
  EXPECT_EQ(std::string_view(text, n),
            "the broker supports Fetch v12-v17; Sluice implements v4-v11");

  // Metadata only up to v0: too old.
  const ApiVersionRange too_old[] = {
      {ApiKey::api_versions, 0, 0},
      {ApiKey::metadata, 0, 0},
      {ApiKey::list_offsets, 0, 0},
      {ApiKey::fetch, 0, 3},
  };
  ASSERT_FALSE(negotiate_versions(too_old, v, m));
  EXPECT_EQ(m.key, ApiKey::metadata);  // ApiVersions v0 is fine; Metadata is the first to fail
  n = format_version_mismatch(m, text, sizeof text);
  EXPECT_EQ(std::string_view(text, n),
            "the broker supports Metadata v0-v0; Sluice implements v1-v8");

  // ListOffsets missing altogether.
  const ApiVersionRange missing[] = {
      {ApiKey::api_versions, 0, 3},
      {ApiKey::metadata, 0, 12},
      {ApiKey::fetch, 0, 13},
  };
  ASSERT_FALSE(negotiate_versions(missing, v, m));
  EXPECT_EQ(m.key, ApiKey::list_offsets);
  EXPECT_FALSE(m.broker_has_api);
  n = format_version_mismatch(m, text, sizeof text);
  EXPECT_EQ(std::string_view(text, n),
            "the broker does not support ListOffsets (Sluice implements v1-v5)");

  // A short buffer gets a truncated, terminated line.
  char tiny[8];
  n = format_version_mismatch(m, tiny, sizeof tiny);
  EXPECT_EQ(n, 7u);
  EXPECT_STREQ(tiny, "the bro");
}

TEST(KafkaProtocol, PickVersion) {
  const ApiVersionRange broker[] = {{ApiKey::fetch, 3, 5}, {ApiKey::metadata, 9, 12}};
  EXPECT_EQ(pick_version({ApiKey::fetch, 4, 11}, broker), 5);
  EXPECT_EQ(pick_version({ApiKey::fetch, 5, 11}, broker), 5);  // a single common version
  EXPECT_EQ(pick_version({ApiKey::fetch, 6, 11}, broker), -1);
  EXPECT_EQ(pick_version({ApiKey::metadata, 1, 8}, broker), -1);
  EXPECT_EQ(pick_version({ApiKey::list_offsets, 1, 5}, broker), -1);
  EXPECT_EQ(pick_version({ApiKey::fetch, 4, 11}, {}), -1);
}

TEST(KafkaProtocol, NegotiationFromADecodedApiVersionsResponse) {
  Build b;
  b.i16(0);                 // error_code
  b.count(4);               // api_keys
  b.i16(1).i16(0).i16(11);  //   Fetch v0-v11
  b.i16(2).i16(0).i16(5);   //   ListOffsets v0-v5
  b.i16(3).i16(0).i16(8);   //   Metadata v0-v8
  b.i16(18).i16(0).i16(2);  //   ApiVersions v0-v2
  b.i32(0);                 // throttle_time_ms
  Reader r(b.bytes().data(), b.size());
  ApiVersionsResponse out;
  ASSERT_TRUE(decode_api_versions_response(r, 2, out).ok());
  NegotiatedVersions v;
  VersionMismatch m;
  ASSERT_TRUE(negotiate_versions(out.apis, v, m));
  EXPECT_EQ(v.api_versions, 2);
  EXPECT_EQ(v.metadata, 8);
  EXPECT_EQ(v.list_offsets, 5);
  EXPECT_EQ(v.fetch, 11);
}

// ---- Error codes ----------------------------------------------------------------------------

TEST(KafkaProtocol, ErrorCodeNames) {
  EXPECT_STREQ(to_string(ErrorCode::none), "NONE");
  EXPECT_STREQ(to_string(ErrorCode::unknown_server_error), "UNKNOWN_SERVER_ERROR");
  EXPECT_STREQ(to_string(ErrorCode::offset_out_of_range), "OFFSET_OUT_OF_RANGE");
  EXPECT_STREQ(to_string(ErrorCode::not_leader_or_follower), "NOT_LEADER_OR_FOLLOWER");
  EXPECT_STREQ(to_string(ErrorCode(74)), "FENCED_LEADER_EPOCH");
  EXPECT_STREQ(to_string(ErrorCode(29)), "TOPIC_AUTHORIZATION_FAILED");
  EXPECT_STREQ(to_string(ErrorCode(999)), "unknown error code");
  char buf[kErrorCodeTextBytesMax];
  EXPECT_STREQ(to_string(ErrorCode(56), buf), "KAFKA_STORAGE_ERROR");
  EXPECT_STREQ(to_string(ErrorCode(999), buf), "UNKNOWN(999)");
  EXPECT_STREQ(to_string(ErrorCode(-32768), buf), "UNKNOWN(-32768)");
  // Every value of int16 has a name or formats into the buffer.
  for (int c = -32768; c <= 32767; ++c) {
    const char* s = to_string(ErrorCode(int16_t(c)), buf);
    ASSERT_NE(s, nullptr);
    ASSERT_LT(std::strlen(s), 64u);
  }
  EXPECT_STREQ(to_string(ApiKey::list_offsets), "ListOffsets");
  EXPECT_STREQ(to_string(ApiKey(500)), "unknown API");
}

TEST(KafkaProtocol, ErrorClasses) {
  // Retriable as in Kafka's table.
  EXPECT_TRUE(is_retriable(ErrorCode::not_leader_or_follower));
  EXPECT_TRUE(is_retriable(ErrorCode::leader_not_available));
  EXPECT_TRUE(is_retriable(ErrorCode::request_timed_out));
  EXPECT_TRUE(is_retriable(ErrorCode::unknown_topic_or_partition));
  EXPECT_TRUE(is_retriable(ErrorCode::fenced_leader_epoch));
  EXPECT_TRUE(is_retriable(ErrorCode::unknown_leader_epoch));
  EXPECT_TRUE(is_retriable(ErrorCode::offset_not_available));
  EXPECT_TRUE(is_retriable(ErrorCode::kafka_storage_error));
  EXPECT_TRUE(is_retriable(ErrorCode::not_enough_replicas));
  EXPECT_TRUE(is_retriable(ErrorCode::corrupt_message));
  EXPECT_FALSE(is_retriable(ErrorCode::none));
  EXPECT_FALSE(is_retriable(ErrorCode::offset_out_of_range));
  EXPECT_FALSE(is_retriable(ErrorCode::topic_authorization_failed));
  EXPECT_FALSE(is_retriable(ErrorCode::unsupported_version));
  EXPECT_FALSE(is_retriable(ErrorCode::unknown_server_error));
  EXPECT_FALSE(is_retriable(ErrorCode(999)));

  EXPECT_TRUE(needs_metadata_refresh(ErrorCode::not_leader_or_follower));
  EXPECT_TRUE(needs_metadata_refresh(ErrorCode::leader_not_available));
  EXPECT_TRUE(needs_metadata_refresh(ErrorCode::unknown_topic_or_partition));
  EXPECT_TRUE(needs_metadata_refresh(ErrorCode::fenced_leader_epoch));
  EXPECT_TRUE(needs_metadata_refresh(ErrorCode::kafka_storage_error));
  EXPECT_TRUE(needs_metadata_refresh(ErrorCode::replica_not_available));
  EXPECT_TRUE(needs_metadata_refresh(ErrorCode::offset_not_available));
  EXPECT_FALSE(needs_metadata_refresh(ErrorCode::unknown_leader_epoch));
  EXPECT_FALSE(needs_metadata_refresh(ErrorCode::request_timed_out));
  EXPECT_FALSE(needs_metadata_refresh(ErrorCode::offset_out_of_range));
  EXPECT_FALSE(needs_metadata_refresh(ErrorCode::none));
}

}  // namespace
}  // namespace sluice::kafka
