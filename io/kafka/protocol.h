// The subset of the Kafka protocol Sluice speaks as a consumer and as a producer: API keys,
// error codes, the versions Sluice implements and their negotiation, request encoders and
// response decoders for ApiVersions, Metadata, ListOffsets, Fetch, InitProducerId and Produce. No I/O here: the connection state machine
// (dataflow/kafka_source.*) frames bytes off the socket and calls these.
//
// Only non-flexible versions (no tagged fields, no compact strings): ApiVersions v0-v2,
// Metadata v1-v8, ListOffsets v1-v5, Fetch v4-v11, InitProducerId v0-v1, Produce v3-v8. Every broker since Kafka 0.11 (Fetch v4,
// record batches v2) supports a version in each range, and Kafka 4.0, which dropped the oldest
// versions (KIP-896), still does.
//
// Framing. A request is: int32 size of what follows, request header v1 (int16 api_key,
// int16 api_version, int32 correlation_id, nullable int16-length string client_id), body.
// A response is: int32 size, response header v0 (int32 correlation_id), body. The response
// says neither its API nor its version: the caller matches correlation_id to the request it
// sent and decodes with that request's API and version.
//
// Decoders fill caller-owned response objects and reuse their vectors (clear() keeps the
// capacity), so a steady stream of responses of similar shape allocates nothing. Nested lists
// are flat: a response holds one vector of topics and one of all their partitions in wire
// order, and each topic names its slice (partitions_of()). Strings and record sets in a decoded
// response are views into the response buffer: the buffer must outlive them, and the next
// decode into the same object replaces them.
//
// Every count read from the wire is checked against the bytes left (a count of N entries needs
// at least N times the smallest entry) and against the limits below before anything is
// reserved, so a hostile length cannot make a decoder allocate more than a small multiple of
// the response's own size, nor more than the limits allow.
//
// Thread/shard: free functions over caller objects; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "io/kafka/wire.h"

