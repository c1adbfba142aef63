#include "io/kafka/protocol.h"

#include <algorithm>
#include <cstdio>

namespace sluice::kafka {

// ---- Names and error classes --------------------------------------------------------------

const char* to_string(ApiKey key) {
  switch (key) {
    case ApiKey::produce: return "Produce";
    case ApiKey::fetch: return "Fetch";
    case ApiKey::list_offsets: return "ListOffsets";
    case ApiKey::metadata: return "Metadata";
    case ApiKey::offset_commit: return "OffsetCommit";
    case ApiKey::offset_fetch: return "OffsetFetch";
    case ApiKey::find_coordinator: return "FindCoordinator";
    case ApiKey::sasl_handshake: return "SaslHandshake";
    case ApiKey::init_producer_id: return "InitProducerId";
    case ApiKey::api_versions: return "ApiVersions";
    case ApiKey::sasl_authenticate: return "SaslAuthenticate";
  }
  return "unknown API";
}

namespace {

// Kafka's name for a code, or nullptr for one this file does not name.
const char* known_name(ErrorCode e) {
  switch (e) {
    case ErrorCode::unknown_server_error: return "UNKNOWN_SERVER_ERROR";
    case ErrorCode::none: return "NONE";
    case ErrorCode::offset_out_of_range: return "OFFSET_OUT_OF_RANGE";
    case ErrorCode::corrupt_message: return "CORRUPT_MESSAGE";
    case ErrorCode::unknown_topic_or_partition: return "UNKNOWN_TOPIC_OR_PARTITION";
    case ErrorCode::invalid_fetch_size: return "INVALID_FETCH_SIZE";
    case ErrorCode::leader_not_available: return "LEADER_NOT_AVAILABLE";
    case ErrorCode::not_leader_or_follower: return "NOT_LEADER_OR_FOLLOWER";
    case ErrorCode::request_timed_out: return "REQUEST_TIMED_OUT";
    case ErrorCode::broker_not_available: return "BROKER_NOT_AVAILABLE";
    case ErrorCode::replica_not_available: return "REPLICA_NOT_AVAILABLE";
    case ErrorCode::message_too_large: return "MESSAGE_TOO_LARGE";
    case ErrorCode::stale_controller_epoch: return "STALE_CONTROLLER_EPOCH";
    case ErrorCode::offset_metadata_too_large: return "OFFSET_METADATA_TOO_LARGE";
    case ErrorCode::network_exception: return "NETWORK_EXCEPTION";
    case ErrorCode::coordinator_load_in_progress: return "COORDINATOR_LOAD_IN_PROGRESS";
    case ErrorCode::coordinator_not_available: return "COORDINATOR_NOT_AVAILABLE";
    case ErrorCode::not_coordinator: return "NOT_COORDINATOR";
    case ErrorCode::invalid_topic_exception: return "INVALID_TOPIC_EXCEPTION";
    case ErrorCode::record_list_too_large: return "RECORD_LIST_TOO_LARGE";
    case ErrorCode::not_enough_replicas: return "NOT_ENOUGH_REPLICAS";
    case ErrorCode::not_enough_replicas_after_append: return "NOT_ENOUGH_REPLICAS_AFTER_APPEND";
    case ErrorCode::invalid_required_acks: return "INVALID_REQUIRED_ACKS";
    case ErrorCode::topic_authorization_failed: return "TOPIC_AUTHORIZATION_FAILED";
    case ErrorCode::group_authorization_failed: return "GROUP_AUTHORIZATION_FAILED";
    case ErrorCode::cluster_authorization_failed: return "CLUSTER_AUTHORIZATION_FAILED";
    case ErrorCode::invalid_timestamp: return "INVALID_TIMESTAMP";
    case ErrorCode::unsupported_sasl_mechanism: return "UNSUPPORTED_SASL_MECHANISM";
    case ErrorCode::illegal_sasl_state: return "ILLEGAL_SASL_STATE";
    case ErrorCode::unsupported_version: return "UNSUPPORTED_VERSION";
    case ErrorCode::not_controller: return "NOT_CONTROLLER";
    case ErrorCode::invalid_request: return "INVALID_REQUEST";
    case ErrorCode::unsupported_for_message_format: return "UNSUPPORTED_FOR_MESSAGE_FORMAT";
    case ErrorCode::out_of_order_sequence_number: return "OUT_OF_ORDER_SEQUENCE_NUMBER";
    case ErrorCode::duplicate_sequence_number: return "DUPLICATE_SEQUENCE_NUMBER";
    case ErrorCode::invalid_producer_epoch: return "INVALID_PRODUCER_EPOCH";
    case ErrorCode::unknown_producer_id: return "UNKNOWN_PRODUCER_ID";
    case ErrorCode::invalid_record: return "INVALID_RECORD";
    case ErrorCode::producer_fenced: return "PRODUCER_FENCED";
    case ErrorCode::kafka_storage_error: return "KAFKA_STORAGE_ERROR";
    case ErrorCode::sasl_authentication_failed: return "SASL_AUTHENTICATION_FAILED";
    case ErrorCode::fetch_session_id_not_found: return "FETCH_SESSION_ID_NOT_FOUND";
    case ErrorCode::invalid_fetch_session_epoch: return "INVALID_FETCH_SESSION_EPOCH";
    case ErrorCode::listener_not_found: return "LISTENER_NOT_FOUND";
    case ErrorCode::fenced_leader_epoch: return "FENCED_LEADER_EPOCH";
    case ErrorCode::unknown_leader_epoch: return "UNKNOWN_LEADER_EPOCH";
    case ErrorCode::unsupported_compression_type: return "UNSUPPORTED_COMPRESSION_TYPE";
    case ErrorCode::offset_not_available: return "OFFSET_NOT_AVAILABLE";
    case ErrorCode::preferred_leader_not_available: return "PREFERRED_LEADER_NOT_AVAILABLE";
    case ErrorCode::throttling_quota_exceeded: return "THROTTLING_QUOTA_EXCEEDED";
    case ErrorCode::unknown_topic_id: return "UNKNOWN_TOPIC_ID";
    case ErrorCode::fetch_session_topic_id_error: return "FETCH_SESSION_TOPIC_ID_ERROR";
  }
  return nullptr;
}

}  // namespace

const char* to_string(ErrorCode e) {
  const char* name = known_name(e);
  return name != nullptr ? name : "unknown error code";
}

const char* to_string(ErrorCode e, char (&buf)[kErrorCodeTextBytesMax]) {
  const char* name = known_name(e);
  if (name != nullptr) return name;
  std::snprintf(buf, sizeof buf, "UNKNOWN(%d)", int(e));
  return buf;
}

bool is_retriable(ErrorCode e) {
  switch (e) {
    case ErrorCode::corrupt_message:
    case ErrorCode::unknown_topic_or_partition:
    case ErrorCode::leader_not_available:
    case ErrorCode::not_leader_or_follower:
    case ErrorCode::request_timed_out:
    case ErrorCode::replica_not_available:
    case ErrorCode::network_exception:
    case ErrorCode::coordinator_load_in_progress:
    case ErrorCode::coordinator_not_available:
    case ErrorCode::not_coordinator:
    case ErrorCode::not_enough_replicas:
    case ErrorCode::not_enough_replicas_after_append:
    case ErrorCode::not_controller:
    case ErrorCode::kafka_storage_error:
    case ErrorCode::fetch_session_id_not_found:
    case ErrorCode::invalid_fetch_session_epoch:
    case ErrorCode::listener_not_found:
    case ErrorCode::fenced_leader_epoch:
    case ErrorCode::unknown_leader_epoch:
    case ErrorCode::offset_not_available:
    case ErrorCode::preferred_leader_not_available:
    case ErrorCode::throttling_quota_exceeded:
    case ErrorCode::unknown_topic_id:
    case ErrorCode::fetch_session_topic_id_error: return true;
    default: return false;
  }
}

bool needs_metadata_refresh(ErrorCode e) {
  switch (e) {
    // Kafka's "invalid metadata" family: the partition moved, or this broker lost it.
    case ErrorCode::unknown_topic_or_partition:
    case ErrorCode::leader_not_available:
    case ErrorCode::not_leader_or_follower:
    case ErrorCode::replica_not_available:
    case ErrorCode::kafka_storage_error:
    case ErrorCode::fenced_leader_epoch:
    case ErrorCode::listener_not_found:
    case ErrorCode::preferred_leader_not_available:
    case ErrorCode::unknown_topic_id:
    // Not in that family, but it follows a leader change, and the Java consumer refreshes on
    // it too. UNKNOWN_LEADER_EPOCH is left out: there the broker is behind us, and a plain
    // retry is what helps.
    case ErrorCode::offset_not_available: return true;
    default: return false;
  }
}

// ---- Versions ---------------------------------------------------------------------------

int16_t pick_version(const ApiVersionRange& ours, std::span<const ApiVersionRange> broker) {
  for (const ApiVersionRange& b : broker) {
    if (b.key != ours.key) continue;
    int16_t lo = std::max(ours.min, b.min);
    int16_t hi = std::min(ours.max, b.max);
    return hi >= lo ? hi : int16_t(-1);
  }
  return -1;
}

bool negotiate_versions(std::span<const ApiVersionRange> broker, NegotiatedVersions& out,
                        VersionMismatch& mismatch, std::span<const ApiVersionRange> needed) {
  for (const ApiVersionRange& ours : needed) {
    int16_t v = pick_version(ours, broker);
    if (v < 0) {
      mismatch = VersionMismatch{};
      mismatch.key = ours.key;
      mismatch.sluice_min = ours.min;
      mismatch.sluice_max = ours.max;
      for (const ApiVersionRange& b : broker) {
        if (b.key != ours.key) continue;
        mismatch.broker_has_api = true;
        mismatch.broker_min = b.min;
        mismatch.broker_max = b.max;
        break;
      }
      return false;
    }
    switch (ours.key) {
      case ApiKey::api_versions: out.api_versions = v; break;
      case ApiKey::metadata: out.metadata = v; break;
      case ApiKey::list_offsets: out.list_offsets = v; break;
      case ApiKey::fetch: out.fetch = v; break;
      case ApiKey::init_producer_id: out.init_producer_id = v; break;
      case ApiKey::produce: out.produce = v; break;
      default: SLUICE_ASSERT(!"an API NegotiatedVersions lacks");
    }
  }
  return true;
}

size_t format_version_mismatch(const VersionMismatch& m, char* buf, size_t buf_bytes) {
  if (buf_bytes == 0) return 0;
  int n;
  if (m.broker_has_api) {
    n = std::snprintf(buf, buf_bytes, "the broker supports %s v%d-v%d; Sluice implements v%d-v%d",
                      to_string(m.key), m.broker_min, m.broker_max, m.sluice_min, m.sluice_max);
  } else {
    n = std::snprintf(buf, buf_bytes, "the broker does not support %s (Sluice implements v%d-v%d)",
                      to_string(m.key), m.sluice_min, m.sluice_max);
  }
  if (n < 0) {
    buf[0] = '\0';
    return 0;
  }
  return std::min(size_t(n), buf_bytes - 1);
}

// ---- Framing ------------------------------------------------------------------------------

FrameStatus peek_response_frame(std::span<const uint8_t> buffered, size_t body_bytes_max,
                                size_t& body_bytes) {
  Reader r(buffered);
  int32_t size = r.int32();
  if (!r.ok()) return FrameStatus::need_more;
  if (size < 0 || size_t(size) > body_bytes_max) return FrameStatus::bad_size;
  body_bytes = size_t(size);
  return r.remaining() >= body_bytes ? FrameStatus::complete : FrameStatus::need_more;
}

bool decode_response_header(Reader& r, int32_t& correlation_id) {
  correlation_id = r.int32();
  return r.ok();
}

// ---- Encoding -----------------------------------------------------------------------------

const char* to_string(EncodeStatus s) {
  switch (s) {
    case EncodeStatus::ok: return "ok";
    case EncodeStatus::unsupported_version: return "version not implemented by Sluice";
    case EncodeStatus::too_long: return "a string or list is too long for the wire";
    case EncodeStatus::no_room: return "no room left in the output buffer";
  }
  return "unknown encode status";
}

namespace {

bool in_range(const ApiVersionRange& range, int16_t version) {
  return version >= range.min && version <= range.max;
}

// Writes the size prefix and request header v1; returns the size prefix's position.
size_t begin_request(Writer& w, ApiKey key, int16_t version, int32_t correlation_id,
                     std::string_view client_id) {
  size_t mark = w.begin_size();
  w.int16(int16_t(key));
  w.int16(version);
  w.int32(correlation_id);
  w.string(client_id);  // nullable in the spec; Sluice always sends one
  return mark;
}

// Fills the size prefix; on failure removes the partial request.
EncodeStatus end_request(Writer& w, size_t mark) {
  w.end_size(mark);
  if (w.ok()) return EncodeStatus::ok;
  w.truncate(mark);
  return w.error() == WriteError::no_room ? EncodeStatus::no_room : EncodeStatus::too_long;
}

}  // namespace

EncodeStatus encode_api_versions_request(Writer& w, int16_t version, int32_t correlation_id,
                                         std::string_view client_id) {
  if (!in_range(kApiVersionsVersions, version)) return EncodeStatus::unsupported_version;
  size_t mark = begin_request(w, ApiKey::api_versions, version, correlation_id, client_id);
  // v0-v2: no body fields.
  return end_request(w, mark);
}

EncodeStatus encode_metadata_request(Writer& w, int16_t version, int32_t correlation_id,
                                     std::string_view client_id,
                                     std::span<const std::string_view> topics) {
  if (!in_range(kMetadataVersions, version)) return EncodeStatus::unsupported_version;
  size_t mark = begin_request(w, ApiKey::metadata, version, correlation_id, client_id);
  w.array_length(topics.size());
  for (std::string_view name : topics) w.string(name);
  if (version >= 4) w.boolean(false);  // allow_auto_topic_creation
  if (version >= 8) {
    w.boolean(false);  // include_cluster_authorized_operations
    w.boolean(false);  // include_topic_authorized_operations
  }
  return end_request(w, mark);
}

EncodeStatus encode_list_offsets_request(Writer& w, int16_t version, int32_t correlation_id,
                                         std::string_view client_id, IsolationLevel isolation_level,
                                         std::span<const ListOffsetsTopicRequest> topics) {
  if (!in_range(kListOffsetsVersions, version)) return EncodeStatus::unsupported_version;
  size_t mark = begin_request(w, ApiKey::list_offsets, version, correlation_id, client_id);
  w.int32(-1);  // replica_id: a consumer
  if (version >= 2) w.int8(int8_t(isolation_level));
  w.array_length(topics.size());
  for (const ListOffsetsTopicRequest& topic : topics) {
    w.string(topic.name);
    w.array_length(topic.partitions.size());
    for (const ListOffsetsPartitionRequest& p : topic.partitions) {
      w.int32(p.partition);
      if (version >= 4) w.int32(p.current_leader_epoch);
      w.int64(p.timestamp);
    }
  }
  return end_request(w, mark);
}

EncodeStatus encode_fetch_request(Writer& w, int16_t version, int32_t correlation_id,
                                  std::string_view client_id, const FetchRequest& request) {
  if (!in_range(kFetchVersions, version)) return EncodeStatus::unsupported_version;
  size_t mark = begin_request(w, ApiKey::fetch, version, correlation_id, client_id);
  w.int32(-1);  // replica_id: a consumer
  w.int32(request.max_wait_ms);
  w.int32(request.min_bytes);
  w.int32(request.max_bytes);               // v3+
  w.int8(int8_t(request.isolation_level));  // v4+
  if (version >= 7) {
    w.int32(0);   // session_id: no fetch session
    w.int32(-1);  // session_epoch: -1 = full fetch, do not create a session
  }
  w.array_length(request.topics.size());
  for (const FetchTopicRequest& topic : request.topics) {
    w.string(topic.name);
    w.array_length(topic.partitions.size());
    for (const FetchPartitionRequest& p : topic.partitions) {
      w.int32(p.partition);
      if (version >= 9) w.int32(p.current_leader_epoch);
      w.int64(p.fetch_offset);
      if (version >= 5) w.int64(-1);  // log_start_offset: only followers send one
      w.int32(p.partition_max_bytes);
    }
  }
  if (version >= 7) w.array_length(size_t(0));  // forgotten_topics_data
  if (version >= 11) w.string("");              // rack_id
  return end_request(w, mark);
}

EncodeStatus encode_init_producer_id_request(Writer& w, int16_t version, int32_t correlation_id,
                                             std::string_view client_id) {
  if (!in_range(kInitProducerIdVersions, version)) return EncodeStatus::unsupported_version;
  size_t mark = begin_request(w, ApiKey::init_producer_id, version, correlation_id, client_id);
  w.nullable_string(std::nullopt);  // transactional_id: idempotent only
  w.int32(60'000);                  // transaction_timeout_ms
  return end_request(w, mark);
}

EncodeStatus encode_produce_request(Writer& w, int16_t version, int32_t correlation_id,
                                    std::string_view client_id, const ProduceRequest& request) {
  if (!in_range(kProduceVersions, version)) return EncodeStatus::unsupported_version;
  size_t mark = begin_request(w, ApiKey::produce, version, correlation_id, client_id);
  w.nullable_string(std::nullopt);  // transactional_id (v3+)
  w.int16(request.acks);
  w.int32(request.timeout_ms);
  w.array_length(1);
  w.string(request.topic);
  w.array_length(request.partitions.size());
  for (const ProducePartitionRequest& p : request.partitions) {
    w.int32(p.partition);
    w.bytes(p.records);
  }
  return end_request(w, mark);
}

// ---- Decoding -----------------------------------------------------------------------------

const char* to_string(ResponseStatus s) {
  switch (s) {
    case ResponseStatus::ok: return "ok";
    case ResponseStatus::malformed: return "malformed response";
    case ResponseStatus::limit_exceeded: return "response exceeds a limit";
    case ResponseStatus::unsupported_version: return "version not implemented by Sluice";
  }
  return "unknown response status";
}

namespace {

DecodeResult malformed(const char* reason) {
  return {ResponseStatus::malformed, reason};
}
DecodeResult over_limit(const char* reason) {
  return {ResponseStatus::limit_exceeded, reason};
}
DecodeResult unsupported() {
  return {ResponseStatus::unsupported_version, "version not implemented by Sluice"};
}

// Grows `v` geometrically for `extra` more entries. Only called with counts already bounded by
// the bytes left and by a limit, so the allocation is bounded too; with the vector's capacity
// kept across responses, steady state does not allocate.
template <class T>
void make_room(std::vector<T>& v, size_t extra) {
  size_t need = v.size() + extra;
  if (need > v.capacity()) v.reserve(std::max(need, 2 * v.capacity()));
}

// The smallest encoding of each repeated entry, field by field: a count of N entries that does
// not leave N times this many bytes is malformed before anything is reserved for it.
constexpr size_t kStringBytesMin = 2;           // int16 length, empty
constexpr size_t kArrayBytesMin = 4;            // int32 count, empty (or null)
constexpr size_t kApiVersionBytes = 2 + 2 + 2;  // api_key, min_version, max_version
constexpr size_t kInt32Bytes = 4;
constexpr size_t kAbortedTransactionBytes = 8 + 8;  // producer_id, first_offset
// name, partitions
constexpr size_t kTopicBytesMin = kStringBytesMin + kArrayBytesMin;

size_t metadata_broker_bytes_min() {
  return 4 + kStringBytesMin + 4 + kStringBytesMin;  // node_id, host, port, rack (v1+)
}
size_t metadata_topic_bytes_min(int16_t v) {
  // error, name, is_internal (v1+), partitions, topic_authorized_operations (v8+)
  return 2 + kStringBytesMin + 1 + kArrayBytesMin + (v >= 8 ? 4 : 0);
}
size_t metadata_partition_bytes_min(int16_t v) {
  // error, partition, leader, leader_epoch (v7+), replicas, isr, offline_replicas (v5+)
  return 2 + 4 + 4 + (v >= 7 ? 4 : 0) + kArrayBytesMin + kArrayBytesMin +
         (v >= 5 ? kArrayBytesMin : 0);
}
size_t list_offsets_partition_bytes_min(int16_t v) {
  // partition, error, timestamp, offset, leader_epoch (v4+)
  return 4 + 2 + 8 + 8 + (v >= 4 ? 4 : 0);
}
size_t fetch_partition_bytes_min(int16_t v) {
  // partition, error, high_watermark, last_stable_offset (v4+), log_start_offset (v5+),
  // aborted_transactions (v4+), preferred_read_replica (v11+), records
  return 4 + 2 + 8 + 8 + (v >= 5 ? 8 : 0) + kArrayBytesMin + (v >= 11 ? 4 : 0) + 4;
}

// Passes over an int32 array whose contents Sluice does not keep (replica lists).
void skip_int32_array(Reader& r) {
  int32_t n = r.array_length(kInt32Bytes);
  r.skip(size_t(n) * kInt32Bytes);
}

// True when `count` more entries would take a response's total above `limit`. A null array's
// count (-1) adds nothing.
bool over(size_t used, int32_t count, int32_t limit) {
  if (count <= 0) return false;
  return size_t(count) > size_t(limit) - std::min(used, size_t(limit));
}

DecodeResult api_versions_body(Reader& r, int16_t v, ApiVersionsResponse& out) {
  out.apis.clear();
  out.error = ErrorCode(r.int16());
  int32_t n = r.array_length(kApiVersionBytes);
  if (!r.ok()) return malformed("ApiVersions: error code or api_keys count");
  if (n > kApiVersionsEntriesMax) return over_limit("ApiVersions: more APIs than the limit");
  make_room(out.apis, size_t(n));
  for (int32_t i = 0; i < n; ++i) {
    ApiVersionRange& api = out.apis.emplace_back();
    api.key = ApiKey(r.int16());
    api.min = r.int16();
    api.max = r.int16();
  }
  out.throttle_time_ms = v >= 1 ? r.int32() : 0;
  if (!r.ok()) return malformed("ApiVersions: api_keys entries or throttle_time_ms");
  if (r.remaining() != 0) return malformed("ApiVersions: bytes after the last field");
  return {};
}

DecodeResult metadata_body(Reader& r, int16_t v, MetadataResponse& out) {
  out.throttle_time_ms = v >= 3 ? r.int32() : 0;
  int32_t broker_count = r.array_length(metadata_broker_bytes_min());
  if (!r.ok()) return malformed("Metadata: throttle_time_ms or brokers count");
  if (broker_count > kBrokersMax) return over_limit("Metadata: more brokers than the limit");
  make_room(out.brokers, size_t(broker_count));
  for (int32_t i = 0; i < broker_count; ++i) {
    MetadataBroker& b = out.brokers.emplace_back();
    b.node_id = r.int32();
    b.host = r.string();
    b.port = r.int32();
    b.rack = r.nullable_string();
    if (!r.ok()) return malformed("Metadata: broker entry");
  }
  out.cluster_id = v >= 2 ? r.nullable_string() : std::nullopt;
  out.controller_id = r.int32();
  int32_t topic_count = r.array_length(metadata_topic_bytes_min(v));
  if (!r.ok()) return malformed("Metadata: cluster_id, controller_id or topics count");
  if (topic_count > kTopicsMax) return over_limit("Metadata: more topics than the limit");
  make_room(out.topics, size_t(topic_count));
  const size_t partition_bytes_min = metadata_partition_bytes_min(v);
  for (int32_t t = 0; t < topic_count; ++t) {
    MetadataTopic& topic = out.topics.emplace_back();
    topic.error = ErrorCode(r.int16());
    topic.name = r.string();
    topic.is_internal = r.boolean();
    int32_t n = r.array_length(partition_bytes_min);
    if (!r.ok()) return malformed("Metadata: topic entry or its partitions count");
    if (over(out.partitions.size(), n, kPartitionsMax)) {
      return over_limit("Metadata: more partitions than the limit");
    }
    make_room(out.partitions, size_t(n));
    topic.partitions_begin = uint32_t(out.partitions.size());
    for (int32_t i = 0; i < n; ++i) {
      MetadataPartition& p = out.partitions.emplace_back();
      p.topic = topic.name;
      p.error = ErrorCode(r.int16());
      p.partition = r.int32();
      p.leader = r.int32();
      p.leader_epoch = v >= 7 ? r.int32() : -1;
      skip_int32_array(r);              // replica_nodes
      skip_int32_array(r);              // isr_nodes
      if (v >= 5) skip_int32_array(r);  // offline_replicas
      if (!r.ok()) return malformed("Metadata: partition entry");
    }
    topic.partitions_end = uint32_t(out.partitions.size());
    if (v >= 8) r.int32();  // topic_authorized_operations: not requested
    if (!r.ok()) return malformed("Metadata: topic_authorized_operations");
  }
  if (v >= 8) r.int32();  // cluster_authorized_operations: not requested
  if (!r.ok()) return malformed("Metadata: cluster_authorized_operations");
  if (r.remaining() != 0) return malformed("Metadata: bytes after the last field");
  return {};
}

DecodeResult list_offsets_body(Reader& r, int16_t v, ListOffsetsResponse& out) {
  out.throttle_time_ms = v >= 2 ? r.int32() : 0;
  int32_t topic_count = r.array_length(kTopicBytesMin);
  if (!r.ok()) return malformed("ListOffsets: throttle_time_ms or topics count");
  if (topic_count > kTopicsMax) return over_limit("ListOffsets: more topics than the limit");
  make_room(out.topics, size_t(topic_count));
  const size_t partition_bytes_min = list_offsets_partition_bytes_min(v);
  for (int32_t t = 0; t < topic_count; ++t) {
    ListOffsetsTopic& topic = out.topics.emplace_back();
    topic.name = r.string();
    int32_t n = r.array_length(partition_bytes_min);
    if (!r.ok()) return malformed("ListOffsets: topic name or partitions count");
    if (over(out.partitions.size(), n, kPartitionsMax)) {
      return over_limit("ListOffsets: more partitions than the limit");
    }
    make_room(out.partitions, size_t(n));
    topic.partitions_begin = uint32_t(out.partitions.size());
    for (int32_t i = 0; i < n; ++i) {
      ListOffsetsPartition& p = out.partitions.emplace_back();
      p.topic = topic.name;
      p.partition = r.int32();
      p.error = ErrorCode(r.int16());
      p.timestamp = r.int64();
      p.offset = r.int64();
      p.leader_epoch = v >= 4 ? r.int32() : -1;
    }
    if (!r.ok()) return malformed("ListOffsets: partition entry");
    topic.partitions_end = uint32_t(out.partitions.size());
  }
  if (r.remaining() != 0) return malformed("ListOffsets: bytes after the last field");
  return {};
}

DecodeResult fetch_body(Reader& r, int16_t v, FetchResponse& out) {
  out.throttle_time_ms = r.int32();
  out.error = v >= 7 ? ErrorCode(r.int16()) : ErrorCode::none;
  out.session_id = v >= 7 ? r.int32() : 0;
  int32_t topic_count = r.array_length(kTopicBytesMin);
  if (!r.ok()) return malformed("Fetch: throttle_time_ms, error, session_id or topics count");
  if (topic_count > kTopicsMax) return over_limit("Fetch: more topics than the limit");
  make_room(out.topics, size_t(topic_count));
  const size_t partition_bytes_min = fetch_partition_bytes_min(v);
  for (int32_t t = 0; t < topic_count; ++t) {
    FetchTopic& topic = out.topics.emplace_back();
    topic.name = r.string();
    int32_t n = r.array_length(partition_bytes_min);
    if (!r.ok()) return malformed("Fetch: topic name or partitions count");
    if (over(out.partitions.size(), n, kPartitionsMax)) {
      return over_limit("Fetch: more partitions than the limit");
    }
    make_room(out.partitions, size_t(n));
    topic.partitions_begin = uint32_t(out.partitions.size());
    for (int32_t i = 0; i < n; ++i) {
      FetchPartition& p = out.partitions.emplace_back();
      p.topic = topic.name;
      p.partition = r.int32();
      p.error = ErrorCode(r.int16());
      p.high_watermark = r.int64();
      p.last_stable_offset = r.int64();
      p.log_start_offset = v >= 5 ? r.int64() : -1;
      int32_t aborted = r.nullable_array_length(kAbortedTransactionBytes);
      if (!r.ok()) return malformed("Fetch: partition header or aborted_transactions count");
      if (over(out.aborted_transactions.size(), aborted, kAbortedTransactionsMax)) {
        return over_limit("Fetch: more aborted transactions than the limit");
      }
      p.aborted_null = aborted < 0;
      p.aborted_begin = uint32_t(out.aborted_transactions.size());
      if (aborted > 0) {
        make_room(out.aborted_transactions, size_t(aborted));
        for (int32_t a = 0; a < aborted; ++a) {
          AbortedTransaction& txn = out.aborted_transactions.emplace_back();
          txn.producer_id = r.int64();
          txn.first_offset = r.int64();
        }
      }
      p.aborted_end = uint32_t(out.aborted_transactions.size());
      p.preferred_read_replica = v >= 11 ? r.int32() : -1;
      std::optional<std::span<const uint8_t>> records = r.nullable_bytes();
      if (!r.ok())
        return malformed("Fetch: aborted transaction, preferred_read_replica or records");
      p.records_null = !records.has_value();
      p.records = records.value_or(std::span<const uint8_t>{});
    }
    topic.partitions_end = uint32_t(out.partitions.size());
  }
  if (r.remaining() != 0) return malformed("Fetch: bytes after the last field");
  return {};
}

size_t produce_partition_bytes_min(int16_t v) {
  // partition, error, base_offset, log_append_time (v2+), log_start_offset (v5+),
  // record_errors and error_message (v8+)
  return 4 + 2 + 8 + 8 + (v >= 5 ? 8 : 0) + (v >= 8 ? kArrayBytesMin + kStringBytesMin : 0);
}

DecodeResult produce_body(Reader& r, int16_t v, ProduceResponse& out) {
  int32_t topic_count = r.array_length(kTopicBytesMin);
  if (!r.ok()) return malformed("Produce: topics count");
  if (topic_count > kTopicsMax) return over_limit("Produce: more topics than the limit");
  const size_t partition_bytes_min = produce_partition_bytes_min(v);
  for (int32_t t = 0; t < topic_count; ++t) {
    std::string_view name = r.string();
    int32_t n = r.array_length(partition_bytes_min);
    if (!r.ok()) return malformed("Produce: topic name or partitions count");
    if (over(out.partitions.size(), n, kPartitionsMax)) {
      return over_limit("Produce: more partitions than the limit");
    }
    make_room(out.partitions, size_t(n));
    for (int32_t i = 0; i < n; ++i) {
      ProducePartitionResponse& p = out.partitions.emplace_back();
      p.topic = name;
      p.partition = r.int32();
      p.error = ErrorCode(r.int16());
      p.base_offset = r.int64();
      p.log_append_time = r.int64();
      p.log_start_offset = v >= 5 ? r.int64() : -1;
      if (v >= 8) {
        // record_errors: batch_index int32, batch_index_error_message nullable string.
        int32_t errors = r.array_length(4 + kStringBytesMin);
        for (int32_t e = 0; e < errors && r.ok(); ++e) {
          r.int32();
          r.nullable_string();
        }
        p.error_message = r.nullable_string();
      }
      if (!r.ok()) return malformed("Produce: partition entry");
    }
  }
  out.throttle_time_ms = r.int32();
  if (!r.ok()) return malformed("Produce: throttle_time_ms");
  if (r.remaining() != 0) return malformed("Produce: bytes after the last field");
  return {};
}

}  // namespace

DecodeResult decode_init_producer_id_response(Reader& r, int16_t version,
                                              InitProducerIdResponse& out) {
  if (!in_range(kInitProducerIdVersions, version)) return unsupported();
  out.throttle_time_ms = r.int32();
  out.error = ErrorCode(r.int16());
  out.producer_id = r.int64();
  out.producer_epoch = r.int16();
  if (!r.ok()) return malformed("InitProducerId: truncated");
  if (r.remaining() != 0) return malformed("InitProducerId: bytes after the last field");
  return {};
}

DecodeResult decode_produce_response(Reader& r, int16_t version, ProduceResponse& out) {
  if (!in_range(kProduceVersions, version)) return unsupported();
  out.partitions.clear();
  DecodeResult result = produce_body(r, version, out);
  if (!result.ok()) out.partitions.clear();
  return result;
}

DecodeResult decode_api_versions_response(Reader& r, int16_t version, ApiVersionsResponse& out) {
  if (!in_range(kApiVersionsVersions, version)) return unsupported();
  Reader start = r;
  DecodeResult result = api_versions_body(r, version, out);
  if (!result.ok() && version > 0) {
    // A broker that does not support `version` answers in v0 with UNSUPPORTED_VERSION (and,
    // since Kafka 2.4, its own ApiVersions range in the list). Only that error is taken in v0
    // shape: otherwise a v1+ body cut before throttle_time_ms would pass as v0.
    Reader v0 = start;
    if (api_versions_body(v0, 0, out).ok() && out.error == ErrorCode::unsupported_version) {
      r = v0;
      return {};
    }
  }
  if (!result.ok()) out.apis.clear();
  return result;
}

DecodeResult decode_metadata_response(Reader& r, int16_t version, MetadataResponse& out) {
  if (!in_range(kMetadataVersions, version)) return unsupported();
  out.brokers.clear();
  out.topics.clear();
  out.partitions.clear();
  DecodeResult result = metadata_body(r, version, out);
  if (!result.ok()) {
    out.brokers.clear();
    out.topics.clear();
    out.partitions.clear();
  }
  return result;
}

DecodeResult decode_list_offsets_response(Reader& r, int16_t version, ListOffsetsResponse& out) {
  if (!in_range(kListOffsetsVersions, version)) return unsupported();
  out.topics.clear();
  out.partitions.clear();
  DecodeResult result = list_offsets_body(r, version, out);
  if (!result.ok()) {
    out.topics.clear();
    out.partitions.clear();
  }
  return result;
}

DecodeResult decode_fetch_response(Reader& r, int16_t version, FetchResponse& out) {
  if (!in_range(kFetchVersions, version)) return unsupported();
  out.topics.clear();
  out.partitions.clear();
  out.aborted_transactions.clear();
  DecodeResult result = fetch_body(r, version, out);
  if (!result.ok()) {
    out.topics.clear();
    out.partitions.clear();
    out.aborted_transactions.clear();
  }
  return result;
}

const MetadataBroker* MetadataResponse::find_broker(int32_t node_id) const {
  for (const MetadataBroker& b : brokers) {
    if (b.node_id == node_id) return &b;
  }
  return nullptr;
}

}  // namespace sluice::kafka
