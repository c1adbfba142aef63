#include "dataflow/shard.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/cpu.h"
#include "core/log.h"
#include "core/timestamp.h"
#include "io/net.h"
#include "operators/json_text.h"
#include "operators/result_row.h"
#include "dataflow/gatherer.h"
#include "dataflow/kafka_source.h"
#include "dataflow/metrics_server.h"

namespace sluice {

// Why the engine closes a connection (the peer did not).
enum class Shard::ConnClosing : uint8_t { no, stop, read_timeout, evicted, over_budget };

struct Shard::TcpConn : FramedStream {
  TcpConn(uint32_t src, const SourceConfig& sc, int64_t delay, int64_t floor, MemoryBudget* budget)
      : FramedStream(Kind::tcp, src, sc.line_bytes_max, delay, floor, budget) {}
  using Closing = ConnClosing;
  uint32_t slot = 0;
  int fd = -1;
  std::string peer;
  int32_t head = -1;  // first queued receive buffer
  int32_t tail = -1;
  uint32_t head_off = 0;  // bytes of the head buffer already consumed
  bool recv_armed = false;
  bool eof = false;
  bool want_rearm = false;
  Closing closing = Closing::no;
  bool draining = false;     // stopping: reading what the peer already sent (stop_grace)
  int64_t last_line_ns = 0;  // monotonic: connect, or the last complete line
  int64_t last_bytes_ns = 0;  // monotonic: the last bytes received
  IndexedCompletion<Shard> recv_done;  // the multishot receive (index: slot)
};

struct Shard::FileStream : FramedStream {
  FileStream(uint32_t src, const SourceConfig& sc, int64_t delay)
      : FramedStream(Kind::file, src, sc.line_bytes_max, delay, kTimeMin) {}
  struct Buf {
    std::unique_ptr<char[]> data;
    uint32_t len = 0;
    uint32_t off = 0;
    uint64_t file_off = 0;  // where in the file data[0] came from
    int64_t recv_ns = 0;    // when the read completed
    enum class State : uint8_t { free, reading, ready } state = State::free;
    IndexedCompletion<Shard> read_done;  // index: stream index << 1 | buffer
  };
  uint32_t index = 0;  // in files_
  const std::vector<std::string>* paths = nullptr;
  size_t path_index = 0;
  int fd = -1;
  uint64_t offset = 0;
  uint32_t read_bytes = 0;
  Buf bufs[2];
  int read_next = 0;     // buffer the next read goes into
  int process_next = 0;  // buffer to process next (reads complete in order)
  bool path_eof = false;
  bool failed = false;
  // split = true: this stream reads the lines that START in [range_begin,
  // range_end) of each file (range `range` of `ranges`). Bytes before the
  // first line start are skipped; the line holding byte range_end - 1 is
  // read to its end.
  uint32_t range = 0;
  uint32_t ranges = 1;
  uint64_t range_begin = 0;
  uint64_t range_end = UINT64_MAX;
  bool skipping = false;  // still before the first line of the range
  bool range_done = false;  // the last line of the range has been read
  bool open_path(size_t index, std::string& error);
};

// Opens paths[index] and positions the stream at its range.
bool Shard::FileStream::open_path(size_t i, std::string& error) {
  if (fd >= 0) ::close(fd);
  path_index = i;
  fd = ::open((*paths)[i].c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open " + (*paths)[i] + ": " + std::strerror(errno);
    return false;
  }
  path_eof = false;
  range_done = false;
  offset = 0;
  skipping = false;
  range_begin = 0;
  range_end = UINT64_MAX;
  if (ranges > 1) {
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      error = "cannot stat " + (*paths)[i] + ": " + std::strerror(errno);
      return false;
    }
    uint64_t size = uint64_t(st.st_size);
    range_begin = size * range / ranges;
    range_end = size * (range + 1) / ranges;
    if (range_begin >= range_end) {
      path_eof = true;  // nothing starts in an empty range
    } else if (range_begin > 0) {
      // The line holding byte range_begin - 1 belongs to the previous range;
      // ours start after its newline (at range_begin itself if that byte is one).
      offset = range_begin - 1;
      skipping = true;
    }
  }
  return true;
}

struct Shard::GenStream : FramedStream {
  GenStream(uint32_t src, const SourceConfig& sc, int64_t delay, TimeFormat tf, int64_t start)
      : FramedStream(Kind::generator, src, sc.line_bytes_max, delay, kTimeMin),
        gen(sc.generator, tf, start) {}
  SalesGenerator gen;
  std::unique_ptr<char[]> buf;
  size_t len = 0;
  size_t off = 0;
  int64_t made_ns = 0;  // when buf was generated (its "receive" time)
  int64_t start_mono = 0;
  uint64_t rate = 0;
};

size_t dead_letter_buffer_bytes(uint32_t line_bytes_max) {
  return std::max<size_t>(1 << 20, 2 * (json_escaped_bytes_max(line_bytes_max) + 4096));
}

void request_stop(EngineShared& shared) {
  shared.stop_requested.store(true);
  for (Shard* s : shared.shard_ptrs) s->external_wake();
}

namespace {
// Back-off before re-arming accept after an error such as EMFILE.
constexpr int64_t kAcceptRetryNs = 100 * kNsPerMs;
// Stopping: a connection whose peer sent nothing for this long (and whose
// socket holds nothing) has delivered what it had sent before the stop.
constexpr int64_t kDrainQuietNs = 20 * kNsPerMs;

bool same_marker(const Marker& a, const Marker& b) {
  return a.opinion == b.opinion && a.final == b.final && a.retired == b.retired &&
         (!a.opinion || a.watermark == b.watermark);
}
}  // namespace

Shard::Shard(EngineShared& shared, uint32_t id)
    : sh_(shared),
      cfg_(shared.config),
      id_(id),
      n_(shared.shards),
      nvals_(shared.config.schema.fields.size()),
      size_ns_(shared.config.window.size_ns),
      m_(*shared.metrics[id]) {}

Shard::~Shard() {
  // First the ring: pending reads (eventfd, signalfd, sockets) point into this object.
  reactor_.close();
  for (auto& c : conns_) {
    if (c && c->fd >= 0) ::close(c->fd);
  }
  for (auto& f : files_) {
    if (f->fd >= 0) ::close(f->fd);
  }
  metrics_server_.reset();
}

std::string Shard::init() {
  // Start-up allocations name themselves when they fail.
  try {
    return init_steps();
  } catch (const std::bad_alloc&) {
    return fmt::format("out of memory at start-up while allocating {} ({:.1f} MiB); give the process "
                       "more memory or lower the limits that size it (line_bytes_max, read_bytes, "
                       "buffer_bytes, max_bytes)",
                       init_step_, double(init_step_bytes_) / (1 << 20));
  }
}

