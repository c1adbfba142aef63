// The Source seam: how a kind of input (TCP, files, the generator, Kafka)
// plugs into a shard without the shard knowing it.
//
// A Source is one configured source ([[sources]] entry) on one shard. It owns
// its Streams, the units with a watermark of their own (a TCP connection, a
// file, a generator, a Kafka partition), issues its own I/O on the shard's
// reactor, and hands what it reads to the shard through SourceHost: bytes of
// a framed stream (NDJSON lines), or single records (Kafka values). The host
// runs the event path (decode, lateness, routing), the dead-letter output,
// and the rules written once for every source: watermark markers, idleness,
// back-pressure, stop, "inputs done".
//
// Adding a kind of source: one file in io/sources/ that implements Source and
// defines a SourceKind, plus its line in io/sources/sources.cc.
//
// Threads: a Source and its Streams are created, driven and destroyed by the
// shard that runs them; nothing here is shared with other shards (a TCP
// source hands accepted connections to other shards through its host).
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/config_kinds.h"
#include "core/config_model.h"
#include "core/function_ref.h"
#include "core/memory_budget.h"
#include "core/reactor.h"
#include "io/shard_metrics.h"
#include "operators/dead_letter.h"
#include "operators/event.h"
#include "operators/framing.h"
#include "operators/watermark.h"

namespace sluice {

class Source;

// One stream of events with its own watermark. The host reads and writes the
// generic state (watermark, activity, readiness); the source its own.
struct Stream {
  Stream(Source& owner, uint32_t source_index, int64_t delay_ns, int64_t floor_ns)
      : source(source_index), wm(delay_ns, floor_ns), owner(&owner) {}
  virtual ~Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Where the event being delivered comes from, for its dead letter
  // ("host:port", "path:line", "topic/partition@offset"), written into out
  // (at most cap bytes); empty when there is nothing to say.
  virtual std::string_view origin(char* out, size_t cap) const {
    (void)out;
    (void)cap;
    return {};
  }

  uint32_t source;  // index into config.sources
  SourceWatermark wm;
  Source* owner;
  int64_t last_active_ns = 0;  // monotonic time the last event arrived
  bool idle = false;
  bool done = false;      // finished: no longer holds the watermark back
  bool in_ready = false;  // in the host's ready list
  bool stalled = false;   // refused by back-pressure on the last attempt
};

// A stream of NDJSON bytes, cut into lines by its framer.
struct FramedStream : Stream {
  FramedStream(Source& owner, uint32_t source_index, uint32_t line_bytes_max, int64_t delay_ns,
               int64_t floor_ns, MemoryBudget* budget = nullptr)
      : Stream(owner, source_index, delay_ns, floor_ns), framer(line_bytes_max, budget) {}
  LineFramer framer;
};

// Received buffers a shard's TCP connections share: the provided-buffer ring
// (the kernel picks a buffer per receive) and, per buffer, its length, its
// receive time and the next buffer queued on the same connection.
struct ReceiveBuffers {
  BufferRing ring;
  std::vector<int32_t> next;
  std::vector<uint32_t> len;
  std::vector<int64_t> recv_ns;
};

// A position a source can be resumed from, per stream (checkpoints record
// these): a file's byte offset of the next line and its line number, a
// generator's events produced, a Kafka partition's next offset.
struct StreamPosition {
  std::string_view stream;  // "path", "topic/partition", "generator"
  uint64_t offset = 0;      // bytes, events or Kafka offset
  uint64_t line = 0;        // files: number of the next line (1-based); else 0
  int64_t watermark = kTimeMin;
};

// What a source's kind opens at start-up, before any shard runs (so `run`
// reports a port in use before reading anything): a listening socket and the
// address it is bound to. Closed by the engine after the run.
struct SourceResource {
  int fd = -1;
  std::string address;
};

// What a source needs from the shard that runs it. Implemented by the
// dataflow's shard; the calls are on the shard's own thread.
class SourceHost {
 public:
  virtual ~SourceHost() = default;

  virtual Reactor& reactor() = 0;
  virtual uint32_t shard_id() const = 0;
  virtual uint32_t shards() const = 0;
  virtual const PipelineConfig& config() const = 0;
  virtual ShardMetrics& metrics() = 0;
  // Monotonic time of this loop iteration.
  int64_t now() { return reactor().now(); }
  // Wall-clock time the pipeline started (generator start = "now").
  virtual int64_t start_wall_ns() const = 0;
  // The largest watermark any shard has fired windows up to: the floor of a
  // stream that joins (or returns from idle) later.
  virtual int64_t fired_max() const = 0;
  virtual bool stopping() const = 0;
  // The stop was caused by a failure (exit status already non-zero): no
  // grace for draining.
  virtual bool stop_is_failure() const = 0;
  // The shard that reads a source placed on one shard (a file not split, a
  // generator): the engine spreads them over shards.
  virtual uint32_t placed_shard(uint32_t source_index) const = 0;

  // The event path. Framed bytes of s received at recv_ns (monotonic): its
  // lines are decoded and routed; returns the bytes consumed (fewer than len
  // under back-pressure: offer the rest again later).
  // REQUIRES: data[len .. len + kLinePadding) is readable.
  virtual size_t feed(FramedStream& s, const char* data, size_t len, int64_t recv_ns) = 0;
  // End of s's bytes: its unterminated line is delivered (deliver_partial,
  // files) or dropped and counted. False: refused for now (back-pressure).
  virtual bool finish(FramedStream& s, bool deliver_partial) = 0;
  // One record's value (Kafka) with its metadata. False: refused for now.
  // Call between begin_chunk() and end_chunk().
  virtual bool on_record(Stream& s, std::string_view value, const RecordMeta* meta) = 0;
  // The records that follow were received at recv_ns; end_chunk() after them.
  virtual void begin_chunk(int64_t recv_ns) = 0;
  virtual void end_chunk() = 0;
  // A dead letter about s (or about no stream). False: the dead-letter
  // output is full; offer it again later.
  virtual bool dead_letter(Stream* s, DeadLetterReason reason, std::string_view detail,
                           std::string_view raw, bool truncated = false, uint64_t raw_bytes = 0) = 0;
  // A line or record read that is not an event (counted per source).
  virtual void count_line(Stream& s) = 0;
  virtual void count_bytes(Stream& s, uint64_t n) = 0;

