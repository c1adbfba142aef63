#include "tests/integration/kafka_peers.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <thread>

extern char** environ;

namespace sluice::integration {

namespace {

bool executable(const std::string& path) {
  return !path.empty() && ::access(path.c_str(), X_OK) == 0 &&
         std::filesystem::is_regular_file(path);
}

// The first `name` on PATH, or "".
std::string on_path(std::string_view name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::string_view dirs(path);
  while (!dirs.empty()) {
    size_t colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    dirs.remove_prefix(colon == std::string_view::npos ? dirs.size() : colon + 1);
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + std::string(name);
    if (executable(candidate)) return candidate;
  }
  return {};
}

// The directory of the sluice binary under test: the peer tools are built there.
std::string tools_dir() {
  return std::filesystem::path(SLUICE_BIN).parent_path().string();
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? std::string(sep) : "") + parts[i];
  return out;
}

std::string lines_file(const TempDir& dir, std::string_view stem,
                       const std::vector<std::string>& lines) {
  static int counter = 0;
  const std::string path = dir.file(fmt::format("{}-{}.ndjson", stem, ++counter));
  std::string text;
  for (const std::string& l : lines) text += l + "\n";
  write_file(path, text);
  return path;
}

}  // namespace

// A peer command's result as an assertion: exit 0, or the command and its output.
::testing::AssertionResult command_ok(const std::vector<std::string>& argv,
                                      const CommandResult& r) {
  if (r.status.exited && r.status.code == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << join(argv, " ") << ": " << r.status.describe() << "\nstdout:\n"
         << r.out.substr(0, 4000) << "\nstderr:\n"
         << r.err.substr(0, 4000);
}

// ---------------------------------------------------------------------------
// Where the peers are

::testing::AssertionResult locate_kafka_peers(KafkaPeers& out, bool need_kafkajs) {
  std::vector<std::string> missing;
  out.mock = tools_dir() + "/sluice-kafka-mock";
  out.produce = tools_dir() + "/sluice-kafka-produce";
  for (const std::string* tool : {&out.mock, &out.produce}) {
    if (!executable(*tool)) {
      missing.push_back(
          *tool +
          " is not built (needs librdkafka-dev: scripts/install-deps.sh; then "
          "cmake --build <build dir> --target sluice-kafka-mock sluice-kafka-produce)");
    }
  }
  out.kcat = on_path("kcat");
  if (out.kcat.empty()) missing.push_back("kcat is not on PATH (apt-get install kcat)");
  if (need_kafkajs) {
    out.node = on_path("node");
    if (out.node.empty()) missing.push_back("node is not on PATH (apt-get install nodejs npm)");
    const std::string dir = std::string(SLUICE_SOURCE_DIR) + "/tests/peers/kafkajs";
    out.kafkajs = dir + "/produce.js";
    if (!std::filesystem::is_regular_file(dir + "/node_modules/kafkajs/package.json")) {
      missing.push_back("the kafkajs peer is not installed in " + dir +
                        " (run scripts/kafka-peers.sh)");
    }
  }
  if (missing.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "Kafka test peers missing (they are required, not "
                                          "optional; see tests/peers/README.md):\n  "
                                       << join(missing, "\n  ");
}

// ---------------------------------------------------------------------------
// The mock broker

KafkaMock::~KafkaMock() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);  // stdin EOF: the mock exits 0
  if (pid_ > 0) {
    // It exits at once; a short bound, then SIGKILL.
    const Clock::time_point deadline = Clock::now() + 5s;
    int ws = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &ws, WNOHANG);
      if (r == pid_ || (r < 0 && errno != EINTR)) break;
      if (Clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        while (::waitpid(pid_, &ws, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }
  if (fd_ >= 0) ::close(fd_);
}

::testing::AssertionResult KafkaMock::start(const KafkaPeers& peers, const TempDir& dir,
                                            const std::vector<std::string>& args) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return ::testing::AssertionFailure() << "socketpair: " << std::strerror(errno);
  }
  stderr_path_ = dir.file("mock.stderr");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sv[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, sv[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path_.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv = {peers.mock};
  argv.insert(argv.end(), args.begin(), args.end());
  int rc = spawn_with_default_signals(&pid_, argv, &actions);
  posix_spawn_file_actions_destroy(&actions);
  ::close(sv[1]);
  fd_ = sv[0];
  if (rc != 0) {
    pid_ = -1;
    return ::testing::AssertionFailure()
           << "posix_spawn " << peers.mock << ": " << std::strerror(rc);
  }
  std::optional<std::string> first = read_line(kStartTimeout);
  if (!first || !first->starts_with("bootstrap ")) {
    return ::testing::AssertionFailure() << join(argv, " ") << ": no \"bootstrap ...\" line (got \""
                                         << first.value_or("nothing") << "\"); stderr:\n"
                                         << stderr_text();
  }
  bootstrap_ = first->substr(std::strlen("bootstrap "));
  brokers_ = split_brokers(bootstrap_);
  return ::testing::AssertionSuccess();
}

std::optional<std::string> KafkaMock::read_line(Clock::duration timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    if (size_t nl = in_.find('\n'); nl != std::string::npos) {
      std::string line = in_.substr(0, nl);
      in_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, int(left.count()));
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return std::nullopt;  // the mock is gone
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    in_.append(buf, size_t(n));
  }
}

std::string KafkaMock::command(std::string_view line) {
  std::string text = std::string(line) + "\n";
  for (std::string_view rest(text); !rest.empty();) {
    ssize_t n = ::send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::string("(cannot send: ") + std::strerror(errno) + ")";
    }
    rest.remove_prefix(size_t(n));
  }
  return read_line(kMockReplyTimeout).value_or("(no answer)");
}

