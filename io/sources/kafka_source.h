// One Kafka source's work on one shard: the topic's partitions this shard
// owns (partition % shards == shard id), read through a Kafka client
// (io/kafka/client.h: a connection to each broker that leads one of them, on
// the shard's own io_uring) with the fetch loop on top: the consumer.
//
// Per connection, after the client's ApiVersions: requests one at a time:
// Metadata (on the bootstrap connection), ListOffsets (start and, for
// stop = "end", end offsets), Fetch. A Fetch response is received into one of
// two buffers; its batches are scanned (CRC-32C checked, next offsets found)
// and the next Fetch is sent at once, so it is on the wire while this
// response's records are decoded and aggregated. Both buffers busy = no more
// fetching: that is back-pressure.
//
// Exactly once per record: each partition has `next_offset`, the first offset
// not yet delivered; records below it are skipped, so re-fetches (after a
// leader move, a reconnect, a CRC failure) never count a record twice. When a
// partition moves to another connection, its epoch changes and responses
// already buffered for it are ignored, and fetching resumes from next_offset,
// so no record is lost either.
//
// Owned by the shard; touched only by its thread.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/kafka/client.h"
#include "io/kafka/compression.h"
#include "io/kafka/protocol.h"
#include "io/source.h"

namespace sluice {

class KafkaSource final : public Source, private kafka::ClientUser {
 public:
  KafkaSource(SourceHost& host, uint32_t source_index);
  ~KafkaSource() override;
  KafkaSource(const KafkaSource&) = delete;
  KafkaSource& operator=(const KafkaSource&) = delete;

  // Connects to the bootstrap brokers.
  void start() override;
  // Partitions are not driven through the ready list: poll() delivers them.
  bool process(Stream&) override { return false; }
  // Decodes buffered responses, sends requests that are due. True if it made progress.
  bool poll() override;
  // Stop requested: no more fetching; connections are shut down.
  void stop() override;
  // Every owned partition is finished (stop = "end" reached, or stopped), and
  // the partition set is known.
  bool done() const override;
  // Until this shard knows which partitions it reads, it cannot vouch for
  // them: the pipeline watermark must wait (they may hold old records).
  bool holds_back() const override { return started_ && !metadata_known_ && !stopping_ && !failed_; }
  // The earliest monotonic time a retry or timeout is due, or kTimeMax.
  int64_t next_deadline() const override;
  // One stream per owned partition; fetched records waiting for room
  // (back-pressure) mean its partitions are not idle.
  void for_each_stream(FunctionRef<void(Stream&, bool)> f) override {
    for (Stream* s : streams_) f(*s, backlogged_);
  }
  // While paused (the sinks are behind), fetched records are not delivered;
  // with both response buffers full, fetching stops.
  void set_paused(bool paused) override { paused_ = paused; }
  // Each owned partition's next offset.
  void positions(FunctionRef<void(const StreamPosition&)> f) const override;
  // Logs each owned partition's next offset (at exit).
  void log_at_exit() const override;

  struct Partition;

 private:
  struct FetchState;
  using Conn = kafka::Connection;
  using Buffer = kafka::ResponseBuffer;

  // kafka::ClientUser
  uint32_t next_request(Conn& c, kafka::Writer& w, int32_t correlation, int64_t& wait_ns) override;
  bool on_response(Conn& c, uint32_t tag, Buffer& b, kafka::Reader& r) override;
  void on_drop(Conn& c) override;
  void on_incompatible(Conn& c, const std::string& why) override;
  bool wants(const Conn& c) override;
  bool quiet() const override { return stopping_ || failed_; }

  Conn& conn_for(int32_t node_id);
  FetchState& fetch_state(const Conn& c, const Buffer& b);
  bool send_metadata(Conn& c, kafka::Writer& w, int32_t correlation);
  bool send_list_offsets(Conn& c, kafka::Writer& w, int32_t correlation, bool end);
  bool send_fetch(Conn& c, kafka::Writer& w, int32_t correlation);
  void handle_metadata(Conn& c, kafka::Reader& r);
  void handle_list_offsets(Conn& c, kafka::Reader& r, bool end);
  bool handle_fetch(Conn& c, Buffer& b, kafka::Reader& r);
  bool process_buffer(FetchState& f, const Buffer& b);
  bool deliver(Partition& p, const FetchState& f, size_t slot);
  void reset_partition(Partition& p, const char* why);
  void need_metadata(const char* why);
  void fail_source(const std::string& why);
  Partition* partition_by_id(int32_t id);
  bool corrupt_batch(Partition& p, int64_t first, int64_t last, const char* detail);
  void m_bytes(uint64_t n);

  SourceHost& host_;
  const SourceConfig& cfg_;
  const KafkaSourceConfig& kc_;
  uint32_t source_;
  bool started_ = false;
  bool stopping_ = false;
  bool failed_ = false;
  bool backlogged_ = false;
  bool paused_ = false;
  bool metadata_known_ = false;  // the partition set is known (done() may be true)
  bool metadata_needed_ = true;
  int64_t metadata_not_before_ = 0;
  uint32_t topic_partitions_ = 0;  // partitions of the topic (all shards)

  kafka::Client client_;  // connection 0: bootstrap (metadata)
  std::vector<std::unique_ptr<FetchState>> fetch_;  // by connection index * 2 + buffer slot
  std::vector<std::unique_ptr<Partition>> partitions_;
  std::vector<Stream*> streams_;  // the same partitions, as the shard sees them
  kafka::MetadataResponse metadata_;  // views into a response buffer: valid while it is handled
  kafka::BootstrapBrokers bootstrap_;  // where the bootstrap connection goes next
  kafka::ListOffsetsResponse offsets_;
  kafka::Decompressor decompressor_;
  std::unique_ptr<uint8_t[]> scratch_;  // decompressed records of one batch (+ parser padding)
  size_t scratch_cap_ = 0;
  // The record headers the schema uses (SchemaConfig::header_names()), looked
  // up in every record and handed to the decoder in RecordMeta.
  std::vector<std::string> header_names_;
  std::vector<std::string_view> header_views_;
  // Request-building scratch, reused.
  std::vector<kafka::FetchPartitionRequest> fetch_parts_;
  std::vector<kafka::ListOffsetsPartitionRequest> offset_parts_;
};

}  // namespace sluice
