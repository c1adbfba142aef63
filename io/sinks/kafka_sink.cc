// The Kafka sink: each result row becomes one record of a topic — the row's
// NDJSON as the value, a key from a template (partition =
// toPositive(murmur2(key)) % partitions, as Kafka's Java client does), the
// window end as the record timestamp, and headers that name the row
// (sluice.pipeline, sluice.window_start, sluice.window_end, sluice.key), so a
// consumer can drop a row it has seen. Sluice's own producer, on the Kafka
// client (io/kafka/client.h) and the gatherer's io_uring.
//
// Records go into one open batch per partition; a batch is sealed (compressed,
// framed, given its sequence numbers) when it would pass batch_bytes_max,
// when it has been open for `linger`, when rows wait that the sink has no room
// for, or at the end. Each leader's connection carries one Produce request at
// a time, with the oldest sealed batch of every partition it leads, so each
// partition has at most one batch in flight and batches reach it in order.
//
// Idempotence (acks = "all", the default): the producer id from
// InitProducerId and per-partition sequence numbers are in every batch, and a
// batch is sent again byte for byte (same sequence) after a retriable error, a
// lost connection or a lost response, so a broker that already has it answers
// DUPLICATE_SEQUENCE_NUMBER (taken as success) instead of writing it twice.
// Leader moves (NOT_LEADER_OR_FOLLOWER and friends) ask Metadata again and
// resend to the new leader. Errors that will not heal (a refused record, a
// batch too large, authorization, a producer id the broker lost) stop the
// pipeline with exit 1 rather than dropping rows. Across a restart the
// producer id is new: at-least-once, hence the headers.
#include <algorithm>
#include <any>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/config_reader.h"
#include "core/log.h"
#include "core/timestamp.h"
#include "io/kafka/client.h"
#include "io/kafka/compression.h"
#include "io/kafka/murmur2.h"
#include "io/kafka/protocol.h"
#include "io/kafka/record_batch.h"
#include "io/sink.h"
#include "io/sinks/row_template.h"
#include "operators/json_text.h"
#include "operators/row_encoder.h"

