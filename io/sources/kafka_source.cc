#include "io/sources/kafka_source.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/log.h"
#include "core/timestamp.h"
#include "io/kafka/record_batch.h"
#include "io/resolver.h"
#include "operators/framing.h"
#include "operators/json_text.h"

namespace sluice {

namespace kafka_limits {
// Reconnect back-off: doubles from min to max while a broker stays unreachable.
constexpr int64_t kBackoffMinNs = 100 * kNsPerMs;
constexpr int64_t kBackoffMaxNs = 10 * kNsPerS;
// A request without a response for this long (beyond the fetch's own max_wait)
// is given up: the connection is dropped and the work retried elsewhere.
constexpr int64_t kRequestTimeoutNs = 30 * kNsPerS;
// Metadata is not asked for more often than this while partitions lack a leader.
constexpr int64_t kMetadataRetryNs = 200 * kNsPerMs;
// Room in a response buffer beyond the Fetch max_bytes: per-partition headers,
// and the one batch a broker returns even when it is larger than the limit.
constexpr size_t kResponseSlackBytes = 1u << 20;
// Decompressed records of one batch.
constexpr size_t kScratchBytes = 16u << 20;
// ListOffsets v4+ only add leader epochs, which Sluice does not use (it sends
// -1); librdkafka's mock broker (2.0.2) also encodes the v4+ response's
// leader epoch as 8 bytes instead of 4. v3 is understood by every broker
// from Kafka 0.11 to 4.x.
constexpr int16_t kListOffsetsVersionMax = 3;
}  // namespace kafka_limits

using namespace kafka_limits;
using kafka::ErrorCode;

struct KafkaSource::Partition : Stream {
  Partition(Source& owner, uint32_t src, int32_t pid, int64_t delay, int64_t floor)
      : Stream(owner, src, delay, floor), id(pid) {}
  // "topic/partition@offset" of the record being delivered.
  std::string_view origin(char* out, size_t cap) const override {
    int n = std::snprintf(out, cap, "%s@%lld", name.c_str(), static_cast<long long>(current_offset));
    std::string_view v(out, n < 0 ? 0 : std::min(size_t(n), cap - 1));
    return is_valid_utf8(v) ? v : std::string_view();
  }
  enum class State : uint8_t {
    need_leader,  ///< waiting for Metadata to name a leader
    need_start,   ///< waiting for ListOffsets: where to start
    need_end,     ///< waiting for ListOffsets: where to stop (stop = "end")
    fetching,
    finished,
  };
  int32_t id;
  int32_t leader = -1;
  uint32_t epoch = 0;  // changes whenever the fetch position is reset or the leader moves
  State state = State::need_leader;
  int64_t start_query = kafka::kListOffsetsEarliest;  // ListOffsets timestamp for the start
  int64_t fetch_offset = -1;  // next offset to ask for
  int64_t next_offset = -1;   // next offset to deliver
  int64_t end_offset = -1;    // stop = "end": deliver offsets below this
  int64_t high_watermark = -1;
  int64_t refetched_base = -1;  // a bad batch at this offset has been fetched again once
  int64_t current_offset = -1;  // the record being delivered (for dead-letter origins)
  std::string name;             // "topic/partition"
};

struct KafkaSource::Buffer {
  enum class State : uint8_t { free, receiving, ready };
  // What to deliver from one partition of a scanned Fetch response.
  struct Plan {
    Partition* partition;
    uint32_t epoch;                    // stale (ignored) once the partition's epoch moves on
    std::span<const uint8_t> records;  // whole, checked batches only
    int64_t bad_first = -1;            // a batch to report as corrupt after them, or -1
    int64_t bad_last = -1;
    const char* bad_detail = "";
  };
  std::unique_ptr<uint8_t[]> data;
  size_t cap = 0;  // bytes a response may take, size prefix included (padding is extra)
  size_t len = 0;
  State state = State::free;
  kafka::FetchResponse fetch;
  std::vector<Plan> plans;
  size_t plan_next = 0;
  int64_t recv_ns = 0;  // when the response was complete
};

struct KafkaSource::Conn {
  enum class State : uint8_t { closed, resolving, connecting, negotiating, ready, closing, backoff };
  enum class Req : uint8_t { none, api_versions, metadata, list_start, list_end, fetch };
  uint32_t index = 0;
  int32_t node_id = -1;  // -1: the bootstrap connection, used for Metadata
  std::string host;
  uint16_t port = 0;
  int fd = -1;
  State state = State::closed;
  int ops = 0;  // io_uring operations in flight on fd
  int64_t retry_at = 0;
  int64_t backoff_ns = kBackoffMinNs;
  int64_t deadline = kTimeMax;  // the request in flight must be answered by then
  kafka::NegotiatedVersions versions;
  int16_t api_versions_version = kafka::kApiVersionsVersions.max;
  kafka::ApiVersionsResponse api_versions;
  Req req = Req::none;
  int32_t correlation = 0;
  std::vector<uint8_t> out;
  size_t sent = 0;
  Buffer bufs[2];
  int receiving = -1;    // buffer the response in flight goes into
  int ready_q[2] = {-1, -1};  // received Fetch responses, oldest first
  int ready_n = 0;
  Resolver resolver;  // the broker's name, looked up off the shard's thread
  // One completion per kind of operation; index: connection << 4 | op.
  IndexedCompletion<KafkaSource> connect_done, send_done, recv_done;
  void bind(KafkaSource* owner) {
    connect_done.bind<&KafkaSource::on_op_done>(owner, index << 4 | uint32_t(Op::connect));
    send_done.bind<&KafkaSource::on_op_done>(owner, index << 4 | uint32_t(Op::send));
    recv_done.bind<&KafkaSource::on_op_done>(owner, index << 4 | uint32_t(Op::recv));
  }
};

namespace {
}  // namespace

KafkaSource::KafkaSource(SourceHost& host, uint32_t source_index)
    : host_(host),
      cfg_(host.config().sources[source_index]),
      kc_(cfg_.kafka),
      source_(source_index) {
  auto bootstrap = std::make_unique<Conn>();
  bootstrap->index = 0;
  bootstrap->bind(this);
  conns_.push_back(std::move(bootstrap));
}

KafkaSource::~KafkaSource() {
  for (auto& c : conns_) {
    if (c->fd >= 0) ::close(c->fd);
  }
}

// ---------------------------------------------------------------------------
// Connections

KafkaSource::Conn& KafkaSource::conn_for(int32_t node_id) {
  for (auto& c : conns_) {
    if (c->node_id == node_id && c->index != 0) return *c;
  }
  auto c = std::make_unique<Conn>();
  c->index = uint32_t(conns_.size());
  c->node_id = node_id;
  c->bind(this);
  conns_.push_back(std::move(c));
  return *conns_.back();
}

void KafkaSource::m_bytes(uint64_t n) {
  host_.metrics().bytes_in.add(n);
  host_.metrics().sources[source_]->bytes_in.add(n);
}

void KafkaSource::start() {
  started_ = true;
  connect(*conns_[0]);
}

void KafkaSource::connect(Conn& c) {
  if (stopping_ || failed_) return;
  if (c.index == 0) {
    // The bootstrap connection cycles through the configured brokers, then
    // any broker the last Metadata named.
    size_t candidates = kc_.brokers.size() + metadata_.brokers.size();
    size_t pick = bootstrap_next_++ % candidates;
    if (pick < kc_.brokers.size()) {
      c.host = kc_.brokers[pick].host;
      c.port = kc_.brokers[pick].port;
    } else {
      const kafka::MetadataBroker& b = metadata_.brokers[pick - kc_.brokers.size()];
      c.host = std::string(b.host);
      c.port = uint16_t(b.port);
    }
  }
  // A name is looked up without blocking the shard; poll() goes on once it is known.
  if (c.resolver.start(c.host, c.port) == Resolver::State::resolving) {
    c.state = Conn::State::resolving;
    c.deadline = host_.now() + kRequestTimeoutNs;
    return;
  }
  connect_resolved(c);
}

void KafkaSource::connect_resolved(Conn& c) {
  if (c.resolver.state() != Resolver::State::done) {
    log_warn("source {}: cannot resolve broker {}:{}: {}", cfg_.name, c.host, c.port, c.resolver.error());
    c.state = Conn::State::backoff;
    c.retry_at = host_.now() + c.backoff_ns;
    c.backoff_ns = std::min(c.backoff_ns * 2, kBackoffMaxNs);
    return;
  }
  c.fd = ::socket(c.resolver.address().ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    log_warn("source {}: socket: {}", cfg_.name, std::strerror(errno));
    c.state = Conn::State::backoff;
    c.retry_at = host_.now() + c.backoff_ns;
    return;
  }
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c.state = Conn::State::connecting;
  c.req = Conn::Req::none;
  c.out.clear();
  c.sent = 0;
  c.receiving = -1;
  c.ready_n = 0;
  for (Buffer& b : c.bufs) {
    b.state = Buffer::State::free;
    b.len = 0;
  }
  c.api_versions_version = kafka::kApiVersionsVersions.max;
  c.deadline = host_.now() + kRequestTimeoutNs;
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_connect(sqe, c.fd, reinterpret_cast<const sockaddr*>(&c.resolver.address()),
                        c.resolver.address_length());
  io_uring_sqe_set_data64(sqe, c.connect_done.user_data());
  ++c.ops;
}

// Gives up on a connection: what it leads is re-planned from Metadata, and it
// reconnects after a back-off (if it is still needed then).
void KafkaSource::drop(Conn& c, const char* why) {
  if (c.state == Conn::State::closing || c.state == Conn::State::closed ||
      c.state == Conn::State::backoff) {
    return;
  }
  if (!stopping_ && !failed_) {
    log_warn("source {}: broker {} ({}:{}): {}; reconnecting in {} ms", cfg_.name,
             c.node_id < 0 ? std::string("bootstrap") : std::to_string(c.node_id), c.host, c.port,
             why, c.backoff_ns / kNsPerMs);
  }
  c.state = Conn::State::closing;
  c.req = Conn::Req::none;
  c.deadline = kTimeMax;
  // Responses received but not yet delivered are dropped with the connection:
  // their partitions restart from next_offset, so nothing is lost.
  c.ready_n = 0;
  for (Buffer& b : c.bufs) {
    if (b.state != Buffer::State::receiving) b.state = Buffer::State::free;
  }
  for (auto& p : partitions_) {
    if (c.node_id >= 0 && p->leader == c.node_id && p->state != Partition::State::finished) {
      reset_partition(*p, nullptr);
      p->state = Partition::State::need_leader;
      p->leader = -1;
    }
  }
  if (c.node_id >= 0 || c.index == 0) need_metadata(nullptr);
  if (c.fd >= 0) ::shutdown(c.fd, SHUT_RDWR);  // completes what is pending on it
  if (c.ops == 0) finish_close(c);
}

void KafkaSource::finish_close(Conn& c) {
  if (c.fd >= 0) ::close(c.fd);
  c.fd = -1;
  for (Buffer& b : c.bufs) b.state = Buffer::State::free;
  c.receiving = -1;
  c.state = Conn::State::backoff;
  c.retry_at = host_.now() + c.backoff_ns;
  c.backoff_ns = std::min(c.backoff_ns * 2, kBackoffMaxNs);
}

void KafkaSource::send_request(Conn& c) {
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_send(sqe, c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, c.send_done.user_data());
  ++c.ops;
}

void KafkaSource::arm_recv(Conn& c) {
  Buffer& b = c.bufs[c.receiving];
  if (!b.data) {
    // Allocated on first use: a connection that only ever carries Metadata
    // still needs room for it, but most brokers never lead our partitions.
    b.cap = size_t(kc_.max_bytes) + kResponseSlackBytes;
    b.data.reset(new uint8_t[b.cap + kLinePadding]);
    std::memset(b.data.get() + b.cap, 0, kLinePadding);
  }
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_recv(sqe, c.fd, b.data.get() + b.len, b.cap - b.len, 0);
  io_uring_sqe_set_data64(sqe, c.recv_done.user_data());
  ++c.ops;
}

void KafkaSource::on_op_done(uint32_t id, const io_uring_cqe& cqe) { on_completion(id, cqe.res); }

void KafkaSource::on_completion(uint64_t id, int res) {
  Conn& c = *conns_[(id >> 4) & 0x0FFFFFFF];
  Op op = Op(id & 0xF);
  --c.ops;
  if (c.state == Conn::State::closing) {
    if (c.ops == 0) finish_close(c);
    return;
  }
  switch (op) {
    case Op::connect:
      if (res < 0) {
        drop(c, std::strerror(-res));
        return;
      }
      c.state = Conn::State::negotiating;
      next_request(c);
      return;
    case Op::send:
      if (res < 0) {
        drop(c, std::strerror(-res));
        return;
      }
      c.sent += size_t(res);
      if (c.sent < c.out.size()) {
        send_request(c);
        return;
      }
      arm_recv(c);
      return;
    case Op::recv: {
      if (res <= 0) {
        drop(c, res == 0 ? "connection closed by the broker" : std::strerror(-res));
        return;
      }
      Buffer& b = c.bufs[c.receiving];
      b.len += size_t(res);
      size_t body = 0;
      kafka::FrameStatus fs = kafka::peek_response_frame({b.data.get(), b.len}, b.cap - 4, body);
      if (fs == kafka::FrameStatus::need_more) {
        arm_recv(c);
        return;
      }
      if (fs == kafka::FrameStatus::bad_size || b.len != 4 + body) {
        drop(c, fs == kafka::FrameStatus::bad_size
                    ? "response larger than the buffer (raise max_bytes) or malformed"
                    : "broker sent bytes beyond the response");
        return;
      }
      on_response(c, b);
      return;
    }
  }
}

void KafkaSource::on_response(Conn& c, Buffer& b) {
  kafka::Reader r(b.data.get() + 4, b.len - 4);
  int32_t correlation = 0;
  if (!kafka::decode_response_header(r, correlation) || correlation != c.correlation) {
    drop(c, "response out of order (correlation id mismatch)");
    return;
  }
  Conn::Req req = c.req;
  c.req = Conn::Req::none;
  // A broker that answers real requests is healthy again (a handshake alone
  // is not enough: a broker that fails every request must keep backing off).
  if (req != Conn::Req::api_versions) c.backoff_ns = kBackoffMinNs;
  c.deadline = kTimeMax;
  c.receiving = -1;
  switch (req) {
    case Conn::Req::api_versions: handle_api_versions(c, r); break;
    case Conn::Req::metadata: handle_metadata(c, r); break;
    case Conn::Req::list_start: handle_list_offsets(c, r, false); break;
    case Conn::Req::list_end: handle_list_offsets(c, r, true); break;
    case Conn::Req::fetch: handle_fetch(c, b, r); return;  // the buffer stays until delivered
    case Conn::Req::none: break;
  }
  b.state = Buffer::State::free;
  b.len = 0;
  if (c.state == Conn::State::ready || c.state == Conn::State::negotiating) next_request(c);
}

// ---------------------------------------------------------------------------
// Requests

void KafkaSource::next_request(Conn& c) {
  if (c.req != Conn::Req::none || stopping_ || failed_) return;
  int free_buf = -1;
  for (int i = 0; i < 2; ++i) {
    if (c.bufs[i].state == Buffer::State::free) free_buf = i;
  }
  if (free_buf < 0) return;  // both hold responses not yet delivered: back-pressure
  c.out.clear();
  c.sent = 0;
  kafka::Writer w(c.out);
  bool queued = false;
  if (c.state == Conn::State::negotiating) {
    c.correlation = ++correlation_;
    if (kafka::encode_api_versions_request(w, c.api_versions_version, c.correlation, kc_.client_id) !=
        kafka::EncodeStatus::ok) {
      return;
    }
    c.req = Conn::Req::api_versions;
    queued = true;
  } else if (c.state == Conn::State::ready) {
    if (c.index == 0) {
      queued = metadata_needed_ && host_.now() >= metadata_not_before_ && send_metadata(c);
    } else {
      queued = send_list_offsets(c, false) || send_list_offsets(c, true) || send_fetch(c);
    }
  }
  if (!queued) return;
  c.receiving = free_buf;
  c.bufs[free_buf].state = Buffer::State::receiving;
  c.bufs[free_buf].len = 0;
  int64_t wait = c.req == Conn::Req::fetch ? kc_.max_wait_ns : 0;
  c.deadline = host_.now() + wait + kRequestTimeoutNs;
  send_request(c);
}

bool KafkaSource::send_metadata(Conn& c) {
  std::string_view topics[] = {kc_.topic};
  kafka::Writer w(c.out);
  c.correlation = ++correlation_;
  if (kafka::encode_metadata_request(w, c.versions.metadata, c.correlation, kc_.client_id, topics) !=
      kafka::EncodeStatus::ok) {
    return false;
  }
  c.req = Conn::Req::metadata;
  metadata_needed_ = false;
  return true;
}

bool KafkaSource::send_list_offsets(Conn& c, bool end) {
  offset_parts_.clear();
  Partition::State want = end ? Partition::State::need_end : Partition::State::need_start;
  for (auto& p : partitions_) {
    if (p->leader != c.node_id || p->state != want) continue;
    kafka::ListOffsetsPartitionRequest rq;
    rq.partition = p->id;
    rq.timestamp = end ? kafka::kListOffsetsLatest : p->start_query;
    offset_parts_.push_back(rq);
  }
  if (offset_parts_.empty()) return false;
  kafka::ListOffsetsTopicRequest topic{kc_.topic, offset_parts_};
  kafka::Writer w(c.out);
  c.correlation = ++correlation_;
  // read_uncommitted: every record. read_committed would also need the
  // client to drop aborted transactions' records (not implemented yet).
  auto isolation = kafka::IsolationLevel::read_uncommitted;
  if (kafka::encode_list_offsets_request(w, c.versions.list_offsets, c.correlation, kc_.client_id,
                                         isolation, std::span(&topic, 1)) != kafka::EncodeStatus::ok) {
    return false;
  }
  c.req = end ? Conn::Req::list_end : Conn::Req::list_start;
  return true;
}

bool KafkaSource::send_fetch(Conn& c) {
  fetch_parts_.clear();
  for (auto& p : partitions_) {
    if (p->leader != c.node_id || p->state != Partition::State::fetching) continue;
    if (kc_.stop == KafkaSourceConfig::Stop::end && p->fetch_offset >= p->end_offset) continue;
    kafka::FetchPartitionRequest rq;
    rq.partition = p->id;
    rq.fetch_offset = p->fetch_offset;
    rq.partition_max_bytes = int32_t(kc_.partition_max_bytes);
    fetch_parts_.push_back(rq);
  }
  if (fetch_parts_.empty()) return false;
  kafka::FetchTopicRequest topic{kc_.topic, fetch_parts_};
  kafka::FetchRequest rq;
  rq.max_wait_ms = int32_t(kc_.max_wait_ns / kNsPerMs);
  rq.min_bytes = int32_t(kc_.min_bytes);
  rq.max_bytes = int32_t(kc_.max_bytes);
  rq.isolation_level = kafka::IsolationLevel::read_uncommitted;
  rq.topics = std::span(&topic, 1);
  kafka::Writer w(c.out);
  c.correlation = ++correlation_;
  if (kafka::encode_fetch_request(w, c.versions.fetch, c.correlation, kc_.client_id, rq) !=
      kafka::EncodeStatus::ok) {
    return false;
  }
  c.req = Conn::Req::fetch;
  return true;
}

// ---------------------------------------------------------------------------
// Responses

void KafkaSource::handle_api_versions(Conn& c, kafka::Reader& r) {
  kafka::DecodeResult d = kafka::decode_api_versions_response(r, c.api_versions_version, c.api_versions);
  if (!d.ok()) {
    char why[160];
    std::snprintf(why, sizeof why, "malformed ApiVersions response (%s)", d.reason);
    drop(c, why);
    return;
  }
  if (c.api_versions.error == ErrorCode::unsupported_version) {
    // The broker answered in v0 shape with its own range: ask again in a version it knows.
    int16_t v = kafka::pick_version(kafka::kApiVersionsVersions, c.api_versions.apis);
    c.api_versions_version = v >= 0 ? v : 0;
    return;  // next_request() sends it
  }
  if (c.api_versions.error != ErrorCode::none) {
    drop(c, kafka::to_string(c.api_versions.error));
    return;
  }
  kafka::VersionMismatch mismatch;
  if (!kafka::negotiate_versions(c.api_versions.apis, c.versions, mismatch)) {
    char text[256];
    kafka::format_version_mismatch(mismatch, text, sizeof text);
    fail_source(fmt::format("broker {}:{}: {}", c.host, c.port, text));
    return;
  }
  c.versions.list_offsets = std::min(c.versions.list_offsets, kListOffsetsVersionMax);
  c.state = Conn::State::ready;
  log_debug("source {}: broker {}:{}: Metadata v{}, ListOffsets v{}, Fetch v{}", cfg_.name, c.host,
            c.port, c.versions.metadata, c.versions.list_offsets, c.versions.fetch);
}

void KafkaSource::handle_metadata(Conn& c, kafka::Reader& r) {
  kafka::DecodeResult d = kafka::decode_metadata_response(r, c.versions.metadata, metadata_);
  if (!d.ok()) {
    char why[160];
    std::snprintf(why, sizeof why, "malformed Metadata response (%s)", d.reason);
    drop(c, why);
    return;
  }
  const kafka::MetadataTopic* topic = nullptr;
  for (const kafka::MetadataTopic& t : metadata_.topics) {
    if (t.name == kc_.topic) topic = &t;
  }
  metadata_not_before_ = host_.now() + kMetadataRetryNs;
  if (topic == nullptr || topic->error != ErrorCode::none) {
    ErrorCode e = topic ? topic->error : ErrorCode::unknown_topic_or_partition;
    if (!metadata_known_) {
      log_warn("source {}: topic {}: {}; asking again", cfg_.name, kc_.topic, kafka::to_string(e));
    }
    metadata_needed_ = true;
    metadata_not_before_ = host_.now() + kBackoffMaxNs / 10;
    return;
  }
  auto parts = metadata_.partitions_of(*topic);
  topic_partitions_ = uint32_t(parts.size());
  bool first = !metadata_known_;
  bool leaderless = false;
  for (const kafka::MetadataPartition& mp : parts) {
    if (mp.partition < 0 || uint32_t(mp.partition) % host_.shards() != host_.shard_id()) continue;
    Partition* p = partition_by_id(mp.partition);
    if (p == nullptr) {
      auto np = std::make_unique<Partition>(*this, source_, mp.partition, host_.config().window.watermark_delay_ns,
                                            host_.fired_max());
      np->name = kc_.topic + "/" + std::to_string(mp.partition);
      np->last_active_ns = host_.now();
      switch (kc_.start) {
        case KafkaSourceConfig::Start::earliest: np->start_query = kafka::kListOffsetsEarliest; break;
        case KafkaSourceConfig::Start::latest: np->start_query = kafka::kListOffsetsLatest; break;
        case KafkaSourceConfig::Start::time: np->start_query = kc_.start_time_ms; break;
      }
      partitions_.push_back(std::move(np));
      p = partitions_.back().get();
      streams_.push_back(p);
    }
    if (p->state == Partition::State::finished) continue;
    if (mp.error != ErrorCode::none && mp.error != ErrorCode::leader_not_available &&
        !kafka::is_retriable(mp.error)) {
      log_warn("source {}: partition {}: {}", cfg_.name, p->name, kafka::to_string(mp.error));
    }
    int32_t leader = mp.leader;
    if (leader < 0 || metadata_.find_broker(leader) == nullptr) {
      leaderless = true;
      if (p->leader >= 0) reset_partition(*p, nullptr);
      p->leader = -1;
      if (p->state == Partition::State::fetching) p->state = Partition::State::need_leader;
      continue;
    }
    if (p->leader != leader) {
      if (p->leader >= 0) {
        log_info("source {}: partition {}: leader moved from broker {} to {}", cfg_.name, p->name,
                 p->leader, leader);
      }
      reset_partition(*p, nullptr);
      p->leader = leader;
    }
    if (p->state == Partition::State::need_leader) {
      p->state = p->next_offset < 0 ? Partition::State::need_start
                 : (kc_.stop == KafkaSourceConfig::Stop::end && p->end_offset < 0)
                     ? Partition::State::need_end
                     : Partition::State::fetching;
    }
    const kafka::MetadataBroker* b = metadata_.find_broker(leader);
    Conn& lc = conn_for(leader);
    if (lc.state == Conn::State::closed) {
      lc.host = std::string(b->host);
      lc.port = uint16_t(b->port);
      connect(lc);
    } else {
      // The broker may have moved (a restarted container): use what Metadata says now.
      lc.host = std::string(b->host);
      lc.port = uint16_t(b->port);
    }
  }
  metadata_known_ = true;
  if (leaderless) {
    metadata_needed_ = true;
    metadata_not_before_ = host_.now() + kMetadataRetryNs;
  }
  if (first) {
    std::string owned;
    for (auto& p : partitions_) owned += (owned.empty() ? "" : ",") + std::to_string(p->id);
    log_info("source {}: topic {} has {} partition{}; shard {} reads {}", cfg_.name, kc_.topic,
             topic_partitions_, topic_partitions_ == 1 ? "" : "s", host_.shard_id(),
             owned.empty() ? std::string("none") : "partitions " + owned);
  }
  for (size_t i = 1; i < conns_.size(); ++i) next_request(*conns_[i]);
}

void KafkaSource::handle_list_offsets(Conn& c, kafka::Reader& r, bool end) {
  kafka::DecodeResult d = kafka::decode_list_offsets_response(r, c.versions.list_offsets, offsets_);
  if (!d.ok()) {
    char why[160];
    std::snprintf(why, sizeof why, "malformed ListOffsets response (%s)", d.reason);
    drop(c, why);
    return;
  }
  Partition::State want = end ? Partition::State::need_end : Partition::State::need_start;
  for (const kafka::ListOffsetsPartition& lp : offsets_.partitions) {
    if (lp.topic != kc_.topic) continue;
    Partition* p = partition_by_id(lp.partition);
    if (p == nullptr || p->state != want || p->leader != c.node_id) continue;
    if (lp.error != ErrorCode::none) {
      if (kafka::needs_metadata_refresh(lp.error)) {
        p->state = Partition::State::need_leader;
        p->leader = -1;
        need_metadata(nullptr);
      } else if (!kafka::is_retriable(lp.error)) {
        fail_source(fmt::format("partition {}: ListOffsets: {}", p->name, kafka::to_string(lp.error)));
        return;
      }
      continue;  // retriable: asked again on the next request
    }
    if (end) {
      p->end_offset = lp.offset;
    } else if (lp.offset < 0) {
      // No record at or after the start time: start at the end.
      p->start_query = kafka::kListOffsetsLatest;
      continue;
    } else {
      p->next_offset = p->fetch_offset = lp.offset;
      ++p->epoch;
    }
    bool need_end = kc_.stop == KafkaSourceConfig::Stop::end && p->end_offset < 0;
    p->state = need_end ? Partition::State::need_end : Partition::State::fetching;
    if (kc_.stop == KafkaSourceConfig::Stop::end && !need_end && p->next_offset >= p->end_offset) {
      p->state = Partition::State::finished;
      p->done = true;
    }
  }
}

// Scans a Fetch response: checks every batch, finds where each partition's
// next fetch starts, and plans what to deliver. The next Fetch goes out before
// any record is decoded.
void KafkaSource::handle_fetch(Conn& c, Buffer& b, kafka::Reader& r) {
  kafka::DecodeResult d = kafka::decode_fetch_response(r, c.versions.fetch, b.fetch);
  if (!d.ok()) {
    b.state = Buffer::State::free;
    char why[160];
    std::snprintf(why, sizeof why, "malformed Fetch response (%s)", d.reason);
    drop(c, why);
    return;
  }
  if (b.fetch.error != ErrorCode::none) {
    b.state = Buffer::State::free;
    drop(c, kafka::to_string(b.fetch.error));
    return;
  }
  m_bytes(b.len);
  b.recv_ns = host_.now();
  b.plans.clear();
  b.plan_next = 0;
  for (const kafka::FetchPartition& fp : b.fetch.partitions) {
    if (fp.topic != kc_.topic) continue;
    Partition* p = partition_by_id(fp.partition);
    if (p == nullptr || p->leader != c.node_id || p->state != Partition::State::fetching) continue;
    if (fp.error != ErrorCode::none) {
      if (fp.error == ErrorCode::offset_out_of_range) {
        if (kc_.offset_reset == KafkaSourceConfig::OffsetReset::fail) {
          fail_source(fmt::format("partition {}: offset {} is out of range (offset_reset = \"fail\")",
                                  p->name, p->fetch_offset));
          return;
        }
        bool earliest = kc_.offset_reset == KafkaSourceConfig::OffsetReset::earliest;
        log_warn("source {}: partition {}: offset {} is out of range; resetting to the {} offset",
                 cfg_.name, p->name, p->fetch_offset, earliest ? "earliest" : "latest");
        reset_partition(*p, nullptr);
        p->start_query = earliest ? kafka::kListOffsetsEarliest : kafka::kListOffsetsLatest;
        p->next_offset = -1;
        p->state = Partition::State::need_start;
      } else if (kafka::needs_metadata_refresh(fp.error)) {
        reset_partition(*p, kafka::to_string(fp.error));
        p->state = Partition::State::need_leader;
        p->leader = -1;
        need_metadata(nullptr);
      } else if (!kafka::is_retriable(fp.error)) {
        fail_source(fmt::format("partition {}: Fetch: {}", p->name, kafka::to_string(fp.error)));
        return;
      }
      continue;
    }
    p->high_watermark = fp.high_watermark;
    Buffer::Plan plan{p, p->epoch, {}, -1, -1, ""};
    kafka::BatchIterator it(fp.records);
    kafka::Batch batch;
    size_t good = 0;
    for (;;) {
      kafka::BatchStatus st = it.next(batch);
      if (st == kafka::BatchStatus::ok) {
        good = it.position();
        p->fetch_offset = std::max(p->fetch_offset, batch.last_offset + 1);
        continue;
      }
      if (st == kafka::BatchStatus::end || st == kafka::BatchStatus::partial) break;
      // A bad batch: never trusted. The first time it is fetched again (a
      // network or broker hiccup); the second time it is reported and skipped.
      bool known = batch.base_offset >= 0;
      int64_t last = std::max(batch.last_offset, batch.base_offset);
      if (known && p->refetched_base != batch.base_offset &&
          st != kafka::BatchStatus::unsupported_magic) {
        p->refetched_base = batch.base_offset;
        p->fetch_offset = batch.base_offset;
        log_warn("source {}: partition {}: batch at offset {}: {} ({}); fetching it again",
                 cfg_.name, p->name, batch.base_offset, kafka::to_string(st), it.detail());
      } else if (known) {
        plan.bad_first = batch.base_offset;
        plan.bad_last = last;
        plan.bad_detail = st == kafka::BatchStatus::unsupported_magic ? "message format v0/v1 is not supported"
                                                                     : it.detail();
        p->fetch_offset = std::max(p->fetch_offset, last + 1);
      }
      break;
    }
    plan.records = fp.records.subspan(0, good);
    if (!plan.records.empty() || plan.bad_first >= 0) b.plans.push_back(plan);
  }
  b.state = Buffer::State::ready;
  c.ready_q[c.ready_n++] = int(&b - c.bufs);
  next_request(c);  // pipelining: the next Fetch is on the wire while this one is delivered
}

// ---------------------------------------------------------------------------
// Delivery

bool KafkaSource::poll() {
  if (!started_ || failed_) return false;
  bool progress = false;
  const int64_t now = host_.now();
  backlogged_ = false;
  for (auto& cp : conns_) {
    Conn& c = *cp;
    if (c.state == Conn::State::backoff && now >= c.retry_at && !stopping_) {
      bool needed = c.index == 0 ? metadata_needed_ : false;
      for (auto& p : partitions_) needed |= p->leader == c.node_id && c.index != 0;
      if (needed) connect(c);
    }
    if (c.state == Conn::State::resolving && c.resolver.poll() != Resolver::State::resolving) {
      connect_resolved(c);
      progress = true;
    }
    if ((c.state == Conn::State::ready || c.state == Conn::State::negotiating ||
         c.state == Conn::State::connecting || c.state == Conn::State::resolving) &&
        now > c.deadline) {
      drop(c, "request timed out");
      continue;
    }
    while (c.ready_n > 0) {
      Buffer& b = c.bufs[c.ready_q[0]];
      if (paused_ || !process_buffer(c, b)) {
        backlogged_ = true;  // refused: back-pressure, retried later
        return progress;
      }
      b.state = Buffer::State::free;
      b.len = 0;
      c.ready_q[0] = c.ready_q[1];
      --c.ready_n;
      progress = true;
    }
    if (c.state == Conn::State::ready) next_request(c);
  }
  if (metadata_needed_ && now >= metadata_not_before_ && conns_[0]->state == Conn::State::ready) {
    next_request(*conns_[0]);
  }
  if (metadata_needed_ && conns_[0]->state == Conn::State::backoff && now >= conns_[0]->retry_at) {
    connect(*conns_[0]);
  }
  return progress;
}

bool KafkaSource::process_buffer(Conn& c, Buffer& b) {
  (void)c;
  for (; b.plan_next < b.plans.size(); ++b.plan_next) {
    const Buffer::Plan& plan = b.plans[b.plan_next];
    Partition& p = *plan.partition;
    if (plan.epoch != p.epoch || p.state != Partition::State::fetching) continue;
    host_.begin_chunk(b.recv_ns);
    bool delivered = deliver(p, b, b.plan_next);
    host_.end_chunk();
    if (!delivered) return false;
  }
  return true;
}

bool KafkaSource::corrupt_batch(Partition& p, int64_t first, int64_t last, const char* detail) {
  char text[256];
  std::snprintf(text, sizeof text, "partition %d offsets %lld-%lld: %s", p.id,
                static_cast<long long>(first), static_cast<long long>(last), detail);
  p.current_offset = first;
  return host_.dead_letter(&p, DeadLetterReason::corrupt_batch, text, "");
}

bool KafkaSource::deliver(Partition& p, const Buffer& b, size_t slot) {
  const Buffer::Plan& plan = b.plans[slot];
  const bool bounded = kc_.stop == KafkaSourceConfig::Stop::end;
  if (!scratch_) {
    scratch_cap_ = kScratchBytes;
    scratch_.reset(new uint8_t[scratch_cap_ + kLinePadding]);
    std::memset(scratch_.get() + scratch_cap_, 0, kLinePadding);
  }
  kafka::BatchIteratorOptions options;
  options.verify_crc = false;  // checked when the response arrived
  kafka::BatchIterator it(plan.records, options);
  kafka::Batch batch;
  while (it.next(batch) == kafka::BatchStatus::ok) {
    if (batch.last_offset < p.next_offset) continue;
    if (bounded && batch.base_offset >= p.end_offset) break;
    if (batch.control()) {
      p.next_offset = batch.last_offset + 1;
      continue;
    }
    kafka::RecordReader rr;
    kafka::BatchStatus st = rr.open(batch, decompressor_, scratch_.get(), scratch_cap_);
    kafka::Record rec;
    if (st == kafka::BatchStatus::ok) {
      while (rr.next(rec)) {
        if (rec.offset < p.next_offset) continue;
        if (bounded && rec.offset >= p.end_offset) break;
        p.current_offset = rec.offset;
        bool accepted;
        if (rec.value_null) {
          accepted = host_.dead_letter(&p, DeadLetterReason::schema_error,
                                        "the record has no value (a tombstone)", "");
          if (accepted) host_.count_line(p);
        } else if (rec.value.size() > cfg_.line_bytes_max) {
          char detail[128];
          std::snprintf(detail, sizeof detail, "record value of %zu bytes exceeds line_bytes_max (%u)",
                        rec.value.size(), cfg_.line_bytes_max);
          std::string_view prefix = rec.value.substr(0, std::min<size_t>(kTooLongPrefixBytes, cfg_.line_bytes_max));
          accepted = host_.dead_letter(&p, DeadLetterReason::line_too_long, detail, prefix, true,
                                        rec.value.size());
          if (accepted) host_.count_line(p);
        } else {
          RecordMeta meta{rec.timestamp_ms, rec.key, rec.key_null};
          accepted = host_.on_record(p, rec.value, &meta);
        }
        if (!accepted) return false;
        p.next_offset = rec.offset + 1;
      }
      st = rr.status() == kafka::BatchStatus::end ? kafka::BatchStatus::ok : rr.status();
    }
    if (st != kafka::BatchStatus::ok) {
      // Its checksum held, so fetching it again would give the same bytes.
      const char* detail = st == kafka::BatchStatus::ok ? "" : rr.detail();
      if (p.next_offset <= batch.last_offset &&
          !corrupt_batch(p, std::max(p.next_offset, batch.base_offset), batch.last_offset,
                         *detail ? detail : kafka::to_string(st))) {
        return false;
      }
    }
    p.next_offset = std::max(p.next_offset, batch.last_offset + 1);
    if (bounded && p.next_offset >= p.end_offset) break;
  }
  if (plan.bad_first >= 0 && p.next_offset <= plan.bad_last) {
    if (!corrupt_batch(p, std::max(p.next_offset, plan.bad_first), plan.bad_last, plan.bad_detail)) {
      return false;
    }
    p.next_offset = plan.bad_last + 1;
  }
  if (bounded && p.next_offset >= p.end_offset) {
    p.next_offset = std::max(p.next_offset, p.end_offset);
    p.state = Partition::State::finished;
    p.done = true;
  }
  return true;
}

// ---------------------------------------------------------------------------
// State

void KafkaSource::reset_partition(Partition& p, const char* why) {
  ++p.epoch;  // responses already buffered for it are ignored
  if (p.next_offset >= 0) p.fetch_offset = p.next_offset;
  if (why != nullptr) log_info("source {}: partition {}: {}; asking Metadata", cfg_.name, p.name, why);
}

void KafkaSource::need_metadata(const char*) {
  metadata_needed_ = true;
  Conn& b = *conns_[0];
  if (b.state == Conn::State::ready) next_request(b);
}

void KafkaSource::fail_source(const std::string& why) {
  log_error("source {}: {}; stopping", cfg_.name, why);
  failed_ = true;
  for (auto& p : partitions_) {
    p->state = Partition::State::finished;
    p->done = true;
  }
  metadata_known_ = true;
  host_.fail();
  host_.request_stop();
  for (auto& c : conns_) drop(*c, "source stopped");
}

KafkaSource::Partition* KafkaSource::partition_by_id(int32_t id) {
  for (auto& p : partitions_) {
    if (p->id == id) return p.get();
  }
  return nullptr;
}

void KafkaSource::stop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto& p : partitions_) {
    p->state = Partition::State::finished;
    p->done = true;
  }
  metadata_known_ = true;
  for (auto& c : conns_) {
    if (c->state == Conn::State::backoff) {
      c->state = Conn::State::closed;
    } else {
      drop(*c, "stopping");
    }
  }
}

