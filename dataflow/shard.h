// One shard: a thread pinned to one CPU that owns one reactor (io_uring), the
// sources it runs (io/source.h: its TCP connections, the files and
// generators placed on it, its Kafka partitions), the window tables of the
// keys that hash to it, its dead-letter output, and, on shard 0, the signal
// fd, the metrics endpoint and the gatherer that writes results to sinks.
//
// Everything here is touched only by the shard's own thread, except the
// reactor's wake-up (other shards wake it) and the channels (each end used by
// exactly one thread).
//
// The loop (run()): reap and dispatch completions -> apply inbound batches ->
// adopt handed-off connections -> process ready streams (the sources frame
// and hand over their input; decode, lateness, routing happen here) -> poll
// the sources -> push outbound batches with this shard's watermark marker ->
// fire windows the pipeline watermark has passed -> (shard 0) gather and
// write results -> write dead letters -> sleep in the kernel when there is
// nothing to do.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/memory_budget.h"
#include "core/reactor.h"
#include "core/ring.h"
#include "dataflow/engine.h"
#include "dataflow/state.h"
#include "io/async_writer.h"
#include "io/source.h"
#include "operators/decoder.h"
#include "operators/framing.h"
#include "operators/watermark.h"
#include "operators/window_kind.h"
#include "operators/window_table.h"

namespace sluice {

class Gatherer;
class MetricsServer;

// Asks every shard to drain and stop, and wakes them (any thread).
void request_stop(EngineShared& shared);

// Receive buffers per shard and their size: 128 x 64 KiB = 8 MiB per shard.
// When all are queued behind a stalled connection, receives stop (ENOBUFS),
// which is how back-pressure reaches TCP peers.
constexpr uint32_t kRecvBuffers = 128;
constexpr uint32_t kRecvBufferBytes = 64 * 1024;
// Submission queue entries per ring; the SQ is flushed early when full.
constexpr unsigned kRingEntries = 1024;
// Longest the loop sleeps without a timer due, so idleness is noticed.
constexpr int64_t kTickNs = 200 * kNsPerMs;
// How often a shard refreshes its gauges (and ring counters) for scrapes.
constexpr int64_t kGaugeRefreshNs = 100 * kNsPerMs;

// Each of the two buffers of a shard's dead-letter writer: room for two
// worst-case dead letters of the longest line (every byte escaped).
size_t dead_letter_buffer_bytes(uint32_t line_bytes_max);

class Shard final : private SourceHost {
 public:
  Shard(EngineShared& shared, uint32_t id);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // On the shard's own thread, before run(): ring, buffers, sources.
  std::expected<void, std::string> init();
  void run();

  // Any thread: wake this shard if it sleeps (eventfd).
  void external_wake() { reactor_.external_wake(); }
  const ShardMetrics& shard_metrics() const { return m_; }
  // On the shard's thread: visits everything a checkpoint records of it
  // (dataflow/state.h). Allocates a scratch buffer; not on the event path.
  void visit_state(StateVisitor& v);
  // After run(): outputs of this shard that failed (its dead-letter output,
  // and on shard 0 the sinks), each with what was and was not written.
  std::vector<std::string> failures() const;

 private:
  // Monotonic ns of the current loop iteration (the reactor reads it once per step).
  int64_t now() const { return reactor_.now(); }

  // SourceHost: what the sources on this shard use (see io/source.h).
  Reactor& reactor() override { return reactor_; }
  uint32_t shard_id() const override { return id_; }
  uint32_t shards() const override { return n_; }
  const PipelineConfig& config() const override { return cfg_; }
  ShardMetrics& metrics() override { return m_; }
  int64_t start_wall_ns() const override { return sh_.control.start_wall_ns; }
  int64_t fired_max() const override;
  bool stopping() const override { return stopping_; }
  bool stop_is_failure() const override;
  uint32_t placed_shard(uint32_t source_index) const override { return sh_.resources.source_shard[source_index]; }
  size_t feed(FramedStream& s, const char* data, size_t len, int64_t recv_ns) override;
  bool finish(FramedStream& s, bool deliver_partial) override;
  bool on_record(Stream& s, std::string_view value, const RecordMeta* meta) override;
  void begin_chunk(int64_t recv_ns) override;
  void end_chunk() override;
  bool dead_letter(Stream* s, DeadLetterReason reason, std::string_view detail, std::string_view raw,
                   bool truncated = false, uint64_t raw_bytes = 0) override;
  void count_line(Stream& s) override;
  void count_bytes(Stream& s, uint64_t n) override;
  void mark_ready(Stream& s) override;
  void retire(Stream& s) override;
  ReceiveBuffers& receive_buffers() override { return recv_; }
  const SourceResource& resource(uint32_t source_index) const override { return sh_.resources.sources[source_index]; }
  MemoryBudget* connection_buffers() override { return sh_.resources.connection_buffers.get(); }
  bool hand_off(uint32_t shard, uint32_t source_index, int fd) override;
  void fail() override;
  void request_stop() override;