::testing::AssertionResult KafkaMock::ok(std::string_view line) {
  std::string reply = command(line);
  if (reply == "ok") return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "mock command \"" << line << "\" answered \"" << reply << "\"; mock stderr:\n"
         << stderr_text();
}

// ---------------------------------------------------------------------------
// Producing

::testing::AssertionResult kcat_produce(const KafkaPeers& peers, const TempDir& dir,
                                        const std::string& bootstrap, const KcatProduce& how,
                                        const std::vector<OutRecord>& records) {
  std::vector<std::string> lines;
  for (const OutRecord& r : records) {
    if (r.value.find('\n') != std::string::npos) {
      return ::testing::AssertionFailure() << "kcat cannot send a value with a newline";
    }
    if (!how.keyed) {
      lines.push_back(r.value);
    } else if (r.key) {
      if (r.key->find_first_of("\t\n") != std::string::npos) {
        return ::testing::AssertionFailure() << "kcat cannot send a key with a tab or newline";
      }
      lines.push_back(*r.key + "\t" + r.value);
    } else {
      // No delimiter in the line: kcat sends a null key and the whole line.
      if (r.value.find('\t') != std::string::npos) {
        return ::testing::AssertionFailure() << "a keyless kcat line must not hold a tab";
      }
      lines.push_back(r.value);
    }
  }
  std::vector<std::string> argv = {peers.kcat, "-P",
                                   "-b",       bootstrap,
                                   "-t",       how.topic,
                                   "-p",       std::to_string(how.partition),
                                   "-X",       "compression.codec=" + how.codec};
  if (how.keyed) argv.insert(argv.end(), {"-K", "\t"});
  for (const std::string& h : how.headers) argv.insert(argv.end(), {"-H", h});
  for (const std::string& x : how.librdkafka_props) argv.insert(argv.end(), {"-X", x});
  argv.insert(argv.end(), {"-l", lines_file(dir, "kcat", lines)});
  return command_ok(argv, run_command(argv, dir, kPeerTimeout));
}

::testing::AssertionResult tool_produce(const KafkaPeers& peers, const TempDir& dir,
                                        const std::string& bootstrap, const ToolProduce& how,
                                        const std::vector<std::string>& values) {
  std::vector<std::string> argv = {
      peers.produce, "-q",      "-b", bootstrap,
      "-t",          how.topic, "-p", std::to_string(how.partition),
      "--codec",     how.codec, "-f", lines_file(dir, "produce", values)};
  if (!how.key_field.empty()) argv.insert(argv.end(), {"--key-field", how.key_field});
  for (const std::string& h : how.headers) argv.insert(argv.end(), {"-H", h});
  argv.insert(argv.end(), how.extra_args.begin(), how.extra_args.end());
  return command_ok(argv, run_command(argv, dir, kPeerTimeout));
}

::testing::AssertionResult kafkajs_produce(const KafkaPeers& peers, const TempDir& dir,
                                           const std::string& bootstrap, const ToolProduce& how,
                                           const std::vector<std::string>& values) {
  std::vector<std::string> argv = {
      peers.node, peers.kafkajs, "--brokers",   bootstrap,
      "--topic",  how.topic,     "--partition", std::to_string(how.partition),
      "--codec",  how.codec,     "--file",      lines_file(dir, "kafkajs", values)};
  if (!how.key_field.empty()) argv.insert(argv.end(), {"--key-field", how.key_field});
  for (const std::string& h : how.headers) argv.insert(argv.end(), {"--header", h});
  argv.insert(argv.end(), how.extra_args.begin(), how.extra_args.end());
  return command_ok(argv, run_command(argv, dir, kPeerTimeout));
}

