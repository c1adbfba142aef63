// The gatherer runs on shard 0. It collects the rows of fired windows from
// every shard, decides when a window is complete (every shard has reported
// firing through its end), orders its rows if a sink asks for key order, and
// hands complete windows, in window order, to every sink (io/sink.h), which
// encode and write them their own way.
//
// Rows of a window reach a sink only after every earlier window's rows. What
// waits for a sink (rows of complete windows it has not taken, plus what it
// took and has not written) is bounded by its pending_bytes_max: past it,
// the gatherer says so (backlogged), the shards stop firing and the sources
// pause, until every sink is at half of it.
//
// Memory: rows of windows not yet complete are held here (they are bounded
// by the window state the shards just released). Row buffers of written
// windows are reused for new ones, so a steady stream of similar windows
// does not allocate.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/reactor.h"
#include "dataflow/engine.h"
#include "dataflow/state.h"
#include "io/sink.h"
#include "operators/window_kind.h"

namespace sluice {

class Gatherer final : private SinkHost {
 public:
  // The gatherer with every sink made, or the error of a sink that could not be.
  static std::expected<std::unique_ptr<Gatherer>, std::string> make(EngineShared& shared, Reactor& reactor);
  ~Gatherer() override;

  // Rows from shard 0 itself; fire_ns: when its window fired (monotonic).
  void add_row(int64_t window_start, std::string_view key, const AggValue* values, int64_t fire_ns,
               const std::string_view* states = nullptr);
  // A chunk from another shard: its rows and its progress.
  void add_chunk(uint32_t from, const ResultChunk& chunk);
  // Shard `shard` has sent every row of every window ending at or before fired_through.
  void set_progress(uint32_t shard, int64_t fired_through, bool final);

  // Completes windows, hands rows to the sinks, lets them flush. Returns true if it did anything.
  bool step(int64_t now_ns);
  // Monotonic time at which a sink's buffered flush falls due, or kTimeMax.
  int64_t next_deadline() const;

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
  // Each sink's position (checkpoints).
  void visit_sinks(StateVisitor& v) const;
  // Sink gauges (shard 0 calls this with its other gauges).
  void refresh_gauges();

 private:
  struct Window {
    int64_t start = 0;
    int64_t fire_ns = kTimeMax;  // earliest fire time any shard reported
    std::vector<char> rows;
    std::vector<uint32_t> offsets;
  };
  // One sink and where it is in the queue of complete windows.
  struct Slot {
    const SinkConfig* cfg;
    std::unique_ptr<Sink> sink;
    uint64_t window_seq = 0;  // absolute index of the window it is taking
    size_t row = 0;           // next row within it
    // Row bytes of the complete windows it has taken (see waiting_bytes()).
    uint64_t consumed_bytes = 0;
    SinkMetrics* metrics = nullptr;
  };

  Gatherer(EngineShared& shared, Reactor& reactor);

  // SinkHost
  Reactor& reactor() override { return reactor_; }
  const PipelineConfig& config() const override { return sh_.config; }
  void window_written(int64_t fire_ns, int64_t window_end_ns) override;
  void rows_written() override;
  void sink_failed() override;

  Window& window(int64_t start, int64_t fire_ns);
  bool complete_windows();
  SinkWindow view(const Window& w) const;
  // Offers the sink the rows of complete windows it has not taken yet.
  bool feed(Slot& s, int64_t now_ns);
  // Rows of complete windows the sink has not taken, plus what it took and has not written.
  uint64_t waiting_bytes(const Slot& s) const;

  EngineShared& sh_;
  Reactor& reactor_;
  size_t aggregates_;
  size_t states_;  // exported states per row
  Windows window_kind_;  // the end of each window
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
  std::vector<Slot> sinks_;
  uint64_t rows_out_ = 0;
  ShardMetrics& metrics_;  // shard 0's
};

}  // namespace sluice
