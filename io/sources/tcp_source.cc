// The TCP source: NDJSON over TCP connections.
//
// Shard 0's instance owns the listener (multishot accept) and hands each
// accepted connection to a shard in turn (itself included); every shard's
// instance reads the connections it was given with multishot receives into
// the shard's provided buffers. A connection is a FramedStream: its received
// buffers queue up (a linked list through the buffer ids) until the host
// frames them, so a stalled connection keeps its buffers and, once the ring
// runs dry, the kernel's TCP window pushes back on the peer.
//
// Resources (README "Resources"): a connection holds a line buffer only
// while a line spans reads, within the process-wide connection budget; at
// connections_max the connection longest without a complete line makes room;
// read_timeout closes silent ones; a stop reads what peers already sent for
// up to stop_grace.
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "core/log.h"
#include "io/net.h"
#include "io/source.h"

namespace sluice {

namespace {

// Back-off before re-arming accept after an error such as EMFILE.
constexpr int64_t kAcceptRetryNs = 100 * kNsPerMs;
// Stopping: a connection whose peer sent nothing for this long (and whose
// socket holds nothing) has delivered what it had sent before the stop.
constexpr int64_t kDrainQuietNs = 20 * kNsPerMs;

class TcpSource;

// Why the engine closes a connection (the peer did not).
enum class Closing : uint8_t { no, stop, read_timeout, evicted, over_budget };

struct TcpConn : FramedStream {
  TcpConn(Source& owner, uint32_t src, const SourceConfig& sc, int64_t delay, int64_t floor,
          MemoryBudget* budget)
      : FramedStream(owner, src, sc.line_bytes_max, delay, floor, budget) {}
  std::string_view origin(char*, size_t) const override { return peer; }

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
  bool draining = false;      // stopping: reading what the peer already sent (stop_grace)
  int64_t last_line_ns = 0;   // monotonic: connect, or the last complete line
  int64_t last_bytes_ns = 0;  // monotonic: the last bytes received
  IndexedCompletion<TcpSource> recv_done;  // the multishot receive (index: slot)
};

class TcpSource final : public Source {
 public:
  TcpSource(SourceHost& host, uint32_t index, int listen_fd)
      : host_(host), cfg_(host.config().sources[index]), index_(index), listen_fd_(listen_fd) {
    accept_done_ = Completion::to<&TcpSource::on_accept>(this);
  }
  ~TcpSource() override {
    for (auto& c : conns_) {
      if (c && c->fd >= 0) ::close(c->fd);
    }
  }

  void start() override {
    if (listen_fd_ >= 0) {
      listener_open_ = true;
      arm_accept();
    }
  }
  bool process(Stream& s) override {
    TcpConn& c = static_cast<TcpConn&>(s);
    const uint32_t slot = c.slot;
    const bool progress = process_conn(c);
    // c may be gone (closed): only touch it through its slot.
    if (conns_[slot] && conns_[slot]->stalled) host_.mark_ready(*conns_[slot]);
    return progress;
  }
  bool poll() override;
  void stop() override;
  bool done() const override {
    if (listener_open_) return false;
    for (const auto& c : conns_) {
      if (c) return false;
    }
    return true;
  }
  void for_each_stream(FunctionRef<void(Stream&, bool)> f) override {
    for (auto& c : conns_) {
      if (c) f(*c, c->head >= 0);
    }
  }
  int64_t next_deadline() const override {
    int64_t t = read_timeout_at_;
    if (accept_retry_at_ != 0) t = std::min(t, accept_retry_at_);
    if (drain_deadline_ != 0) t = std::min(t, drain_deadline_);
    return t;
  }
  void adopt(int fd) override { open_conn(fd); }