namespace sluice {

namespace {

using kafka::Codec;
using kafka::ErrorCode;

constexpr int64_t kRetryMinNs = 100 * kNsPerMs;
constexpr int64_t kRetryMaxNs = 5 * kNsPerS;
constexpr int64_t kMetadataRetryNs = 500 * kNsPerMs;
constexpr size_t kResponseBytesMax = 1 << 20;
constexpr size_t kPendingMax = 4096;
// CORRUPT_MESSAGE is retriable (damage in transit), but the same bytes refused this
// often are not damaged on the way: the run fails instead of retrying forever.
constexpr int32_t kCorruptAnswersMax = 3;
// Sealed batches' buffers kept for reuse beyond those in use.
constexpr size_t kSpareBuffersMax = 16;
// Headers a record carries with `headers = true`.
constexpr std::string_view kHeaderPipeline = "sluice.pipeline";
constexpr std::string_view kHeaderWindowStart = "sluice.window_start";
constexpr std::string_view kHeaderWindowEnd = "sluice.window_end";
constexpr std::string_view kHeaderKey = "sluice.key";

enum Tag : uint32_t { kTagMetadata = 1, kTagInitProducerId, kTagProduce };

struct KafkaSinkOptions {
  std::vector<KafkaSourceConfig::Broker> brokers;
  std::string topic;
  bool keyed = false;
  RowTemplate key;
  Codec codec = Codec::none;
  bool idempotent = true;  // acks = "all"
  int64_t linger_ns = 5 * kNsPerMs;
  int64_t batch_bytes_max = 1'000'000;  // under the broker's default message.max.bytes (1 MiB + 12)
  int64_t timeout_ns = 30 * kNsPerS;    // the leader's wait for its replicas (Produce timeout_ms)
  std::string client_id = "sluice";
  bool headers = true;
};

const KafkaSinkOptions& options_of(const SinkConfig& cfg) { return std::any_cast<const KafkaSinkOptions&>(cfg.options); }

// ---------------------------------------------------------------------------
// Config

constexpr std::string_view kKafkaSinkKeys[] = {"brokers", "topic",          "key",     "compression", "acks",
                                               "linger",  "batch_bytes_max", "timeout", "client_id",   "headers"};

void parse_kafka_sink(TableReader& r, SinkConfig& sink, ConfigContext& ctx) {
  KafkaSinkOptions o;
  std::vector<std::string> brokers;
  if (r.string_list("brokers", brokers, Need::required, /*single_string_ok=*/true)) {
    for (const std::string& b : brokers) {
      auto address = parse_listen(b);
      if (!address || address->port == 0) {
        r.error("brokers", fmt::format("bad broker address \"{}\"{}; expected \"host:port\"", b,
                                       address ? "" : ": " + address.error()));
      } else {
        o.brokers.push_back({address->host, address->port});
      }
    }
  }
  if (r.string("topic", o.topic, Need::required) && (o.topic.empty() || o.topic.size() > 249)) {
    r.error("topic", "a topic name is 1 to 249 characters");
  }
  std::string key;
  if (r.string("key", key)) {
    auto parts = parse_row_template(key, ctx);
    if (!parts) {
      r.error("key", parts.error());
    } else {
      o.keyed = true;
      o.key = std::move(*parts);
    }
  }
  r.choice("compression", o.codec,
           {{"none", Codec::none}, {"gzip", Codec::gzip}, {"snappy", Codec::snappy}, {"lz4", Codec::lz4},
            {"zstd", Codec::zstd}});
  r.choice("acks", o.idempotent, {{"all", true}, {"1", false}});
  r.duration("linger", o.linger_ns, Zero::allowed);
  r.integer("batch_bytes_max", o.batch_bytes_max, 1 << 10, 64 << 20);
  r.duration("timeout", o.timeout_ns, Zero::rejected);
  r.string("client_id", o.client_id);
  r.boolean("headers", o.headers);
  if (sink.format != OutputFormat::ndjson) r.error("format", "a Kafka sink writes each row as one NDJSON value");
  sink.options = std::move(o);
}

// ---------------------------------------------------------------------------
// The sink

class KafkaSink final : public Sink, private kafka::ClientUser {
 public:
  KafkaSink(SinkHost& host, const SinkConfig& cfg, SinkMetrics& metrics)
      : host_(host),
        cfg_(cfg),
        o_(options_of(cfg)),
        metrics_(metrics),
        encoder_(OutputFormat::ndjson, host.config().schema, host.config().aggregates),
        client_(host.reactor(), *this,
                kafka::ClientOptions{.log_name = "sink " + cfg.name,
                                     .client_id = o_.client_id,
                                     .response_bytes_max = kResponseBytesMax,
                                     .apis = kafka::kProducerVersions}),
        bootstrap_(o_.brokers) {
    value_ = std::make_unique<char[]>(encoder_.row_bytes_max());
    key_text_ = std::make_unique<char[]>(o_.keyed ? template_bytes_max(o_.key) : 1);
    key_json_ = std::make_unique<char[]>(json_escaped_bytes_max(kKeyBytesMax) + 2 * kValueFieldsMax + 2);
    room_ = std::max<uint64_t>(cfg.buffer_bytes, 2 * uint64_t(o_.batch_bytes_max));
    client_.add(-1);  // the bootstrap connection: Metadata, InitProducerId
    in_request_.resize(1);
    request_started_.resize(1);
    bootstrap_.pick(client_.at(0));
    client_.connect(client_.at(0));
    pid_needed_ = o_.idempotent;
  }
  ~KafkaSink() override = default;

  size_t take(const SinkWindow& w, size_t from, int64_t now) override;
  void window_taken(const SinkWindow& w) override {
    if (w.count > 0 && windows_.size() < kPendingMax) windows_.push_back(Pending{rows_taken_, w.fire_ns, w.end});
  }
  bool flush(int64_t now, bool stuck, bool final) override;
  int64_t next_deadline() const override;
  uint64_t unwritten_bytes() const override { return bytes_taken_ - bytes_acked_; }
  bool idle() const override {
    if (failed_) return !client_.operations_pending();
    return rows_taken_ == rows_acked_ && !client_.operations_pending();
  }
  bool failed() const override { return failed_; }
  uint64_t rows_written() const override { return rows_acked_; }
  std::string failure() const override {
    return fmt::format("sink {} failed ({}): {} rows written, {} rows not written", cfg_.name, failure_,
                       rows_acked_, rows_lost_);
  }
  std::string describe_pending() const override {
    if (failed_ || rows_taken_ == rows_acked_) return {};
    size_t sealed = 0, leaderless = 0;
    for (const Partition& p : partitions_) {
      sealed += p.sealed.size();
      if (p.leader < 0 && (!p.sealed.empty() || !p.open.empty())) ++leaderless;
    }
    return fmt::format("sink {}: {} records not yet acknowledged by Kafka ({} batches sealed, {} partitions "
                       "without a leader{})",
                       cfg_.name, rows_taken_ - rows_acked_, sealed, leaderless,
                       metadata_known_ ? "" : "; topic metadata not known yet");
  }
  void refresh_gauges() override { metrics_.buffer_bytes.set(int64_t(unwritten_bytes())); }

