// sluice-kafka-mock: a Kafka-protocol broker on loopback for Sluice's tests.
//
// It wraps librdkafka's mock cluster (rdkafka_mock.h): N brokers on 127.0.0.1 with
// ephemeral ports, the topics given on the command line, and a line protocol on
// stdin for fault injection while a test runs. stdout carries only protocol:
//
//   bootstrap 127.0.0.1:PORT[,127.0.0.1:PORT...]     (first line, flushed)
//   ok | error <reason>                               (one line per command)
//
// Everything else (librdkafka logs, debug) goes to stderr. The process runs until
// stdin reaches EOF, `quit`, or SIGINT/SIGTERM. See README.md for the commands and
// for what the mock broker does and does not implement.
//
// Threads: main() owns everything here. librdkafka's mock cluster runs its own I/O
// thread; every rd_kafka_mock_* call used below is a synchronous request to that
// thread (or takes the cluster lock), so "ok" means the change is in effect.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <poll.h>
#include <signal.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace {

// One command line, without its newline. Commands are short; a longer line is
// answered with an error and skipped rather than buffered without bound.
constexpr size_t command_line_bytes_max = 4096;
// At most this many errors in one `errors` / `broker_errors` command: enough to
// script any retry sequence a client test needs, small enough to reject typos
// such as a timestamp pasted as the count.
constexpr size_t injected_errors_max = 1000;
// Brokers the mock may start. Each is one listening socket on loopback; tests use
// 1 or 3, a few more cost nothing.
constexpr int brokers_max = 16;
// Partitions per topic: the mock keeps up to 5 MiB of log per partition in memory.
constexpr int partitions_max = 1024;

using Result = std::expected<void, std::string>;

// Kafka API keys by their protocol names (and librdkafka's spellings).
struct ApiName {
  std::string_view name;
  int16_t key;
};
constexpr ApiName kApiNames[] = {
    {"Produce", 0},
    {"Fetch", 1},
    {"ListOffsets", 2},
    {"Offset", 2},
    {"Metadata", 3},
    {"OffsetCommit", 8},
    {"OffsetFetch", 9},
    {"FindCoordinator", 10},
    {"JoinGroup", 11},
    {"Heartbeat", 12},
    {"LeaveGroup", 13},
    {"SyncGroup", 14},
    {"DescribeGroups", 15},
    {"ListGroups", 16},
    {"SaslHandshake", 17},
    {"ApiVersions", 18},
    {"ApiVersion", 18},
    {"CreateTopics", 19},
    {"DeleteTopics", 20},
    {"DeleteRecords", 21},
    {"InitProducerId", 22},
    {"OffsetForLeaderEpoch", 23},
    {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25},
    {"EndTxn", 26},
    {"TxnOffsetCommit", 28},
};
// Highest API key accepted as a number; librdkafka 2.0.2 knows keys below 68.
constexpr int api_key_max = 67;

// Kafka's names for codes whose librdkafka 2.0.2 enum name differs.
struct ErrAlias {
  std::string_view name;
  rd_kafka_resp_err_t code;
};
constexpr ErrAlias kErrAliases[] = {
    {"NONE", RD_KAFKA_RESP_ERR_NO_ERROR},
    {"UNKNOWN_SERVER_ERROR", RD_KAFKA_RESP_ERR_UNKNOWN},
    {"CORRUPT_MESSAGE", RD_KAFKA_RESP_ERR_INVALID_MSG},
    {"UNKNOWN_TOPIC_OR_PARTITION", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART},
    {"INVALID_FETCH_SIZE", RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE},
    {"MESSAGE_TOO_LARGE", RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE},
    {"STALE_CONTROLLER_EPOCH", RD_KAFKA_RESP_ERR_STALE_CTRL_EPOCH},
    {"NOT_LEADER_OR_FOLLOWER", RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION},
    {"GROUP_LOAD_IN_PROGRESS", RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS},
    {"GROUP_COORDINATOR_NOT_AVAILABLE", RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE},
    {"NOT_COORDINATOR_FOR_GROUP", RD_KAFKA_RESP_ERR_NOT_COORDINATOR},
};

constexpr int16_t metadata_api_key = 3;
// First librdkafka whose mock applies injected errors to Metadata requests (its
// Metadata handler never consults the error stack before 2.15.0).
constexpr int metadata_errors_since_version = 0x020f0000;