// ---------------------------------------------------------------------------
// Consuming with kcat

std::vector<InRecord> kcat_consume(const KafkaPeers& peers, const TempDir& dir,
                                   const std::string& bootstrap, const std::string& topic) {
  // A header line with the lengths, then the key and value bytes: any byte
  // in a key or value is read back exactly.
  const std::vector<std::string> argv = {peers.kcat, "-C",  "-b", bootstrap,
                                         "-t",       topic, "-o", "beginning",
                                         "-e",       "-q",  "-f", "%p %o %T %K %S\n%k%s\n"};
  CommandResult r = run_command(argv, dir, kPeerTimeout);
  std::vector<InRecord> out;
  if (auto ok = command_ok(argv, r); !ok) {
    ADD_FAILURE() << ok.message();
    return out;
  }
  std::string_view text = r.out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      ADD_FAILURE() << "kcat output ends in a header line: " << text.substr(0, 200);
      return {};
    }
    const std::string header(text.substr(0, nl));
    text.remove_prefix(nl + 1);
    InRecord rec;
    long long key_len = 0, value_len = 0;
    long long partition = 0, offset = 0, ts = 0;
    if (std::sscanf(header.c_str(), "%lld %lld %lld %lld %lld", &partition, &offset, &ts, &key_len,
                    &value_len) != 5 ||
        size_t(std::max(key_len, 0LL) + std::max(value_len, 0LL)) + 1 > text.size()) {
      ADD_FAILURE() << "cannot parse kcat output at: " << header;
      return {};
    }
    rec.partition = int32_t(partition);
    rec.offset = offset;
    rec.timestamp_ms = ts;
    if (key_len >= 0) rec.key = std::string(text.substr(0, size_t(key_len)));
    text.remove_prefix(size_t(std::max(key_len, 0LL)));
    if (value_len >= 0) rec.value = std::string(text.substr(0, size_t(value_len)));
    text.remove_prefix(size_t(std::max(value_len, 0LL)));
    if (text.empty() || text[0] != '\n') {
      ADD_FAILURE() << "kcat record not followed by a newline at: " << header;
      return {};
    }
    text.remove_prefix(1);
    out.push_back(std::move(rec));
  }
  std::sort(out.begin(), out.end(), [](const InRecord& a, const InRecord& b) {
    return std::pair(a.partition, a.offset) < std::pair(b.partition, b.offset);
  });
  return out;
}

std::map<std::pair<int32_t, int64_t>, std::string> kcat_consume_headers(const KafkaPeers& peers,
                                                                        const TempDir& dir,
                                                                        const std::string& bootstrap,
                                                                        const std::string& topic) {
  const std::vector<std::string> argv = {peers.kcat, "-C",  "-b", bootstrap, "-t", topic,
                                         "-o",       "beginning", "-e", "-q", "-f", "%p %o %h\n"};
  CommandResult r = run_command(argv, dir, kPeerTimeout);
  std::map<std::pair<int32_t, int64_t>, std::string> out;
  if (auto ok = command_ok(argv, r); !ok) {
    ADD_FAILURE() << ok.message();
    return out;
  }
  for (const std::string& line : complete_lines(r.out)) {
    long long partition = 0, offset = 0;
    int used = 0;
    if (std::sscanf(line.c_str(), "%lld %lld%n", &partition, &offset, &used) != 2) {
      ADD_FAILURE() << "cannot parse kcat output: " << line;
      return {};
    }
    // "%h" after one space; a record without headers prints nothing.
    out[{int32_t(partition), offset}] = size_t(used) < line.size() ? line.substr(size_t(used) + 1) : "";
  }
  return out;
}

std::vector<InRecord> records_of(const std::vector<InRecord>& all, int32_t partition) {
  std::vector<InRecord> out;
  for (const InRecord& r : all) {
    if (r.partition == partition) out.push_back(r);
  }
  return out;
}

::testing::AssertionResult partition_holds(const std::vector<InRecord>& all, int32_t partition,
                                           const std::vector<std::string>& values) {
  const std::vector<InRecord> got = records_of(all, partition);
  if (got.size() != values.size()) {
    return ::testing::AssertionFailure() << "partition " << partition << " holds " << got.size()
                                         << " records, " << values.size() << " were produced";
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i].offset != int64_t(i)) {
      return ::testing::AssertionFailure()
             << "partition " << partition << ": record " << i << " is at offset " << got[i].offset;
    }
    if (got[i].value != values[i]) {
      return ::testing::AssertionFailure()
             << "partition " << partition << " offset " << i << " holds "
             << json_string(got[i].value.value_or("(null)")) << ", produced "
             << json_string(values[i]);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// Sluice with a Kafka source

std::vector<std::string> split_brokers(const std::string& bootstrap) {
  std::vector<std::string> out;
  std::string_view rest(bootstrap);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    out.emplace_back(rest.substr(0, comma));
    rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
  }
  return out;
}

