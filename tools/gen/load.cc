#include "tools/gen/load.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/clock.h"

namespace sluice::gen {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

// ---------------------------------------------------------------------------
// Outputs

Output::~Output() {
  if (fd_ >= 0 && kind_ != Kind::standard_output) ::close(fd_);
}

std::expected<void, std::string> Output::finish() {
  if (kind_ == Kind::socket) {
    // The receiver sees EOF after the last byte; a peer that has already gone
    // (ENOTCONN) has been reported by the last send.
    if (::shutdown(fd_, SHUT_WR) != 0 && errno != ENOTCONN) {
      return std::unexpected(name_ + ": shutdown: " + errno_text(errno));
    }
  }
  if (kind_ == Kind::standard_output) return {};
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return std::unexpected(name_ + ": close: " + errno_text(errno));
  return {};
}

std::expected<Outputs, std::string> open_file(const std::string& path) {
  Outputs out;
  if (path == "-") {
    out.push_back(std::make_unique<Output>(STDOUT_FILENO, Output::Kind::standard_output, "stdout"));
    return out;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return std::unexpected(path + ": " + errno_text(errno));
  out.push_back(std::make_unique<Output>(fd, Output::Kind::file, path));
  return out;
}

std::expected<HostPort, std::string> parse_host_port(std::string_view text) {
  auto bad = [&] {
    return std::unexpected("--tcp: expected HOST:PORT or [IPv6]:PORT, got \"" + std::string(text) +
                           "\"");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad();
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535) {
    return bad();
  }
  return HostPort{std::string(host), std::string(port), std::string(text)};
}

std::expected<Outputs, std::string> connect_tcp(const HostPort& to, uint32_t connections,
                                                bool nodelay) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(to.host.c_str(), to.port.c_str(), &hints, &found); rc != 0) {
    return std::unexpected("cannot resolve " + to.text + ": " + gai_strerror(rc));
  }
  Outputs out;
  std::string error;
  for (uint32_t c = 0; c < connections && error.empty(); ++c) {
    std::string name = to.text;
    if (connections > 1) {
      name += " (connection " + std::to_string(c + 1) + " of " + std::to_string(connections) + ")";
    }
    // The first address that accepts, as a client library would; connect()
    // blocks here, before the clock starts, so set-up is not counted as lag.
    int fd = -1;
    int last_errno = 0;
    for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) {
        last_errno = errno;
        continue;
      }
      if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
        last_errno = errno;
        ::close(fd);
        fd = -1;
      }
    }
    if (fd < 0) {
      error = "cannot connect to " + name + ": " + errno_text(last_errno);
      break;
    }
    // Non-blocking so that one full socket does not stop the others, the
    // progress lines or a signal (see LoadRunner::flush).
    int one = 1;
    if ((nodelay && ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) ||
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
      error = name + ": " + errno_text(errno);
      ::close(fd);
      break;
    }
    out.push_back(std::make_unique<Output>(fd, Output::Kind::socket, std::move(name)));
  }
  ::freeaddrinfo(found);
  if (!error.empty()) return std::unexpected(error);
  return out;
}

// ---------------------------------------------------------------------------
// Report

std::string LoadReport::line() const {
  double seconds = double(elapsed_ns) / 1e9;
  double rate = seconds > 0 ? double(events) / seconds : 0;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "sluice-gen: events=%" PRIu64 " bytes=%" PRIu64
                " seconds=%.3f rate=%.0f"
                " target_rate=%" PRIu64 " lag_max_ms=%.3f lag_p99_ms=%.3f connections=%" PRIu32
                " late=%" PRIu64 " batches=%" PRIu64,
                events, bytes, seconds, rate, target_rate, double(lag_max_ns) / 1e6,
                double(lag_p99_ns) / 1e6, connections, late, batches);
  return buf;
}

// ---------------------------------------------------------------------------
// LoadRunner

LoadRunner::LoadRunner(SalesGenerator& gen, Outputs outputs, const LoadConfig& cfg)
    : gen_(gen), outputs_(std::move(outputs)), buffers_(outputs_.size()), cfg_(cfg) {
  for (Buffer& b : buffers_) b.data = std::make_unique<char[]>(cfg_.batch_bytes);
  poll_fds_.reserve(outputs_.size());
  limit_ = cfg_.count == 0 ? UINT64_MAX : cfg_.count;
  if (cfg_.rate > 0 && cfg_.duration_ns > 0) {
    // The events due within the duration: i with floor(i * 1e9 / rate) < duration.
    __int128 in_duration = (__int128(cfg_.duration_ns) * cfg_.rate + kNsPerS - 1) / kNsPerS;
    if (in_duration < __int128(limit_)) limit_ = uint64_t(in_duration);
  }
}