 private:
  void arm_accept();
  void on_accept(const io_uring_cqe& cqe);
  void open_conn(int fd);
  void arm_recv(TcpConn& c);
  void on_recv_done(uint32_t slot, const io_uring_cqe& cqe) { on_recv(*conns_[slot], cqe); }
  void on_recv(TcpConn& c, const io_uring_cqe& cqe);
  bool process_conn(TcpConn& c);
  void close_by_engine(TcpConn& c, Closing why);
  void close_conn(TcpConn& c);
  void check_read_timeouts();
  void drain_connections();
  ReceiveBuffers& bufs() { return host_.receive_buffers(); }
  int64_t now() { return host_.now(); }
  ShardMetrics& m() { return host_.metrics(); }

  SourceHost& host_;
  const SourceConfig& cfg_;
  uint32_t index_;
  int listen_fd_;  // shard 0: the listener (closed here when it ends); -1 elsewhere
  bool listener_open_ = false;
  Completion accept_done_;
  uint32_t accept_rr_ = 0;
  // After an accept error (EMFILE, ENFILE...), the listener is re-armed at
  // this monotonic time instead of at once, so a persistent error does not spin.
  int64_t accept_retry_at_ = 0;
  std::vector<std::unique_ptr<TcpConn>> conns_;
  std::vector<uint32_t> free_slots_;
  std::vector<TcpConn*> rearm_;  // waiting for receive buffers to come back
  int64_t read_timeout_at_ = kTimeMax;  // earliest read_timeout of an open connection
  int64_t drain_deadline_ = 0;          // stopping: the end of stop_grace (0: not draining)
  LogRateLimit evict_log_, refuse_log_, budget_log_;
};

void TcpSource::arm_accept() {
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_multishot_accept(sqe, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, accept_done_.user_data());
}

void TcpSource::on_accept(const io_uring_cqe& cqe) {
  if (cqe.res >= 0) {
    int fd = cqe.res;
    if (host_.stopping()) {
      ::close(fd);
    } else {
      const uint32_t target = accept_rr_++ % host_.shards();
      if (target == host_.shard_id()) {
        open_conn(fd);
      } else if (!host_.hand_off(target, index_, fd)) {
        ::close(fd);
        m().connections_refused.add();
        uint64_t suppressed = 0;
        if (refuse_log_.allow(now(), suppressed)) {
          log_warn("source {}: connection hand-off queue to shard {} full; connection closed{}", cfg_.name,
                   target,
                   suppressed > 0 ? fmt::format(" ({} more refused since the last such message)", suppressed)
                                  : "");
        }
      }
    }
  }
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    if (host_.stopping() || cqe.res == -EINVAL || cqe.res == -ECANCELED) {
      if (listener_open_) {
        listener_open_ = false;
        ::close(listen_fd_);
      }
    } else if (cqe.res < 0) {
      log_warn("source {}: accept: {}; retrying in {} ms", cfg_.name, std::strerror(-cqe.res),
               kAcceptRetryNs / kNsPerMs);
      accept_retry_at_ = now() + kAcceptRetryNs;
    } else {
      arm_accept();
    }
  }
}

void TcpSource::open_conn(int fd) {
  const uint32_t n = host_.shards();
  uint32_t live = 0;
  TcpConn* quietest = nullptr;  // the open connection longest without a complete line
  for (auto& c : conns_) {
    if (!c || c->closing != Closing::no || c->eof) continue;
    ++live;
    if (quietest == nullptr || c->last_line_ns < quietest->last_line_ns) quietest = c.get();
  }
  // connections_max is per source; each shard holds its round-robin share.
  // At the limit the quietest connection makes room: idle sockets cannot
  // lock out a sender that arrives later.
  if (live * n >= cfg_.tcp.connections_max && quietest != nullptr) {
    m().connections_evicted.add();
    uint64_t suppressed = 0;
    if (evict_log_.allow(now(), suppressed)) {
      log_warn("source {}: connections_max ({}) reached; closed {} (no complete line for {} ms) to "
               "admit a new connection{}",
               cfg_.name, cfg_.tcp.connections_max, quietest->peer, (now() - quietest->last_line_ns) / kNsPerMs,
               suppressed > 0 ? fmt::format(" ({} more since the last such message)", suppressed) : "");
    }
    close_by_engine(*quietest, Closing::evicted);
  }
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = uint32_t(conns_.size());
    conns_.emplace_back();
  }
  auto c = std::make_unique<TcpConn>(*this, index_, cfg_, host_.config().window.watermark_delay_ns,
                                     host_.fired_max(), host_.connection_buffers());
  c->slot = slot;
  c->recv_done.bind<&TcpSource::on_recv_done>(this, slot);
  c->fd = fd;
  c->last_line_ns = now();
  if (cfg_.tcp.read_timeout_ns > 0) read_timeout_at_ = std::min(read_timeout_at_, now() + cfg_.tcp.read_timeout_ns);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  c->peer = getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0 ? format_address(ss) : "?";
  c->last_active_ns = now();
  conns_[slot] = std::move(c);
  m().connections.add();
  log_debug("source {}: connection from {} on shard {}", cfg_.name, conns_[slot]->peer, host_.shard_id());
  arm_recv(*conns_[slot]);
}

