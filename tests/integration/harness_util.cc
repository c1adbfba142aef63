#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace sluice::integration {

const char* sluice_bin() {
  const char* other = std::getenv("SLUICE_IT_SLUICE_BIN");
  return other != nullptr ? other : SLUICE_BIN;
}
const char* sluice_gen_bin() {
  const char* other = std::getenv("SLUICE_IT_SLUICE_GEN_BIN");
  return other != nullptr ? other : SLUICE_GEN_BIN;
}

namespace {
std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}
}  // namespace

// ---------------------------------------------------------------------------
// Files

TempDir::TempDir() {
  char tmpl[] = "/tmp/sluice-it-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    ADD_FAILURE() << errno_text("mkdtemp");
    return;
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (::testing::Test::HasFailure() || std::getenv("SLUICE_IT_KEEP") != nullptr) {
    std::fprintf(stderr, "[ harness  ] keeping %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

SmallTmpfs::SmallTmpfs(const std::string& mount_point, size_t bytes) : path_(mount_point) {
  std::error_code ec;
  std::filesystem::create_directories(path_, ec);
  const std::string options = "size=" + std::to_string(bytes) + ",mode=0777";
  if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, options.c_str()) != 0) {
    error_ = errno_text("mount tmpfs");
    return;
  }
  mounted_ = true;
}

SmallTmpfs::~SmallTmpfs() {
  if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
}

double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  std::string field;
  for (size_t i = close + 2; i <= stat.size(); ++i) {
    if (i == stat.size() || stat[i] == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field += stat[i];
    }
  }
  // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
  if (fields.size() < 13) return 0;
  return double(std::stoull(fields[11]) + std::stoull(fields[12])) / double(::sysconf(_SC_CLK_TCK));
}

std::string rfc3339(int64_t epoch_s) {
  std::time_t t = epoch_s;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

uint64_t rss_bytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

std::string CountPipeline::toml() const {
  std::string s;
  if (!pipeline_keys.empty()) s += "[pipeline]\n" + pipeline_keys + "\n\n";
  s += "[[sources]]\nname = \"in\"\n" + source_keys + "\n\n";
  s += "[schema]\nkey = [\"k\"]\ntime = { field = \"ts\", format = \"epoch_s\"" + time_keys + " }\n\n";
  s += "[window]\nsize = \"" + window + "\"\n\n";
  s += "[[aggregates]]\nname = \"n\"\nfn = \"count\"\n\n";
  s += "[[sinks]]\nname = \"rows\"\ntype = \"file\"\npath = " + toml_string(sink_path) + "\n" + sink_keys + "\n";
  if (!dead_letter_path.empty()) s += "[dead_letter]\npath = " + toml_string(dead_letter_path) + "\n\n";
  return s + more;
}

std::string file_source_keys(const std::string& path) {
  return "type = \"file\"\npath = " + toml_string(path);
}

std::string tcp_source_keys() { return "type = \"tcp\"\nlisten = \"127.0.0.1:0\""; }

void write_file(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), std::streamsize(content.size()));
  out.close();
  if (!out) ADD_FAILURE() << "cannot write " << path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> complete_lines(std::string_view text, std::string* tail) {
  std::vector<std::string> lines;
  size_t pos = 0;
  for (size_t nl; (nl = text.find('\n', pos)) != std::string_view::npos; pos = nl + 1) {
    lines.emplace_back(text.substr(pos, nl - pos));
  }
  if (tail != nullptr) *tail = std::string(text.substr(pos));
  return lines;
}

std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// ---------------------------------------------------------------------------
// Child processes

std::string ExitStatus::describe() const {
  return exited ? "exit code " + std::to_string(code) : "killed by signal " + std::to_string(code);
}

