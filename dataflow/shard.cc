#include "dataflow/shard.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/cpu.h"
#include "core/log.h"
#include "operators/json_text.h"
#include "dataflow/gatherer.h"
#include "dataflow/metrics_server.h"

namespace sluice {

size_t dead_letter_buffer_bytes(uint32_t line_bytes_max) {
  return std::max<size_t>(1 << 20, 2 * (json_escaped_bytes_max(line_bytes_max) + 4096));
}

void request_stop(EngineShared& shared) {
  shared.control.stop_requested.store(true);
  for (Shard* s : shared.shard_ptrs) s->external_wake();
}

Shard::Shard(EngineShared& shared, uint32_t id)
    : sh_(shared),
      cfg_(shared.config),
      id_(id),
      n_(shared.shards),
      nvals_(shared.config.schema.fields.size()),
      window_kind_(shared.config.window),
      m_(*shared.telemetry.metrics[id]) {}

Shard::~Shard() {
  // First the ring: pending reads (eventfd, signalfd, sockets) point into this object.
  reactor_.close();
  sources_.clear();
  metrics_server_.reset();
}

std::expected<void, std::string> Shard::init() {
  // Start-up allocations name themselves when they fail.
  try {
    return init_steps();
  } catch (const std::bad_alloc&) {
    return std::unexpected(fmt::format("out of memory at start-up while allocating {} ({:.1f} MiB); give the process "
                       "more memory or lower the limits that size it (line_bytes_max, read_bytes, "
                       "buffer_bytes, max_bytes)",
                       init_step_, double(init_step_bytes_) / (1 << 20)));
  }
}

std::expected<void, std::string> Shard::init_steps() {
  auto step = [&](std::string what, uint64_t bytes) {
    init_step_ = std::move(what);
    init_step_bytes_ = bytes;
  };
  if (!pin_current_thread(sh_.cpus[id_])) {
    log_warn("shard {}: could not pin to cpu {}", id_, sh_.cpus[id_]);
  }
  step("the io_uring", 0);
  if (auto ok = reactor_.init(kRingEntries); !ok) return ok;
  step("the receive buffers", uint64_t(kRecvBuffers) * kRecvBufferBytes);
  if (auto ok = recv_.ring.init(ring_, 0, kRecvBuffers, kRecvBufferBytes, kLinePadding); !ok) return ok;
  recv_.next.assign(kRecvBuffers, -1);
  recv_.len.assign(kRecvBuffers, 0);
  recv_.recv_ns.assign(kRecvBuffers, 0);

  uint32_t line_max = limits::line_bytes_max_min;
  for (const SourceConfig& s : cfg_.sources) line_max = std::max(line_max, s.line_bytes_max);
  step("the decoder (simdjson parsers for the longest line)", 16 * uint64_t(line_max));
  decoder_ = std::make_unique<Decoder>(cfg_.schema, line_max, sh_.layout->strings_read());
  future_limit_ns_ = cfg_.schema.future_limit_ns;
  wall_now_ns_ = wall_ns();
  windows_ = std::make_unique<WindowSet>(*sh_.layout);
  exported_ = exported_states(cfg_);
  size_t states_max = 0;
  for (uint32_t a : exported_) states_max += sh_.layout->state_bytes_max(a);
  step("the scratch of exported aggregate states", states_max);
  state_scratch_.resize(states_max);
  // Room for two worst-case dead letters of the longest line (every byte escaped).
  size_t dl_bytes = dead_letter_buffer_bytes(line_max);
  step("the dead-letter buffers", 2 * uint64_t(dl_bytes));
  dead_letter_done_ = Completion::to<&Shard::on_dead_letter_write>(this);
  dl_ = std::make_unique<AsyncWriter>(sh_.resources.dead_letter_fd, dl_bytes, dead_letter_done_.user_data());
  out_.assign(n_, nullptr);
  // Receivers start from initial_marker() (hold everything back); sent_marker_
  // mirrors what each receiver believes, so a marker that says otherwise
  // (for instance "no active source") is sent on the first flush.
  sent_marker_.assign(n_, initial_marker());
  in_marker_.assign(n_, initial_marker());
  inbound_.assign(n_, Inbound{});

  // Each source kind decides whether this shard runs it (a file is read by
  // one shard, a TCP source or a Kafka topic by every shard).
  source_at_.assign(cfg_.sources.size(), nullptr);
  all_finite_ = all_sources_finite(cfg_);
  for (uint32_t i = 0; i < cfg_.sources.size(); ++i) {
    const SourceConfig& sc = cfg_.sources[i];
    const SourceKind* kind = find_source_kind(sc.type);
    SLUICE_ASSERT(kind != nullptr);  // the config loader accepts registered types only
    step(fmt::format("the buffers of source {}", sc.name),
         kind->fixed_bytes(sc, id_, n_, sh_.resources.source_shard[i]));
    auto src = kind->make(*this, i);
    if (!src) return std::unexpected(src.error());
    if (*src == nullptr) continue;  // not run on this shard
    source_at_[i] = src->get();
    sources_.push_back(std::move(*src));
  }
  if (id_ == 0) {
    uint64_t sink_bytes = 0;
    for (const SinkConfig& sc : cfg_.sinks) sink_bytes += 2 * uint64_t(sc.buffer_bytes);
    step("the sink buffers", sink_bytes);
    auto gatherer = Gatherer::make(sh_, reactor_);
    if (!gatherer) return std::unexpected(gatherer.error());
    gatherer_ = std::move(*gatherer);
    signal_done_ = Completion::to<&Shard::on_signal>(this);
  }
  return {};
}

// ---------------------------------------------------------------------------
// Metrics

// Ingest latency is measured per chunk of input (a receive buffer, a file
// read, a generated chunk, a Kafka response), not per event: one clock read
// when the chunk has been processed, weighted by the events it applied here.
// Events for other shards carry the chunk's time in their batch.
void Shard::begin_chunk(int64_t recv_ns) {
  chunk_recv_ns_ = recv_ns;
  chunk_applied_ = 0;
}

void Shard::end_chunk() {
  windows_->flush();
  if (chunk_applied_ > 0) {
    uint64_t latency = uint64_t(std::max<int64_t>(monotonic_ns() - chunk_recv_ns_, 0));
    m_.ingest_latency.record(latency, chunk_applied_);
  }
  chunk_applied_ = 0;
}

void Shard::count_line(Stream& s) {
  m_.lines_in.add();
  m_.sources[s.source]->lines_in.add();
}

void Shard::count_bytes(Stream& s, uint64_t n) {
  m_.bytes_in.add(n);
  m_.sources[s.source]->bytes_in.add(n);
}

void Shard::publish_ring_counters() {
  m_.ring_submissions.add(ring_.submissions() - ring_submissions_seen_);
  m_.ring_completions.add(ring_.completions() - ring_completions_seen_);
  ring_submissions_seen_ = ring_.submissions();
  ring_completions_seen_ = ring_.completions();
}

// Gauges, refreshed at most every kGaugeRefreshNs: they describe state, and a
// scrape a few milliseconds old is as good as a fresh one.
void Shard::refresh_gauges() {
  if (now() - gauges_at_ < kGaugeRefreshNs) return;
  gauges_at_ = now();
  publish_ring_counters();
  windows_->flush();
  m_.open_windows.set(int64_t(windows_->open_windows()));
  m_.window_entries.set(int64_t(windows_->entries()));
  for (uint32_t dst = 0; dst < n_; ++dst) {
    if (dst != id_) m_.channel_depth[dst]->set(int64_t(sh_.exchange.data[id_ * n_ + dst]->depth()));
  }
  // Per source: the lowest watermark of its active streams on this shard.
  source_wm_.assign(cfg_.sources.size(), kTimeMax);
  for (auto& src : sources_) {
    src->for_each_stream([&](Stream& s, bool) {
      if (!s.done && !s.idle) source_wm_[s.source] = std::min(source_wm_[s.source], s.wm.watermark());
    });
  }
  const int64_t wall = wall_ns();
  for (size_t i = 0; i < source_wm_.size(); ++i) {
    int64_t w = source_wm_[i];
    if (w == kTimeMax || w == kTimeMin) continue;  // no active stream, or none has events yet
    m_.sources[i]->watermark.set(w);
    m_.sources[i]->watermark_lag.set(wall - w);
  }
  if (gatherer_) gatherer_->refresh_gauges();
}

// ---------------------------------------------------------------------------
// Waking

void Shard::notify(uint32_t dst) { reactor_.wake(sh_.shard_ptrs[dst]->reactor_); }

bool Shard::inbound_pending() const {
  for (uint32_t s = 0; s < n_; ++s) {
    if (s != id_ && !sh_.exchange.data[s * n_ + id_]->empty()) return true;
  }
  if (id_ == 0) {
    for (uint32_t s = 1; s < n_; ++s) {
      if (!sh_.exchange.results[s]->empty()) return true;
    }
  }
  if (sh_.exchange.accepted[id_]->size_approx() > 0) return true;
  if (sh_.control.stop_requested.load(std::memory_order_relaxed) && !stopping_) return true;
  if (sh_.control.exit_now.load(std::memory_order_relaxed)) return true;
  return false;
}

// ---------------------------------------------------------------------------
// The loop

void Shard::run() {
  // Standing reads: the wake eventfd on every shard, the signalfd on shard 0.
  reactor_.start();
  reactor_.update_now();
  if (id_ == 0) {
    if (sh_.resources.signal_fd >= 0) arm_signal();
    if (sh_.resources.metrics_fd >= 0) {
      metrics_server_ = std::make_unique<MetricsServer>(sh_, ring_);
      metrics_server_->start(now());
    }
  }
  for (auto& src : sources_) src->start();
  update_inputs_done();

  // A failed allocation (the window state outgrew the memory: a limit of
  // the machine, a cgroup or ulimit -v) ends the run with a clear error
  // rather than std::terminate. Nothing throws on the per-event path
  // otherwise, and a try block costs nothing until something does.
  try {
    loop();
  } catch (const std::bad_alloc&) {
    out_of_memory();
  }
  for (auto& src : sources_) src->log_at_exit();
  publish_ring_counters();
}

void Shard::out_of_memory() {
  const size_t held = windows_ ? windows_->memory_bytes() : 0;
  char text[512];
  int n = std::snprintf(text, sizeof text,
                        "sluice error: shard %u: out of memory: its window state holds %zu entries in "
                        "%zu open windows (%.1f MiB of tables); the state grows with distinct keys x "
                        "open windows: use fewer keys or shorter windows / watermark_delay, or give "
                        "the process more memory (ulimit -v, cgroup memory.max); exiting with status 1\n",
                        id_, windows_ ? windows_->entries_held() : size_t(0),
                        windows_ ? windows_->open_windows() : size_t(0), double(held) / (1 << 20));
  // No allocation from here: write(2) the message and leave.
  if (n > 0) (void)!::write(STDERR_FILENO, text, size_t(std::min<int>(n, int(sizeof text) - 1)));
  _exit(1);
}

void Shard::loop() {
  bool busy = true;
  for (;;) {
    if (!busy) reactor_.wake_at(next_deadline());
    reactor_.step(busy, [&] { return inbound_pending(); }, kTickNs);
    if (future_limit_ns_ > 0) wall_now_ns_ = wall_ns();

    if (sh_.control.stop_requested.load(std::memory_order_relaxed) && !stopping_) begin_stop();
    if (stop_deadline_ != 0 && now() >= stop_deadline_) stop_timed_out();

    busy = false;
    paused_ = sh_.control.outputs_backlogged.load(std::memory_order_relaxed);
    busy |= drain_inbound();
    busy |= adopt_connections();
    busy |= process_ready();
    recv_.ring.publish();  // receive buffers framed above go back to the kernel
    for (auto& src : sources_) {
      src->set_paused(paused_);
      busy |= src->poll();
    }
    if (metrics_server_) metrics_server_->tick(now());
    update_inputs_done();
    busy |= flush_outbound();
    busy |= fire_windows();
    if (gatherer_) {
      busy |= gatherer_->step(now());
      const bool backlogged = gatherer_->update_backlog();
      if (backlogged != sh_.control.outputs_backlogged.load(std::memory_order_relaxed)) {
        sh_.control.outputs_backlogged.store(backlogged, std::memory_order_relaxed);
        if (backlogged) {
          m_.output_pauses.add();
          log_debug("sinks behind (more than pending_bytes_max waiting): sources paused");
        } else {
          for (Shard* s : sh_.shard_ptrs) {
            if (s != this) s->external_wake();
          }
          busy = true;
        }
      }
      if (gatherer_->done() && !sh_.control.exit_now.load()) {
        sh_.control.exit_now.store(true);
        for (Shard* s : sh_.shard_ptrs) {
          if (s != this) s->external_wake();
        }
      }
    }
    dl_->start(ring_);
    refresh_gauges();
    if (sh_.control.exit_now.load(std::memory_order_relaxed) && dl_->idle()) break;
  }
}

int64_t Shard::next_deadline() {
  int64_t t = kTimeMax;
  if (stop_deadline_ != 0) t = std::min(t, stop_deadline_);
  if (metrics_server_) t = std::min(t, metrics_server_->next_deadline());
  if (gatherer_) t = std::min(t, gatherer_->next_deadline());
  const int64_t idle_ns = cfg_.window.idle_timeout_ns;
  for (auto& src : sources_) {
    t = std::min(t, src->next_deadline());
    if (idle_ns > 0) {
      src->for_each_stream([&](Stream& s, bool) {
        if (!s.done && !s.idle) t = std::min(t, s.last_active_ns + idle_ns);
      });
    }
  }
  return t;
}

void Shard::arm_signal() {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_read(sqe, sh_.resources.signal_fd, signal_buf_, sizeof signal_buf_, 0);
  io_uring_sqe_set_data64(sqe, signal_done_.user_data());
}

void Shard::on_signal(const io_uring_cqe& cqe) {
  if (cqe.res <= 0) return;
  if (signal_seen_) {
    log_warn("second signal: exiting at once, without flushing");
    _exit(130);
  }
  signal_seen_ = true;
  log_info("signal received: draining and flushing (send it again to exit at once)");
  sluice::request_stop(sh_);
  arm_signal();
}

void Shard::on_dead_letter_write(const io_uring_cqe& cqe) {
  dl_->on_complete(ring_, cqe.res);
  if (dl_->error() != 0 && !dl_failed_) dead_letter_output_failed();
}

void Shard::begin_stop() {
  stopping_ = true;
  if (id_ == 0 && cfg_.stop_timeout_ns > 0) stop_deadline_ = now() + cfg_.stop_timeout_ns;
  for (auto& src : sources_) src->stop();
}

// The drain after a stop has taken longer than stop_timeout (an output that
// does not take bytes, a peer that never lets go): say what was still
// pending and leave, rather than hang.
void Shard::stop_timed_out() {
  std::string pending = gatherer_ ? gatherer_->describe_pending() : std::string();
  log_error("stop_timeout ({} ms) passed before the pipeline drained{}{}; exiting with status 1",
            cfg_.stop_timeout_ns / kNsPerMs, pending.empty() ? "" : ": ", pending);
  _exit(1);
}

void Shard::update_inputs_done() {
  bool done = stopping_ || all_finite_;
  for (auto& src : sources_) done = done && src->done();
  inputs_done_ = done;
}

// ---------------------------------------------------------------------------
// Sources

// Connections shard 0's listeners handed to this shard.
bool Shard::adopt_connections() {
  uint64_t item;
  bool any = false;
  while (sh_.exchange.accepted[id_]->try_dequeue(item)) {
    int fd = int(uint32_t(item));
    uint32_t source = uint32_t(item >> 32);
    if (stopping_ || source_at_[source] == nullptr) {
      ::close(fd);
    } else {
      source_at_[source]->adopt(fd);
    }
    any = true;
  }
  return any;
}

bool Shard::hand_off(uint32_t shard, uint32_t source_index, int fd) {
  if (!sh_.exchange.accepted[shard]->try_enqueue(uint64_t(source_index) << 32 | uint32_t(fd))) return false;
  notify(shard);
  return true;
}

void Shard::retire(Stream& s) { retired_ = std::max(retired_, s.wm.watermark()); }

void Shard::fail() { sh_.control.exit_code.store(1); }

void Shard::request_stop() { sluice::request_stop(sh_); }

int64_t Shard::fired_max() const { return sh_.control.fired_max.load(std::memory_order_acquire); }

bool Shard::stop_is_failure() const { return sh_.control.exit_code.load(std::memory_order_relaxed) != 0; }

// ---------------------------------------------------------------------------
// Ready list

void Shard::mark_ready(Stream& s) {
  if (s.in_ready) return;
  s.in_ready = true;
  ready_.push_back(&s);
}

void Shard::touch(Stream& s) {
  s.last_active_ns = now();
  if (s.idle) {
    // Back from idle: windows may have fired without it meanwhile.
    s.idle = false;
    s.wm.raise_floor(sh_.control.fired_max.load(std::memory_order_acquire));
  }
}

bool Shard::process_ready() {
  // The sinks are behind: no input is read until they catch up (what is
  // ready stays ready). TCP receive buffers then stay queued, the buffer
  // ring runs dry and the kernel's TCP window pushes back on the peers.
  if (paused_) return false;
  bool progress = false;
  ready_next_.clear();
  std::swap(ready_, ready_next_);
  for (Stream* s : ready_next_) {
    s->in_ready = false;
    // The source marks s ready again if it stalled; s may be gone after this.
    progress |= s->owner->process(*s);
  }
  if (!progress) {
    for (Stream* s : ready_) {
      if (s->stalled) m_.backpressure_stalls.add();
    }
  }
  return progress;
}

void Shard::visit_state(StateVisitor& v) {
  windows_->flush();
  std::vector<char> scratch(sh_.layout->serialized_bytes_max());
  windows_->for_each_entry([&](int64_t start, std::string_view key, const Value* acc) {
    const size_t n = sh_.layout->serialize(acc, scratch.data());
    v.window_entry(start, key, std::span<const char>(scratch.data(), n));
  });
  for (size_t i = 0; i < source_at_.size(); ++i) {
    if (source_at_[i] == nullptr) continue;
    source_at_[i]->positions([&](const StreamPosition& p) { v.stream(uint32_t(i), p); });
  }
  v.progress(target_, retired_);
  if (gatherer_) gatherer_->visit_sinks(v);
}

std::vector<std::string> Shard::failures() const {
  std::vector<std::string> out;
  if (dl_failed_) {
    out.push_back(fmt::format("shard {}: dead-letter output failed ({}): {} dead letters not written",
                              id_, std::strerror(dl_->error()), m_.dead_letters_lost.value()));
  }
  if (gatherer_) {
    for (std::string& f : gatherer_->failures()) out.push_back(std::move(f));
  }
  return out;
}

}  // namespace sluice