void TcpSource::arm_recv(TcpConn& c) {
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = bufs().ring.group();
  io_uring_sqe_set_data64(sqe, c.recv_done.user_data());
  c.recv_armed = true;
  c.want_rearm = false;
}

void TcpSource::on_recv(TcpConn& c, const io_uring_cqe& cqe) {
  ReceiveBuffers& b = bufs();
  const bool closing = c.closing != Closing::no && c.closing != Closing::stop;
  if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER) && closing) {
    // Closed by the engine: what still arrives is not read.
    uint16_t bid = uint16_t(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    b.ring.on_taken();
    b.ring.recycle(bid);
  } else if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) {
    uint16_t bid = uint16_t(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
    b.ring.on_taken();
    b.len[bid] = uint32_t(cqe.res);
    b.recv_ns[bid] = now();
    b.next[bid] = -1;
    if (c.tail >= 0) {
      b.next[size_t(c.tail)] = bid;
    } else {
      c.head = bid;
      c.head_off = 0;
    }
    c.tail = bid;
    c.last_bytes_ns = now();
    host_.count_bytes(c, uint64_t(cqe.res));
    // Bytes do not make a connection active: only events do (a peer
    // trickling bytes that never complete a line must not hold the watermark).
    host_.mark_ready(c);
  }
  if (!(cqe.flags & IORING_CQE_F_MORE)) {
    c.recv_armed = false;
    // While stopping, a draining connection goes on reading (stop_grace).
    const bool reading = !closing && (!host_.stopping() || c.draining);
    if (cqe.res == -ENOBUFS && reading) {
      c.want_rearm = true;  // re-armed once buffers come back
      rearm_.push_back(&c);
    } else if (cqe.res <= 0 || !reading) {
      if (cqe.res < 0 && cqe.res != -ECONNRESET && cqe.res != -ECANCELED) {
        log_debug("source {}: {}: recv: {}", cfg_.name, c.peer, std::strerror(-cqe.res));
      }
      c.eof = true;
    } else {
      arm_recv(c);
    }
    host_.mark_ready(c);
  }
}

