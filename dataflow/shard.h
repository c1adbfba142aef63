// One shard: a thread pinned to one CPU that owns one io_uring, the sources
// assigned to it (TCP connections, files, generators), the window tables of
// the keys that hash to it, its dead-letter output, and, on shard 0, the
// listeners, the signal fd and the gatherer that writes results to sinks.
//
// Everything here is touched only by the shard's own thread, except the
// reactor's wake-up (other shards wake it) and the channels (each end used by
// exactly one thread).
//
// The loop (run()): reap completions -> apply inbound batches -> adopt new
// connections -> frame/decode/route ready input -> push outbound batches with
// this shard's watermark marker -> fire windows the pipeline watermark has
// passed -> (shard 0) gather and write results -> write dead letters -> sleep
// in the kernel when there is nothing to do.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/memory_budget.h"
#include "io/async_writer.h"
#include "core/reactor.h"
#include "core/ring.h"
#include "operators/decoder.h"
#include "operators/framing.h"
#include "operators/watermark.h"
#include "operators/window_table.h"
#include "dataflow/engine.h"
#include "io/sources/sales_generator.h"

namespace sluice {

class Gatherer;
class KafkaSource;
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
// Generator lines produced per loop iteration when the rate is unlimited.
constexpr size_t kGeneratorChunkBytes = 64 * 1024;

// Each of the two buffers of a shard's dead-letter writer: room for two
// worst-case dead letters of the longest line (every byte escaped).
size_t dead_letter_buffer_bytes(uint32_t line_bytes_max);

// One source of events with its own watermark: a TCP connection, a file
// source, a generator, a Kafka partition.
struct Stream {
  enum class Kind : uint8_t { tcp, file, generator, kafka };
  Stream(Kind k, uint32_t src, int64_t delay_ns, int64_t floor_ns)
      : kind(k), source(src), wm(delay_ns, floor_ns) {}
  virtual ~Stream() = default;

  Kind kind;
  uint32_t source;  // index into config.sources
  SourceWatermark wm;
  int64_t last_active_ns = 0;  // monotonic time input last arrived
  bool idle = false;
  bool done = false;  // finished: no longer holds the watermark back
  bool in_ready = false;
  bool stalled = false;  // refused by back-pressure on the last attempt
};

// A stream of NDJSON bytes, cut into lines.
struct FramedStream : Stream {
  FramedStream(Kind k, uint32_t src, uint32_t line_bytes_max, int64_t delay_ns, int64_t floor_ns,
               MemoryBudget* budget = nullptr)
      : Stream(k, src, delay_ns, floor_ns), framer(line_bytes_max, budget) {}
  LineFramer framer;
};

class Shard {
 public:
  Shard(EngineShared& shared, uint32_t id);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // On the shard's own thread, before run(): ring, buffers, sources.
  std::string init();
  void run();

  // Any thread: wake this shard if it sleeps (eventfd).
  void external_wake() { reactor_.external_wake(); }
  const ShardMetrics& metrics() const { return m_; }
  // After run(): outputs of this shard that failed (its dead-letter output,
  // and on shard 0 the sinks), each with what was and was not written.
  std::vector<std::string> failures() const;

 private:
  friend class KafkaSource;
  struct TcpConn;
  struct FileStream;
  struct GenStream;

  // Monotonic ns of the current loop iteration (the reactor reads it once per step).
  int64_t now() const { return reactor_.now(); }
  void loop();
  std::string init_steps();
  const char* init_step_ = "the shard";  // what init_steps() is allocating (for an error)
  uint64_t init_step_bytes_ = 0;
  [[noreturn]] void out_of_memory();
  // Completions.
  void arm_signal();
  void on_signal(const io_uring_cqe& cqe);
  void on_accept_done(uint32_t source, const io_uring_cqe& cqe);
  void on_recv_done(uint32_t slot, const io_uring_cqe& cqe);
  void on_dead_letter_write(const io_uring_cqe& cqe);
  void on_file_read_done(uint32_t id, const io_uring_cqe& cqe);
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