int spawn_with_default_signals(pid_t* pid, const std::vector<std::string>& argv,
                               const posix_spawn_file_actions_t* actions) {
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int sig : {SIGTERM, SIGINT, SIGPIPE}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int rc = posix_spawn(pid, args[0], actions, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  return rc;
}

Process::~Process() {
  kill_and_reap();
}

bool Process::start(const std::vector<std::string>& argv, const std::string& stdout_path,
                    const std::string& stderr_path, const std::string& stdin_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  int rc = spawn_with_default_signals(&pid_, argv, &actions);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    ADD_FAILURE() << "posix_spawn " << argv[0] << ": " << std::strerror(rc);
    return false;
  }
  status_.reset();
  return true;
}

bool Process::running() {
  if (pid_ < 0 || status_) return false;
  return !wait_exit(0s).has_value();
}

void Process::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<ExitStatus> Process::wait_exit(Clock::duration timeout) {
  if (status_) return status_;
  if (pid_ < 0) return std::nullopt;
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    int ws = 0;
    pid_t r = ::waitpid(pid_, &ws, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(ws) ? ExitStatus{true, WEXITSTATUS(ws)} : ExitStatus{false, WTERMSIG(ws)};
      return status_;
    }
    if (r < 0 && errno != EINTR) {
      ADD_FAILURE() << errno_text("waitpid");
      status_ = ExitStatus{false, 0};
      return status_;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(kPollInterval);
  }
}