std::string kafka_pipeline_toml(const PipelineSpec& spec, const KafkaSourceToml& source,
                                uint32_t shards, const TempDir& dir) {
  std::vector<std::string> brokers;
  for (const std::string& b : source.brokers) brokers.push_back(toml_string(b));
  return fmt::format(R"([pipeline]
name = "kafka-test"
shards = {}

[[sources]]
name = {}
type = "kafka"
brokers = [{}]
topic = {}
start = {}
stop = {}
offset_reset = {}
max_wait = {}
format = "ndjson"
line_bytes_max = {}

{}
[[sinks]]
name = "rows"
type = "file"
path = {}
format = "ndjson"
flush_interval = "20ms"

[dead_letter]
path = {}
)",
                     shards, toml_string(source.name), join(brokers, ", "),
                     toml_string(source.topic), toml_string(source.start), toml_string(source.stop),
                     toml_string(source.offset_reset), toml_string(source.max_wait),
                     source.line_bytes_max, spec.toml(), toml_string(dir.file("rows.ndjson")),
                     toml_string(dir.file("dead.ndjson")));
}

std::string kafka_origin(const std::string& topic, int32_t partition, int64_t offset) {
  return fmt::format("{}/{}@{}", topic, partition, offset);
}

std::map<int32_t, int64_t> logged_next_offsets(std::string_view stderr_text,
                                               const std::string& topic) {
  // "sluice info: source sales: partition T/2: next offset 57 (high watermark 57)"
  const std::regex line(": partition " + topic + R"(/([0-9]+): next offset (-?[0-9]+))");
  std::map<int32_t, int64_t> out;
  for (const std::string& l : complete_lines(stderr_text)) {
    std::smatch m;
    if (!std::regex_search(l, m, line)) continue;
    const int32_t p = int32_t(std::stol(m[1].str()));
    if (out.contains(p)) ADD_FAILURE() << "partition " << p << " logged twice: " << l;
    out[p] = std::stoll(m[2].str());
  }
  return out;
}

void expect_kafka_output(const PipelineSpec& spec, const ExpectedRun& expected, const TempDir& dir,
                         const std::string& stderr_text,
                         const std::vector<std::string>& allowed_warnings) {
  std::string tail;
  const std::vector<std::string> lines = complete_lines(read_file(dir.file("rows.ndjson")), &tail);
  EXPECT_EQ(tail, "") << "the rows file does not end with a newline";
  const std::vector<Row> rows = parse_ndjson_rows(spec, lines);
  EXPECT_TRUE(same_rows(expected.rows, rows));
  EXPECT_TRUE(windows_ascending(rows));

  const std::vector<std::string> dl_lines =
      complete_lines(read_file(dir.file("dead.ndjson")), &tail);
  EXPECT_EQ(tail, "") << "the dead-letter file does not end with a newline";
  EXPECT_TRUE(same_dead_letters(expected.dead_letters, dl_lines, expected.source));

  std::map<std::string, uint64_t> reasons = {{"parse_error", 0},   {"schema_error", 0},
                                             {"line_too_long", 0}, {"late", 0},
                                             {"partial_line", 0},  {"corrupt_batch", 0},
                                             {"future", 0}};
  for (const ExpectedDeadLetter& d : expected.dead_letters) ++reasons[d.reason];
  auto summary = parse_summary(stderr_text);
  ASSERT_TRUE(summary) << "no summary line in stderr:\n" << stderr_text;
  EXPECT_EQ(summary->events_in, expected.events_in) << "events counted";
  EXPECT_EQ(summary->lines_in, expected.lines_in) << "records counted";
  EXPECT_EQ(summary->rows_out, expected.rows.size());
  EXPECT_EQ(summary->dead_letters, reasons);

  std::vector<std::string> unexpected;
  for (const std::string& l : warnings_and_errors(stderr_text)) {
    const bool allowed =
        l.starts_with("sluice warn:") &&
        std::any_of(allowed_warnings.begin(), allowed_warnings.end(),
                    [&](const std::string& a) { return l.find(a) != std::string::npos; });
    if (!allowed) unexpected.push_back(l);
  }
  EXPECT_EQ(unexpected, std::vector<std::string>{}) << "stderr:\n" << stderr_text;
}