std::string Shard::init_steps() {
  auto step = [&](const char* what, uint64_t bytes) {
    init_step_ = what;
    init_step_bytes_ = bytes;
  };
  if (!pin_current_thread(sh_.cpus[id_])) {
    log_warn("shard {}: could not pin to cpu {}", id_, sh_.cpus[id_]);
  }
  step("the io_uring", 0);
  if (std::string err = reactor_.init(kRingEntries); !err.empty()) return err;
  step("the receive buffers", uint64_t(kRecvBuffers) * kRecvBufferBytes);
  if (std::string err = bufs_.init(ring_, 0, kRecvBuffers, kRecvBufferBytes, kLinePadding); !err.empty()) {
    return err;
  }
  buf_next_.assign(kRecvBuffers, -1);
  buf_len_.assign(kRecvBuffers, 0);
  buf_recv_ns_.assign(kRecvBuffers, 0);

  uint32_t line_max = limits::line_bytes_max_min;
  for (const SourceConfig& s : cfg_.sources) line_max = std::max(line_max, s.line_bytes_max);
  step("the decoder (simdjson parsers for the longest line)", 16 * uint64_t(line_max));
  decoder_ = std::make_unique<Decoder>(cfg_.schema, line_max);
  future_limit_ns_ = cfg_.schema.future_limit_ns;
  wall_now_ns_ = wall_ns();
  windows_ = std::make_unique<WindowSet>(*sh_.layout, size_ns_);
  // Room for two worst-case dead letters of the longest line (every byte escaped).
  size_t dl_bytes = dead_letter_buffer_bytes(line_max);
  step("the dead-letter buffers", 2 * uint64_t(dl_bytes));
  dead_letter_done_ = Completion::to<&Shard::on_dead_letter_write>(this);
  dl_ = std::make_unique<AsyncWriter>(sh_.dead_letter_fd, dl_bytes, dead_letter_done_.user_data());
  out_.assign(n_, nullptr);
  // Receivers start from initial_marker() (hold everything back); sent_marker_
  // mirrors what each receiver believes, so a marker that says otherwise
  // (for instance "no active source") is sent on the first flush.
  sent_marker_.assign(n_, initial_marker());
  in_marker_.assign(n_, initial_marker());
  inbound_.assign(n_, Inbound{});

  const int64_t delay = cfg_.window.watermark_delay_ns;
  for (uint32_t i = 0; i < cfg_.sources.size(); ++i) {
    const SourceConfig& sc = cfg_.sources[i];
    // Every shard reads the Kafka partitions it owns.
    if (sc.type == SourceType::kafka) kafka_.push_back(std::make_unique<KafkaSource>(*this, i));
    bool everywhere = sc.type == SourceType::file && sc.file.split;  // a range per shard
    if (sc.type == SourceType::tcp || sc.type == SourceType::kafka ||
        (sh_.source_shard[i] != id_ && !everywhere)) {
      continue;
    }
    if (sc.type == SourceType::file) {
      step("a file source's read buffers", 2 * uint64_t(sc.file.read_bytes));
      auto f = std::make_unique<FileStream>(i, sc, delay);
      f->index = uint32_t(files_.size());
      f->paths = &sc.file.paths;
      f->read_bytes = sc.file.read_bytes;
      if (sc.file.split) {
        f->range = id_;
        f->ranges = n_;
      }
      for (int bi = 0; bi < 2; ++bi) {
        auto& b = f->bufs[bi];
        b.read_done.bind<&Shard::on_file_read_done>(this, f->index << 1 | uint32_t(bi));
        b.data.reset(new char[size_t(f->read_bytes) + kLinePadding]);
        std::memset(b.data.get() + f->read_bytes, 0, kLinePadding);
      }
      if (std::string error; !f->open_path(0, error)) return "source " + sc.name + ": " + error;
      files_.push_back(std::move(f));
    } else {
      int64_t start = sc.generator.start_now ? sh_.start_wall_ns : sc.generator.start_ns;
      auto g = std::make_unique<GenStream>(i, sc, delay, cfg_.schema.time_format, start);
      g->buf.reset(new char[kGeneratorChunkBytes + kLinePadding]);
      std::memset(g->buf.get(), 0, kGeneratorChunkBytes + kLinePadding);
      g->rate = sc.generator.rate;
      gens_.push_back(std::move(g));
    }
  }
  if (id_ == 0) {
    uint64_t sink_bytes = 0;
    for (const SinkConfig& sc : cfg_.sinks) sink_bytes += 2 * uint64_t(sc.buffer_bytes);
    step("the sink buffers", sink_bytes);
    gatherer_ = std::make_unique<Gatherer>(sh_, ring_);
    listener_open_.assign(cfg_.sources.size(), false);
    accept_rearm_.assign(cfg_.sources.size(), false);
    accept_done_ = std::vector<IndexedCompletion<Shard>>(cfg_.sources.size());
    for (uint32_t i = 0; i < cfg_.sources.size(); ++i) accept_done_[i].bind<&Shard::on_accept_done>(this, i);
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
    if (dst != id_) m_.channel_depth[dst]->set(int64_t(sh_.data[id_ * n_ + dst]->depth()));
  }
  // Per source: the lowest watermark of its active streams on this shard.
  source_wm_.assign(cfg_.sources.size(), kTimeMax);
  auto note = [&](Stream& s) {
    if (!s.done && !s.idle) source_wm_[s.source] = std::min(source_wm_[s.source], s.wm.watermark());
  };
  for (auto& c : conns_) {
    if (c) note(*c);
  }
  for (auto& f : files_) note(*f);
  for (auto& g : gens_) note(*g);
  for (auto& k : kafka_) k->for_each_stream(note);
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
    if (s != id_ && !sh_.data[s * n_ + id_]->empty()) return true;
  }
  if (id_ == 0) {
    for (uint32_t s = 1; s < n_; ++s) {
      if (!sh_.results[s]->empty()) return true;
    }
  }
  if (sh_.accepted[id_]->size_approx() > 0) return true;
  if (sh_.stop_requested.load(std::memory_order_relaxed) && !stopping_) return true;
  if (sh_.exit_now.load(std::memory_order_relaxed)) return true;
  return false;
}

// ---------------------------------------------------------------------------
// The loop

void Shard::run() {
  // Standing reads: the wake eventfd on every shard, the signalfd on shard 0.
  reactor_.start();
  reactor_.update_now();
  if (id_ == 0) {
    if (sh_.signal_fd >= 0) arm_signal();
    for (uint32_t i = 0; i < cfg_.sources.size(); ++i) {
      if (sh_.listen_fds[i] >= 0) {
        listener_open_[i] = true;
        arm_accept(i);
      }
    }
    if (sh_.metrics_fd >= 0) {
      metrics_server_ = std::make_unique<MetricsServer>(sh_, ring_);
      metrics_server_->start(monotonic_ns());
    }
  }
  for (auto& f : files_) {
    f->last_active_ns = now();
    issue_read(*f);
    mark_ready(*f);  // an empty range issues no read: it must still be seen to finish
  }
  for (auto& g : gens_) {
    g->last_active_ns = now();
    g->start_mono = now();
    mark_ready(*g);
  }
  for (auto& k : kafka_) k->start();
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
  for (auto& k : kafka_) k->log_offsets();
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

    if (sh_.stop_requested.load(std::memory_order_relaxed) && !stopping_) begin_stop();
    if (stop_deadline_ != 0 && now() >= stop_deadline_) stop_timed_out();
    if (accept_retry_at_ != 0 && now() >= accept_retry_at_) {
      accept_retry_at_ = 0;
      for (uint32_t i = 0; i < accept_rearm_.size(); ++i) {
        if (accept_rearm_[i] && listener_open_[i] && !stopping_) arm_accept(i);
        accept_rearm_[i] = false;
      }
    }

    busy = false;
    paused_ = sh_.outputs_backlogged.load(std::memory_order_relaxed);
    busy |= drain_inbound();
    busy |= adopt_connections();
    busy |= process_ready();
    for (auto& k : kafka_) {
      k->set_paused(paused_);
      busy |= k->process();
    }
    bufs_.publish();
    for (TcpConn* c : rearm_) {
      if (c->want_rearm && !c->eof && (!stopping_ || c->draining) && bufs_.available() > 0) arm_recv(*c);
    }
    if (now() >= read_timeout_at_) check_read_timeouts();
    if (metrics_server_) metrics_server_->tick(now());
    if (drain_deadline_ != 0) drain_connections();
    std::erase_if(rearm_, [](TcpConn* c) { return !c->want_rearm || c->eof; });
    update_inputs_done();
    busy |= flush_outbound();
    busy |= fire_windows();
    if (gatherer_) {
      busy |= gatherer_->step(now());
      const bool backlogged = gatherer_->update_backlog();
      if (backlogged != sh_.outputs_backlogged.load(std::memory_order_relaxed)) {
        sh_.outputs_backlogged.store(backlogged, std::memory_order_relaxed);
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
      if (gatherer_->done() && !sh_.exit_now.load()) {
        sh_.exit_now.store(true);
        for (Shard* s : sh_.shard_ptrs) {
          if (s != this) s->external_wake();
        }
      }
    }
    dl_->start(ring_);
    refresh_gauges();
    if (sh_.exit_now.load(std::memory_order_relaxed) && dl_->idle()) break;
  }
}