namespace sluice::kafka {

enum class ApiKey : int16_t {
  produce = 0,
  fetch = 1,
  list_offsets = 2,
  metadata = 3,
  offset_commit = 8,
  offset_fetch = 9,
  find_coordinator = 10,
  sasl_handshake = 17,
  init_producer_id = 22,
  api_versions = 18,
  sasl_authenticate = 36,
};

// Kafka's name for the API ("Fetch", "ListOffsets", ...), or "unknown API".
const char* to_string(ApiKey key);

// The error codes a consumer meets, with Kafka's numbers. A code read from the wire may be one
// this list does not name: the enum holds any int16, and to_string() says "unknown error code".
enum class ErrorCode : int16_t {
  unknown_server_error = -1,              ///< the broker hit an unexpected error
  none = 0,                               ///< success
  offset_out_of_range = 1,                ///< the fetch offset is outside the partition's log
  corrupt_message = 2,                    ///< a message failed its CRC, or is otherwise corrupt
  unknown_topic_or_partition = 3,         ///< this broker does not host the topic-partition
  invalid_fetch_size = 4,                 ///< the requested fetch size is invalid
  leader_not_available = 5,               ///< a leader election is in progress
  not_leader_or_follower = 6,             ///< this broker is not the partition's leader (any more)
  request_timed_out = 7,                  ///< the request timed out on the broker
  broker_not_available = 8,               ///< the broker is not available
  replica_not_available = 9,              ///< the replica is not available for the partition
  message_too_large = 10,                 ///< a message is larger than the broker accepts
  stale_controller_epoch = 11,            ///< the controller moved to another broker
  offset_metadata_too_large = 12,         ///< the offset commit metadata is too large
  network_exception = 13,                 ///< the broker lost a connection it needed
  coordinator_load_in_progress = 14,      ///< the group coordinator is still loading
  coordinator_not_available = 15,         ///< the group coordinator is not available
  not_coordinator = 16,                   ///< this broker is not the group's coordinator
  invalid_topic_exception = 17,           ///< the topic name is not valid
  record_list_too_large = 18,             ///< a batch is larger than the segment size
  not_enough_replicas = 19,               ///< fewer in-sync replicas than min.insync.replicas
  not_enough_replicas_after_append = 20,  ///< written, but to fewer in-sync replicas than required
  invalid_required_acks = 21,             ///< the produce acks value is invalid
  topic_authorization_failed = 29,        ///< the principal may not access the topic
  group_authorization_failed = 30,        ///< the principal may not access the group
  cluster_authorization_failed = 31,      ///< the principal may not perform cluster actions
  invalid_timestamp = 32,                 ///< a timestamp is out of the acceptable range
  unsupported_sasl_mechanism = 33,        ///< the broker does not support the SASL mechanism
  illegal_sasl_state = 34,                ///< the request is not valid in the SASL exchange's state
  unsupported_version = 35,               ///< the broker does not support the API version sent
  not_controller = 41,                    ///< this broker is not the controller
  invalid_request = 42,                   ///< the broker could not parse or accept the request
  unsupported_for_message_format = 43,    ///< the log's message format cannot serve the request
  out_of_order_sequence_number = 45,      ///< a produce batch's sequence is not the next expected
  duplicate_sequence_number = 46,         ///< the broker already has this produce batch
  invalid_producer_epoch = 47,            ///< a newer producer with the same id exists
  kafka_storage_error = 56,               ///< a disk error on the broker for this partition's log
  sasl_authentication_failed = 58,        ///< SASL authentication failed
  unknown_producer_id = 59,               ///< the broker no longer knows the producer id
  fetch_session_id_not_found = 70,        ///< the fetch session is unknown (Sluice uses none)
  invalid_fetch_session_epoch = 71,       ///< the fetch session epoch is wrong (Sluice uses none)
  listener_not_found = 72,                ///< the leader has no listener of the one this used
  fenced_leader_epoch = 74,               ///< our leader epoch is older than the broker's
  unknown_leader_epoch = 75,              ///< our leader epoch is newer than the broker's
  unsupported_compression_type = 76,      ///< this client version cannot read the log's codec
  offset_not_available = 78,              ///< the new leader's high watermark has not caught up
  preferred_leader_not_available = 80,    ///< the preferred leader is not available
  invalid_record = 87,                    ///< the broker refused a record (the batch is dropped)
  throttling_quota_exceeded = 89,         ///< a quota was exceeded
  producer_fenced = 90,                   ///< a newer producer with the same transactional id
  unknown_topic_id = 100,                 ///< this broker does not know the topic id
  fetch_session_topic_id_error = 106,     ///< a fetch session used topic ids inconsistently
};

// Kafka's name for a code ("OFFSET_OUT_OF_RANGE"), or "unknown error code".
const char* to_string(ErrorCode e);
// The same, but an unknown code becomes "UNKNOWN(<n>)" written into `buf` (returned).
constexpr size_t kErrorCodeTextBytesMax = 16;  // "UNKNOWN(-32768)" and its NUL
const char* to_string(ErrorCode e, char (&buf)[kErrorCodeTextBytesMax]);

// True when the same request may succeed later without anyone changing anything. Follows
// Kafka's own table (the "Retriable" column of the protocol guide), including
// CORRUPT_MESSAGE, which Kafka marks retriable for produce requests damaged in transit; a
// Fetch that returns it will likely return it again, so callers bound their retries.
bool is_retriable(ErrorCode e);
// True when the error means our view of who leads the partition may be stale, so Metadata
// should be fetched again before the next request for that partition.
bool needs_metadata_refresh(ErrorCode e);

// ---- Versions ---------------------------------------------------------------------------

struct ApiVersionRange {
  ApiKey key;
  int16_t min;
  int16_t max;
  bool operator==(const ApiVersionRange&) const = default;
};

// What Sluice implements (see the header comment).
inline constexpr ApiVersionRange kApiVersionsVersions{ApiKey::api_versions, 0, 2};
inline constexpr ApiVersionRange kMetadataVersions{ApiKey::metadata, 1, 8};
inline constexpr ApiVersionRange kListOffsetsVersions{ApiKey::list_offsets, 1, 5};
inline constexpr ApiVersionRange kFetchVersions{ApiKey::fetch, 4, 11};
// v2+ are flexible. v0 and v1 are the same.
inline constexpr ApiVersionRange kInitProducerIdVersions{ApiKey::init_producer_id, 0, 1};
// v3 is the first with record batches v2 (and a transactional id); v9+ are flexible. Brokers
// answer v5 without log_start_offset when they are librdkafka's mock (io/kafka/README.md):
// harmless, since the decoder reads what the version says and the mock offers v7.
inline constexpr ApiVersionRange kProduceVersions{ApiKey::produce, 3, 8};
// What a consumer needs of every broker.
inline constexpr ApiVersionRange kConsumerVersions[] = {kApiVersionsVersions, kMetadataVersions,
                                                        kListOffsetsVersions, kFetchVersions};
// What an (idempotent) producer needs of every broker.
inline constexpr ApiVersionRange kProducerVersions[] = {kApiVersionsVersions, kMetadataVersions,
                                                        kInitProducerIdVersions, kProduceVersions};
inline constexpr ApiVersionRange kImplementedVersions[] = {
    kApiVersionsVersions, kMetadataVersions,       kListOffsetsVersions,
    kFetchVersions,       kInitProducerIdVersions, kProduceVersions};

// The version to use for each API with one broker (-1: not negotiated, not needed).
struct NegotiatedVersions {
  int16_t api_versions = -1;
  int16_t metadata = -1;
  int16_t list_offsets = -1;
  int16_t fetch = -1;
  int16_t init_producer_id = -1;
  int16_t produce = -1;
};

// Why negotiation failed: the first API (in the order asked for) with no common version.
struct VersionMismatch {
  ApiKey key = ApiKey::api_versions;
  bool broker_has_api = false;  // false: absent from the broker's list
  int16_t broker_min = -1;      // the broker's range, when it has the API
  int16_t broker_max = -1;
  int16_t sluice_min = -1;
  int16_t sluice_max = -1;
};

// The highest version in both `ours` and the broker's range for the same API, or -1 when the
// broker lacks the API or the ranges do not overlap.
int16_t pick_version(const ApiVersionRange& ours, std::span<const ApiVersionRange> broker);

// Picks the highest common version of every API in `needed` (kConsumerVersions when not
// given) from the broker's ApiVersions list. On false, `out` is unspecified and `mismatch`
// names the API.
[[nodiscard]] bool negotiate_versions(std::span<const ApiVersionRange> broker,
                                      NegotiatedVersions& out, VersionMismatch& mismatch,
                                      std::span<const ApiVersionRange> needed = kConsumerVersions);

// A start-up error line for a mismatch, e.g. "the broker supports Fetch v0-v3; Sluice
// implements v4-v11", written into buf (NUL-terminated, truncated to fit). Returns its length.
size_t format_version_mismatch(const VersionMismatch& m, char* buf, size_t buf_bytes);

// ---- Framing ------------------------------------------------------------------------------

// Where a response stands in the bytes received so far.
enum class FrameStatus : uint8_t {
  complete = 0,  ///< the size prefix and the whole response are there
  need_more,     ///< fewer bytes than the size prefix (or the prefix itself) says
  bad_size,      ///< the size is negative or above the caller's limit: drop the connection
};

// Reads a response's int32 size prefix from the first bytes received. body_bytes is set from
// the prefix (complete or need_more): the response is then buffered[4, 4 + body_bytes).
// `body_bytes_max` bounds what one response may make the caller buffer; set it above the
// largest Fetch response asked for (FetchRequest::max_bytes plus per-partition overhead).
FrameStatus peek_response_frame(std::span<const uint8_t> buffered, size_t body_bytes_max,
                                size_t& body_bytes);

// Reads response header v0. REQUIRES: r covers exactly one response, after its size prefix.
[[nodiscard]] bool decode_response_header(Reader& r, int32_t& correlation_id);

// ---- Encoding -----------------------------------------------------------------------------

enum class EncodeStatus : uint8_t {
  ok = 0,
  unsupported_version,  ///< a version outside what Sluice implements for the API
  too_long,             ///< a string or list longer than its wire length prefix allows
  no_room,              ///< the Writer's fixed region is full
};

const char* to_string(EncodeStatus s);

// Kafka's isolation levels (Fetch v4+, ListOffsets v2+).
enum class IsolationLevel : int8_t {
  read_uncommitted = 0,  ///< every record, including those of open and aborted transactions
  read_committed = 1,    ///< only below the last stable offset; aborted transactions listed
};

// ListOffsets timestamps with a special meaning; other values are times in ms since the epoch
// (the earliest offset whose record timestamp is at or after it).
constexpr int64_t kListOffsetsEarliest = -2;
constexpr int64_t kListOffsetsLatest = -1;

struct ListOffsetsPartitionRequest {
  int32_t partition = 0;
  int64_t timestamp = kListOffsetsLatest;
  int32_t current_leader_epoch = -1;  // v4+; -1 skips the broker's epoch check
};

struct ListOffsetsTopicRequest {
  std::string_view name;
  std::span<const ListOffsetsPartitionRequest> partitions;
};

struct FetchPartitionRequest {
  int32_t partition = 0;
  int64_t fetch_offset = 0;
  // Per partition: at least one batch is returned even if larger (KIP-74), so this is a soft
  // cap. Kafka's consumer default (max.partition.fetch.bytes) is 1 MiB.
  int32_t partition_max_bytes = 1 << 20;
  int32_t current_leader_epoch = -1;  // v9+; -1 skips the broker's epoch check
};

struct FetchTopicRequest {
  std::string_view name;
  std::span<const FetchPartitionRequest> partitions;
};

struct FetchRequest {
  // How long the broker may hold the request waiting for min_bytes: longer means fewer empty
  // responses on an idle topic, shorter means quicker reaction to new partitions and stops.
  int32_t max_wait_ms = 500;
  int32_t min_bytes = 1;
  // Whole-response soft cap (v3+; at least one batch is returned even if larger), and so
  // roughly the receive buffer a connection needs. Kafka's consumer default is 50 MiB; ours
  // is smaller to keep per-connection buffers small, at the cost of more round trips.
  int32_t max_bytes = 16 << 20;
  IsolationLevel isolation_level = IsolationLevel::read_uncommitted;
  std::span<const FetchTopicRequest> topics;
};

// Each encoder appends one whole request (size prefix, header v1, body) to `w`. On anything but
// ok, what it appended is removed again (the Writer stays failed for no_room/too_long; an
// unsupported version writes nothing). client_id is sent as a non-null string.
//
// ApiVersions v0-v2 have an empty body. Send v2 first; a broker that does not know it answers
// with a v0-shaped body carrying UNSUPPORTED_VERSION (decode_api_versions_response handles the
// shape), and the request is then retried with the broker's max version (or v0).
[[nodiscard]] EncodeStatus encode_api_versions_request(Writer& w, int16_t version,
                                                       int32_t correlation_id,
                                                       std::string_view client_id);
// Metadata for the named topics (an empty list asks for brokers only: from v1 on, only a null
// list means "all topics", which Sluice never asks for). allow_auto_topic_creation (v4+) is
// false: a consumer must not create topics by asking about them. v8's authorized-operations
// flags are false.
[[nodiscard]] EncodeStatus encode_metadata_request(Writer& w, int16_t version,
                                                   int32_t correlation_id,
                                                   std::string_view client_id,
                                                   std::span<const std::string_view> topics);
// replica_id -1 (a consumer); isolation_level from v2.
[[nodiscard]] EncodeStatus encode_list_offsets_request(
    Writer& w, int16_t version, int32_t correlation_id, std::string_view client_id,
    IsolationLevel isolation_level, std::span<const ListOffsetsTopicRequest> topics);
// replica_id -1; no fetch session (session_id 0, epoch -1, no forgotten topics, v7+):
// a full fetch each time, which keeps the connection stateless across reconnects;
// log_start_offset -1 (v5+, only followers send it); rack_id "" (v11: no rack-aware replica
// selection, so preferred_read_replica comes back -1).
[[nodiscard]] EncodeStatus encode_fetch_request(Writer& w, int16_t version, int32_t correlation_id,
                                                std::string_view client_id,
                                                const FetchRequest& request);

// An idempotent producer's id: transactional_id null; transaction_timeout_ms matters only to
// transactional producers (Sluice sends 60000, the Java client's default).
[[nodiscard]] EncodeStatus encode_init_producer_id_request(Writer& w, int16_t version,
                                                           int32_t correlation_id,
                                                           std::string_view client_id);

// Kafka's acks: 0 = no answer awaited (Sluice never sends it), 1 = the leader wrote it, -1 = every
// in-sync replica has it ("all"; required for idempotence).
constexpr int16_t kAcksAll = -1;
constexpr int16_t kAcksLeader = 1;

struct ProducePartitionRequest {
  int32_t partition = 0;
  std::span<const uint8_t> records;  // one or more whole record batches v2
};

struct ProduceRequest {
  int16_t acks = kAcksAll;
  int32_t timeout_ms = 30'000;  // how long the leader may wait for the replicas' acks
  std::string_view topic;       // one topic per request
  std::span<const ProducePartitionRequest> partitions;
};

// transactional_id null (not transactional).
[[nodiscard]] EncodeStatus encode_produce_request(Writer& w, int16_t version,
                                                  int32_t correlation_id,
                                                  std::string_view client_id,
                                                  const ProduceRequest& request);

// ---- Decoding -----------------------------------------------------------------------------

enum class ResponseStatus : uint8_t {
  ok = 0,
  malformed,            ///< the bytes do not follow the version's layout (truncated, a bad
                        ///< length or count, bytes left over after the last field)
  limit_exceeded,       ///< well-formed, but a count is above Sluice's limit (below)
  unsupported_version,  ///< a version outside what Sluice implements for the API (caller bug)
};

const char* to_string(ResponseStatus s);

struct [[nodiscard]] DecodeResult {
  ResponseStatus status = ResponseStatus::ok;
  const char* reason = "";  // static text naming the field that failed; "" when ok
  bool ok() const { return status == ResponseStatus::ok; }
};

// Limits on what one response may hold. Each bounds the decoder's vectors; the bytes of the
// response bound them too, so these matter for large responses: they turn "a 100 MB response
// of tiny entries" into an error instead of a 100 MB vector.
constexpr int32_t kApiVersionsEntriesMax = 1'024;     // Kafka 4.x defines fewer than 100 APIs
constexpr int32_t kBrokersMax = 10'000;               // brokers in one Metadata response
constexpr int32_t kTopicsMax = 10'000;                // topics in one response
constexpr int32_t kPartitionsMax = 100'000;           // partitions in one response, all topics
constexpr int32_t kAbortedTransactionsMax = 100'000;  // in one Fetch response, all partitions
static_assert(kTopicsMax <= kPartitionsMax, "a topic in a response has partitions");

struct ApiVersionsResponse {
  ErrorCode error = ErrorCode::none;
  std::vector<ApiVersionRange> apis;  // as the broker listed them; keys Sluice does not name too
  int32_t throttle_time_ms = 0;       // v1+
};

struct MetadataBroker {
  int32_t node_id = -1;
  std::string_view host;
  int32_t port = -1;
  std::optional<std::string_view> rack;  // null when the broker has none
};

struct MetadataPartition {
  std::string_view topic;  // the topic's name, repeated for callers that walk partitions flat
  ErrorCode error = ErrorCode::none;
  int32_t partition = -1;
  int32_t leader = -1;        // node id; -1 when there is none (an election, or offline)
  int32_t leader_epoch = -1;  // v7+; -1 before
};

struct MetadataTopic {
  ErrorCode error = ErrorCode::none;
  std::string_view name;
  bool is_internal = false;
  uint32_t partitions_begin = 0;  // this topic's slice of MetadataResponse::partitions
  uint32_t partitions_end = 0;
};

struct MetadataResponse {
  int32_t throttle_time_ms = 0;  // v3+
  std::vector<MetadataBroker> brokers;
  std::optional<std::string_view> cluster_id;  // v2+; null before
  int32_t controller_id = -1;
  std::vector<MetadataTopic> topics;
  std::vector<MetadataPartition> partitions;  // every topic's, in wire order

