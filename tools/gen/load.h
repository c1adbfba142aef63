// sluice-gen's open-loop sender: writes a SalesGenerator's events to a file,
// stdout or N TCP connections, at a scheduled rate, and measures how far the
// sending fell behind the schedule. See tools/gen/README.md for the design.
#pragma once

#include <poll.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tools/gen/lag_histogram.h"
#include "io/sources/sales_generator.h"

namespace sluice::gen {

// Most TCP connections one run opens: each costs a file descriptor and a
// batch buffer, and more than this spreads the events too thin to be useful.
constexpr uint32_t connections_max = 1024;
// Bytes of events buffered per output before they are written: one write per
// output per batch. Larger batches mean fewer system calls at full speed (on
// loopback 256 KiB reaches the socket's throughput; 1 MiB adds nothing) but a
// coarser unit of lag measurement when the receiver is slow.
constexpr size_t kBatchBytesDefault = 256 * 1024;
constexpr size_t kBatchBytesMin = 4 * 1024;
constexpr size_t kBatchBytesMax = 64 * 1024 * 1024;
static_assert(kBatchBytesMin >= 2 * SalesGenerator::kLineBytesMax,
              "a batch buffer must hold more than one line");
// Interval of the --progress lines.
constexpr int64_t kProgressIntervalNs = 1'000'000'000;

enum class LoadErrorCode : uint8_t {
  output_failed,  ///< a connection was refused or reset, or a write failed
  interrupted,    ///< SIGINT/SIGTERM arrived before the end
};

struct LoadError {
  LoadErrorCode code;
  std::string message;  // what failed, for the user
};

// One destination: a file descriptor and how it is written. Owns the fd.
class Output {
 public:
  enum class Kind : uint8_t {
    file,             ///< blocking write(); closed at the end
    standard_output,  ///< blocking write() to fd 1; left open
    socket,           ///< non-blocking send(); shut down and closed at the end
  };
  Output(int fd, Kind kind, std::string name) : fd_(fd), kind_(kind), name_(std::move(name)) {}
  ~Output();
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  int fd() const { return fd_; }
  Kind kind() const { return kind_; }
  const std::string& name() const { return name_; }
  // Ends the output: shutdown(SHUT_WR) for a socket (the receiver sees EOF),
  // close() for a file, whose error (e.g. ENOSPC on a deferred write) is reported.
  [[nodiscard]] std::expected<void, std::string> finish();

 private:
  int fd_;
  Kind kind_;
  std::string name_;
};

using Outputs = std::vector<std::unique_ptr<Output>>;

// `path` ("-" is stdout), truncated if it exists.
std::expected<Outputs, std::string> open_file(const std::string& path);
struct HostPort {
  std::string host;  // an IPv4 or IPv6 address, or a name
  std::string port;  // digits
  std::string text;  // as given, for messages
};
// "HOST:PORT" or "[IPv6]:PORT"; an error message otherwise.
std::expected<HostPort, std::string> parse_host_port(std::string_view text);
// `connections` TCP connections to `to`, each connected before the run starts
// (the first of the resolved addresses that accepts). TCP_NODELAY when `nodelay`.
std::expected<Outputs, std::string> connect_tcp(const HostPort& to, uint32_t connections,
                                                bool nodelay);

struct LoadConfig {
  uint64_t count = 0;       // events to send; 0 = no limit (then duration_ns > 0)
  int64_t duration_ns = 0;  // with a rate: the schedule's length; without: wall time; 0 = none
  uint64_t rate = 0;        // events/s over all outputs; 0 = as fast as possible
  bool time_now = false;    // an event's time is the wall-clock time it is due
  bool progress = false;    // a report line on stderr every kProgressIntervalNs
  size_t batch_bytes = kBatchBytesDefault;  // buffer per output
};

struct LoadReport {
  uint64_t events = 0;  // events of completely written batches
  uint64_t bytes = 0;   // bytes written, including any part of a batch cut short
  uint64_t late = 0;    // events made late (--late-fraction)
  int64_t elapsed_ns = 0;
  uint64_t target_rate = 0;
  uint32_t connections = 0;
  uint64_t batches = 0;
  int64_t lag_max_ns = 0;  // 0 without a rate: there is no schedule to lag behind
  int64_t lag_p99_ns = 0;

  // "sluice-gen: events=... bytes=... seconds=... rate=... target_rate=... lag_max_ms=...
  // lag_p99_ms=... connections=... late=... batches=..."
  std::string line() const;
};

// Runs one load: owns the outputs, drives `gen` (one thread: the caller's).
//
// The schedule: event i is due at start + i / rate. Each round generates every
// event due by now (at most one batch buffer per output), spread over the
// outputs round-robin (event i to output i % N), writes the batch, and records
// its lag: the time the last byte was accepted by the kernel minus the due
// time of the batch's first event. When nothing is due it sleeps until the
// next due time. A slow receiver therefore delays batches (lag grows, and the
// next round catches up with a bigger batch) but never moves the schedule.
class LoadRunner {
 public:
  // REQUIRES: !outputs.empty(); gen has produced nothing yet.
  LoadRunner(SalesGenerator& gen, Outputs outputs, const LoadConfig& cfg);

  // Runs to the end of the count or duration. `stop` (set by a signal handler)
  // ends the run early with LoadErrorCode::interrupted. report() is valid
  // afterwards either way.
  [[nodiscard]] std::expected<void, LoadError> run(const volatile std::sig_atomic_t& stop);

  LoadReport report() const;

 private:
  struct Buffer {
    std::unique_ptr<char[]> data;
    size_t len = 0;  // bytes of events in data
    size_t off = 0;  // bytes of them already written
  };

  // Monotonic time event i is due (REQUIRES: rate > 0).
  int64_t due_mono_ns(uint64_t i) const;
  // Events due at monotonic time `now`, capped at limit_.
  uint64_t due_count(int64_t now) const;
  // Generates events [produced, target) (or fewer, when a buffer fills). `batch_wall_ns`
  // is the event time of every event when time_now and there is no rate.
  void fill(uint64_t target, int64_t batch_wall_ns);
  // Writes every buffer out, waiting (poll) for sockets that are full.
  std::expected<void, LoadError> flush(const volatile std::sig_atomic_t& stop);
  // Writes what `out` will take now. False when a socket is full.
  std::expected<bool, LoadError> write_some(size_t index);
  void maybe_progress(int64_t now);

  SalesGenerator& gen_;
  Outputs outputs_;
  std::vector<Buffer> buffers_;
  std::vector<pollfd> poll_fds_;  // flush()'s wait set, allocated once
  LoadConfig cfg_;
  uint64_t limit_;  // events this run sends (UINT64_MAX: until the duration ends)
  size_t next_output_ = 0;

  int64_t start_mono_ns_ = 0;
  int64_t start_wall_ns_ = 0;
  int64_t end_mono_ns_ = 0;
  uint64_t events_sent_ = 0;  // events of batches written out completely
  uint64_t bytes_ = 0;        // bytes the kernel (or file) has taken
  uint64_t batches_ = 0;
  LagHistogram lag_;

  int64_t next_progress_ns_ = 0;
  uint64_t progress_events_ = 0;     // events at the previous progress line
  int64_t progress_lag_max_ns_ = 0;  // largest lag since the previous progress line
  // Due time of the first event of the batch being written; kNoBatch between batches.
  static constexpr int64_t kNoBatch = INT64_MIN;
  int64_t in_flight_due_ns_ = kNoBatch;
};

}  // namespace sluice::gen