int64_t Shard::next_deadline() {
  int64_t t = kTimeMax;
  if (stop_deadline_ != 0) t = std::min(t, stop_deadline_);
  if (drain_deadline_ != 0) t = std::min(t, drain_deadline_);
  t = std::min(t, read_timeout_at_);
  if (metrics_server_) t = std::min(t, metrics_server_->next_deadline());
  if (gatherer_) t = std::min(t, gatherer_->next_deadline());
  if (cfg_.window.idle_timeout_ns > 0) {
    auto idle_at = [&](const Stream& s) {
      if (!s.done && !s.idle) t = std::min(t, s.last_active_ns + cfg_.window.idle_timeout_ns);
    };
    for (auto& c : conns_) {
      if (c) idle_at(*c);
    }
    for (auto& f : files_) idle_at(*f);
    for (auto& g : gens_) idle_at(*g);
  }
  if (accept_retry_at_ != 0) t = std::min(t, accept_retry_at_);
  for (auto& k : kafka_) {
    t = std::min(t, k->next_deadline());
    if (cfg_.window.idle_timeout_ns > 0) {
      k->for_each_stream([&](Stream& s) {
        if (!s.done && !s.idle) t = std::min(t, s.last_active_ns + cfg_.window.idle_timeout_ns);
      });
    }
  }
  return t;
}

void Shard::arm_signal() {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_read(sqe, sh_.signal_fd, signal_buf_, sizeof signal_buf_, 0);
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
  request_stop(sh_);
  arm_signal();
}

void Shard::on_accept_done(uint32_t source, const io_uring_cqe& cqe) { on_accept(source, cqe); }

void Shard::on_recv_done(uint32_t slot, const io_uring_cqe& cqe) { on_recv(*conns_[slot], cqe); }

void Shard::on_file_read_done(uint32_t id, const io_uring_cqe& cqe) {
  on_file_read(*files_[id >> 1], int(id & 1), cqe.res);
}

void Shard::on_dead_letter_write(const io_uring_cqe& cqe) {
  dl_->on_complete(ring_, cqe.res);
  if (dl_->error() != 0 && !dl_failed_) dead_letter_output_failed();
}

void Shard::begin_stop() {
  stopping_ = true;
  if (id_ == 0 && cfg_.stop_timeout_ns > 0) stop_deadline_ = now() + cfg_.stop_timeout_ns;
  if (id_ == 0) {
    for (uint32_t i = 0; i < listener_open_.size(); ++i) {
      // Wakes the multishot accept with an error; it is not re-armed.
      if (listener_open_[i]) ::shutdown(sh_.listen_fds[i], SHUT_RDWR);
    }
  }
  // Connections first read what their peers already sent, for up to
  // stop_grace, unless the grace is 0 (or the stop is a failure's).
  int64_t grace = 0;
  for (auto& c : conns_) {
    if (!c || c->eof || c->closing != TcpConn::Closing::no) continue;
    const int64_t g = cfg_.sources[c->source].tcp.stop_grace_ns;
    if (g > 0 && sh_.exit_code.load(std::memory_order_relaxed) == 0) {
      c->draining = true;
      c->closing = TcpConn::Closing::stop;
      grace = std::max(grace, g);
      if (c->want_rearm) rearm_.push_back(c.get());
    } else {
      close_by_engine(*c, TcpConn::Closing::stop);
    }
  }
  if (grace > 0) drain_deadline_ = now() + grace;
  for (auto& g : gens_) mark_ready(*g);
  for (auto& f : files_) mark_ready(*f);
  for (auto& k : kafka_) k->stop();
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
  bool all_finite = sh_.config.all_sources_finite();
  bool done = stopping_ || all_finite;
  for (auto& c : conns_) {
    if (c) done = false;
  }
  for (auto& f : files_) done &= f->done;
  for (auto& g : gens_) done &= g->done;
  for (auto& k : kafka_) done &= k->done();
  if (id_ == 0) {
    for (bool open : listener_open_) done &= !open;
  }
  inputs_done_ = done;
}

// ---------------------------------------------------------------------------
// TCP

void Shard::arm_accept(uint32_t source) {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_multishot_accept(sqe, sh_.listen_fds[source], nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, accept_done_[source].user_data());
}

void Shard::on_accept(uint32_t source, const io_uring_cqe& cqe) {
  if (cqe.res >= 0) {
    int fd = cqe.res;
    if (stopping_) {
      ::close(fd);
    } else {
      uint32_t target = accept_rr_++ % n_;
      if (target == id_) {
        open_tcp(source, fd);
      } else if (sh_.accepted[target]->try_enqueue(uint64_t(source) << 32 | uint32_t(fd))) {
        notify(target);
      } else {
        ::close(fd);
        m_.connections_refused.add();
        uint64_t suppressed = 0;
        if (refuse_log_.allow(now(), suppressed)) {
          log_warn("source {}: connection hand-off queue to shard {} full; connection closed{}",
                   cfg_.sources[source].name, target,
                   suppressed > 0 ? fmt::format(" ({} more refused since the last such message)", suppressed)
                                  : "");
        }
      }
    }
  }
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    if (stopping_ || cqe.res == -EINVAL || cqe.res == -ECANCELED) {
      if (listener_open_[source]) {
        listener_open_[source] = false;
        ::close(sh_.listen_fds[source]);
      }
    } else if (cqe.res < 0) {
      log_warn("source {}: accept: {}; retrying in {} ms", cfg_.sources[source].name,
               std::strerror(-cqe.res), kAcceptRetryNs / kNsPerMs);
      accept_rearm_[source] = true;
      accept_retry_at_ = now() + kAcceptRetryNs;
    } else {
      arm_accept(source);
    }
  }
}

bool Shard::adopt_connections() {
  uint64_t item;
  bool any = false;
  while (sh_.accepted[id_]->try_dequeue(item)) {
    int fd = int(uint32_t(item));
    uint32_t source = uint32_t(item >> 32);
    if (stopping_) {
      ::close(fd);
    } else {
      open_tcp(source, fd);
    }
    any = true;
  }
  return any;
}