  // Sources.
  void open_tcp(uint32_t source, int fd);
  void arm_accept(uint32_t source);
  void arm_recv(TcpConn& c);
  void on_accept(uint32_t source, const io_uring_cqe& cqe);
  void on_recv(TcpConn& c, const io_uring_cqe& cqe);
  bool process_tcp(TcpConn& c);
  void close_tcp(TcpConn& c);
  enum class ConnClosing : uint8_t;
  void close_by_engine(TcpConn& c, ConnClosing why);
  void check_read_timeouts();
  void drain_connections();
  void issue_read(FileStream& f);
  void on_file_read(FileStream& f, int buf, int res);
  bool process_file(FileStream& f);
  bool process_generator(GenStream& g);
  void mark_ready(Stream& s);
  void input_arrived(Stream& s);
  // Input arrived for s: it is active (and no longer idle).
  void touch(Stream& s);

  // The per-line path.
  size_t feed(FramedStream& s, const char* data, size_t len);
  bool on_line(FramedStream& s, const Line& line);
  // One event's text (a line, a record value) through decode, lateness and
  // routing. False: refused for now (back-pressure); offer it again later.
  bool on_event(Stream& s, std::string_view text, const RecordMeta* meta);
  bool route(Stream& s, const Event& e, int64_t window_start, std::string_view raw);
  bool dead_letter(Stream* s, DeadLetterReason reason, std::string_view detail,
                   std::string_view raw, bool truncated = false, uint64_t raw_bytes = 0);
  void dead_letter_output_failed();
  bool future_dead_letter(Stream& s, const Event& e, std::string_view raw);
  bool late_dead_letter(Stream* s, const Event& e, int64_t window_start, int64_t watermark,
                        std::string_view raw, bool already_written);
  // False: refused (dead-letter output full); offer the same event again later.
  bool apply_remote(const Event& e);

  // Metrics.
  void begin_chunk(int64_t recv_ns);
  void end_chunk();
  void count_line(Stream& s);
  void count_bytes(Stream& s, uint64_t n);
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
  int64_t size_ns_;

  Reactor reactor_;
  Ring& ring_ = reactor_.ring();
  BufferRing bufs_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<WindowSet> windows_;
  std::unique_ptr<AsyncWriter> dl_;
  bool dl_failed_ = false;  // the dead-letter output failed: dead letters are counted, not written
  std::unique_ptr<Gatherer> gatherer_;  // shard 0 only

  uint64_t signal_buf_[16];  // one signalfd_siginfo (128 bytes)
  Completion signal_done_;
  Completion dead_letter_done_;
  std::vector<IndexedCompletion<Shard>> accept_done_;  // by source index (shard 0)

  std::vector<std::unique_ptr<TcpConn>> conns_;
  std::vector<uint32_t> free_conn_slots_;
  std::vector<std::unique_ptr<FileStream>> files_;
  std::vector<std::unique_ptr<GenStream>> gens_;
  std::vector<std::unique_ptr<KafkaSource>> kafka_;

  std::unique_ptr<MetricsServer> metrics_server_;  // shard 0, with [metrics]
  std::vector<Stream*> ready_;
  std::vector<Stream*> ready_next_;
  std::vector<TcpConn*> rearm_;
  // Received buffers queued per connection, as a linked list through bids.
  std::vector<int32_t> buf_next_;
  std::vector<uint32_t> buf_len_;
  std::vector<int64_t> buf_recv_ns_;  // when each queued buffer was received
  std::vector<bool> listener_open_;  // by source index (shard 0)
  uint32_t accept_rr_ = 0;
  int64_t read_timeout_at_ = kTimeMax;  // earliest read_timeout of an open connection
  int64_t drain_deadline_ = 0;          // stopping: the end of stop_grace (0: not draining)
  LogRateLimit evict_log_, refuse_log_, budget_log_;
  // After an accept error (EMFILE, ENFILE...), listeners are re-armed at this
  // monotonic time instead of at once, so a persistent error does not spin.
  int64_t accept_retry_at_ = 0;
  std::vector<bool> accept_rearm_;  // by source index

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
  bool signal_seen_ = false;

  int64_t target_ = kTimeMin;         // windows ending at or before this fire
  size_t fire_entry_ = 0;             // next entry of the oldest window to send
  ResultChunk* chunk_ = nullptr;      // open result chunk (shards != 0)
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