int64_t LoadRunner::due_mono_ns(uint64_t i) const {
  return start_mono_ns_ + int64_t(__int128(i) * kNsPerS / cfg_.rate);
}

uint64_t LoadRunner::due_count(int64_t now) const {
  if (now < start_mono_ns_) return 0;
  // i is due when floor(i * 1e9 / rate) <= now - start, i.e. i * 1e9 < (now - start + 1) * rate.
  __int128 due = (__int128(now - start_mono_ns_ + 1) * cfg_.rate + kNsPerS - 1) / kNsPerS;
  return due < __int128(limit_) ? uint64_t(due) : limit_;
}

void LoadRunner::fill(uint64_t target, int64_t batch_wall_ns) {
  const size_t n = buffers_.size();
  size_t k = next_output_;
  uint64_t i = gen_.produced();
  if (!cfg_.time_now) {
    for (; i < target; ++i) {
      Buffer& b = buffers_[k];
      if (cfg_.batch_bytes - b.len < SalesGenerator::kLineBytesMax) break;
      b.len += gen_.generate_one(b.data.get() + b.len);
      k = k + 1 == n ? 0 : k + 1;
    }
  } else {
    // Event i's time is the wall clock at its due time. The due offset
    // floor(i * 1e9 / rate) is stepped by quotient and remainder rather than
    // divided per event: a 128-bit division per event would cost as much as
    // formatting the line.
    const uint64_t rate = cfg_.rate;
    int64_t offset_ns = 0, step_ns = 0;
    uint64_t rem = 0, step_rem = 0;
    if (rate > 0) {
      __int128 scaled = __int128(i) * kNsPerS;
      offset_ns = int64_t(scaled / rate);
      rem = uint64_t(scaled % rate);
      step_ns = int64_t(kNsPerS / rate);
      step_rem = uint64_t(kNsPerS % rate);
    }
    for (; i < target; ++i) {
      Buffer& b = buffers_[k];
      if (cfg_.batch_bytes - b.len < SalesGenerator::kLineBytesMax) break;
      int64_t due_wall = rate > 0 ? start_wall_ns_ + offset_ns : batch_wall_ns;
      b.len += gen_.generate_one_at(b.data.get() + b.len, due_wall);
      k = k + 1 == n ? 0 : k + 1;
      offset_ns += step_ns;
      rem += step_rem;
      if (rem >= rate) {
        rem -= rate;
        ++offset_ns;
      }
    }
  }
  next_output_ = k;
}

std::expected<bool, LoadError> LoadRunner::write_some(size_t index) {
  Output& out = *outputs_[index];
  Buffer& b = buffers_[index];
  while (b.off < b.len) {
    ssize_t n = out.kind() == Output::Kind::socket
                    ? ::send(out.fd(), b.data.get() + b.off, b.len - b.off, MSG_NOSIGNAL)
                    : ::write(out.fd(), b.data.get() + b.off, b.len - b.off);
    if (n > 0) {
      b.off += size_t(n);
      bytes_ += uint64_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) return false;  // let the caller look at the stop flag
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    const char* what = out.kind() == Output::Kind::socket ? "send" : "write";
    std::string why = n == 0 ? "wrote nothing" : errno_text(errno);
    return std::unexpected(
        LoadError{LoadErrorCode::output_failed, out.name() + ": " + what + ": " + why});
  }
  return true;
}

std::expected<void, LoadError> LoadRunner::flush(const volatile std::sig_atomic_t& stop) {
  // poll, not one epoll set or a thread per connection: the loop only waits
  // when a socket is full, the set of fds is fixed and small, and everything
  // runs on the generator's one thread (see README.md, "Design").
  std::vector<pollfd>& waiting = poll_fds_;
  for (;;) {
    waiting.clear();
    for (size_t k = 0; k < buffers_.size(); ++k) {
      auto done = write_some(k);
      if (!done) return std::unexpected(done.error());
      if (!*done) waiting.push_back(pollfd{outputs_[k]->fd(), POLLOUT, 0});
    }
    if (waiting.empty()) break;
    if (stop) return std::unexpected(LoadError{LoadErrorCode::interrupted, "interrupted"});
    int timeout_ms = -1;
    if (cfg_.progress) {
      int64_t left = next_progress_ns_ - monotonic_ns();
      timeout_ms = left <= 0 ? 0 : int((left + kNsPerMs - 1) / kNsPerMs);
    }
    // Errors and hang-ups show as POLLERR/POLLHUP; the next send reports them.
    if (::poll(waiting.data(), waiting.size(), timeout_ms) < 0 && errno != EINTR) {
      return std::unexpected(LoadError{LoadErrorCode::output_failed, "poll: " + errno_text(errno)});
    }
    maybe_progress(monotonic_ns());
  }
  for (Buffer& b : buffers_) b.len = b.off = 0;
  return {};
}