void Shard::open_tcp(uint32_t source, int fd) {
  const SourceConfig& sc = cfg_.sources[source];
  uint32_t live = 0;
  TcpConn* quietest = nullptr;  // the open connection longest without a complete line
  for (auto& c : conns_) {
    if (!c || c->source != source || c->closing != TcpConn::Closing::no || c->eof) continue;
    ++live;
    if (quietest == nullptr || c->last_line_ns < quietest->last_line_ns) quietest = c.get();
  }
  // connections_max is per source; each shard holds its round-robin share.
  // At the limit the quietest connection makes room: idle sockets cannot
  // lock out a sender that arrives later.
  if (live * n_ >= sc.tcp.connections_max && quietest != nullptr) {
    m_.connections_evicted.add();
    uint64_t suppressed = 0;
    if (evict_log_.allow(now(), suppressed)) {
      log_warn("source {}: connections_max ({}) reached; closed {} (no complete line for {} ms) to "
               "admit a new connection{}",
               sc.name, sc.tcp.connections_max, quietest->peer, (now() - quietest->last_line_ns) / kNsPerMs,
               suppressed > 0 ? fmt::format(" ({} more since the last such message)", suppressed) : "");
    }
    close_by_engine(*quietest, TcpConn::Closing::evicted);
  }
  uint32_t slot;
  if (!free_conn_slots_.empty()) {
    slot = free_conn_slots_.back();
    free_conn_slots_.pop_back();
  } else {
    slot = uint32_t(conns_.size());
    conns_.emplace_back();
  }
  auto c = std::make_unique<TcpConn>(source, sc, cfg_.window.watermark_delay_ns,
                                     sh_.fired_max.load(std::memory_order_acquire),
                                     sh_.connection_buffers.get());
  c->slot = slot;
  c->recv_done.bind<&Shard::on_recv_done>(this, slot);
  c->fd = fd;
  c->last_line_ns = now();
  if (sc.tcp.read_timeout_ns > 0) read_timeout_at_ = std::min(read_timeout_at_, now() + sc.tcp.read_timeout_ns);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  c->peer = getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 ? format_address(ss) : "?";
  c->last_active_ns = now();
  conns_[slot] = std::move(c);
  m_.connections.add();
  log_debug("source {}: connection from {} on shard {}", sc.name, conns_[slot]->peer, id_);
  arm_recv(*conns_[slot]);
}

void Shard::arm_recv(TcpConn& c) {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bufs_.group();
  io_uring_sqe_set_data64(sqe, c.recv_done.user_data());
  c.recv_armed = true;
  c.want_rearm = false;
}

void Shard::on_recv(TcpConn& c, const io_uring_cqe& cqe) {
  const bool closing = c.closing != TcpConn::Closing::no && c.closing != TcpConn::Closing::stop;
  if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER) && closing) {
    // Closed by the engine: what still arrives is not read.
    uint16_t bid = uint16_t(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    bufs_.on_taken();
    bufs_.recycle(bid);
  } else if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
    uint16_t bid = uint16_t(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    bufs_.on_taken();
    buf_len_[bid] = uint32_t(cqe.res);
    buf_recv_ns_[bid] = now();
    buf_next_[bid] = -1;
    if (c.tail >= 0) {
      buf_next_[size_t(c.tail)] = bid;
    } else {
      c.head = bid;
      c.head_off = 0;
    }
    c.tail = bid;
    c.last_bytes_ns = now();
    count_bytes(c, uint64_t(cqe.res));
    input_arrived(c);
  }
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    c.recv_armed = false;
    // While stopping, a draining connection goes on reading (stop_grace).
    const bool reading = !closing && (!stopping_ || c.draining);
    if (cqe.res == -ENOBUFS && reading) {
      c.want_rearm = true;  // re-armed once buffers come back
      rearm_.push_back(&c);
    } else if (cqe.res <= 0 || !reading) {
      if (cqe.res < 0 && cqe.res != -ECONNRESET && cqe.res != -ECANCELED) {
        log_debug("source {}: {}: recv: {}", cfg_.sources[c.source].name, c.peer, std::strerror(-cqe.res));
      }
      c.eof = true;
    } else {
      arm_recv(c);
    }
    mark_ready(c);
  }
}

bool Shard::process_tcp(TcpConn& c) {
  bool progress = false;
  while (c.head >= 0) {
    uint16_t bid = uint16_t(c.head);
    const char* data = bufs_.buffer(bid) + c.head_off;
    size_t len = buf_len_[bid] - c.head_off;
    begin_chunk(buf_recv_ns_[bid]);
    const uint64_t lines_before = c.framer.line_number();
    size_t used = feed(c, data, len);
    end_chunk();
    if (c.framer.line_number() != lines_before) c.last_line_ns = now();
    if (used > 0) progress = true;
    if (used < len && c.framer.out_of_budget()) {
      // The line so far (carried, plus what this buffer holds of it) is lost
      // with the connection: one partial_line dead letter for it.
      const char* rest = data + used;
      const size_t rest_len = len - used;
      const void* nl = std::memchr(rest, '\n', rest_len);
      const uint64_t line_bytes =
          c.framer.pending_bytes() + (nl ? size_t(static_cast<const char*>(nl) - rest) : rest_len);
      std::string_view prefix = c.framer.pending_bytes() > 0
                                    ? c.framer.pending_prefix()
                                    : std::string_view(rest, std::min(rest_len, kTooLongPrefixBytes));
      if (!dead_letter(&c, DeadLetterReason::partial_line,
                       "connection closed: the line would pass connection_buffer_bytes_max", prefix,
                       line_bytes > prefix.size(), line_bytes)) {
        c.head_off += uint32_t(used);
        c.stalled = true;  // the dead-letter output is full: try again later
        return progress;
      }
      m_.partial_line_bytes.add(line_bytes);
      c.framer.reset();
      m_.connections_over_budget.add();
      uint64_t suppressed = 0;
      if (budget_log_.allow(now(), suppressed)) {
        log_warn("source {}: {}: a line of {}+ bytes would pass connection_buffer_bytes_max ({} bytes "
                 "in use by all connections); connection closed{}",
                 cfg_.sources[c.source].name, c.peer, line_bytes, sh_.connection_buffers->used(),
                 suppressed > 0 ? fmt::format(" ({} more since the last such message)", suppressed) : "");
      }
      close_by_engine(c, TcpConn::Closing::over_budget);
      return true;
    }
    if (used < len) {
      c.head_off += uint32_t(used);
      c.stalled = true;
      return progress;
    }
    c.head = buf_next_[bid];
    if (c.head < 0) c.tail = -1;
    c.head_off = 0;
    bufs_.recycle(bid);
  }
  c.stalled = false;
  if (c.eof && !c.recv_armed) {
    uint64_t partial = 0;
    if (c.framer.pending_bytes() > 0) {
      std::string_view prefix = c.framer.pending_prefix();
      bool truncated = c.framer.pending_bytes() > prefix.size();
      const char* detail = "connection closed in the middle of a line";
      switch (c.closing) {
        case TcpConn::Closing::read_timeout:
          detail = "connection closed by read_timeout in the middle of a line";
          break;
        case TcpConn::Closing::evicted:
          detail = "connection closed at connections_max, to admit a new one, in the middle of a line";
          break;
        case TcpConn::Closing::over_budget:
          detail = "connection closed: the line would pass connection_buffer_bytes_max";
          break;
        case TcpConn::Closing::no:
        case TcpConn::Closing::stop:
          break;
      }
      if (!dead_letter(&c, DeadLetterReason::partial_line, detail, prefix, truncated,
                       c.framer.pending_bytes())) {
        c.stalled = true;
        return progress;
      }
    }
    c.framer.finish(false, [](const Line&) { return true; }, partial);
    m_.partial_line_bytes.add(partial);
    close_tcp(c);
    return true;
  }
  return progress;
}