void Process::kill_and_reap() {
  if (pid_ < 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int ws = 0;
  while (::waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
  }
  status_ = ExitStatus{false, SIGKILL};
}

CommandResult run_command(const std::vector<std::string>& argv, const TempDir& dir,
                          Clock::duration timeout, std::optional<std::string_view> input) {
  static int counter = 0;
  const std::string base = dir.file("cmd" + std::to_string(++counter));
  std::string stdin_path = "/dev/null";
  if (input) {
    stdin_path = base + ".in";
    write_file(stdin_path, *input);
  }
  Process p;
  CommandResult result;
  result.status = ExitStatus{false, -1};
  if (!p.start(argv, base + ".out", base + ".err", stdin_path)) return result;
  if (auto st = p.wait_exit(timeout)) {
    result.status = *st;
  } else {
    p.kill_and_reap();
    ADD_FAILURE() << argv[0] << " did not exit within the timeout";
  }
  result.out = read_file(base + ".out");
  result.err = read_file(base + ".err");
  return result;
}

// ---------------------------------------------------------------------------
// The sluice process

SluiceRun::SluiceRun(const TempDir& dir, std::string config_path)
    : config_path_(std::move(config_path)),
      stdout_path_(dir.file("sluice.stdout")),
      stderr_path_(dir.file("sluice.stderr")) {}

bool SluiceRun::start() {
  return process_.start({sluice_bin(), "run", config_path_}, stdout_path_, stderr_path_);
}

std::optional<uint16_t> SluiceRun::wait_for_port(std::string_view source) {
  // "sluice info: pipeline "x": starting; ... sources: pos (tcp 127.0.0.1:41234), ...; sinks: ..."
  const std::regex address("[:,] " + std::string(source) + R"( \(tcp ([^ )]+):([0-9]+)\))");
  const Clock::time_point deadline = Clock::now() + kStartTimeout;
  for (;;) {
    for (const std::string& line : complete_lines(stderr_text())) {
      if (line.find(": starting;") == std::string::npos) continue;
      std::smatch m;
      if (!std::regex_search(line, m, address)) {
        ADD_FAILURE() << "no TCP address for source " << source << " in: " << line;
        return std::nullopt;
      }
      return uint16_t(std::stoul(m[2].str()));
    }
    if (!process_.running()) {
      ADD_FAILURE() << "sluice exited before it started listening ("
                    << process_.wait_exit(0s)->describe() << "); stderr:\n"
                    << stderr_text();
      return std::nullopt;
    }
    if (Clock::now() >= deadline) {
      ADD_FAILURE() << "no start-up line within the timeout; stderr:\n" << stderr_text();
      return std::nullopt;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

::testing::AssertionResult SluiceRun::terminates_cleanly() {
  process_.signal(SIGTERM);
  return exits_cleanly();
}

::testing::AssertionResult SluiceRun::exits_cleanly() {
  std::optional<ExitStatus> status = process_.wait_exit(kExitTimeout);
  if (!status) {
    process_.kill_and_reap();
    return ::testing::AssertionFailure() << "sluice did not exit within the timeout; stderr:\n"
                                         << stderr_text();
  }
  if (!status->exited || status->code != 0) {
    return ::testing::AssertionFailure()
           << "sluice ended with " << status->describe() << "; stderr:\n"
           << stderr_text();
  }
  return ::testing::AssertionSuccess();
}

std::optional<RunSummary> parse_summary(std::string_view stderr_text) {
  // "... done in 0.006 s: 3 events in (7 lines, 0.0 MB), 3 rows out, 2 windows;
  //  dead letters: parse_error=1 schema_error=2 line_too_long=0 late=1 partial_line=0; ..."
  static const std::regex counts(
      R"(done in [0-9.]+ s: ([0-9]+) events in \(([0-9]+) lines, [0-9.]+ MB\), ([0-9]+) rows out, )"
      R"([0-9]+ windows?; dead letters: ([a-z_=0-9 ]+);)");
  static const std::regex reason(R"(([a-z_]+)=([0-9]+))");
  for (const std::string& line : complete_lines(stderr_text)) {
    std::smatch m;
    if (!std::regex_search(line, m, counts)) continue;
    RunSummary s;
    s.events_in = std::stoull(m[1].str());
    s.lines_in = std::stoull(m[2].str());
    s.rows_out = std::stoull(m[3].str());
    const std::string reasons = m[4].str();
    for (std::sregex_iterator it(reasons.begin(), reasons.end(), reason), end; it != end; ++it) {
      s.dead_letters[(*it)[1].str()] = std::stoull((*it)[2].str());
    }
    return s;
  }
  return std::nullopt;
}

std::vector<std::string> warnings_and_errors(std::string_view stderr_text) {
  std::vector<std::string> out;
  for (const std::string& line : complete_lines(stderr_text)) {
    if (line.starts_with("sluice warn:") || line.starts_with("sluice error:") ||
        line.find("Sanitizer") != std::string::npos ||
        line.find("runtime error:") != std::string::npos) {
      out.push_back(line);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// TCP

TcpClient::~TcpClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::string TcpClient::connect(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return errno_text("socket");
  int one = 1;
  if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    return errno_text("TCP_NODELAY");
  }
  // A blocked send (back-pressure) must not outlast the drain bound.
  timeval tv{std::chrono::duration_cast<std::chrono::seconds>(kDrainTimeout).count(), 0};
  if (::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return errno_text("SO_SNDTIMEO");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return errno_text("connect");
  }
  return {};
}

std::string TcpClient::local_address() const {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET_ADDRSTRLEN] = "?";
  ::inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(addr.sin_port));
}

std::string TcpClient::send_all(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_text("send");
    }
    data.remove_prefix(size_t(n));
  }
  return {};
}

std::string TcpClient::send_chunked(std::string_view data, std::mt19937_64& rng,
                                    size_t write_bytes_max, unsigned sleep_every) {
  std::uniform_int_distribution<size_t> size(1, write_bytes_max);
  std::uniform_int_distribution<unsigned> pause(1, sleep_every);
  while (!data.empty()) {
    size_t n = std::min(size(rng), data.size());
    if (std::string err = send_all(data.substr(0, n)); !err.empty()) return err;
    data.remove_prefix(n);
    if (pause(rng) == 1) std::this_thread::sleep_for(1ms);
  }
  return {};
}

std::string TcpClient::finish(Clock::duration timeout) {
  if (::shutdown(fd_, SHUT_WR) != 0) return errno_text("shutdown");
  const Clock::time_point deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return "the engine did not close the connection within the timeout";
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, int(left.count()));
    if (r < 0 && errno != EINTR) return errno_text("poll");
    if (r <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return {};
    if (n < 0 && errno != EINTR) return errno_text("recv");
    // The engine never writes to a source connection; anything read is ignored.
  }
}

// ---------------------------------------------------------------------------
// JSON

std::string Scalar::describe() const {
  switch (kind) {
    case Kind::null:
      return "null";
    case Kind::boolean:
      return b ? "true" : "false";
    case Kind::integer:
      return std::to_string(i) + " (int)";
    case Kind::floating: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g (float)", f);
      return buf;
    }
    case Kind::string:
      return json_string(s);
  }
  return "?";
}