bool TcpSource::process_conn(TcpConn& c) {
  ReceiveBuffers& b = bufs();
  bool progress = false;
  while (c.head >= 0) {
    uint16_t bid = uint16_t(c.head);
    const char* data = b.ring.buffer(bid) + c.head_off;
    size_t len = b.len[bid] - c.head_off;
    const uint64_t lines_before = c.framer.line_number();
    size_t used = host_.feed(c, data, len, b.recv_ns[bid]);
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
      if (!host_.dead_letter(&c, DeadLetterReason::partial_line,
                             "connection closed: the line would pass connection_buffer_bytes_max", prefix,
                             line_bytes > prefix.size(), line_bytes)) {
        c.head_off += uint32_t(used);
        c.stalled = true;  // the dead-letter output is full: try again later
        return progress;
      }
      m().partial_line_bytes.add(line_bytes);
      c.framer.reset();
      m().connections_over_budget.add();
      uint64_t suppressed = 0;
      if (budget_log_.allow(now(), suppressed)) {
        log_warn("source {}: {}: a line of {}+ bytes would pass connection_buffer_bytes_max ({} bytes "
                 "in use by all connections); connection closed{}",
                 cfg_.name, c.peer, line_bytes, host_.connection_buffers()->used(),
                 suppressed > 0 ? fmt::format(" ({} more since the last such message)", suppressed) : "");
      }
      close_by_engine(c, Closing::over_budget);
      return true;
    }
    if (used < len) {
      c.head_off += uint32_t(used);
      c.stalled = true;
      return progress;
    }
    c.head = b.next[bid];
    if (c.head < 0) c.tail = -1;
    c.head_off = 0;
    b.ring.recycle(bid);
  }
  c.stalled = false;
  if (c.eof && !c.recv_armed) {
    if (c.framer.pending_bytes() > 0) {
      std::string_view prefix = c.framer.pending_prefix();
      bool truncated = c.framer.pending_bytes() > prefix.size();
      const char* detail = "connection closed in the middle of a line";
      switch (c.closing) {
        case Closing::read_timeout:
          detail = "connection closed by read_timeout in the middle of a line";
          break;
        case Closing::evicted:
          detail = "connection closed at connections_max, to admit a new one, in the middle of a line";
          break;
        case Closing::over_budget:
          detail = "connection closed: the line would pass connection_buffer_bytes_max";
          break;
        case Closing::no:
        case Closing::stop:
          break;
      }
      if (!host_.dead_letter(&c, DeadLetterReason::partial_line, detail, prefix, truncated,
                             c.framer.pending_bytes())) {
        c.stalled = true;
        return progress;
      }
    }
    (void)host_.finish(c, false);  // drops and counts the partial line: never refused
    close_conn(c);
    return true;
  }
  return progress;
}

// The engine ends a connection (stop, read_timeout, eviction, budget): no
// more is read from it; what it had queued and not yet framed is dropped
// (except on stop, where the queue is still processed); the pending receive
// completes with end-of-stream and the usual close path follows.
void TcpSource::close_by_engine(TcpConn& c, Closing why) {
  if (c.closing != Closing::no && c.closing != Closing::stop) return;
  c.closing = why;
  c.draining = false;
  if (why != Closing::stop) {
    ReceiveBuffers& b = bufs();
    while (c.head >= 0) {
      uint16_t bid = uint16_t(c.head);
      c.head = b.next[bid];
      b.ring.recycle(bid);
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
    host_.mark_ready(c);
  }
}

// Connections past read_timeout without a complete line are closed.
void TcpSource::check_read_timeouts() {
  read_timeout_at_ = kTimeMax;
  const int64_t timeout = cfg_.tcp.read_timeout_ns;
  for (auto& c : conns_) {
    if (!c || c->eof || c->closing != Closing::no) continue;
    if (timeout <= 0) continue;
    if (now() - c->last_line_ns >= timeout) {
      m().connections_timed_out.add();
      log_debug("source {}: {}: no complete line for {} ms (read_timeout); closed", cfg_.name, c->peer,
                timeout / kNsPerMs);
      close_by_engine(*c, Closing::read_timeout);
    } else {
      read_timeout_at_ = std::min(read_timeout_at_, c->last_line_ns + timeout);
    }
  }
}

// Stopping with stop_grace: each connection goes on reading until what its
// peer had sent is in (the socket's receive queue is empty and every queued
// buffer framed) or its grace is over; then it is shut down.
void TcpSource::drain_connections() {
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
      close_by_engine(*c, Closing::stop);
    } else {
      any = true;
      host_.reactor().wake_at(std::max(now(), c->last_bytes_ns) + kDrainQuietNs);
    }
  }
  if (!any) drain_deadline_ = 0;
}

void TcpSource::close_conn(TcpConn& c) {
  host_.retire(c);  // the stream object goes away now
  ::close(c.fd);
  c.fd = -1;
  c.done = true;
  log_debug("source {}: {} closed", cfg_.name, c.peer);
  uint32_t slot = c.slot;
  std::erase(rearm_, &c);
  conns_[slot].reset();  // callers must not touch c after this
  free_slots_.push_back(slot);
}