// The engine ends a connection (stop, read_timeout, eviction, budget): no
// more is read from it; what it had queued and not yet framed is dropped
// (except on stop, where the queue is still processed); the pending receive
// completes with end-of-stream and the usual close path follows.
void Shard::close_by_engine(TcpConn& c, TcpConn::Closing why) {
  if (c.closing != TcpConn::Closing::no && c.closing != TcpConn::Closing::stop) return;
  c.closing = why;
  c.draining = false;
  if (why != TcpConn::Closing::stop) {
    while (c.head >= 0) {
      uint16_t bid = uint16_t(c.head);
      c.head = buf_next_[bid];
      bufs_.recycle(bid);
    }
    c.tail = -1;
    c.head_off = 0;
    c.stalled = false;
  }
  if (c.eof) return;
  if (c.recv_armed) {
    ::shutdown(c.fd, SHUT_RDWR);  // the pending receive completes with end-of-stream
  } else {
    c.eof = true;
    c.want_rearm = false;
    mark_ready(c);
  }
}

// Connections past read_timeout without a complete line are closed.
void Shard::check_read_timeouts() {
  read_timeout_at_ = kTimeMax;
  for (auto& c : conns_) {
    if (!c || c->eof || c->closing != TcpConn::Closing::no) continue;
    const int64_t timeout = cfg_.sources[c->source].tcp.read_timeout_ns;
    if (timeout <= 0) continue;
    if (now() - c->last_line_ns >= timeout) {
      m_.connections_timed_out.add();
      log_debug("source {}: {}: no complete line for {} ms (read_timeout); closed",
                cfg_.sources[c->source].name, c->peer, timeout / kNsPerMs);
      close_by_engine(*c, TcpConn::Closing::read_timeout);
    } else {
      read_timeout_at_ = std::min(read_timeout_at_, c->last_line_ns + timeout);
    }
  }
}

// Stopping with stop_grace: each connection goes on reading until what its
// peer had sent is in (the socket's receive queue is empty and every queued
// buffer framed) or its grace is over; then it is shut down.
void Shard::drain_connections() {
  bool any = false;
  for (auto& c : conns_) {
    if (!c || !c->draining) continue;
    // Caught up: nothing queued here or in the socket, and nothing arrived
    // for a moment (bytes a peer wrote may still be on their way from its
    // send buffer).
    int queued = 0;
    const bool caught_up = c->head < 0 && now() - c->last_bytes_ns >= kDrainQuietNs &&
                           ::ioctl(c->fd, SIOCINQ, &queued) == 0 && queued == 0;
    if (caught_up || now() >= drain_deadline_) {
      close_by_engine(*c, TcpConn::Closing::stop);
    } else {
      any = true;
      reactor_.wake_at(std::max(now(), c->last_bytes_ns) + kDrainQuietNs);
    }
  }
  if (!any) drain_deadline_ = 0;
}

void Shard::close_tcp(TcpConn& c) {
  retired_ = std::max(retired_, c.wm.watermark());  // the stream object goes away now
  ::close(c.fd);
  c.fd = -1;
  c.done = true;
  log_debug("source {}: {} closed", cfg_.sources[c.source].name, c.peer);
  uint32_t slot = c.slot;
  std::erase(rearm_, &c);
  conns_[slot].reset();  // callers must not touch c after this
  free_conn_slots_.push_back(slot);
}

// ---------------------------------------------------------------------------
// Files

void Shard::issue_read(FileStream& f) {
  if (f.path_eof || f.range_done || f.failed || stopping_) return;
  FileStream::Buf& b = f.bufs[f.read_next];
  if (b.state != FileStream::Buf::State::free) return;
  // One read in flight per file keeps completions in order.
  if (f.bufs[f.read_next ^ 1].state == FileStream::Buf::State::reading) return;
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_read(sqe, f.fd, b.data.get(), f.read_bytes, f.offset);
  io_uring_sqe_set_data64(sqe, b.read_done.user_data());
  b.state = FileStream::Buf::State::reading;
  b.file_off = f.offset;
}

void Shard::on_file_read(FileStream& f, int buf, int res) {
  FileStream::Buf& b = f.bufs[buf];
  b.state = FileStream::Buf::State::free;
  if (f.range_done) {
    mark_ready(f);  // a read issued before the range's end was found: not ours
    return;
  }
  if (res == -EINTR || res == -EAGAIN) {
    issue_read(f);
    return;
  }
  if (res < 0) {
    log_error("source {}: read {}: {}", cfg_.sources[f.source].name, (*f.paths)[f.path_index],
              std::strerror(-res));
    sh_.exit_code.store(1);
    f.failed = true;
    mark_ready(f);
    return;
  }
  if (res == 0) {
    f.path_eof = true;
    mark_ready(f);
    return;
  }
  b.len = uint32_t(res);
  b.off = 0;
  f.offset += uint64_t(res);
  if (f.skipping) {
    const char* nl = static_cast<const char*>(std::memchr(b.data.get(), '\n', b.len));
    if (nl == nullptr) {
      issue_read(f);  // the previous range's line goes on
      return;
    }
    b.off = uint32_t(nl - b.data.get()) + 1;
    f.skipping = false;
    if (b.file_off + b.off >= f.range_end) {
      // The range lies inside one long line: no line starts in it.
      b.len = b.off;
      f.range_done = true;
    }
  }
  if (f.ranges > 1 && b.file_off + b.len >= f.range_end) {
    // This buffer reaches our end: the range stops after the newline that
    // ends the line holding byte range_end - 1.
    uint64_t from = f.range_end - 1 > b.file_off ? f.range_end - 1 - b.file_off : 0;
    from = std::max<uint64_t>(from, b.off);
    const char* nl = static_cast<const char*>(std::memchr(b.data.get() + from, '\n', b.len - from));
    if (nl != nullptr) {
      b.len = uint32_t(nl - b.data.get()) + 1;
      f.range_done = true;
    }
  }
  b.state = FileStream::Buf::State::ready;
  b.recv_ns = now();
  count_bytes(f, uint64_t(b.len - b.off));
  f.read_next ^= 1;
  input_arrived(f);
  issue_read(f);
}

bool Shard::process_file(FileStream& f) {
  using State = FileStream::Buf::State;
  bool progress = false;
  for (;;) {
    FileStream::Buf& b = f.bufs[f.process_next];
    if (b.state != State::ready) break;
    begin_chunk(b.recv_ns);
    size_t used = feed(f, b.data.get() + b.off, b.len - b.off);
    end_chunk();
    if (used > 0) progress = true;
    if (used < b.len - b.off) {
      b.off += uint32_t(used);
      f.stalled = true;
      return progress;
    }
    b.state = State::free;
    f.process_next ^= 1;
    issue_read(f);
  }
  f.stalled = false;
  bool reading = f.bufs[0].state == State::reading || f.bufs[1].state == State::reading;
  if (reading) return progress;
  if (f.path_eof || f.range_done || f.failed || stopping_) {
    uint64_t partial = 0;
    // A file's last line needs no newline; on stop or failure a partial line is dropped.
    bool deliver = (f.path_eof || f.range_done) && !f.failed;
    if (!f.framer.finish(deliver, [&](const Line& l) { return on_line(f, l); }, partial)) {
      f.stalled = true;
      return progress;
    }
    m_.partial_line_bytes.add(partial);
    if ((f.path_eof || f.range_done) && !f.failed && !stopping_ &&
        f.path_index + 1 < f.paths->size()) {
      std::string error;
      if (!f.open_path(f.path_index + 1, error)) {
        log_error("source {}: {}", cfg_.sources[f.source].name, error);
        sh_.exit_code.store(1);
        f.failed = true;
      }
      f.framer.restart();
      issue_read(f);
      mark_ready(f);
      return true;
    }
    f.done = true;
    return true;
  }
  return progress;
}