  std::span<const MetadataPartition> partitions_of(const MetadataTopic& t) const {
    return std::span(partitions).subspan(t.partitions_begin, t.partitions_end - t.partitions_begin);
  }
  // The broker with this node id, or nullptr.
  const MetadataBroker* find_broker(int32_t node_id) const;
};

struct ListOffsetsPartition {
  std::string_view topic;
  int32_t partition = -1;
  ErrorCode error = ErrorCode::none;
  int64_t timestamp = -1;  // of the record at `offset`; -1 for earliest/latest queries
  int64_t offset = -1;
  int32_t leader_epoch = -1;  // v4+
};

struct ListOffsetsTopic {
  std::string_view name;
  uint32_t partitions_begin = 0;
  uint32_t partitions_end = 0;
};

struct ListOffsetsResponse {
  int32_t throttle_time_ms = 0;  // v2+
  std::vector<ListOffsetsTopic> topics;
  std::vector<ListOffsetsPartition> partitions;

  std::span<const ListOffsetsPartition> partitions_of(const ListOffsetsTopic& t) const {
    return std::span(partitions).subspan(t.partitions_begin, t.partitions_end - t.partitions_begin);
  }
};

struct AbortedTransaction {
  int64_t producer_id = -1;
  int64_t first_offset = -1;
};

struct FetchPartition {
  std::string_view topic;
  int32_t partition = -1;
  ErrorCode error = ErrorCode::none;
  int64_t high_watermark = -1;
  int64_t last_stable_offset = -1;  // v4+
  int64_t log_start_offset = -1;    // v5+; -1 before
  // This partition's slice of FetchResponse::aborted_transactions (read_committed only; the
  // broker sends null otherwise, which reads as an empty slice with aborted_null set).
  uint32_t aborted_begin = 0;
  uint32_t aborted_end = 0;
  bool aborted_null = true;
  int32_t preferred_read_replica = -1;  // v11+; -1 before
  // The record set: whole record batches, possibly followed by a partial batch the broker cut
  // at the size limit. A view into the response buffer; empty when null or empty.
  std::span<const uint8_t> records;
  bool records_null = true;
};

struct FetchTopic {
  std::string_view name;
  uint32_t partitions_begin = 0;
  uint32_t partitions_end = 0;
};

struct FetchResponse {
  int32_t throttle_time_ms = 0;
  ErrorCode error = ErrorCode::none;  // v7+; whole-request errors (fetch sessions)
  int32_t session_id = 0;             // v7+
  std::vector<FetchTopic> topics;
  std::vector<FetchPartition> partitions;                // every topic's, in wire order
  std::vector<AbortedTransaction> aborted_transactions;  // every partition's, in wire order