std::optional<JsonFields> parse_flat_object(std::string_view line, std::string* error) {
  using simdjson::dom::element_type;
  thread_local simdjson::dom::parser parser;
  simdjson::padded_string padded(line);
  simdjson::dom::element root;
  if (auto err = parser.parse(padded).get(root); err) {
    *error = std::string("not JSON: ") + simdjson::error_message(err);
    return std::nullopt;
  }
  simdjson::dom::object object;
  if (root.get_object().get(object) != simdjson::SUCCESS) {
    *error = "not a JSON object";
    return std::nullopt;
  }
  JsonFields fields;
  for (simdjson::dom::key_value_pair kv : object) {
    Scalar v;
    switch (kv.value.type()) {
      case element_type::INT64:
        v = Scalar::integer(int64_t(kv.value));
        break;
      case element_type::DOUBLE:
        v = Scalar::floating(double(kv.value));
        break;
      case element_type::STRING:
        v = Scalar::string(std::string(std::string_view(kv.value)));
        break;
      case element_type::BOOL:
        v.kind = Scalar::Kind::boolean;
        v.b = bool(kv.value);
        break;
      case element_type::NULL_VALUE:
        break;
      case element_type::UINT64:
      case element_type::ARRAY:
      case element_type::OBJECT:
        *error =
            "field \"" + std::string(kv.key) + "\" is not an int64, float, string, bool or null";
        return std::nullopt;
    }
    fields.emplace_back(std::string(kv.key), std::move(v));
  }
  return fields;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

// ---------------------------------------------------------------------------
// Dead-letter records


std::optional<DeadLetterRecord> parse_dead_letter(std::string_view line, std::string* error) {
  auto fields = parse_flat_object(line, error);
  if (!fields) return std::nullopt;
  DeadLetterRecord d;
  bool have_raw = false;
  for (auto& [name, v] : *fields) {
    auto text = [&](std::string& out) {
      if (v.kind != Scalar::Kind::string) {
        *error = "\"" + name + "\" is not a string";
        return false;
      }
      out = v.s;
      return true;
    };
    if (name == "reason") {
      if (!text(d.reason)) return std::nullopt;
    } else if (name == "detail") {
      if (!text(d.detail)) return std::nullopt;
    } else if (name == "source") {
      if (!text(d.source)) return std::nullopt;
    } else if (name == "origin") {
      if (!text(d.origin)) return std::nullopt;
    } else if (name == "raw") {
      if (have_raw || !text(d.raw)) return std::nullopt;
      have_raw = true;
    } else if (name == "raw_base64") {
      std::string b64;
      if (have_raw || !text(b64)) return std::nullopt;
      auto raw = base64_decode(b64);
      if (!raw) {
        *error = "raw_base64 is not base64";
        return std::nullopt;
      }
      d.raw = std::move(*raw);
      d.raw_was_base64 = true;
      have_raw = true;
    } else if (name == "raw_truncated") {
      if (v.kind != Scalar::Kind::boolean) {
        *error = "raw_truncated is not a boolean";
        return std::nullopt;
      }
      d.raw_truncated = v.b;
    } else if (name == "raw_bytes") {
      if (v.kind != Scalar::Kind::integer || v.i < 0) {
        *error = "raw_bytes is not a count";
        return std::nullopt;
      }
      d.raw_bytes = uint64_t(v.i);
    } else {
      *error = "unexpected field \"" + name + "\"";
      return std::nullopt;
    }
  }
  if (d.reason.empty() || !have_raw) {
    *error = "reason or raw missing";
    return std::nullopt;
  }
  return d;
}

// ---------------------------------------------------------------------------
// Time

int64_t utc_ns(int year, unsigned month, unsigned day, unsigned hour, unsigned minute,
               unsigned second) {
  using namespace std::chrono;
  const sys_days date = std::chrono::year{year} / std::chrono::month{month} / std::chrono::day{day};
  const int64_t seconds =
      int64_t(date.time_since_epoch().count()) * 86400 + hour * 3600 + minute * 60 + second;
  return seconds * kNsPerS;
}

std::string format_rfc3339(int64_t ns, int offset_minutes, int fraction_digits) {
  using namespace std::chrono;
  const int64_t local = ns + int64_t(offset_minutes) * 60 * kNsPerS;
  const int64_t secs = floor_div(local, kNsPerS);
  const int64_t frac = local - secs * kNsPerS;
  const int64_t day_count = floor_div(secs, 86400);
  const int64_t second_of_day = secs - day_count * 86400;
  const year_month_day ymd{sys_days{days{day_count}}};
  char buf[96];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", int(ymd.year()),
                        unsigned(ymd.month()), unsigned(ymd.day()), int(second_of_day / 3600),
                        int(second_of_day / 60 % 60), int(second_of_day % 60));
  std::string out(buf, size_t(n));
  if (fraction_digits < 0) {
    fraction_digits = frac == 0 ? 0 : frac % 1'000'000 == 0 ? 3 : frac % 1'000 == 0 ? 6 : 9;
  }
  if (fraction_digits > 0) {
    int64_t unit = 1;
    for (int d = fraction_digits; d < 9; ++d) unit *= 10;
    std::snprintf(buf, sizeof buf, ".%0*lld", fraction_digits, static_cast<long long>(frac / unit));
    out += buf;
  }
  if (offset_minutes == 0) return out + "Z";
  const int a = std::abs(offset_minutes);
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset_minutes < 0 ? '-' : '+', a / 60, a % 60);
  return out + buf;
}

