// The gatherer runs on shard 0. It collects the rows of fired windows from
// every shard, decides when a window is complete (every shard has reported
// firing through its end), orders its rows if a sink asks for key order,
// encodes them per sink (NDJSON or CSV) and writes each sink with batched
// io_uring writes: one write per flush, never one per row.
//
// Rows of a window are written only after every earlier window's rows, and
// a window's rows wait at most flush_interval once the window is complete
// (less when the sink buffer fills first).
//
// Memory: rows of windows not yet complete are held here (they are bounded
// by the window state the shards just released); each sink has two buffers
// of buffer_bytes. Row buffers of written windows are reused for new ones,
// so a steady stream of similar windows does not allocate.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/async_writer.h"
#include "core/ring.h"
#include "operators/row_encoder.h"
#include "dataflow/engine.h"

namespace sluice {

class Gatherer {
 public:
  Gatherer(EngineShared& shared, Ring& ring);

  // Rows from shard 0 itself; fire_ns: when its window fired (monotonic).
  void add_row(int64_t window_start, std::string_view key, const AggValue* values, int64_t fire_ns);
  // A chunk from another shard: its rows and its progress.
  void add_chunk(uint32_t from, const ResultChunk& chunk);
  // Shard `shard` has sent every row of every window ending at or before fired_through.
  void set_progress(uint32_t shard, int64_t fired_through, bool final);

  // Completes windows, encodes rows, starts writes. Returns true if it did anything.
  bool step(int64_t now_ns);
  // Monotonic time at which a buffered flush falls due, or kTimeMax.
  int64_t next_deadline() const;
  void on_write(uint32_t sink, int res);
  void on_write_done(uint32_t sink, const io_uring_cqe& cqe);

  // Every shard is final and everything has been written.
  bool done() const;
  // Rows written to every sink (each sink writes the same rows in the same order).
  uint64_t rows_out() const { return rows_out_; }
  // After the run: one line per sink that failed, with its written and lost rows.
  std::vector<std::string> failures() const;
  // What still waits: windows not complete or not written, bytes per sink.
  std::string describe_pending() const;
  // Back-pressure from the sinks: true once some sink has more than its
  // pending_bytes_max waiting, false again once every sink is at half of it
  // or below. While true, no window fires and every source pauses.
  bool update_backlog();
  bool backlogged() const { return backlogged_; }
  uint64_t backlog_episodes() const { return backlog_episodes_; }
  // Sink buffer gauges (shard 0 calls this with its other gauges).
  void refresh_gauges();

 private:
  struct Window {
    int64_t start = 0;
    int64_t fire_ns = kTimeMax;  // earliest fire time any shard reported
    std::vector<char> rows;
    std::vector<uint32_t> offsets;
  };
  // A window whose last row a sink has encoded; its latencies are recorded
  // when the bytes up to `end` have been written.
  struct Pending {
    uint64_t end;
    int64_t fire_ns;
    int64_t window_end_ns;
  };
  // Windows awaiting their write, per sink; beyond this many (a sink far
  // behind), further ones are not timed rather than held in memory.
  static constexpr size_t kPendingMax = 4096;
  struct Sink {
    const SinkConfig* cfg;
    RowEncoder encoder;
    std::unique_ptr<AsyncWriter> writer;
    uint64_t window_seq;  // absolute index of the window being encoded
    size_t row;           // next row within it
    int64_t dirty_since = kTimeMax;  // when the fill buffer last went from empty to not
    bool failed = false;
    uint64_t encoded = 0;            // bytes appended to the writer so far
    // Rows in the fill buffer and in the buffer being written, and the bytes
    // of the CSV header at the start of each (not a row); rows whose write
    // completed, and rows that will never be written (the sink failed).
    uint64_t fill_rows = 0;
    uint64_t flight_rows = 0;
    size_t fill_header = 0;
    size_t flight_header = 0;
    uint64_t rows_written = 0;
    uint64_t rows_lost = 0;
    // Row bytes of the complete windows this sink has encoded (see waiting_bytes()).
    uint64_t consumed_bytes = 0;
    std::vector<Pending> pending;    // a FIFO ring of kPendingMax
    size_t pending_head = 0;
    size_t pending_size = 0;
    SinkMetrics* metrics = nullptr;
  };
  Window& window(int64_t start, int64_t fire_ns);
  bool complete_windows();
  bool encode(Sink& s);
  bool start_write(Sink& s);
  // Rows of complete windows the sink has not encoded, plus encoded bytes not yet written.
  uint64_t waiting_bytes(const Sink& s) const;
  void sink_failed(Sink& s);
  void update_rows_out();

  EngineShared& sh_;
  Ring& ring_;
  size_t aggregates_;
  bool sort_by_key_ = false;
  std::vector<int64_t> progress_;  // fired-through per shard
  std::vector<bool> final_;
  std::vector<Window> pending_;        // not yet complete, ascending start (a few at a time)
  std::deque<Window> complete_;        // complete, oldest first
  std::vector<Window> spare_;          // written windows, cleared, kept for their capacity
  uint64_t complete_base_ = 0;         // absolute index of complete_.front()
  uint64_t complete_bytes_ = 0;        // row bytes of every window ever completed
  bool backlogged_ = false;
  uint64_t backlog_episodes_ = 0;
  std::vector<Sink> sinks_;
  std::vector<IndexedCompletion<Gatherer>> write_done_;  // by sink, sized once
  uint64_t rows_out_ = 0;
  ShardMetrics& metrics_;  // shard 0's
};

}  // namespace sluice