  // Records acknowledged (a topic has no position Sluice can truncate to).
  uint64_t position() const override { return rows_acked_; }
  std::expected<void, std::string> pre_commit(uint64_t) override { return {}; }
  std::expected<void, std::string> recover(uint64_t) override { return {}; }

 private:
  struct Sealed {
    std::vector<uint8_t> bytes;
    int32_t records = 0;
    uint64_t first_row = 0;  // global index (rows_taken_ order) of its first record
    uint64_t raw_bytes = 0;  // uncompressed, as counted in bytes_taken_
    int64_t sealed_ns = 0;
    bool sent_before = false;
  };
  struct Partition {
    int32_t id = 0;
    int32_t leader = -1;
    kafka::BatchBuilder open;
    int64_t open_since = kTimeMax;
    uint64_t open_first_row = 0;
    int32_t next_sequence = 0;
    std::deque<Sealed> sealed;
    bool in_flight = false;
    int64_t retry_at = 0;
    int64_t backoff_ns = kRetryMinNs;
    int32_t corrupt_answers = 0;  // CORRUPT_MESSAGE for its oldest batch so far
  };
  struct Pending {
    uint64_t rows_end;  // rows taken up to this window's last
    int64_t fire_ns;
    int64_t window_end_ns;
  };
  using Conn = kafka::Connection;

  // kafka::ClientUser
  uint32_t next_request(Conn& c, kafka::Writer& w, int32_t correlation, int64_t& wait_ns) override;
  bool on_response(Conn& c, uint32_t tag, kafka::ResponseBuffer& b, kafka::Reader& r) override;
  void on_drop(Conn& c) override;
  void on_incompatible(Conn&, const std::string& why) override { fail(why); }
  bool wants(const Conn& c) override;
  bool quiet() const override { return failed_ || closed_; }

  Conn& conn_for(int32_t node_id);
  void handle_metadata(Conn& c, kafka::Reader& r);
  void handle_init_producer_id(Conn& c, kafka::Reader& r);
  void handle_produce(Conn& c, kafka::Reader& r);
  bool ready_to_take() const { return metadata_known_ && !pid_needed_ && !partitions_.empty(); }
  void seal(Partition& p, int64_t now);
  void acknowledged(Partition& p);
  void retry(Partition& p, ErrorCode e);
  void need_metadata() {
    if (!metadata_needed_) metadata_not_before_ = host_.reactor().now();
    metadata_needed_ = true;
  }
  void fail(const std::string& why);
  std::string_view key_json(const KeyParts& parts);
  bool sendable(const Partition& p, int64_t now) const {
    return !p.in_flight && !p.sealed.empty() && p.leader >= 0 && now >= p.retry_at;
  }

  SinkHost& host_;
  const SinkConfig& cfg_;
  const KafkaSinkOptions& o_;
  SinkMetrics& metrics_;
  RowEncoder encoder_;
  RowRenderer renderer_;
  kafka::Client client_;
  kafka::Compressor compressor_;
  kafka::MetadataResponse metadata_;  // views into a response buffer: valid while it is handled
  kafka::BootstrapBrokers bootstrap_;  // where the bootstrap connection goes next
  kafka::ProduceResponse produce_;
  std::unique_ptr<char[]> value_;
  std::unique_ptr<char[]> key_text_;
  std::unique_ptr<char[]> key_json_;
  char window_text_[2][kRfc3339BytesMax];
  size_t window_len_[2] = {0, 0};
  int64_t window_start_ = kTimeMax;

  std::vector<Partition> partitions_;
  std::vector<std::vector<int32_t>> in_request_;  // by connection: partitions of its Produce in flight
  std::vector<int64_t> request_started_;          // by connection
  std::vector<std::vector<uint8_t>> spare_;       // sealed batches' buffers, reused
  std::vector<kafka::ProducePartitionRequest> request_parts_;  // request-building scratch
  bool metadata_known_ = false;
  bool metadata_needed_ = true;
  bool topic_warned_ = false;
  int64_t metadata_not_before_ = 0;
  bool pid_needed_ = false;
  int64_t pid_not_before_ = 0;
  int64_t pid_backoff_ns_ = kRetryMinNs;
  int64_t producer_id_ = -1;
  int16_t producer_epoch_ = -1;