  void loop();
  std::expected<void, std::string> init_steps();
  std::string init_step_ = "the shard";  // what init_steps() is allocating (for an error)
  uint64_t init_step_bytes_ = 0;
  [[noreturn]] void out_of_memory();
  // Completions.
  void arm_signal();
  void on_signal(const io_uring_cqe& cqe);
  void on_dead_letter_write(const io_uring_cqe& cqe);
  // Loop steps.
  bool drain_inbound();
  bool adopt_connections();
  bool process_ready();
  bool flush_outbound();
  bool fire_windows();
  void begin_stop();
  [[noreturn]] void stop_timed_out();
  void update_inputs_done();
  int64_t next_deadline();

  // Input arrived for s: it is active (and no longer idle).
  void touch(Stream& s);

  // The per-line path.
  bool on_line(FramedStream& s, const Line& line);
  // One event's text (a line, a record value) through decode, lateness and
  // routing. False: refused for now (back-pressure); offer it again later.
  bool on_event(Stream& s, std::string_view text, const RecordMeta* meta);
  bool route(Stream& s, const Event& e, const int64_t* window_starts, size_t windows, const std::string_view& raw);
  bool apply_local(const Event& e, const int64_t* window_starts, size_t windows);
  void dead_letter_output_failed();
  bool future_dead_letter(Stream& s, const Event& e, std::string_view raw);
  bool late_dead_letter(Stream* s, const Event& e, int64_t window_start, int64_t watermark,
                        std::string_view raw, bool already_written);
  // False: refused (dead-letter output full); offer the same event again later.
  bool apply_remote(const Event& e);

  // Metrics.
  void publish_ring_counters();
  void refresh_gauges();

  // Cross-shard.
  Marker local_marker();
  bool push_batch(uint32_t dst);
  EventBatch* acquire_batch(uint32_t dst);
  void notify(uint32_t dst);
  bool inbound_pending() const;

  EngineShared& sh_;
  const PipelineConfig& cfg_;
  uint32_t id_;
  uint32_t n_;
  size_t nvals_;
  Windows window_kind_;  // which windows an event belongs to, and their ends

  Reactor reactor_;
  Ring& ring_ = reactor_.ring();
  ReceiveBuffers recv_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<WindowSet> windows_;
  std::unique_ptr<AsyncWriter> dl_;
  bool dl_failed_ = false;  // the dead-letter output failed: dead letters are counted, not written
  std::unique_ptr<Gatherer> gatherer_;  // shard 0 only

  uint64_t signal_buf_[16];  // one signalfd_siginfo (128 bytes)
  Completion signal_done_;
  Completion dead_letter_done_;

  std::vector<std::unique_ptr<Source>> sources_;  // the sources this shard runs
  std::vector<Source*> source_at_;                // by config index; null when not run here

  std::unique_ptr<MetricsServer> metrics_server_;  // shard 0, with [metrics]
  std::vector<Stream*> ready_;
  std::vector<Stream*> ready_next_;

  std::vector<EventBatch*> out_;      // open outbound batch per destination
  std::vector<Marker> sent_marker_;   // last marker sent to each destination
  std::vector<Marker> in_marker_;     // last marker received from each source shard
  struct Inbound {                    // a batch from one source shard being applied
    EventBatch* batch = nullptr;
    size_t offset = 0;                // of the next record
    uint32_t record = 0;
  };
  std::vector<Inbound> inbound_;
  // This shard's current marker. Batches pushed while input is processed
  // carry the one computed at the last flush, so before the first flush it
  // must already be the conservative initial_marker(), never "no opinion".
  Marker marker_ = initial_marker();
  int64_t retired_ = kTimeMin;        // see Marker::retired
  bool stopping_ = false;
  bool paused_ = false;               // the sinks are behind: sources are not read
  int64_t stop_deadline_ = 0;         // shard 0: monotonic time by which a stop must be done
  bool inputs_done_ = false;
  bool all_finite_ = false;           // every source ends by itself
  bool signal_seen_ = false;

  int64_t target_ = kTimeMin;         // windows ending at or before this fire
  size_t fire_entry_ = 0;             // next entry of the oldest window to send
  ResultChunk* chunk_ = nullptr;      // open result chunk (shards != 0)
  std::vector<uint32_t> exported_;    // aggregates whose state rows carry (exported_states)
  std::vector<char> state_scratch_;   // their serialized states while a row is built
  int64_t reported_ = kTimeMin;       // fired-through last reported to the gatherer
  bool reported_final_ = false;

  int64_t wall_now_ns_ = 0;           // wall clock, once per iteration (with a future_limit)
  int64_t future_limit_ns_ = 0;
  ShardMetrics& m_;
  uint64_t ring_submissions_seen_ = 0;
  uint64_t ring_completions_seen_ = 0;
  int64_t gauges_at_ = 0;
  int64_t chunk_recv_ns_ = 0;   // receive time of the input being processed
  uint64_t chunk_applied_ = 0;  // events of it applied on this shard so far
  std::vector<int64_t> source_wm_;  // scratch for refresh_gauges()
};

}  // namespace sluice