bool KafkaSource::done() const {
  if (stopping_ || failed_) {
    for (const auto& c : conns_) {
      if (c->ops > 0) return false;  // buffers still in the kernel's hands
    }
    return true;
  }
  if (!metadata_known_) return false;
  for (const auto& p : partitions_) {
    if (p->state != Partition::State::finished) return false;
  }
  return true;
}

int64_t KafkaSource::next_deadline() const {
  int64_t t = kTimeMax;
  for (const auto& c : conns_) {
    if (c->state == Conn::State::backoff) t = std::min(t, c->retry_at);
    if (c->state == Conn::State::resolving) t = std::min(t, host_.now() + Resolver::kPollNs);
    if (c->deadline != kTimeMax) t = std::min(t, c->deadline);
  }
  if (metadata_needed_) t = std::min(t, metadata_not_before_);
  return t;
}

void KafkaSource::positions(FunctionRef<void(const StreamPosition&)> f) const {
  for (const auto& p : partitions_) {
    f(StreamPosition{p->name, uint64_t(std::max<int64_t>(p->next_offset, 0)), 0, p->wm.watermark()});
  }
}

void KafkaSource::log_at_exit() const {
  for (const auto& p : partitions_) {
    log_info("source {}: partition {}: next offset {} (high watermark {})", cfg_.name, p->name,
             p->next_offset, p->high_watermark);
  }
}