// ---------------------------------------------------------------------------
// Generator

bool Shard::process_generator(GenStream& g) {
  bool progress = false;
  if (g.off < g.len) {
    begin_chunk(g.made_ns);
    size_t used = feed(g, g.buf.get() + g.off, g.len - g.off);
    end_chunk();
    g.off += used;
    progress = used > 0;
    if (g.off < g.len) {
      g.stalled = true;
      return progress;
    }
  }
  g.stalled = false;
  if (g.gen.finished() || stopping_) {
    g.done = true;
    return true;
  }
  uint64_t allowed = UINT64_MAX;
  if (g.rate > 0) {
    // Open loop: the schedule says how many events are due by now.
    __int128 due = __int128(now() - g.start_mono) * g.rate / kNsPerS;
    if (uint64_t(due) <= g.gen.produced()) {
      int64_t next = g.start_mono + int64_t(__int128(g.gen.produced() + 1) * kNsPerS / g.rate);
      reactor_.wake_at(next);
      mark_ready(g);  // look again on the next iteration (after the timer)
      return progress;
    }
    allowed = uint64_t(due) - g.gen.produced();
  }
  uint64_t events;
  g.len = g.gen.generate(g.buf.get(), kGeneratorChunkBytes, allowed, events);
  g.off = 0;
  g.made_ns = now();
  count_bytes(g, g.len);
  input_arrived(g);
  return true;
}

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
    s.wm.raise_floor(sh_.fired_max.load(std::memory_order_acquire));
  }
}

// Bytes arrived for s. They do not make it active: only events do (a peer
// trickling bytes that never complete a line must not hold the watermark).
void Shard::input_arrived(Stream& s) { mark_ready(s); }

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
    bool p = false;
    switch (s->kind) {
      case Stream::Kind::tcp: {
        TcpConn& c = static_cast<TcpConn&>(*s);
        p = process_tcp(c);
        // c may be gone (closed) here: only touch it through conns_.
        if (p) progress = true;
        continue;
      }
      case Stream::Kind::file: p = process_file(static_cast<FileStream&>(*s)); break;
      case Stream::Kind::generator: p = process_generator(static_cast<GenStream&>(*s)); break;
      case Stream::Kind::kafka: break;  // driven by KafkaSource::process()
    }
    progress |= p;
    if (s->stalled || (s->kind == Stream::Kind::generator && !s->done && !s->in_ready &&
                       static_cast<GenStream*>(s)->rate == 0)) {
      mark_ready(*s);
    }
  }
  // Stalled connections stay ready so they are retried.
  for (auto& c : conns_) {
    if (c && c->stalled) mark_ready(*c);
  }
  if (!progress) {
    for (Stream* s : ready_) {
      if (s->stalled) m_.backpressure_stalls.add();
    }
  }
  return progress;
}

// ---------------------------------------------------------------------------
// The per-line path

size_t Shard::feed(FramedStream& s, const char* data, size_t len) {
  return s.framer.feed(data, len, [&](const Line& line) { return on_line(s, line); });
}

bool Shard::on_line(FramedStream& s, const Line& line) {
  if (line.too_long) {
    char detail[128];
    std::snprintf(detail, sizeof detail, "line of %llu bytes exceeds line_bytes_max (%u)",
                  static_cast<unsigned long long>(line.total_bytes), cfg_.sources[s.source].line_bytes_max);
    if (!dead_letter(&s, DeadLetterReason::line_too_long, detail, line.text, true, line.total_bytes)) {
      return false;
    }
    count_line(s);
    return true;
  }
  return on_event(s, line.text, nullptr);
}

bool Shard::on_event(Stream& s, std::string_view text, const RecordMeta* meta) {
  if (sh_.consume_only) {
    touch(s);
    count_line(s);
    m_.events_in.add();
    return true;
  }
  Event e;
  DecodeStatus st = decoder_->decode(text, e, meta);
  if (st == DecodeStatus::ok && future_limit_ns_ > 0 && e.time_ns > wall_now_ns_ &&
      e.time_ns - wall_now_ns_ > future_limit_ns_) {
    // Not an event of this pipeline's present: it neither counts nor moves the watermark.
    if (!future_dead_letter(s, e, text)) return false;
    count_line(s);
    return true;
  }
  if (st == DecodeStatus::ok) touch(s);  // an event: the stream is active (and back from idle)
  if (st != DecodeStatus::ok) {
    DeadLetterReason r =
        st == DecodeStatus::parse_error ? DeadLetterReason::parse_error : DeadLetterReason::schema_error;
    if (!dead_letter(&s, r, decoder_->detail(), text)) return false;
    count_line(s);
    return true;
  }
  int64_t start;
  if (!windows_->window_of(e.time_ns, start)) {
    if (!dead_letter(&s, DeadLetterReason::schema_error,
                     "event time too close to the int64 nanosecond range for its window", text)) {
      return false;
    }
    count_line(s);
    return true;
  }
  if (s.wm.is_late(start + size_ns_)) {
    if (!late_dead_letter(&s, e, start, s.wm.watermark(), text, false)) return false;
    count_line(s);
    return true;
  }
  if (!route(s, e, start, text)) return false;
  s.wm.observe(e.time_ns);
  count_line(s);
  return true;
}

bool Shard::route(Stream& s, const Event& e, int64_t start, std::string_view raw) {
  // Lemire's multiply-shift: the high bits of the hash pick the shard.
  uint32_t owner = uint32_t((static_cast<unsigned __int128>(e.key_hash) * n_) >> 64);
  if (owner == id_) {
    if (start + size_ns_ <= target_) {
      // Its window has already been (or is being) written out.
      return late_dead_letter(&s, e, start, target_, raw, true);
    }
    windows_->apply_pipelined(start, e);  // applied by end_chunk() at the latest
    m_.events_in.add();
    ++chunk_applied_;
    return true;
  }
  EventBatch*& b = out_[owner];
  if (b != nullptr && !b->fits(e.key.size(), nvals_)) push_batch(owner);
  if (b == nullptr) {
    b = acquire_batch(owner);
    if (b == nullptr) return false;  // every batch to that shard is in flight: back-pressure
    b->reset();
  }
  b->append(e, nvals_);
  b->recv_ns = std::min(b->recv_ns, chunk_recv_ns_);
  return true;
}