std::optional<int64_t> parse_rfc3339(std::string_view t) {
  auto number = [&](size_t pos, size_t len) -> std::optional<int> {
    if (pos + len > t.size()) return std::nullopt;
    int v = 0;
    auto [p, ec] = std::from_chars(t.data() + pos, t.data() + pos + len, v);
    if (ec != std::errc() || p != t.data() + pos + len) return std::nullopt;
    return v;
  };
  auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
  auto hour = number(11, 2), minute = number(14, 2), second = number(17, 2);
  if (!year || !month || !day || !hour || !minute || !second || t.size() < 20 || t[4] != '-' ||
      t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' || t[16] != ':') {
    return std::nullopt;
  }
  int64_t ns = utc_ns(*year, unsigned(*month), unsigned(*day), unsigned(*hour), unsigned(*minute),
                      unsigned(*second));
  size_t pos = 19;
  if (t[pos] == '.') {
    int64_t scale = 100'000'000;
    for (++pos; pos < t.size() && t[pos] >= '0' && t[pos] <= '9'; ++pos) {
      ns += (t[pos] - '0') * scale;
      scale /= 10;
    }
  }
  if (pos + 1 == t.size() && (t[pos] == 'Z' || t[pos] == 'z')) return ns;
  if (pos + 6 != t.size() || (t[pos] != '+' && t[pos] != '-') || t[pos + 3] != ':') {
    return std::nullopt;
  }
  auto oh = number(pos + 1, 2), om = number(pos + 4, 2);
  if (!oh || !om) return std::nullopt;
  const int64_t offset = (int64_t(*oh) * 60 + *om) * 60 * kNsPerS;
  return t[pos] == '+' ? ns - offset : ns + offset;
}

}  // namespace sluice::integration