// Every iteration, after the host gave processed buffers back to the ring.
bool TcpSource::poll() {
  if (accept_retry_at_ != 0 && now() >= accept_retry_at_) {
    accept_retry_at_ = 0;
    if (listener_open_ && !host_.stopping()) arm_accept();
  }
  for (TcpConn* c : rearm_) {
    if (c->want_rearm && !c->eof && (!host_.stopping() || c->draining) && bufs().ring.available() > 0) {
      arm_recv(*c);
    }
  }
  if (now() >= read_timeout_at_) check_read_timeouts();
  if (drain_deadline_ != 0) drain_connections();
  std::erase_if(rearm_, [](TcpConn* c) { return !c->want_rearm || c->eof; });
  return false;
}

void TcpSource::stop() {
  // Wakes the multishot accept with an error; it is not re-armed.
  if (listener_open_) ::shutdown(listen_fd_, SHUT_RDWR);
  // Connections first read what their peers already sent, for up to
  // stop_grace, unless the grace is 0 (or the stop is a failure's).
  const int64_t grace = cfg_.tcp.stop_grace_ns;
  bool draining = false;
  for (auto& c : conns_) {
    if (!c || c->eof || c->closing != Closing::no) continue;
    if (grace > 0 && !host_.stop_is_failure()) {
      c->draining = true;
      c->closing = Closing::stop;
      draining = true;
      if (c->want_rearm) rearm_.push_back(c.get());
    } else {
      close_by_engine(*c, Closing::stop);
    }
  }
  if (draining) drain_deadline_ = now() + grace;
}

constexpr std::string_view kTcpKeys[] = {"listen", "connections_max", "read_timeout", "stop_grace"};

void parse_tcp(TableReader& r, SourceConfig& source, ConfigContext& ctx) {
  std::string listen;
  if (r.string("listen", listen, Need::required)) {
    auto address = parse_listen(listen);
    if (!address) {
      r.error("listen", fmt::format("bad address \"{}\": {}", listen, address.error()));
    } else {
      source.tcp.host = address->host;
      source.tcp.port = address->port;
      // Port 0 asks the kernel for a free port, so several such sources never clash.
      if (address->port != 0) {
        const std::string owner = ctx.claim_listen(fmt::format("{}:{}", address->host, address->port), source.name);
        if (!owner.empty()) {
          r.error("listen", fmt::format("\"{}\" is already used by source \"{}\"", listen, owner));
        }
      }
    }
  }
  r.integer("connections_max", source.tcp.connections_max, 1);
  r.duration("read_timeout", source.tcp.read_timeout_ns, Zero::allowed);
  r.duration("stop_grace", source.tcp.stop_grace_ns, Zero::allowed);
}

std::expected<std::unique_ptr<Source>, std::string> make_tcp_source(SourceHost& host, uint32_t index) {
  return std::make_unique<TcpSource>(host, index, host.shard_id() == 0 ? host.resource(index).fd : -1);
}

std::expected<SourceResource, std::string> open_tcp_listener(const SourceConfig& sc) {
  auto l = open_listener(sc.tcp.host, sc.tcp.port, 1024);
  if (!l) return std::unexpected(l.error());
  return SourceResource{l->fd, l->address};
}

}  // namespace

extern const SourceKind kTcpSourceKind = {
    .config = {.name = "tcp", .keys = kTcpKeys, .parse = parse_tcp, .record_metadata = false, .connection_buffers = true},
    .prepare = open_tcp_listener,
    .make = make_tcp_source,
    .fixed_bytes = [](const SourceConfig&, uint32_t, uint32_t, uint32_t) -> uint64_t { return 0; },
    .describe = [](const SourceConfig& s) { return s.tcp.host + ":" + std::to_string(s.tcp.port); },
    .finite = [](const SourceConfig&) { return false; },  // a listener never ends by itself
    .placed = false,
};

}  // namespace sluice