namespace {
constexpr std::string_view kKafkaKeys[] = {"brokers",   "topic",     "start",     "stop",
                                           "offset_reset", "client_id", "max_wait", "min_bytes",
                                           "max_bytes", "partition_max_bytes"};

void parse_kafka(TableReader& r, SourceConfig& source, ConfigContext&) {
  KafkaSourceConfig& k = source.kafka;
  std::vector<std::string> brokers;
  if (r.string_list("brokers", brokers, Need::required, /*single_string_ok=*/true)) {
    for (const std::string& b : brokers) {
      auto address = parse_listen(b);
      if (!address || address->port == 0) {
        r.error("brokers", fmt::format("bad broker address \"{}\"{}; expected \"host:port\"", b,
                                       address ? "" : ": " + address.error()));
      } else {
        k.brokers.push_back({address->host, address->port});
      }
    }
  }
  r.string("topic", k.topic, Need::required);
  if (const toml::node* start = r.find("start")) {
    const auto* text = start->as_string();
    int64_t ns = 0;
    if (text == nullptr) {
      r.error("start", fmt::format("expected \"earliest\", \"latest\" or an RFC 3339 time, got {}{}",
                                   type_name(*start), start->is_date_time() ? " (quote it)" : ""));
    } else if (text->get() == "earliest") {
      k.start = KafkaSourceConfig::Start::earliest;
    } else if (text->get() == "latest") {
      k.start = KafkaSourceConfig::Start::latest;
    } else if (auto e = parse_rfc3339(text->get(), ns); e != TimestampError::ok) {
      r.error("start", fmt::format("bad start \"{}\": expected \"earliest\", \"latest\" or an "
                                   "RFC 3339 time ({})",
                                   text->get(), to_string(e)));
    } else {
      k.start = KafkaSourceConfig::Start::time;
      k.start_time_ms = ns / kNsPerMs;
    }
  }
  r.choice("stop", k.stop, {{"none", KafkaSourceConfig::Stop::none}, {"end", KafkaSourceConfig::Stop::end}});
  r.choice("offset_reset", k.offset_reset,
           {{"earliest", KafkaSourceConfig::OffsetReset::earliest},
            {"latest", KafkaSourceConfig::OffsetReset::latest},
            {"fail", KafkaSourceConfig::OffsetReset::fail}});
  r.string("client_id", k.client_id);
  r.duration("max_wait", k.max_wait_ns, Zero::allowed);
  r.integer("min_bytes", k.min_bytes, 0, 1 << 30);
  r.integer("max_bytes", k.max_bytes, 1 << 16, 1 << 30);
  r.integer("partition_max_bytes", k.partition_max_bytes, 1 << 10, 1 << 30);
}


std::expected<std::unique_ptr<Source>, std::string> make_kafka_source(SourceHost& host, uint32_t index) {
  // Every shard reads the partitions it owns.
  return std::make_unique<KafkaSource>(host, index);
}
}  // namespace

extern const SourceKind kKafkaSourceKind = {
    .type = SourceType::kafka,
    .name = "kafka",
    .config = {.name = "kafka", .keys = kKafkaKeys, .parse = parse_kafka, .record_metadata = true,
               .connection_buffers = false},
    .prepare = nullptr,
    .make = make_kafka_source,
    // Two response buffers per broker connection (at least one per shard).
    .fixed_bytes = [](const SourceConfig& sc, uint32_t, uint32_t, uint32_t) -> uint64_t {
      return 2 * uint64_t(sc.kafka.max_bytes);
    },
    .describe =
        [](const SourceConfig& s) {
          return "topic " + s.kafka.topic + " via " + s.kafka.brokers[0].host + ":" +
                 std::to_string(s.kafka.brokers[0].port) +
                 (s.kafka.brokers.size() > 1 ? " +" + std::to_string(s.kafka.brokers.size() - 1) + " more" : "");
        },
    .finite = [](const SourceConfig& s) { return s.finite(); },
    .placed = false,
};

}  // namespace sluice
