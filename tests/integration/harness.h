// The integration-test harness: runs the real `sluice` and `sluice-gen`
// binaries as child processes and talks to them over loopback TCP and files.
//
// Everything here is test-side code with no dependency on the engine's
// sources: the tests compute their expectations themselves (reference.h), so
// the harness must not borrow the engine's parsers or formatters either.
//
// Threads: each object is used by one thread, except that TcpClient objects
// may each live on their own sender thread.
#pragma once

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/util/base64_decode.h"

namespace sluice::integration {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Bounds on every wait, so a hung engine fails the test instead of hanging it.
// Start-up is quick; the bound covers a loaded machine and the ASan build.
constexpr Clock::duration kStartTimeout = 20s;
// From the end of input (or SIGTERM) to exit: flushing is quick, the bound is for the ASan build.
constexpr Clock::duration kExitTimeout = 60s;
// From a client's half-close to the engine closing its side of that connection.
constexpr Clock::duration kDrainTimeout = 30s;
// How long to wait for rows that the watermark should have released.
constexpr Clock::duration kRowsTimeout = 20s;
// Poll interval for files and child processes: short against the timeouts, long against a syscall.
constexpr Clock::duration kPollInterval = 10ms;

// Paths of the binaries under test: the builds next to this test binary
// (compile definitions from tests/CMakeLists.txt), unless SLUICE_IT_SLUICE_BIN
// or SLUICE_IT_SLUICE_GEN_BIN name others (e.g. to bisect with an older build).
const char* sluice_bin();
const char* sluice_gen_bin();

// ---------------------------------------------------------------------------
// Files

// A fresh directory under /tmp for one test. Removed on destruction unless the
// test has failed or SLUICE_IT_KEEP is set in the environment; then it is kept
// (and its path logged) for a look.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name
  std::string file(std::string_view name) const;

 private:
  std::string path_;
};

// A tmpfs of `bytes` bytes mounted on a fresh directory, for a real full disk.
// Mounting needs root (CAP_SYS_ADMIN); error() says why when it failed.
// Unmounted on destruction (declare it after the TempDir that holds it).
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& mount_point, size_t bytes);
  ~SmallTmpfs();
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
  std::string error_;
  bool mounted_ = false;
};

// Writes (truncates) a file; fails the test on error.
void write_file(const std::string& path, std::string_view content);
// Whole file, or "" when it does not exist.
std::string read_file(const std::string& path);
// The complete ('\n'-terminated) lines of `text`, without their '\n'. An
// unterminated tail is not returned; `tail` (if given) receives it.
std::vector<std::string> complete_lines(std::string_view text, std::string* tail = nullptr);

// A TOML basic string holding `s`.
std::string toml_string(std::string_view s);

// ---------------------------------------------------------------------------
// Child processes

struct ExitStatus {
  bool exited = false;  // false: killed by a signal
  int code = 0;         // exit code, or the signal number
  std::string describe() const;
};

// posix_spawn(argv[0], argv) with `actions`, the child starting with SIGTERM,
// SIGINT and SIGPIPE at their default dispositions and no signal blocked,
// whatever the test runner did to its own. Returns posix_spawn's result.
int spawn_with_default_signals(pid_t* pid, const std::vector<std::string>& argv,
                               const posix_spawn_file_actions_t* actions);

// One child process with stdin from /dev/null and stdout/stderr sent to files.
// The destructor kills (SIGKILL) and reaps a child that is still running.
class Process {
 public:
  Process() = default;
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (a path) with the given arguments. False (and a test failure) on error.
  bool start(const std::vector<std::string>& argv, const std::string& stdout_path,
             const std::string& stderr_path, const std::string& stdin_path = "/dev/null");
  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it when it has).
  bool running();
  void signal(int sig);
  // Waits up to `timeout`; nullopt if the child is still running then.
  std::optional<ExitStatus> wait_exit(Clock::duration timeout);
  // SIGKILL and reap (no-op if not running).
  void kill_and_reap();

 private:
  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
};

struct CommandResult {
  ExitStatus status;
  std::string out;
  std::string err;
};

// Runs a command to completion within `timeout` (killed and reported as a
// failure if it takes longer), capturing stdout and stderr via files in `dir`;
// its stdin is `input` (through a file) or /dev/null.
CommandResult run_command(const std::vector<std::string>& argv, const TempDir& dir,
                          Clock::duration timeout = kExitTimeout,
                          std::optional<std::string_view> input = std::nullopt);

// ---------------------------------------------------------------------------
// The sluice process

// `sluice run CONFIG` with its stdout and stderr in files of `dir`.
class SluiceRun {
 public:
  SluiceRun(const TempDir& dir, std::string config_path);

  bool start();
  // Waits (bounded) for the start-up log line and returns the port that TCP
  // source `source` is bound to. Fails the test on timeout or early exit.
  std::optional<uint16_t> wait_for_port(std::string_view source);
  // Waits (bounded) for the run to end by itself; success when it exited
  // with code 0. A run that does not end in time is killed.
  ::testing::AssertionResult exits_cleanly();
  // SIGTERM, then exits_cleanly().
  ::testing::AssertionResult terminates_cleanly();

  std::string stderr_text() const { return read_file(stderr_path_); }
  std::string stdout_text() const { return read_file(stdout_path_); }
  Process& process() { return process_; }

 private:
  std::string config_path_;
  std::string stdout_path_;
  std::string stderr_path_;
  Process process_;
};