// Refuses error injection the mock would accept and then never apply.
Result check_injectable(int16_t api) {
  if (api == metadata_api_key && rd_kafka_version() < metadata_errors_since_version) {
    return std::unexpected(std::string("librdkafka ") + rd_kafka_version_str() +
                           "'s mock never applies injected Metadata errors; use broker_down, "
                           "rtt or leader instead");
  }
  return {};
}

template <typename Int>
std::expected<Int, std::string> parse_int(std::string_view s, std::string_view what) {
  Int v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size()) {
    return std::unexpected(std::string(what) + " is not an integer: " + std::string(s));
  }
  return v;
}

std::expected<int16_t, std::string> parse_api_key(std::string_view s) {
  for (const ApiName& a : kApiNames) {
    if (a.name.size() == s.size() && strncasecmp(a.name.data(), s.data(), s.size()) == 0) {
      return a.key;
    }
  }
  auto key = parse_int<int16_t>(s, "api");
  if (!key || *key < 0 || *key > api_key_max) {
    return std::unexpected("unknown api: " + std::string(s));
  }
  return *key;
}

// Accepts librdkafka's names (NOT_LEADER_FOR_PARTITION), with or without the
// RD_KAFKA_RESP_ERR_ prefix, Kafka's names from the table above, or a number.
// Only broker error codes (>= -1, UNKNOWN_SERVER_ERROR): librdkafka's internal
// codes (below -1) never go on the wire.
std::expected<rd_kafka_resp_err_t, std::string> parse_error_code(std::string_view s) {
  constexpr std::string_view prefix = "RD_KAFKA_RESP_ERR_";
  std::string upper(s);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::string_view name = upper;
  if (name.starts_with(prefix)) name.remove_prefix(prefix.size());
  if (!name.empty() && (name[0] == '-' || (name[0] >= '0' && name[0] <= '9'))) {
    auto code = parse_int<int>(name, "error code");
    if (!code || *code < RD_KAFKA_RESP_ERR_UNKNOWN || *code > INT16_MAX) {
      return std::unexpected("not a broker error code: " + std::string(s));
    }
    return static_cast<rd_kafka_resp_err_t>(*code);
  }
  for (const ErrAlias& a : kErrAliases) {
    if (a.name == name) return a.code;
  }
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr && descs[i].code >= RD_KAFKA_RESP_ERR_UNKNOWN &&
        name == descs[i].name) {
      return descs[i].code;
    }
  }
  return std::unexpected("unknown error name: " + std::string(s));
}

std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  return words;
}

Result from_rd(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return std::unexpected(std::string(rd_kafka_err2name(err)));
}

Result expect_args(const std::vector<std::string_view>& w, size_t n, std::string_view usage) {
  if (w.size() != n) return std::unexpected("usage: " + std::string(usage));
  return {};
}

// Creates a topic; `replication` only reaches librdkafka's log in 2.0.2 (replicas
// come from the cluster default min(3, brokers)), see README.md.
Result create_topic(rd_kafka_mock_cluster_t* mc, const std::string& name, int partitions,
                    int replication) {
  if (name.empty()) return std::unexpected("empty topic name");
  if (partitions < 1 || partitions > partitions_max) {
    return std::unexpected("partitions must be 1.." + std::to_string(partitions_max));
  }
  if (replication < 1) return std::unexpected("replication must be at least 1");
  return from_rd(rd_kafka_mock_topic_create(mc, name.c_str(), partitions, replication));
}

enum class Next { keep_running, quit };

