#include "io/sources/kafka_source.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"
#include "core/timestamp.h"
#include "io/kafka/record_batch.h"
#include "operators/framing.h"
#include "operators/json_text.h"

namespace sluice {

namespace kafka_limits {
// A topic Metadata does not know (yet) is asked for again after this long.
constexpr int64_t kUnknownTopicRetryNs = 1 * kNsPerS;
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
// The tags of the consumer's requests (kafka::ClientUser).
enum RequestTag : uint32_t { kTagMetadata = 1, kTagListStart, kTagListEnd, kTagFetch };
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

// What the consumer keeps of one Fetch response it holds: the decoded
// response and what to deliver from each partition in it.
struct KafkaSource::FetchState {
  struct Plan {
    Partition* partition;
    uint32_t epoch;                    // stale (ignored) once the partition's epoch moves on
    std::span<const uint8_t> records;  // whole, checked batches only
    int64_t bad_first = -1;            // a batch to report as corrupt after them, or -1
    int64_t bad_last = -1;
    const char* bad_detail = "";
  };
  kafka::FetchResponse fetch;
  std::vector<Plan> plans;
  size_t plan_next = 0;
};

KafkaSource::KafkaSource(SourceHost& host, uint32_t source_index)
    : host_(host),
      cfg_(host.config().sources[source_index]),
      kc_(cfg_.kafka),
      source_(source_index),
      client_(host.reactor(), *this,
              kafka::ClientOptions{.log_name = "source " + cfg_.name,
                                   .client_id = cfg_.kafka.client_id,
                                   .response_bytes_max = size_t(cfg_.kafka.max_bytes) + kResponseSlackBytes,
                                   .list_offsets_version_max = kListOffsetsVersionMax}),
        bootstrap_(cfg_.kafka.brokers) {
  client_.add(-1);  // the bootstrap connection, for Metadata
  header_names_ = host.config().schema.header_names();
  for (const std::string& h : header_names_) header_views_.push_back(h);
  SLUICE_ASSERT(header_views_.size() <= kRecordHeadersMax);  // refused by the config loader
  fetch_.resize(2);
  for (auto& f : fetch_) f = std::make_unique<FetchState>();
}

KafkaSource::~KafkaSource() = default;

// ---------------------------------------------------------------------------
// Connections

KafkaSource::Conn& KafkaSource::conn_for(int32_t node_id) {
  if (Conn* c = client_.find(node_id); c != nullptr && c->index() != 0) return *c;
  Conn& c = client_.add(node_id);
  while (fetch_.size() < 2 * client_.size()) fetch_.push_back(std::make_unique<FetchState>());
  return c;
}

KafkaSource::FetchState& KafkaSource::fetch_state(const Conn& c, const Buffer& b) {
  return *fetch_[2 * c.index() + b.slot];
}

void KafkaSource::m_bytes(uint64_t n) {
  host_.metrics().bytes_in.add(n);
  host_.metrics().sources[source_]->bytes_in.add(n);
}

void KafkaSource::start() {
  started_ = true;
  bootstrap_.pick(client_.at(0));
  client_.connect(client_.at(0));
}

// The bootstrap connection cycles through the configured brokers, then any
// broker the last Metadata named.

// A connection backing off reconnects when it has work: the bootstrap when
// Metadata is needed, a broker while it leads one of our partitions.
bool KafkaSource::wants(const Conn& c) {
  if (c.index() == 0) {
    if (!metadata_needed_) return false;
    bootstrap_.pick(client_.at(0));
    return true;
  }
  for (auto& p : partitions_) {
    if (p->leader == c.node_id) return true;
  }
  return false;
}

// A dropped connection's partitions are planned again from Metadata.
void KafkaSource::on_drop(Conn& c) {
  for (auto& p : partitions_) {
    if (c.node_id >= 0 && p->leader == c.node_id && p->state != Partition::State::finished) {
      reset_partition(*p, nullptr);
      p->state = Partition::State::need_leader;
      p->leader = -1;
    }
  }
  if (c.node_id >= 0 || c.index() == 0) need_metadata(nullptr);
}

void KafkaSource::on_incompatible(Conn&, const std::string& why) { fail_source(why); }

uint32_t KafkaSource::next_request(Conn& c, kafka::Writer& w, int32_t correlation, int64_t& wait_ns) {
  if (c.index() == 0) {
    const bool due = metadata_needed_ && host_.now() >= metadata_not_before_;
    return due && send_metadata(c, w, correlation) ? uint32_t(kTagMetadata) : 0u;
  }
  if (send_list_offsets(c, w, correlation, false)) return kTagListStart;
  if (send_list_offsets(c, w, correlation, true)) return kTagListEnd;
  if (send_fetch(c, w, correlation)) {
    wait_ns = kc_.max_wait_ns;
    return kTagFetch;
  }
  return 0;
}

bool KafkaSource::on_response(Conn& c, uint32_t tag, Buffer& b, kafka::Reader& r) {
  switch (tag) {
    case kTagMetadata: handle_metadata(c, r); return false;
    case kTagListStart: handle_list_offsets(c, r, false); return false;
    case kTagListEnd: handle_list_offsets(c, r, true); return false;
    case kTagFetch: return handle_fetch(c, b, r);  // held until delivered
  }
  return false;
}

// ---------------------------------------------------------------------------
// Requests

bool KafkaSource::send_metadata(Conn& c, kafka::Writer& w, int32_t correlation) {
  std::string_view topics[] = {kc_.topic};
  if (kafka::encode_metadata_request(w, c.versions().metadata, correlation, kc_.client_id, topics) !=
      kafka::EncodeStatus::ok) {
    return false;
  }
  metadata_needed_ = false;
  return true;
}

bool KafkaSource::send_list_offsets(Conn& c, kafka::Writer& w, int32_t correlation, bool end) {
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
  // read_uncommitted: every record. read_committed would also need the
  // client to drop aborted transactions' records (not implemented yet).
  auto isolation = kafka::IsolationLevel::read_uncommitted;
  return kafka::encode_list_offsets_request(w, c.versions().list_offsets, correlation, kc_.client_id,
                                            isolation, std::span(&topic, 1)) == kafka::EncodeStatus::ok;
}

bool KafkaSource::send_fetch(Conn& c, kafka::Writer& w, int32_t correlation) {
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
  return kafka::encode_fetch_request(w, c.versions().fetch, correlation, kc_.client_id, rq) ==
         kafka::EncodeStatus::ok;
}

// ---------------------------------------------------------------------------
// Responses

void KafkaSource::handle_metadata(Conn& c, kafka::Reader& r) {
  kafka::DecodeResult d = kafka::decode_metadata_response(r, c.versions().metadata, metadata_);
  if (!d.ok()) {
    char why[160];
    std::snprintf(why, sizeof why, "malformed Metadata response (%s)", d.reason);
    client_.drop(c, why);
    return;
  }
  bootstrap_.learn(metadata_);
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
    metadata_not_before_ = host_.now() + kUnknownTopicRetryNs;
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
    if (lc.state() == Conn::State::closed) {
      lc.host = std::string(b->host);
      lc.port = uint16_t(b->port);
      client_.connect(lc);
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
  for (uint32_t i = 1; i < client_.size(); ++i) client_.request(client_.at(i));
}

void KafkaSource::handle_list_offsets(Conn& c, kafka::Reader& r, bool end) {
  kafka::DecodeResult d = kafka::decode_list_offsets_response(r, c.versions().list_offsets, offsets_);
  if (!d.ok()) {
    char why[160];
    std::snprintf(why, sizeof why, "malformed ListOffsets response (%s)", d.reason);
    client_.drop(c, why);
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
bool KafkaSource::handle_fetch(Conn& c, Buffer& b, kafka::Reader& r) {
  FetchState& f = fetch_state(c, b);
  kafka::DecodeResult d = kafka::decode_fetch_response(r, c.versions().fetch, f.fetch);
  if (!d.ok()) {
    char why[160];
    std::snprintf(why, sizeof why, "malformed Fetch response (%s)", d.reason);
    client_.drop(c, why);
    return false;
  }
  if (f.fetch.error != ErrorCode::none) {
    client_.drop(c, kafka::to_string(f.fetch.error));
    return false;
  }
  m_bytes(b.len);
  f.plans.clear();
  f.plan_next = 0;
  for (const kafka::FetchPartition& fp : f.fetch.partitions) {
    if (fp.topic != kc_.topic) continue;
    Partition* p = partition_by_id(fp.partition);
    if (p == nullptr || p->leader != c.node_id || p->state != Partition::State::fetching) continue;
    if (fp.error != ErrorCode::none) {
      if (fp.error == ErrorCode::offset_out_of_range) {
        if (kc_.offset_reset == KafkaSourceConfig::OffsetReset::fail) {
          fail_source(fmt::format("partition {}: offset {} is out of range (offset_reset = \"fail\")",
                                  p->name, p->fetch_offset));
          return false;
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
        return false;
      }
      continue;
    }
    p->high_watermark = fp.high_watermark;
    FetchState::Plan plan{p, p->epoch, {}, -1, -1, ""};
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
    if (!plan.records.empty() || plan.bad_first >= 0) f.plans.push_back(plan);
  }
  // Held: the client sends the next Fetch at once, on the wire while this one is delivered.
  return true;
}

// ---------------------------------------------------------------------------
// Delivery

bool KafkaSource::poll() {
  if (!started_ || failed_) return false;
  const int64_t now = host_.now();
  bool progress = client_.poll(now);
  backlogged_ = false;
  for (uint32_t i = 0; i < client_.size(); ++i) {
    Conn& c = client_.at(i);
    while (c.held() > 0) {
      Buffer& b = c.held_front();
      if (paused_ || !process_buffer(fetch_state(c, b), b)) {
        backlogged_ = true;  // refused: back-pressure, retried later
        return progress;
      }
      client_.release_front(c);
      progress = true;
    }
    if (c.ready()) client_.request(c);
  }
  Conn& bootstrap = client_.at(0);
  if (metadata_needed_ && now >= metadata_not_before_ && bootstrap.ready()) client_.request(bootstrap);
  return progress;
}

bool KafkaSource::process_buffer(FetchState& f, const Buffer& b) {
  for (; f.plan_next < f.plans.size(); ++f.plan_next) {
    const FetchState::Plan& plan = f.plans[f.plan_next];
    Partition& p = *plan.partition;
    if (plan.epoch != p.epoch || p.state != Partition::State::fetching) continue;
    host_.begin_chunk(b.recv_ns);
    bool delivered = deliver(p, f, f.plan_next);
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

bool KafkaSource::deliver(Partition& p, const FetchState& f, size_t slot) {
  const FetchState::Plan& plan = f.plans[slot];
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
          if (!header_views_.empty()) {
            const kafka::LastHeaders h = kafka::last_headers(rec, header_views_, meta.headers);
            meta.headers_found = h.found;
            meta.headers_null = h.null;
          }
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
  Conn& b = client_.at(0);
  if (b.ready()) client_.request(b);
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
  for (uint32_t i = 0; i < client_.size(); ++i) client_.drop(client_.at(i), "source stopped");
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
  client_.close_all();
}

bool KafkaSource::done() const {
  if (stopping_ || failed_) return !client_.operations_pending();  // buffers still in the kernel's hands
  if (!metadata_known_) return false;
  for (const auto& p : partitions_) {
    if (p->state != Partition::State::finished) return false;
  }
  return true;
}

int64_t KafkaSource::next_deadline() const {
  int64_t t = client_.next_deadline(host_.now());
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
    .finite = [](const SourceConfig& s) { return s.kafka.stop == KafkaSourceConfig::Stop::end; },
    .placed = false,
};

}  // namespace sluice