  // s has input (or an end) to process: its source's process(s) is called
  // on a coming iteration.
  virtual void mark_ready(Stream& s) = 0;
  // A stream going away: its watermark stays counted among the retired ones
  // (so the pipeline watermark does not depend on when it ended).
  virtual void retire(Stream& s) = 0;
  // The shard's TCP receive buffers (created at start-up).
  virtual ReceiveBuffers& receive_buffers() = 0;
  // What the source's kind opened at start-up (SourceKind::prepare).
  virtual const SourceResource& resource(uint32_t source_index) const = 0;
  // The budget of every TCP connection's line buffer together.
  virtual MemoryBudget* connection_buffers() = 0;
  // Hands an accepted connection of source `source_index` to shard `shard`,
  // which adopts it (Source::adopt). False: its queue is full.
  virtual bool hand_off(uint32_t shard, uint32_t source_index, int fd) = 0;
  // The source failed (a file read error, no partitions; logged by the
  // caller): the run will exit with status 1.
  virtual void fail() = 0;
  // Asks every shard to drain and stop (a source that cannot go on at all).
  virtual void request_stop() = 0;
};

// One configured source on one shard.
class Source {
 public:
  virtual ~Source() = default;

  // On the shard's thread, once the loop starts: arm accepts, issue the
  // first reads, connect.
  virtual void start() = 0;
  // Processes s, which the host found ready. Returns true on progress. The
  // source marks s ready again (host.mark_ready) if it is stalled. s may be
  // destroyed here (a connection closed): the host does not touch it after.
  virtual bool process(Stream& s) = 0;
  // Work not tied to one ready stream (Kafka: decode buffered responses,
  // send due requests; TCP: re-arm receives once buffers are back, time out
  // connections). Called every iteration. True on progress.
  virtual bool poll() { return false; }
  // Stop requested: read no more (a TCP source first drains what its peers
  // already sent, up to stop_grace).
  virtual void stop() = 0;
  // Every stream finished and nothing more will come (on this shard).
  virtual bool done() const = 0;
  // Calls f(stream, backlogged) for every stream that holds a watermark
  // (backlogged: it has input waiting for room, which is not idleness).
  virtual void for_each_stream(FunctionRef<void(Stream&, bool backlogged)> f) = 0;
  // The source cannot vouch for its streams yet (Kafka before metadata):
  // the pipeline watermark must wait.
  virtual bool holds_back() const { return false; }
  // The sinks are behind: deliver nothing (Kafka also stops fetching once
  // its buffers are full). Ready streams are not processed meanwhile either.
  virtual void set_paused(bool paused) { (void)paused; }
  // The earliest monotonic time this source needs to run again (a retry, a
  // timeout), or kTimeMax. Idle timeouts of its streams are the host's.
  virtual int64_t next_deadline() const { return kTimeMax; }
  // A connection accepted by shard 0's listener for this source (TCP only).
  virtual void adopt(int fd) {
    (void)fd;
  }
  // Where each stream would resume from (see StreamPosition).
  virtual void positions(FunctionRef<void(const StreamPosition&)> f) const { (void)f; }
  // At exit: what the log should say (Kafka: each partition's next offset).
  virtual void log_at_exit() const {}
};

// A kind of source, registered by name (io/sources/sources.cc).
struct SourceKind {
  // Its part of the config: its name (`type = "..."`), its own keys and how to read them.
  SourceConfigKind config;
  SourceType type() const { return SourceType{config.name}; }
  // Start-up, on the main thread (may be null): opens or checks what the
  // source needs (a TCP listener; that input files are readable).
  std::expected<SourceResource, std::string> (*prepare)(const SourceConfig& config);
  // The source on this shard, or nullptr when this shard runs none of it
  // (a file read by another shard); or a start-up error.
  std::expected<std::unique_ptr<Source>, std::string> (*make)(SourceHost& host, uint32_t source_index);
  // Bytes it holds on shard `shard` of `shards` whatever the data (file read
  // buffers, Kafka response buffers), for the fixed-memory estimate.
  uint64_t (*fixed_bytes)(const SourceConfig& config, uint32_t shard, uint32_t shards,
                          uint32_t placed_shard);
  // What `sluice check` says about one ("path +2 more", "topic t via b:9092").
  std::string (*describe)(const SourceConfig& config);
  // The input ends by itself (a file, a generator with a count, Kafka with
  // stop = "end"): once every source is finite and done, the pipeline ends.
  bool (*finite)(const SourceConfig& config);
  // Whether the engine places it on one shard (spread round-robin over
  // shards), rather than on every shard.
  bool placed;
};

// The kind registered for a source type, or nullptr.
const SourceKind* find_source_kind(SourceType type);
// Every registered kind, built-ins first.
const std::vector<const SourceKind*>& source_kinds();
// Adds a kind (start-up, before engines are built; built-ins are in
// io/sources/sources.cc). A test or a plugin registers its own this way.
void register_source_kind(const SourceKind* kind);

}  // namespace sluice