// The counters of the engine's final log line.
struct RunSummary {
  uint64_t events_in = 0;
  uint64_t lines_in = 0;
  uint64_t rows_out = 0;
  std::map<std::string, uint64_t> dead_letters;  // reason -> count, every reason present
};

std::optional<RunSummary> parse_summary(std::string_view stderr_text);

// Lines of the engine's stderr that are warnings or errors (should be none in a clean run).
std::vector<std::string> warnings_and_errors(std::string_view stderr_text);

// Resident set size of a running process (VmRSS), in bytes; 0 if unknown.
uint64_t rss_bytes(pid_t pid);
// CPU seconds (user + system) a process has used so far.
double process_cpu_seconds(pid_t pid);
// Epoch seconds as RFC 3339 in UTC, whole seconds: "2024-03-27T10:00:00Z".
std::string rfc3339(int64_t epoch_s);

// The small pipeline many tests use: one source "in", events {"k":..,"ts":..}
// (ts in epoch seconds), a `count` aggregate "n" per key and window, a file
// sink "rows" and, if given, a dead-letter file.
struct CountPipeline {
  std::string pipeline_keys;     // lines of [pipeline], e.g. "shards = 2"
  std::string source_keys;       // lines of the source after its name: type, path/listen, ...
  std::string time_keys;         // more keys of [schema] time's inline table: ", future_limit = \"1h\""
  std::string window = "1m";
  std::string sink_path;
  std::string sink_keys;         // more lines of the sink
  std::string dead_letter_path;  // empty: dead letters go to stderr
  std::string more;              // more sections, e.g. "[metrics]\n..."
  std::string toml() const;
};
// source_keys for a file source reading `path`, and for a TCP source on any free port.
std::string file_source_keys(const std::string& path);
std::string tcp_source_keys();

// ---------------------------------------------------------------------------
// TCP

// A loopback client connection with TCP_NODELAY set.
class TcpClient {
 public:
  TcpClient() = default;
  ~TcpClient();
  TcpClient(TcpClient&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  // Returns "" on success, else what failed (no gtest assertions: callable from any thread).
  std::string connect(uint16_t port);
  // The address the engine sees for this peer, e.g. "127.0.0.1:51234".
  std::string local_address() const;
  std::string send_all(std::string_view data);
  // Sends `data` in writes of random size 1..write_bytes_max, sleeping 1 ms
  // after about one write in `sleep_every`, so the engine sees lines split at
  // arbitrary points.
  std::string send_chunked(std::string_view data, std::mt19937_64& rng,
                           size_t write_bytes_max = 300, unsigned sleep_every = 16);
  // shutdown(SHUT_WR), then reads until the engine closes its side (recv
  // returns 0), which it does once it has consumed everything sent.
  std::string finish(Clock::duration timeout = kDrainTimeout);
  // The socket, for tests that need raw calls (non-blocking sends, polls).
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// ---------------------------------------------------------------------------
// JSON (simdjson DOM), flattened to what the engine writes

struct Scalar {
  enum class Kind { null, boolean, integer, floating, string };
  Kind kind = Kind::null;
  int64_t i = 0;
  double f = 0;
  std::string s;  // unescaped
  bool b = false;

  static Scalar integer(int64_t v) { return Scalar{Kind::integer, v}; }
  static Scalar floating(double v) { return Scalar{Kind::floating, 0, v}; }
  static Scalar string(std::string v) { return Scalar{Kind::string, 0, 0, std::move(v)}; }
  std::string describe() const;
};

using JsonFields = std::vector<std::pair<std::string, Scalar>>;

// One JSON object whose values are all scalars, as (name, value) in document
// order. nullopt (and `error`) when the line is not such an object.
std::optional<JsonFields> parse_flat_object(std::string_view line, std::string* error);

// A JSON string literal holding `s` (for building input lines).
std::string json_string(std::string_view s);

// ---------------------------------------------------------------------------
// Dead-letter records

struct DeadLetterRecord {
  std::string reason;
  std::string detail;
  std::string source;
  std::string origin;
  std::string raw;  // decoded from raw_base64 when that was used
  bool raw_was_base64 = false;
  bool raw_truncated = false;
  uint64_t raw_bytes = 0;  // only when raw_truncated
};

std::optional<DeadLetterRecord> parse_dead_letter(std::string_view line, std::string* error);

using testing_util::base64_decode;

// ---------------------------------------------------------------------------
// Time, written independently of the engine's own code

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerS = 1'000'000'000;
constexpr int64_t kNsPerMin = 60 * kNsPerS;

// ns since the epoch of a UTC civil time.
int64_t utc_ns(int year, unsigned month, unsigned day, unsigned hour = 0, unsigned minute = 0,
               unsigned second = 0);
// floor(a / b) for b > 0.
constexpr int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0 && a < 0) ? 1 : 0);
}
// "YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]" in local time at `offset_minutes`
// from UTC, then "Z" (offset 0) or "+hh:mm"/"-hh:mm". `fraction_digits` is 0, 3,
// 6 or 9 and must be exact for `ns`; -1 picks the fewest that are exact.
std::string format_rfc3339(int64_t ns, int offset_minutes = 0, int fraction_digits = -1);
// Parses what format_rfc3339 writes (any fraction length, Z or an offset).
std::optional<int64_t> parse_rfc3339(std::string_view text);

}  // namespace sluice::integration