std::vector<bool> feed_partition(ReferenceModel& model, const std::string& topic, int32_t partition,
                                 const std::vector<InputLine>& lines, ExpectedRun& expected,
                                 int64_t first_offset) {
  // Blank lines are not records: offsets count only the others.
  std::vector<int64_t> offset_of(lines.size(), -1);
  int64_t next = first_offset;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].kind != InputLine::Kind::blank) offset_of[i] = next++;
  }
  auto origin = [&](size_t i) { return kafka_origin(topic, partition, offset_of[i]); };
  return feed_lines(model, partition, lines, origin, expected);
}

std::vector<std::string> values_of(const std::vector<InputLine>& lines) {
  std::vector<std::string> out;
  for (const InputLine& l : lines) {
    if (l.kind != InputLine::Kind::blank) out.push_back(l.text);
  }
  return out;
}

::testing::AssertionResult wait_for_log(SluiceRun& run, std::string_view text,
                                        Clock::duration timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    if (run.stderr_text().find(text) != std::string::npos) return ::testing::AssertionSuccess();
    if (!run.process().running()) {
      if (run.stderr_text().find(text) != std::string::npos) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure()
             << "sluice ended without logging \"" << text << "\"; stderr:\n"
             << run.stderr_text();
    }
    if (Clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "sluice did not log \"" << text << "\" within the timeout; stderr:\n"
             << run.stderr_text();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

::testing::AssertionResult wait_for_rows(SluiceRun& run, const TempDir& dir, size_t count,
                                         std::vector<std::string>& lines) {
  const Clock::time_point deadline = Clock::now() + kRowsTimeout;
  while ((lines = complete_lines(read_file(dir.file("rows.ndjson")))).size() < count) {
    if (!run.process().running()) {
      return ::testing::AssertionFailure() << "sluice exited with " << lines.size() << " of "
                                           << count << " rows written; stderr:\n"
                                           << run.stderr_text();
    }
    if (Clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "only " << lines.size() << " of " << count << " rows written within the timeout";
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// Test data

std::vector<InputLine> sales_segment(const PipelineSpec& spec, std::mt19937_64& rng,
                                     const SegmentShape& shape, size_t& next_bad) {
  auto ms_between = [&](int64_t lo, int64_t hi) {  // a whole-ms time in [lo, hi]
    return std::uniform_int_distribution<int64_t>(floor_div(lo, kNsPerMs),
                                                  floor_div(hi, kNsPerMs))(rng) *
           kNsPerMs;
  };
  const int64_t span = shape.to_ns - shape.from_ns;
  std::vector<InputLine> lines;
  for (int i = 0; i < shape.events; ++i) {
    const int64_t t = shape.from_ns + span * i / shape.events;
    const Event e = random_sales_event(rng, ms_between(t - shape.jitter_ns, t));
    lines.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
  }
  auto insert_in_second_half = [&](InputLine line) {
    const size_t at = std::uniform_int_distribution<size_t>(lines.size() / 2, lines.size())(rng);
    lines.insert(lines.begin() + std::ptrdiff_t(at), std::move(line));
  };
  for (int i = 0; i < shape.late; ++i) {
    const Event e = random_sales_event(rng, ms_between(shape.from_ns, shape.from_ns + span / 4));
    insert_in_second_half(InputLine::of_event(e, event_line(spec, e, rng)));
  }
  const std::vector<BadLine> catalogue =
      sales_bad_lines(spec, random_sales_event(rng, shape.from_ns));
  for (int i = 0; i < shape.bad;) {
    const BadLine& b = catalogue[next_bad++ % catalogue.size()];
    if (shape.json_only &&
        (b.reason != "schema_error" || !simdjson::validate_utf8(b.text.data(), b.text.size()))) {
      continue;
    }
    const size_t at = std::uniform_int_distribution<size_t>(0, lines.size())(rng);
    lines.insert(lines.begin() + std::ptrdiff_t(at), InputLine::bad(b.text, b.reason));
    ++i;
  }
  for (int i = 0; i < shape.too_long; ++i) {
    // Ahead of everything: it must not matter for the watermark that it is dropped.
    const Event e = random_sales_event(rng, shape.to_ns + 60 * kNsPerMin);
    const size_t at = std::uniform_int_distribution<size_t>(0, lines.size())(rng);
    lines.insert(lines.begin() + std::ptrdiff_t(at),
                 InputLine::bad(padded_event_line(spec, e, shape.too_long_bytes), "line_too_long",
                                /*truncated=*/true));
  }
  return lines;
}

}  // namespace sluice::integration