// Runs one command line. Sets `next` to quit for `quit`.
Result run_command(rd_kafka_mock_cluster_t* mc, std::string_view line, Next& next) {
  std::vector<std::string_view> w = split_words(line);
  const std::string_view cmd = w[0];
  if (cmd == "quit" || cmd == "exit") {
    if (auto r = expect_args(w, 1, "quit"); !r) return r;
    next = Next::quit;
    return {};
  }
  if (cmd == "broker_down" || cmd == "broker_up") {
    if (auto r = expect_args(w, 2, std::string(cmd) + " <broker_id>"); !r) return r;
    auto id = parse_int<int32_t>(w[1], "broker_id");
    if (!id) return std::unexpected(id.error());
    return from_rd(cmd == "broker_down" ? rd_kafka_mock_broker_set_down(mc, *id)
                                        : rd_kafka_mock_broker_set_up(mc, *id));
  }
  if (cmd == "rtt") {
    if (auto r = expect_args(w, 3, "rtt <broker_id> <ms>"); !r) return r;
    auto id = parse_int<int32_t>(w[1], "broker_id");
    if (!id) return std::unexpected(id.error());
    auto ms = parse_int<int>(w[2], "ms");
    if (!ms) return std::unexpected(ms.error());
    if (*ms < 0) return std::unexpected("ms must not be negative");
    return from_rd(rd_kafka_mock_broker_set_rtt(mc, *id, *ms));
  }
  if (cmd == "leader") {
    if (auto r = expect_args(w, 4, "leader <topic> <partition> <broker_id|-1>"); !r) return r;
    auto part = parse_int<int32_t>(w[2], "partition");
    if (!part) return std::unexpected(part.error());
    auto id = parse_int<int32_t>(w[3], "broker_id");
    if (!id) return std::unexpected(id.error());
    return from_rd(rd_kafka_mock_partition_set_leader(mc, std::string(w[1]).c_str(), *part, *id));
  }
  if (cmd == "errors") {
    constexpr std::string_view usage = "errors <api> <count> <error> [<error>...]";
    if (w.size() < 4) return std::unexpected("usage: " + std::string(usage));
    auto api = parse_api_key(w[1]);
    if (!api) return std::unexpected(api.error());
    if (auto r = check_injectable(*api); !r) return r;
    auto count = parse_int<size_t>(w[2], "count");
    if (!count) return std::unexpected(count.error());
    if (*count < 1 || *count > injected_errors_max) {
      return std::unexpected("count must be 1.." + std::to_string(injected_errors_max));
    }
    const size_t given = w.size() - 3;
    // One error name repeats `count` times; otherwise one name per request.
    if (given != 1 && given != *count) {
      return std::unexpected("give one error (repeated <count> times) or exactly <count> errors");
    }
    std::vector<rd_kafka_resp_err_t> errs;
    errs.reserve(*count);
    for (size_t i = 0; i < *count; ++i) {
      auto e = parse_error_code(w[3 + (given == 1 ? 0 : i)]);
      if (!e) return std::unexpected(e.error());
      errs.push_back(*e);
    }
    rd_kafka_mock_push_request_errors_array(mc, *api, errs.size(), errs.data());
    return {};
  }
  if (cmd == "broker_errors") {
    constexpr std::string_view usage = "broker_errors <broker_id> <api> <error>[:<rtt_ms>]...";
    if (w.size() < 4) return std::unexpected("usage: " + std::string(usage));
    if (w.size() - 3 > injected_errors_max) return std::unexpected("too many errors");
    auto id = parse_int<int32_t>(w[1], "broker_id");
    if (!id) return std::unexpected(id.error());
    auto api = parse_api_key(w[2]);
    if (!api) return std::unexpected(api.error());
    if (auto r = check_injectable(*api); !r) return r;
    struct ErrRtt {
      rd_kafka_resp_err_t err;
      int rtt_ms;
    };
    std::vector<ErrRtt> pairs;
    for (size_t i = 3; i < w.size(); ++i) {
      std::string_view item = w[i];
      int rtt_ms = 0;
      if (size_t colon = item.find(':'); colon != std::string_view::npos) {
        auto rtt = parse_int<int>(item.substr(colon + 1), "rtt_ms");
        if (!rtt || *rtt < 0) return std::unexpected("bad rtt in " + std::string(item));
        rtt_ms = *rtt;
        item = item.substr(0, colon);
      }
      auto e = parse_error_code(item);
      if (!e) return std::unexpected(e.error());
      pairs.push_back({*e, rtt_ms});
    }
    // Validated everything first so a bad word pushes nothing. The C API is
    // variadic, so push one (error, rtt) pair per call; they queue in order.
    for (const ErrRtt& p : pairs) {
      if (auto r = from_rd(
              rd_kafka_mock_broker_push_request_error_rtts(mc, *id, *api, 1, p.err, p.rtt_ms));
          !r) {
        return r;
      }
    }
    return {};
  }
  if (cmd == "clear_errors") {
    if (auto r = expect_args(w, 2, "clear_errors <api>"); !r) return r;
    auto api = parse_api_key(w[1]);
    if (!api) return std::unexpected(api.error());
    rd_kafka_mock_clear_request_errors(mc, *api);
    return {};
  }
  if (cmd == "create") {
    if (w.size() != 3 && w.size() != 4) {
      return std::unexpected("usage: create <topic> <partitions> [<replication>]");
    }
    auto parts = parse_int<int>(w[2], "partitions");
    if (!parts) return std::unexpected(parts.error());
    int replication = 1;
    if (w.size() == 4) {
      auto rf = parse_int<int>(w[3], "replication");
      if (!rf) return std::unexpected(rf.error());
      replication = *rf;
    }
    return create_topic(mc, std::string(w[1]), *parts, replication);
  }
  if (cmd == "apiversion") {
    if (auto r = expect_args(w, 4, "apiversion <api> <min> <max>"); !r) return r;
    auto api = parse_api_key(w[1]);
    if (!api) return std::unexpected(api.error());
    auto lo = parse_int<int16_t>(w[2], "min");
    if (!lo) return std::unexpected(lo.error());
    auto hi = parse_int<int16_t>(w[3], "max");
    if (!hi) return std::unexpected(hi.error());
    return from_rd(rd_kafka_mock_set_apiversion(mc, *api, *lo, *hi));
  }
  return std::unexpected("unknown command: " + std::string(cmd));
}