bool Shard::dead_letter(Stream* s, DeadLetterReason reason, std::string_view detail,
                        std::string_view raw, bool truncated, uint64_t raw_bytes) {
  char origin[512];
  std::string_view origin_view;
  std::string_view source_name = "";
  if (s != nullptr) {
    source_name = cfg_.sources[s->source].name;
    switch (s->kind) {
      case Stream::Kind::tcp: origin_view = static_cast<TcpConn*>(s)->peer; break;
      case Stream::Kind::file: {
        auto* f = static_cast<FileStream*>(s);
        // path:line; a range that does not start the file counts lines from
        // its first byte: path@byte:line.
        int n = f->range_begin == 0
                    ? std::snprintf(origin, sizeof origin, "%s:%llu", (*f->paths)[f->path_index].c_str(),
                                    static_cast<unsigned long long>(f->framer.line_number()))
                    : std::snprintf(origin, sizeof origin, "%s@%llu:%llu",
                                    (*f->paths)[f->path_index].c_str(),
                                    static_cast<unsigned long long>(f->range_begin),
                                    static_cast<unsigned long long>(f->framer.line_number()));
        origin_view = std::string_view(origin, size_t(std::min<int>(n, int(sizeof origin) - 1)));
        if (!is_valid_utf8(origin_view)) origin_view = {};
        break;
      }
      case Stream::Kind::generator: break;
      case Stream::Kind::kafka: {
        size_t n = KafkaSource::format_origin(*s, origin, sizeof origin);
        origin_view = std::string_view(origin, n);
        if (!is_valid_utf8(origin_view)) origin_view = {};
        break;
      }
    }
  }
  if (dl_failed_) {
    // Nowhere left to put it: counted, and the pipeline is already stopping.
    m_.dead_letters[size_t(reason)].add();
    m_.dead_letters_lost.add();
    return true;
  }
  DeadLetter d{reason, detail, source_name, origin_view, raw, truncated, raw_bytes};
  size_t need = dead_letter_bytes_max(d);
  if (dl_->fill().room() < need) {
    dl_->start(ring_);
    if (dl_->fill().room() < need) return false;  // both buffers busy: back-pressure
  }
  dl_->fill().commit(encode_dead_letter(d, dl_->fill().tail()));
  m_.dead_letters[size_t(reason)].add();
  return true;
}