  uint64_t room_ = 0;  // bytes taken and not yet acknowledged, at most
  uint64_t rows_taken_ = 0;
  uint64_t rows_acked_ = 0;
  uint64_t bytes_taken_ = 0;
  uint64_t bytes_acked_ = 0;
  uint64_t round_robin_ = 0;
  std::deque<Pending> windows_;
  uint64_t rows_lost_ = 0;
  bool failed_ = false;
  bool closed_ = false;
  std::string failure_;
};

// ---------------------------------------------------------------------------
// Connections


KafkaSink::Conn& KafkaSink::conn_for(int32_t node_id) {
  if (Conn* c = client_.find(node_id); c != nullptr && c->index() != 0) return *c;
  Conn& c = client_.add(node_id);
  in_request_.resize(client_.size());
  request_started_.resize(client_.size());
  return c;
}

bool KafkaSink::wants(const Conn& c) {
  if (c.index() == 0) {
    if (!metadata_needed_ && !pid_needed_) return false;
    bootstrap_.pick(client_.at(0));
    return true;
  }
  for (const Partition& p : partitions_) {
    if (p.leader == c.node_id && (!p.sealed.empty() || !p.open.empty())) return true;
  }
  return false;
}

// What was in flight on a lost connection is sent again (same bytes, same
// sequence numbers), after asking who leads now.
void KafkaSink::on_drop(Conn& c) {
  metrics_.reconnects.add();
  if (c.index() < in_request_.size()) {
    const int64_t now = host_.reactor().now();
    for (int32_t id : in_request_[c.index()]) {
      Partition& p = partitions_[size_t(id)];
      p.in_flight = false;
      p.retry_at = now + p.backoff_ns;
      p.backoff_ns = std::min(p.backoff_ns * 2, kRetryMaxNs);
    }
    in_request_[c.index()].clear();
  }
  need_metadata();
}

uint32_t KafkaSink::next_request(Conn& c, kafka::Writer& w, int32_t correlation, int64_t& wait_ns) {
  const int64_t now = host_.reactor().now();
  if (c.index() == 0) {
    if (metadata_needed_ && now >= metadata_not_before_) {
      std::string_view topics[] = {o_.topic};
      if (kafka::encode_metadata_request(w, c.versions().metadata, correlation, o_.client_id, topics) !=
          kafka::EncodeStatus::ok) {
        fail("cannot encode a Metadata request");
        return 0;
      }
      metadata_needed_ = false;
      return kTagMetadata;
    }
    if (pid_needed_ && now >= pid_not_before_) {
      if (kafka::encode_init_producer_id_request(w, c.versions().init_producer_id, correlation, o_.client_id) !=
          kafka::EncodeStatus::ok) {
        fail("cannot encode an InitProducerId request");
        return 0;
      }
      return kTagInitProducerId;
    }
    return 0;
  }
  // Produce: the oldest sealed batch of every partition this broker leads.
  std::vector<kafka::ProducePartitionRequest>& parts = request_parts_;
  parts.clear();
  std::vector<int32_t>& ids = in_request_[c.index()];
  ids.clear();
  size_t bytes = 0;
  const size_t request_max = std::max<size_t>(size_t(o_.batch_bytes_max), 8u << 20);
  for (Partition& p : partitions_) {
    if (p.leader != c.node_id || !sendable(p, now)) continue;
    const Sealed& s = p.sealed.front();
    if (!parts.empty() && bytes + s.bytes.size() > request_max) break;
    bytes += s.bytes.size();
    parts.push_back({p.id, s.bytes});
    ids.push_back(p.id);
  }
  if (parts.empty()) return 0;
  kafka::ProduceRequest req;
  req.acks = o_.idempotent ? kafka::kAcksAll : kafka::kAcksLeader;
  req.timeout_ms = int32_t(std::min<int64_t>(o_.timeout_ns / kNsPerMs, INT32_MAX));
  req.topic = o_.topic;
  req.partitions = parts;
  if (kafka::encode_produce_request(w, c.versions().produce, correlation, o_.client_id, req) !=
      kafka::EncodeStatus::ok) {
    ids.clear();
    fail("cannot encode a Produce request");
    return 0;
  }
  for (int32_t id : ids) {
    Partition& p = partitions_[size_t(id)];
    p.in_flight = true;
    if (p.sealed.front().sent_before) {
      metrics_.retries.add();
    }
    p.sealed.front().sent_before = true;
  }
  metrics_.writes.add();
  metrics_.bytes_out.add(bytes);
  request_started_[c.index()] = now;
  wait_ns = o_.timeout_ns;  // the leader may hold it this long for its replicas
  return kTagProduce;
}

bool KafkaSink::on_response(Conn& c, uint32_t tag, kafka::ResponseBuffer&, kafka::Reader& r) {
  switch (tag) {
    case kTagMetadata: handle_metadata(c, r); break;
    case kTagInitProducerId: handle_init_producer_id(c, r); break;
    case kTagProduce: handle_produce(c, r); break;
    default: break;
  }
  return false;
}

void KafkaSink::handle_metadata(Conn& c, kafka::Reader& r) {
  const int64_t now = host_.reactor().now();
  kafka::DecodeResult d = kafka::decode_metadata_response(r, c.versions().metadata, metadata_);
  if (!d.ok()) {
    metadata_needed_ = true;
    client_.drop(c, fmt::format("malformed Metadata response ({})", d.reason).c_str());
    return;
  }
  const kafka::MetadataTopic* topic = nullptr;
  for (const kafka::MetadataTopic& t : metadata_.topics) {
    if (t.name == o_.topic) topic = &t;
  }
  if (topic == nullptr || topic->error != ErrorCode::none || topic->partitions_end == topic->partitions_begin) {
    const ErrorCode e = topic != nullptr ? topic->error : ErrorCode::unknown_topic_or_partition;
    if (!topic_warned_) {
      log_warn("sink {}: topic {}: {}; asking again (rows wait)", cfg_.name, o_.topic, kafka::to_string(e));
      topic_warned_ = true;
    }
    metadata_needed_ = true;
    metadata_not_before_ = now + kMetadataRetryNs;
    return;
  }
  bootstrap_.learn(metadata_);
  auto parts = metadata_.partitions_of(*topic);
  int32_t count = 0;
  for (const kafka::MetadataPartition& mp : parts) count = std::max(count, mp.partition + 1);
  if (!metadata_known_) {
    log_info("sink {}: topic {} has {} partition{}", cfg_.name, o_.topic, count, count == 1 ? "" : "s");
  } else if (size_t(count) > partitions_.size()) {
    log_info("sink {}: topic {} grew from {} to {} partitions (keys now map to the new count)", cfg_.name, o_.topic,
             partitions_.size(), count);
  }
  while (partitions_.size() < size_t(count)) {
    partitions_.emplace_back();
    partitions_.back().id = int32_t(partitions_.size() - 1);
  }
  bool leaderless = false;
  for (const kafka::MetadataPartition& mp : parts) {
    if (mp.partition < 0) continue;
    Partition& p = partitions_[size_t(mp.partition)];
    const kafka::MetadataBroker* b = mp.leader >= 0 ? metadata_.find_broker(mp.leader) : nullptr;
    if (b == nullptr) {
      leaderless = true;
      p.leader = -1;
      continue;
    }
    if (p.leader >= 0 && p.leader != mp.leader) {
      log_info("sink {}: partition {}/{}: leader moved from broker {} to {}", cfg_.name, o_.topic, p.id, p.leader,
               mp.leader);
    }
    p.leader = mp.leader;
    Conn& lc = conn_for(mp.leader);
    lc.host = std::string(b->host);
    lc.port = uint16_t(b->port);
    if (lc.state() == Conn::State::closed) client_.connect(lc);
  }
  metadata_known_ = true;
  if (leaderless) {
    metadata_needed_ = true;
    metadata_not_before_ = now + kMetadataRetryNs;
  }
}

void KafkaSink::handle_init_producer_id(Conn& c, kafka::Reader& r) {
  kafka::InitProducerIdResponse resp;
  kafka::DecodeResult d = kafka::decode_init_producer_id_response(r, c.versions().init_producer_id, resp);
  if (!d.ok()) {
    client_.drop(c, fmt::format("malformed InitProducerId response ({})", d.reason).c_str());
    return;
  }
  if (resp.error != ErrorCode::none) {
    char buf[kafka::kErrorCodeTextBytesMax];
    if (kafka::is_retriable(resp.error)) {
      log_warn("sink {}: InitProducerId: {}; asking again in {} ms", cfg_.name, kafka::to_string(resp.error, buf),
               pid_backoff_ns_ / kNsPerMs);
      pid_not_before_ = host_.reactor().now() + pid_backoff_ns_;
      pid_backoff_ns_ = std::min(pid_backoff_ns_ * 2, kRetryMaxNs);
      return;  // still needed
    }
    fail(fmt::format("the broker refused a producer id: {} (acks = \"1\" does without one)",
                     kafka::to_string(resp.error, buf)));
    return;
  }
  producer_id_ = resp.producer_id;
  producer_epoch_ = resp.producer_epoch;
  pid_needed_ = false;
  log_info("sink {}: idempotent producer id {} epoch {}", cfg_.name, producer_id_, producer_epoch_);
}

void KafkaSink::handle_produce(Conn& c, kafka::Reader& r) {
  std::vector<int32_t>& ids = in_request_[c.index()];
  kafka::DecodeResult d = kafka::decode_produce_response(r, c.versions().produce, produce_);
  if (!d.ok()) {
    // Dropping the connection sends the batches again (on_drop).
    client_.drop(c, fmt::format("malformed Produce response ({})", d.reason).c_str());
    return;
  }
  metrics_.write_latency.record_interval_ns(request_started_[c.index()], host_.reactor().now());
  for (const kafka::ProducePartitionResponse& pr : produce_.partitions) {
    if (pr.topic != o_.topic || pr.partition < 0 || size_t(pr.partition) >= partitions_.size()) continue;
    Partition& p = partitions_[size_t(pr.partition)];
    if (!p.in_flight || std::find(ids.begin(), ids.end(), pr.partition) == ids.end()) continue;
    p.in_flight = false;
    if (pr.error == ErrorCode::none || pr.error == ErrorCode::duplicate_sequence_number) {
      acknowledged(p);
      if (failed_) return;
    } else if (kafka::is_retriable(pr.error) &&
               !(pr.error == ErrorCode::corrupt_message && ++p.corrupt_answers >= kCorruptAnswersMax)) {
      retry(p, pr.error);
    } else {
      char buf[kafka::kErrorCodeTextBytesMax];
      std::string why = fmt::format("the broker refused a batch of {} records for partition {}/{}: {}",
                                    p.sealed.front().records, o_.topic, p.id, kafka::to_string(pr.error, buf));
      if (pr.error_message) why += fmt::format(" ({})", *pr.error_message);
      if (pr.error == ErrorCode::out_of_order_sequence_number || pr.error == ErrorCode::unknown_producer_id) {
        why += "; the broker lost this producer's state (records may be missing or doubled in Kafka)";
      }
      fail(why);
      return;
    }
  }
  // Partitions the response left out are sent again.
  for (int32_t id : ids) {
    Partition& p = partitions_[size_t(id)];
    if (p.in_flight) {
      p.in_flight = false;
      retry(p, ErrorCode::unknown_server_error);
    }
  }
  ids.clear();
}

void KafkaSink::retry(Partition& p, ErrorCode e) {
  char buf[kafka::kErrorCodeTextBytesMax];
  metrics_.errors.add();
  if (p.backoff_ns == kRetryMinNs) {
    log_warn("sink {}: partition {}/{}: {}; sending the batch again", cfg_.name, o_.topic, p.id,
             kafka::to_string(e, buf));
  }
  p.retry_at = host_.reactor().now() + p.backoff_ns;
  p.backoff_ns = std::min(p.backoff_ns * 2, kRetryMaxNs);
  if (kafka::needs_metadata_refresh(e)) need_metadata();
}

void KafkaSink::acknowledged(Partition& p) {
  Sealed& s = p.sealed.front();
  p.backoff_ns = kRetryMinNs;
  p.retry_at = 0;
  rows_acked_ += uint64_t(s.records);
  bytes_acked_ += s.raw_bytes;
  metrics_.rows_out.add(uint64_t(s.records));
  // Bytes are counted as encoded: with every row acknowledged none may remain
  // (a drift would stall take() for good once it reached room_).
  SLUICE_ASSERT(rows_acked_ != rows_taken_ || bytes_acked_ == bytes_taken_);
  p.corrupt_answers = 0;
  s.bytes.clear();
  if (spare_.size() < kSpareBuffersMax) spare_.push_back(std::move(s.bytes));
  p.sealed.pop_front();
  host_.rows_written();
  // Every row before the oldest one not acknowledged (in any partition) is written.
  uint64_t written = rows_taken_;
  for (const Partition& q : partitions_) {
    if (!q.sealed.empty()) {
      written = std::min(written, q.sealed.front().first_row);
    } else if (!q.open.empty()) {
      written = std::min(written, q.open_first_row);
    }
  }
  while (!windows_.empty() && windows_.front().rows_end <= written) {
    host_.window_written(windows_.front().fire_ns, windows_.front().window_end_ns);
    windows_.pop_front();
  }
}

// ---------------------------------------------------------------------------
// Rows in

std::string_view KafkaSink::key_json(const KeyParts& parts) {
  char* out = key_json_.get();
  size_t n = 0;
  out[n++] = '[';
  for (size_t i = 0; i < parts.count; ++i) {
    if (i > 0) out[n++] = ',';
    n += parts.is_int[i] ? write_int64(parts.integer[i], out + n) : json_quote(parts.text[i], out + n);
  }
  out[n++] = ']';
  return {out, n};
}

size_t KafkaSink::take(const SinkWindow& w, size_t from, int64_t now) {
  if (failed_) {
    rows_lost_ += w.count - from;
    return w.count - from;
  }
  if (!ready_to_take()) return 0;
  const int64_t size_ns = w.end - w.start;
  const int64_t timestamp_ms = w.end / kNsPerMs;
  if (w.start != window_start_) {
    window_start_ = w.start;
    window_len_[0] = format_rfc3339(w.start, window_text_[0]);
    window_len_[1] = format_rfc3339(w.end, window_text_[1]);
  }
  const int32_t n_parts = int32_t(partitions_.size());
  size_t i = from;
  for (; i < w.count; ++i) {
    const ResultRowView row = w.row(i);
    size_t value_len = encoder_.encode(row, size_ns, value_.get());
    if (value_len > 0 && value_.get()[value_len - 1] == '\n') --value_len;
    const std::string_view value(value_.get(), value_len);
    renderer_.begin(row, size_ns);
    std::string_view key;
    int32_t partition;
    if (o_.keyed) {
      key = std::string_view(key_text_.get(), renderer_.render(o_.key, key_text_.get()));
      partition = kafka::partition_for_key(key, n_parts);
    } else {
      // Round robin over partitions that have a leader (as Kafka's producer skips
      // unavailable ones for null keys); all of them when none has.
      partition = int32_t(round_robin_++ % uint64_t(n_parts));
      for (int32_t tries = 0; tries < n_parts && partitions_[size_t(partition)].leader < 0; ++tries) {
        partition = int32_t(round_robin_++ % uint64_t(n_parts));
      }
    }
    kafka::OutHeader headers[4];
    size_t n_headers = 0;
    if (o_.headers) {
      headers[n_headers++] = {kHeaderPipeline, host_.config().name};
      headers[n_headers++] = {kHeaderWindowStart, {window_text_[0], window_len_[0]}};
      headers[n_headers++] = {kHeaderWindowEnd, {window_text_[1], window_len_[1]}};
      headers[n_headers++] = {kHeaderKey, key_json(renderer_.key_parts())};
    }
    const std::span<const kafka::OutHeader> hs(headers, n_headers);
    Partition& p = partitions_[size_t(partition)];
    const std::string_view* k = o_.keyed ? &key : nullptr;
    const int64_t ts_delta = p.open.empty() ? 0 : timestamp_ms - p.open.first_timestamp_ms();
    size_t bytes = kafka::BatchBuilder::record_bytes(ts_delta, p.open.records(), k, value, hs);
    if (!p.open.empty() && p.open.bytes() + bytes > size_t(o_.batch_bytes_max)) {
      seal(p, now);
      if (failed_) return i - from;
      bytes = kafka::BatchBuilder::record_bytes(0, 0, k, value, hs);  // first of a new batch
    }
    // Counted as it will be encoded (raw_bytes of its batch add up to the same).
    if (unwritten_bytes() + bytes > room_) break;  // full: the gatherer offers the rest later
    if (p.open.empty()) {
      p.open.reset();
      p.open_since = now;
      p.open_first_row = rows_taken_;
    }
    p.open.append(timestamp_ms, o_.keyed ? &key : nullptr, value, hs);
    ++rows_taken_;
    bytes_taken_ += bytes;
  }
  return i - from;
}

void KafkaSink::seal(Partition& p, int64_t now) {
  Sealed s;
  if (!spare_.empty()) {
    s.bytes = std::move(spare_.back());
    spare_.pop_back();
  }
  const int32_t base_sequence = o_.idempotent ? p.next_sequence : -1;
  if (!p.open.finish(o_.codec, compressor_, producer_id_, producer_epoch_, base_sequence, s.bytes)) {
    fail(fmt::format("{} compression failed", kafka::to_string(o_.codec)));
    return;
  }
  s.records = p.open.records();
  s.first_row = p.open_first_row;
  s.raw_bytes = p.open.bytes() - kafka::kBatchHeaderBytes;
  s.sealed_ns = now;
  if (o_.idempotent) {
    // Sequence numbers wrap from INT32_MAX to 0 (Kafka's DefaultRecordBatch.incrementSequence).
    const int64_t next = int64_t(p.next_sequence) + s.records;
    p.next_sequence = int32_t(next > INT32_MAX ? next - INT32_MAX - 1 : next);
  }
  p.sealed.push_back(std::move(s));
  p.open.reset();
  p.open_since = kTimeMax;
}

// ---------------------------------------------------------------------------
// Driving

int64_t KafkaSink::next_deadline() const {
  if (failed_ || closed_) return kTimeMax;
  const int64_t now = host_.reactor().now();
  int64_t t = client_.next_deadline(now);
  // Requests fall due only where a connection can carry them (while it is
  // away, its reconnection is the client's deadline): no spinning.
  auto free = [&](const Conn* c) { return c != nullptr && c->ready() && !c->busy(); };
  if (metadata_needed_ && free(&client_.at(0))) t = std::min(t, std::max(metadata_not_before_, now));
  if (!metadata_needed_ && pid_needed_ && free(&client_.at(0))) t = std::min(t, std::max(pid_not_before_, now));
  for (const Partition& p : partitions_) {
    if (!p.open.empty()) t = std::min(t, p.open_since + o_.linger_ns);
    if (!p.in_flight && !p.sealed.empty() && p.leader >= 0 && free(client_.find(p.leader))) {
      t = std::min(t, std::max(p.retry_at, now));
    }
  }
  return t;
}

bool KafkaSink::flush(int64_t now, bool stuck, bool final) {
  if (failed_ || closed_) return false;
  bool progress = client_.poll(now);
  for (Partition& p : partitions_) {
    if (!p.open.empty() && (stuck || final || now - p.open_since >= o_.linger_ns)) {
      seal(p, now);
      if (failed_) return true;
      progress = true;
    }
  }
  Conn& bootstrap = client_.at(0);
  if ((metadata_needed_ || pid_needed_) && bootstrap.state() == Conn::State::closed) {
    bootstrap_.pick(bootstrap);
    client_.connect(bootstrap);
  }
  for (uint32_t i = 0; i < client_.size(); ++i) {
    Conn& c = client_.at(i);
    if (c.ready() && !c.busy()) client_.request(c);
    if (i > 0 && c.state() == Conn::State::closed && wants(c)) client_.connect(c);
  }
  // Rows may still wait to be offered (stuck): then more will come after all.
  if (final && !stuck && rows_taken_ == rows_acked_ && !closed_) {
    closed_ = true;
    client_.close_all();
  }
  return progress;
}

void KafkaSink::fail(const std::string& why) {
  if (failed_) return;
  failed_ = true;
  failure_ = why;
  rows_lost_ += rows_taken_ - rows_acked_;
  client_.close_all();
  log_error("sink {}: {}; no more rows go to it, the pipeline stops and exits with status 1", cfg_.name, why);
  host_.sink_failed();
}

std::expected<SinkResource, std::string> open_kafka_sink(const SinkConfig&) { return SinkResource{}; }

std::expected<std::unique_ptr<Sink>, std::string> make_kafka_sink(SinkHost& host, const SinkConfig& cfg, SinkResource,
                                                                  SinkMetrics& metrics) {
  return std::make_unique<KafkaSink>(host, cfg, metrics);
}

uint64_t kafka_sink_fixed_bytes(const SinkConfig& cfg) {
  const KafkaSinkOptions& o = options_of(cfg);
  // Records waiting (room), their sealed (compressed) copies, a request, two response buffers
  // per connection (bootstrap and one broker counted).
  const uint64_t room = std::max<uint64_t>(cfg.buffer_bytes, 2 * uint64_t(o.batch_bytes_max));
  return 2 * room + std::max<uint64_t>(uint64_t(o.batch_bytes_max), 8u << 20) + 4 * kResponseBytesMax;
}

std::string describe_kafka_sink(const SinkConfig& cfg) {
  const KafkaSinkOptions& o = options_of(cfg);
  return fmt::format("kafka topic {} via {}:{}{}, {}, acks {}", o.topic, o.brokers[0].host, o.brokers[0].port,
                     o.brokers.size() > 1 ? fmt::format(" +{} more", o.brokers.size() - 1) : "",
                     kafka::to_string(o.codec), o.idempotent ? "all (idempotent)" : "1");
}

}  // namespace

extern const SinkKind kKafkaSinkKind = {
    .config = {.name = "kafka", .keys = kKafkaSinkKeys, .parse = parse_kafka_sink},
    .open = open_kafka_sink,
    .make = make_kafka_sink,
    .fixed_bytes = kafka_sink_fixed_bytes,
    .describe = describe_kafka_sink,
};

}  // namespace sluice