// Writes one protocol line to stdout and flushes it: the test on the other end
// reads line by line and must never wait on our buffer.
bool reply(const std::string& line) {
  return std::fprintf(stdout, "%s\n", line.c_str()) >= 0 && std::fflush(stdout) == 0;
}

// Answers one complete input line. Blank lines and `#` comments get no answer, so
// a test script may carry comments.
bool handle_line(rd_kafka_mock_cluster_t* mc, std::string_view line, Next& next) {
  std::vector<std::string_view> w = split_words(line);
  if (w.empty() || w[0].starts_with('#')) return true;
  Result r = run_command(mc, line, next);
  return reply(r ? std::string("ok") : "error " + r.error());
}

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication = 1;
};

std::expected<TopicSpec, std::string> parse_topic_spec(std::string_view s) {
  // name:partitions[:replication]; topic names cannot contain ':' in Kafka.
  TopicSpec t;
  size_t c1 = s.find(':');
  t.name = std::string(s.substr(0, c1));
  if (c1 == std::string_view::npos) return t;
  std::string_view rest = s.substr(c1 + 1);
  size_t c2 = rest.find(':');
  auto parts = parse_int<int>(rest.substr(0, c2), "partitions");
  if (!parts) return std::unexpected(parts.error());
  t.partitions = *parts;
  if (c2 != std::string_view::npos) {
    auto rf = parse_int<int>(rest.substr(c2 + 1), "replication");
    if (!rf) return std::unexpected(rf.error());
    t.replication = *rf;
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Kafka-protocol mock broker on loopback (librdkafka mock cluster) for tests",
               "sluice-kafka-mock"};
  int brokers = 1;
  std::vector<std::string> topic_args;
  std::string leaders = "mock";
  std::string debug;
  bool ignore_eof = false;
  bool clean_exit = false;
  app.add_option("--brokers", brokers, "number of brokers (ids 1..N)")
      ->check(CLI::Range(1, brokers_max))
      ->capture_default_str();
  app.add_option("--topic", topic_args, "topic to create: name:partitions[:replication]")
      ->take_all();
  app.add_option("--leaders", leaders,
                 "partition leaders: 'mock' (librdkafka picks one of the replicas at random) "
                 "or 'round-robin' (partition p on broker p % N + 1)")
      ->check(CLI::IsMember({"mock", "round-robin"}))
      ->capture_default_str();
  app.add_option("--debug", debug,
                 "librdkafka debug contexts to log on stderr, e.g. mock,protocol");
  app.add_flag("--ignore-eof", ignore_eof,
               "keep running after stdin reaches EOF (stop with SIGINT/SIGTERM)");
  app.add_flag("--clean-exit", clean_exit,
               "destroy the mock cluster and client before exiting (slower, up to ~1 s; for "
               "leak checkers) instead of leaving it to the kernel");
  CLI11_PARSE(app, argc, argv);

  std::vector<TopicSpec> topics;
  for (const std::string& arg : topic_args) {
    auto t = parse_topic_spec(arg);
    if (!t) {
      std::fprintf(stderr, "sluice-kafka-mock: --topic %s: %s\n", arg.c_str(), t.error().c_str());
      return 2;
    }
    topics.push_back(*t);
  }

  // Block the stop signals before librdkafka starts its threads so they inherit
  // the mask and the signals are only ever read from the signalfd below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    std::perror("sluice-kafka-mock: sigmask");
    return 1;
  }
  int sig_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (sig_fd < 0) {
    std::perror("sluice-kafka-mock: signalfd");
    return 1;
  }
  // A test that stops reading our stdout must not kill us mid-command.
  signal(SIGPIPE, SIG_IGN);

  // The mock cluster needs a client handle to live in; a producer with no
  // bootstrap.servers never connects anywhere by itself.
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // Notices such as "No bootstrap.servers configured" are about this idle handle,
  // not the mock; keep stderr to warnings and worse unless debugging.
  if (debug.empty()) rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);
  if (!debug.empty() &&
      rd_kafka_conf_set(conf, "debug", debug.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "sluice-kafka-mock: --debug: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "sluice-kafka-mock: rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* mc = rd_kafka_mock_cluster_new(rk, brokers);
  if (mc == nullptr) {
    std::fprintf(stderr, "sluice-kafka-mock: could not start the mock cluster\n");
    rd_kafka_destroy(rk);
    return 1;
  }

  int rc = 0;
  for (const TopicSpec& t : topics) {
    if (auto r = create_topic(mc, t.name, t.partitions, t.replication); !r) {
      std::fprintf(stderr, "sluice-kafka-mock: --topic %s: %s\n", t.name.c_str(),
                   r.error().c_str());
      rc = 2;
      break;
    }
    if (leaders == "round-robin") {
      for (int p = 0; p < t.partitions && rc == 0; ++p) {
        if (auto r =
                from_rd(rd_kafka_mock_partition_set_leader(mc, t.name.c_str(), p, p % brokers + 1));
            !r) {
          std::fprintf(stderr, "sluice-kafka-mock: leader %s [%d]: %s\n", t.name.c_str(), p,
                       r.error().c_str());
          rc = 1;
        }
      }
    }
  }

  if (rc == 0 && !reply(std::string("bootstrap ") + rd_kafka_mock_cluster_bootstraps(mc))) rc = 1;

  // Command loop: complete lines from stdin, the stop signals from sig_fd.
  std::string pending;
  bool stdin_open = true;
  Next next = Next::keep_running;
  bool skipping_long_line = false;
  char buf[command_line_bytes_max];
  while (rc == 0 && next == Next::keep_running && (stdin_open || ignore_eof)) {
    pollfd fds[2] = {{sig_fd, POLLIN, 0}, {stdin_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      std::perror("sluice-kafka-mock: poll");
      rc = 1;
      break;
    }
    if (fds[0].revents & POLLIN) break;  // SIGINT or SIGTERM: a normal stop.
    if (!(fds[1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      std::perror("sluice-kafka-mock: read stdin");
      rc = 1;
      break;
    }
    if (n == 0) {
      stdin_open = false;
      // A last command without its newline still counts.
      if (!pending.empty() && !skipping_long_line && !handle_line(mc, pending, next)) rc = 1;
      pending.clear();
      continue;
    }
    for (std::string_view chunk(buf, static_cast<size_t>(n)); !chunk.empty();) {
      size_t nl = chunk.find('\n');
      std::string_view part = chunk.substr(0, nl);
      if (!skipping_long_line) {
        if (pending.size() + part.size() > command_line_bytes_max) {
          skipping_long_line = true;
          pending.clear();
          if (!reply("error line longer than " + std::to_string(command_line_bytes_max) +
                     " bytes")) {
            rc = 1;
          }
        } else {
          pending.append(part);
        }
      }
      if (nl == std::string_view::npos) break;
      if (!skipping_long_line && rc == 0 && next == Next::keep_running &&
          !handle_line(mc, pending, next)) {
        rc = 1;
      }
      pending.clear();
      skipping_long_line = false;
      chunk.remove_prefix(nl + 1);
    }
  }

  if (!clean_exit) {
    // The mock holds only memory and sockets, both released by the kernel. An
    // orderly rd_kafka_mock_cluster_destroy() joins librdkafka's internal broker
    // thread, which sleeps up to 1 s between wake-ups: a second per test teardown
    // for nothing. stdout is flushed after every line already.
    _exit(rc);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  close(sig_fd);
  return rc;
}