  std::span<const FetchPartition> partitions_of(const FetchTopic& t) const {
    return std::span(partitions).subspan(t.partitions_begin, t.partitions_end - t.partitions_begin);
  }
  std::span<const AbortedTransaction> aborted_of(const FetchPartition& p) const {
    return std::span(aborted_transactions)
        .subspan(p.aborted_begin, p.aborted_end - p.aborted_begin);
  }
};

struct InitProducerIdResponse {
  int32_t throttle_time_ms = 0;
  ErrorCode error = ErrorCode::none;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
};

struct ProducePartitionResponse {
  std::string_view topic;
  int32_t partition = -1;
  ErrorCode error = ErrorCode::none;
  int64_t base_offset = -1;       // of the batch's first record
  int64_t log_append_time = -1;   // -1 for CreateTime topics
  int64_t log_start_offset = -1;  // v5+
  std::optional<std::string_view> error_message;  // v8+
};

struct ProduceResponse {
  std::vector<ProducePartitionResponse> partitions;  // every topic's, in wire order
  int32_t throttle_time_ms = 0;
};

// Each decoder reads one response body of the given version: `r` starts after the response
// header and ends at the end of the response (bytes left over are malformed). On anything but
// ok, `out`'s vectors are emptied (capacity kept) and its other fields are unspecified.
//
// ApiVersions: a broker answers a version it does not support with a v0 body and
// UNSUPPORTED_VERSION, so a body that does not parse as `version` but parses as v0 with that
// error is accepted as v0 (any other v0-shaped body is malformed: it could be a cut v1+ body).
DecodeResult decode_api_versions_response(Reader& r, int16_t version, ApiVersionsResponse& out);
DecodeResult decode_metadata_response(Reader& r, int16_t version, MetadataResponse& out);
DecodeResult decode_list_offsets_response(Reader& r, int16_t version, ListOffsetsResponse& out);
DecodeResult decode_fetch_response(Reader& r, int16_t version, FetchResponse& out);
DecodeResult decode_init_producer_id_response(Reader& r, int16_t version,
                                              InitProducerIdResponse& out);
// v8's per-record errors are read and passed over (the partition's error_message says why).
DecodeResult decode_produce_response(Reader& r, int16_t version, ProduceResponse& out);

}  // namespace sluice::kafka