void LoadRunner::maybe_progress(int64_t now) {
  if (!cfg_.progress || now < next_progress_ns_) return;
  uint64_t events = events_sent_;
  // A batch still waiting for a stuck receiver counts with its lag so far, so
  // the line shows the stall while it lasts, not only after it.
  int64_t lag_max = progress_lag_max_ns_;
  if (cfg_.rate > 0 && in_flight_due_ns_ != kNoBatch) {
    lag_max = std::max(lag_max, now - in_flight_due_ns_);
  }
  double interval_s = double(now - (next_progress_ns_ - kProgressIntervalNs)) / 1e9;
  std::fprintf(stderr,
               "sluice-gen: progress seconds=%.3f events=%" PRIu64 " bytes=%" PRIu64
               " rate=%.0f lag_max_ms=%.3f\n",
               double(now - start_mono_ns_) / 1e9, events, bytes_,
               double(events - progress_events_) / interval_s, double(lag_max) / 1e6);
  progress_events_ = events;
  progress_lag_max_ns_ = 0;
  // The next line one interval after this one was due, skipping any missed.
  while (next_progress_ns_ <= now) next_progress_ns_ += kProgressIntervalNs;
}

std::expected<void, LoadError> LoadRunner::run(const volatile std::sig_atomic_t& stop) {
  start_wall_ns_ = wall_ns();
  start_mono_ns_ = monotonic_ns();
  next_progress_ns_ = start_mono_ns_ + kProgressIntervalNs;
  const int64_t deadline = cfg_.duration_ns > 0 ? start_mono_ns_ + cfg_.duration_ns : kTimeMax;
  std::expected<void, LoadError> result;
  for (;;) {
    if (stop) {
      result = std::unexpected(LoadError{LoadErrorCode::interrupted, "interrupted"});
      break;
    }
    int64_t now = monotonic_ns();
    maybe_progress(now);
    uint64_t produced = gen_.produced();
    if (produced >= limit_ || (cfg_.rate == 0 && now >= deadline)) break;
    uint64_t target = cfg_.rate > 0 ? due_count(now) : limit_;
    if (produced >= target) {
      // Nothing due: sleep until the next event is (or the next progress line).
      int64_t wake = due_mono_ns(produced);
      if (cfg_.progress) wake = std::min(wake, next_progress_ns_);
      timespec ts{time_t(wake / kNsPerS), long(wake % kNsPerS)};
      ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);  // EINTR: loop
      continue;
    }
    // Without a rate every event is due at once: its lag would only say how long the
    // run has taken so far, so none is recorded.
    int64_t due_first = cfg_.rate > 0 ? due_mono_ns(produced) : now;
    fill(target, cfg_.time_now && cfg_.rate == 0 ? start_wall_ns_ + (now - start_mono_ns_) : 0);
    in_flight_due_ns_ = due_first;
    result = flush(stop);
    in_flight_due_ns_ = kNoBatch;
    // A batch cut short (interrupted while the receiver stalled) still counts
    // with its lag so far: that stall is what the report is for.
    if (cfg_.rate > 0) {
      int64_t lag = monotonic_ns() - due_first;
      lag_.record(lag);
      progress_lag_max_ns_ = std::max(progress_lag_max_ns_, lag);
    }
    if (!result) break;
    ++batches_;
    events_sent_ = gen_.produced();
  }
  end_mono_ns_ = monotonic_ns();
  for (auto& out : outputs_) {
    auto finished = out->finish();
    if (!finished && result) {
      result = std::unexpected(LoadError{LoadErrorCode::output_failed, finished.error()});
    }
  }
  return result;
}

LoadReport LoadRunner::report() const {
  LoadReport r;
  r.events = events_sent_;
  r.bytes = bytes_;
  r.late = gen_.late_produced();
  r.elapsed_ns = end_mono_ns_ - start_mono_ns_;
  r.target_rate = cfg_.rate;
  r.connections = uint32_t(outputs_.size());
  r.batches = batches_;
  r.lag_max_ns = int64_t(lag_.max());
  r.lag_p99_ns = int64_t(lag_.quantile(0.99));
  return r;
}

}  // namespace sluice::gen