// The dead-letter output failed (a full disk, an I/O error): bad lines have
// nowhere to go, so the pipeline stops (exit 1) rather than run on losing
// them; result rows are still written. The records that did not reach the
// output are counted, and so is every dead letter from now on.
void Shard::dead_letter_output_failed() {
  dl_failed_ = true;
  auto records = [](std::string_view text) {
    return uint64_t(std::count(text.begin(), text.end(), '\n'));
  };
  m_.dead_letters_lost.add(records(dl_->failed_unwritten()) + records(dl_->fill().view()));
  dl_->fill().clear();
  log_error("dead-letter output: write failed: {} (after {} bytes); later dead letters are counted, "
            "not written; the pipeline stops and exits with status 1",
            std::strerror(dl_->error()), dl_->bytes_written());
  sh_.exit_code.store(1);
  request_stop(sh_);
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

bool Shard::future_dead_letter(Stream& s, const Event& e, std::string_view raw) {
  char t[kRfc3339BytesMax + 1], w[kRfc3339BytesMax + 1];
  t[format_rfc3339(e.time_ns, t)] = 0;
  w[format_rfc3339(wall_now_ns_, w)] = 0;
  char detail[200];
  std::snprintf(detail, sizeof detail,
                "event time %s is more than future_limit (%lld s) ahead of the wall clock (%s)", t,
                static_cast<long long>(future_limit_ns_ / kNsPerS), w);
  return dead_letter(&s, DeadLetterReason::future, detail, raw);
}

bool Shard::late_dead_letter(Stream* s, const Event& e, int64_t start, int64_t watermark,
                             std::string_view raw, bool already_written) {
  char ws[kRfc3339BytesMax + 1], we[kRfc3339BytesMax + 1], wm[kRfc3339BytesMax + 1];
  ws[format_rfc3339(start, ws)] = 0;
  we[format_rfc3339(start + size_ns_, we)] = 0;
  wm[format_rfc3339(watermark, wm)] = 0;
  char detail[256];
  if (already_written) {
    std::snprintf(detail, sizeof detail,
                  "window %s/%s was already written when the event arrived (pipeline watermark %s)", ws,
                  we, wm);
  } else {
    std::snprintf(detail, sizeof detail, "window %s/%s ended at or before the source watermark %s", ws,
                  we, wm);
  }
  (void)e;
  return dead_letter(s, DeadLetterReason::late, detail, raw);
}

// An event from another shard whose window fired before it arrived (a source
// that joined or woke up while the window was being fired). The raw line
// stayed on the reading shard, so the record is rebuilt from the decoded fields.
bool Shard::apply_remote(const Event& e) {
  int64_t start;
  const bool fits = windows_->window_of(e.time_ns, start);
  SLUICE_ASSERT(fits);  // the reading shard checked it
  if (start + size_ns_ > target_) {
    windows_->apply_pipelined(start, e);  // drain_inbound() flushes after each batch
    m_.events_in.add();
    return true;
  }
  char raw[4096];
  char* p = raw;
  *p++ = '{';
  const SchemaConfig& schema = cfg_.schema;
  size_t i = 0;
  for (size_t k = 0; k < schema.key.size(); ++k) {
    p += json_quote(schema.key[k], p);
    *p++ = ':';
    if (e.key[i] == kKeyInt) {
      int64_t v;
      std::memcpy(&v, e.key.data() + i + 1, 8);
      p += write_int64(v, p);
      i += 9;
    } else {
      uint32_t len;
      std::memcpy(&len, e.key.data() + i + 1, 4);
      std::string_view sv(e.key.data() + i + 5, std::min<size_t>(len, 512));
      p += json_quote(sv, p);
      i += 5 + len;
    }
    *p++ = ',';
  }
  p += json_quote(schema.time_field, p);
  *p++ = ':';
  *p++ = '"';
  p += format_rfc3339(e.time_ns, p);
  *p++ = '"';
  for (size_t f = 0; f < schema.fields.size(); ++f) {
    if (schema.fields[f].type == FieldType::string || size_t(p - raw) > sizeof raw - 200) continue;
    *p++ = ',';
    p += json_quote(schema.fields[f].name, p);
    *p++ = ':';
    if (schema.fields[f].type == FieldType::int64) {
      p += write_int64(e.values[f].i, p);
    } else if (std::isfinite(e.values[f].f)) {
      p += write_double(e.values[f].f, p);
    } else {
      p += 4;
      std::memcpy(p - 4, "null", 4);
    }
  }
  *p++ = '}';
  // Refused when the dead-letter buffers are both busy: the caller stops
  // draining this batch and comes back to this record once a write completes.
  return late_dead_letter(nullptr, e, start, target_, std::string_view(raw, size_t(p - raw)), true);
}

// ---------------------------------------------------------------------------
// Cross-shard

bool Shard::drain_inbound() {
  bool any = false;
  Event e;
  for (uint32_t src = 0; src < n_; ++src) {
    if (src == id_) continue;
    SpscChannel<EventBatch>* ch = sh_.data[src * n_ + id_].get();
    bool released = false;
    for (;;) {
      // A batch interrupted by a full dead-letter output is resumed first.
      Inbound& in = inbound_[src];
      if (in.batch == nullptr) {
        in.batch = ch->try_pop();
        if (in.batch == nullptr) break;
        in.offset = 0;
        in.record = 0;
      }
      EventBatch* b = in.batch;
      bool stalled = false;
      const uint32_t first = in.record;
      for (; in.record < b->records; ++in.record) {
        size_t next = b->read(in.offset, e, nvals_);
        if (!apply_remote(e)) {
          stalled = true;
          break;
        }
        in.offset = next;
        any = true;
      }
      windows_->flush();
      if (in.record > first && b->recv_ns != kTimeMax) {
        // One clock read per batch; its events share the oldest receive time.
        uint64_t latency = uint64_t(std::max<int64_t>(monotonic_ns() - b->recv_ns, 0));
        m_.ingest_latency.record(latency, in.record - first);
      }
      if (stalled) break;
      in_marker_[src] = b->marker;
      ch->release(b);
      in.batch = nullptr;
      released = true;
    }
    if (released) {
      notify(src);
      any = true;
    }
  }
  // While the sinks are behind, the gatherer takes no more rows: the other
  // shards' result chunks run out and their firing pauses too.
  if (gatherer_ && !gatherer_->backlogged()) {
    for (uint32_t src = 1; src < n_; ++src) {
      SpscChannel<ResultChunk>* ch = sh_.results[src].get();
      bool released = false;
      while (ResultChunk* c = ch->try_pop()) {
        gatherer_->add_chunk(src, *c);
        ch->release(c);
        released = true;
      }
      if (released) {
        notify(src);
        any = true;
      }
    }
  }
  return any;
}

Marker Shard::local_marker() {
  Marker m;
  const int64_t idle_ns = cfg_.window.idle_timeout_ns;
  auto consider = [&](Stream& s, bool backlogged) {
    // Input that waits for room (back-pressure), or a source paused for the
    // sinks, is not silence.
    if (backlogged || s.stalled || paused_) s.last_active_ns = now();
    if (!s.done && idle_ns > 0 && !s.idle && now() - s.last_active_ns >= idle_ns) s.idle = true;
    if (s.done || s.idle) {
      retired_ = std::max(retired_, s.wm.watermark());
      return;
    }
    int64_t w = s.wm.watermark();
    if (!m.opinion || w < m.watermark) m.watermark = w;
    m.opinion = true;
  };
  for (auto& c : conns_) {
    if (c) consider(*c, c->head >= 0);
  }
  for (auto& f : files_) consider(*f, false);
  for (auto& g : gens_) consider(*g, false);
  for (auto& k : kafka_) {
    const bool backlogged = k->backlogged();
    k->for_each_stream([&](Stream& s) { consider(s, backlogged); });
    if (k->holds_back()) {
      m.opinion = true;
      m.watermark = kTimeMin;
    }
  }
  m.retired = retired_;
  if (inputs_done_ && ready_.empty()) {
    bool flushed = true;
    for (EventBatch* b : out_) flushed &= b == nullptr || b->records == 0;
    if (flushed) {
      m.final = true;
      m.opinion = false;
    }
  }
  return m;
}

// A batch for dst: one dst gave back, a new one from this shard's pool, or
// one another destination gave back. Null when dst already has
// kEventBatchesPerChannel queued (a slow receiver cannot take the whole
// pool) or every batch of the pool is in flight.
EventBatch* Shard::acquire_batch(uint32_t dst) {
  SpscChannel<EventBatch>* ch = sh_.data[id_ * n_ + dst].get();
  if (ch->depth() >= kEventBatchesPerChannel) return nullptr;
  if (EventBatch* b = ch->try_acquire()) return b;
  for (uint32_t i = 1; i < n_; ++i) {
    uint32_t other = (dst + i) % n_;
    if (other == id_) continue;
    if (EventBatch* b = sh_.data[id_ * n_ + other]->steal()) return b;
  }
  return nullptr;
}

bool Shard::push_batch(uint32_t dst) {
  EventBatch* b = out_[dst];
  b->marker = marker_;
  sh_.data[id_ * n_ + dst]->push(b);
  out_[dst] = nullptr;
  sent_marker_[dst] = marker_;
  m_.batches_sent.add();
  notify(dst);
  return true;
}

bool Shard::flush_outbound() {
  bool any = false;
  marker_ = local_marker();
  for (uint32_t dst = 0; dst < n_; ++dst) {
    if (dst == id_) continue;
    if (out_[dst] != nullptr && out_[dst]->records > 0) {
      any |= push_batch(dst);
      continue;
    }
    if (!same_marker(marker_, sent_marker_[dst])) {
      if (out_[dst] == nullptr) {
        out_[dst] = acquire_batch(dst);
        if (out_[dst] == nullptr) continue;  // retried next iteration
        out_[dst]->reset();
      }
      any |= push_batch(dst);
    }
  }
  return any;
}

bool Shard::fire_windows() {
  // The pipeline watermark, as this shard knows it: the minimum over shards
  // that have an active source, using each one's latest in-band marker.
  // With no active source anywhere, the largest watermark an idle or
  // finished source reached: whichever order sources went idle in (and
  // whichever order their markers arrive in), the result is the same.
  bool all_final = marker_.final;
  bool any_opinion = marker_.opinion;
  int64_t low = marker_.opinion ? marker_.watermark : kTimeMax;
  int64_t retired = marker_.retired;
  for (uint32_t s = 0; s < n_; ++s) {
    if (s == id_) continue;
    const Marker& m = in_marker_[s];
    all_final &= m.final;
    retired = std::max(retired, m.retired);
    if (m.opinion) {
      any_opinion = true;
      low = std::min(low, m.watermark);
    }
  }
  if (all_final) {
    target_ = kTimeMax;
  } else if (any_opinion) {
    target_ = std::max(target_, low);
  } else {
    target_ = std::max(target_, retired);
  }
  // Publish before firing: sources that join from now on start at this floor.
  int64_t seen = sh_.fired_max.load(std::memory_order_relaxed);
  while (target_ > seen && !sh_.fired_max.compare_exchange_weak(seen, target_)) {
  }

  bool any = false;
  const size_t naggs = cfg_.aggregates.size();
  AggValue vals[64];
  SLUICE_ASSERT(naggs <= 64);
  SpscChannel<ResultChunk>* ch = id_ == 0 ? nullptr : sh_.results[id_].get();
  windows_->flush();
  while (!windows_->empty() && windows_->oldest_start() + size_ns_ <= target_) {
    if (gatherer_ && gatherer_->backlogged()) return any;  // the sinks are behind: fire later
    int64_t start = windows_->oldest_start();
    const KeyTable& t = windows_->oldest();
    for (; fire_entry_ < t.size(); ++fire_entry_) {
      const Value* acc = t.acc(fire_entry_);
      for (size_t a = 0; a < naggs; ++a) vals[a] = sh_.layout->result(acc, a);
      std::string_view key = t.key(fire_entry_);
      if (gatherer_) {
        gatherer_->add_row(start, key, vals, now());
        continue;
      }
      size_t bytes = result_row_bytes(key.size(), naggs);
      if (chunk_ != nullptr && chunk_->used + bytes > kResultChunkBytes) {
        chunk_->fired_through = reported_;  // rows of this window are still coming
        ch->push(chunk_);
        chunk_ = nullptr;
        notify(0);
      }
      if (chunk_ == nullptr) {
        chunk_ = ch->try_acquire();
        if (chunk_ == nullptr) return any;  // gatherer behind: resume this window later
        chunk_->reset();
      }
      if (chunk_->rows == 0) chunk_->fire_ns = now();
      chunk_->used += uint32_t(write_result_row(start, key, vals, naggs, chunk_->data + chunk_->used));
      ++chunk_->rows;
    }
    windows_->pop_oldest();
    fire_entry_ = 0;
    m_.windows_fired.add();
    any = true;
  }
  bool final = target_ == kTimeMax && windows_->empty();
  bool caught_up = windows_->empty() || windows_->oldest_start() + size_ns_ > target_;
  if (caught_up && (target_ != reported_ || (final && !reported_final_))) {
    if (gatherer_) {
      gatherer_->set_progress(0, target_, final);
    } else {
      if (chunk_ == nullptr) {
        chunk_ = ch->try_acquire();
        if (chunk_ == nullptr) return any;
        chunk_->reset();
      }
      chunk_->fired_through = target_;
      chunk_->final = final;
      ch->push(chunk_);
      chunk_ = nullptr;
      notify(0);
    }
    reported_ = target_;
    reported_final_ = final;
    any = true;
  }
  return any;
}

}  // namespace sluice
