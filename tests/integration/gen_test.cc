// sluice-gen as a load generator: file and stdout output, TCP output over N
// connections to a loopback listener opened here, the rate schedule, real-time
// event time, late events, the report line, and the failure paths (refused and
// reset connections, bad options).
//
// As everywhere in tests/integration, the expectations are computed here: the
// events are read with the harness's own JSON and RFC 3339 code, and timing is
// only checked within generous bounds (a loaded machine must not fail a test).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

// ---------------------------------------------------------------------------
// A loopback listener: accepts `connections` peers and reads each to EOF on a
// thread of its own, so sluice-gen can run to completion meanwhile.
//
// Threads: constructed and joined by the test thread; the reader thread owns
// the sockets and the received data until join() returns.
class Listener {
 public:
  // With `reset_after_bytes` > 0, each connection is reset (RST: SO_LINGER 0,
  // then close) once that many bytes have arrived on it.
  explicit Listener(size_t connections, size_t reset_after_bytes = 0)
      : connections_(connections), reset_after_bytes_(reset_after_bytes) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, int(connections)) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      error_ = std::string("listener: ") + std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { read_all(); });
  }
  ~Listener() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }

  uint16_t port() const { return port_; }
  // Waits for every connection to end; "" or what went wrong.
  std::string join() {
    if (thread_.joinable()) thread_.join();
    return error_;
  }
  // What each connection sent, in accept order. Valid after join().
  const std::vector<std::string>& received() const { return received_; }

 private:
  void read_all() {
    const Clock::time_point deadline = Clock::now() + kExitTimeout;
    std::vector<pollfd> fds{{fd_, POLLIN, 0}};
    std::vector<char> buf(1 << 16);
    size_t accepted = 0, open = 0;
    while (accepted < connections_ || open > 0) {
      if (stop_ || Clock::now() >= deadline) {
        error_ = "listener: timed out with " + std::to_string(open) + " connections open";
        break;
      }
      if (::poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) {
        error_ = std::string("poll: ") + std::strerror(errno);
        break;
      }
      if ((fds[0].revents & POLLIN) != 0 && accepted < connections_) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          fds.push_back({c, POLLIN, 0});
          received_.emplace_back();
          ++accepted;
          ++open;
        }
      }
      for (size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].fd < 0 || (fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = ::recv(fds[k].fd, buf.data(), buf.size(), 0);
        if (n > 0) received_[k - 1].append(buf.data(), size_t(n));
        bool reset = reset_after_bytes_ > 0 && received_[k - 1].size() >= reset_after_bytes_;
        if (n > 0 && !reset) continue;
        if (n < 0 && errno == EINTR) continue;
        if (reset) {
          linger l{1, 0};  // close() sends RST instead of FIN
          ::setsockopt(fds[k].fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        ::close(fds[k].fd);
        fds[k].fd = -1;  // poll ignores it from now on
        --open;
      }
    }
  }

  size_t connections_;
  size_t reset_after_bytes_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::string error_;
  std::vector<std::string> received_;
};

// ---------------------------------------------------------------------------
// Events and the report

struct GenEvent {
  int64_t product_id = 0;
  std::string customer_id;
  int64_t quantity = 0;
  double revenue = 0;
  int64_t time_ns = 0;
};

// One line as the README describes the event: five fields of the documented
// types, ids within --products/--customers. nullopt and `error` otherwise.
std::optional<GenEvent> parse_event(std::string_view line, uint64_t products, uint64_t customers,
                                    std::string* error) {
  auto fields = parse_flat_object(line, error);
  if (!fields) return std::nullopt;
  GenEvent e;
  int seen = 0;
  for (const auto& [name, v] : *fields) {
    ++seen;
    if (name == "product_id" && v.kind == Scalar::Kind::integer) {
      e.product_id = v.i;
    } else if (name == "customer_id" && v.kind == Scalar::Kind::string) {
      e.customer_id = v.s;
    } else if (name == "quantity" && v.kind == Scalar::Kind::integer) {
      e.quantity = v.i;
    } else if (name == "revenue" && v.kind == Scalar::Kind::floating) {
      e.revenue = v.f;
    } else if (name == "timestamp" && v.kind == Scalar::Kind::string) {
      auto t = parse_rfc3339(v.s);
      if (!t) {
        *error = "timestamp is not RFC 3339: " + v.s;
        return std::nullopt;
      }
      e.time_ns = *t;
    } else {
      *error = "unexpected field or type: " + name + " = " + v.describe();
      return std::nullopt;
    }
  }
  if (seen != 5) {
    *error = "expected 5 fields";
    return std::nullopt;
  }
  if (e.product_id < 1 || uint64_t(e.product_id) > products) {
    *error = "product_id out of range";
    return std::nullopt;
  }
  if (e.customer_id.size() < 7 || e.customer_id[0] != 'c' ||
      std::stoull(e.customer_id.substr(1)) >= customers) {
    *error = "customer_id out of range";
    return std::nullopt;
  }
  if (e.quantity < 1 || e.quantity > 10 || e.revenue <= 0) {
    *error = "quantity or revenue out of range";
    return std::nullopt;
  }
  return e;
}

// Parses every line of `text` as an event; fails the test on the first bad one.
std::vector<GenEvent> parse_events(std::string_view text, uint64_t products, uint64_t customers) {
  std::string tail;
  std::vector<std::string> lines = complete_lines(text, &tail);
  EXPECT_EQ(tail, "") << "output does not end with a newline";
  std::vector<GenEvent> out;
  for (const std::string& line : lines) {
    std::string error;
    auto e = parse_event(line, products, customers, &error);
    if (!e) {
      ADD_FAILURE() << error << ": " << line;
      break;
    }
    out.push_back(std::move(*e));
  }
  return out;
}

// The key=value pairs of sluice-gen's last report line ("sluice-gen: events=...").
std::map<std::string, double> parse_report(const std::string& err) {
  std::map<std::string, double> report;
  std::vector<std::string> lines = complete_lines(err);
  auto it = std::find_if(lines.rbegin(), lines.rend(),
                         [](const std::string& l) { return l.starts_with("sluice-gen: events="); });
  if (it == lines.rend()) {
    ADD_FAILURE() << "no report line in stderr:\n" << err;
    return report;
  }
  std::string_view rest = std::string_view(*it).substr(std::strlen("sluice-gen: "));
  while (!rest.empty()) {
    size_t end = std::min(rest.find(' '), rest.size());
    std::string_view pair = rest.substr(0, end);
    size_t eq = pair.find('=');
    EXPECT_NE(eq, std::string_view::npos) << *it;
    if (eq == std::string_view::npos) break;
    std::string value(pair.substr(eq + 1));
    char* parsed_end = nullptr;
    report[std::string(pair.substr(0, eq))] = std::strtod(value.c_str(), &parsed_end);
    EXPECT_EQ(*parsed_end, '\0') << "not a number: " << pair;
    rest.remove_prefix(std::min(end + 1, rest.size()));
  }
  for (const char* key : {"events", "bytes", "seconds", "rate", "target_rate", "lag_max_ms",
                          "lag_p99_ms", "connections", "late"}) {
    EXPECT_TRUE(report.contains(key)) << key << " missing from " << *it;
  }
  return report;
}

bool exited_with(const CommandResult& r, int code) {
  return r.status.exited && r.status.code == code;
}

constexpr uint64_t kProducts = 1000;
constexpr uint64_t kCustomers = 10000;

// ---------------------------------------------------------------------------
// Output and content

TEST(SluiceGen, FileOutputHasTheCountAndTheScheduleOfTimes) {
  TempDir dir;
  const std::string path = dir.file("events.ndjson");
  CommandResult r = run_command(
      {sluice_gen_bin(), "--count", "5000", "--products", "50", "--customers", "70", "--start",
       "2024-03-01T10:00:00Z", "--step", "10ms", "--jitter", "2s", "--seed", "5", "-o", path},
      dir);
  ASSERT_TRUE(exited_with(r, 0)) << r.status.describe() << ": " << r.err;
  const std::string text = read_file(path);
  std::vector<GenEvent> events = parse_events(text, 50, 70);
  ASSERT_EQ(events.size(), 5000u);
  const int64_t start = utc_ns(2024, 3, 1, 10);
  for (size_t i = 0; i < events.size(); ++i) {
    const int64_t nominal = start + int64_t(i) * 10 * kNsPerMs;
    EXPECT_LE(events[i].time_ns, nominal) << "event " << i;
    EXPECT_GE(events[i].time_ns, nominal - 2 * kNsPerS) << "event " << i;
  }
  std::map<std::string, double> report = parse_report(r.err);
  EXPECT_EQ(report["events"], 5000);
  EXPECT_EQ(report["bytes"], double(text.size()));
  EXPECT_EQ(report["connections"], 1);
  EXPECT_EQ(report["target_rate"], 0);
  EXPECT_EQ(report["late"], 0);

  // stdout carries the same bytes.
  CommandResult out = run_command(
      {sluice_gen_bin(), "--count", "5000", "--products", "50", "--customers", "70", "--start",
       "2024-03-01T10:00:00Z", "--step", "10ms", "--jitter", "2s", "--seed", "5"},
      dir);
  ASSERT_TRUE(exited_with(out, 0)) << out.err;
  EXPECT_TRUE(out.out == text) << "stdout differs from the file";
}

TEST(SluiceGen, TcpSpreadsTheEventsRoundRobinOverTheConnections) {
  TempDir dir;
  const std::string file = dir.file("events.ndjson");
  const std::vector<std::string> content = {"--count", "20000", "--jitter", "30s", "--seed", "9"};
  std::vector<std::string> to_file = {sluice_gen_bin(), "-o", file};
  to_file.insert(to_file.end(), content.begin(), content.end());
  CommandResult fr = run_command(to_file, dir);
  ASSERT_TRUE(exited_with(fr, 0)) << fr.err;
  const std::vector<std::string> want = complete_lines(read_file(file));
  ASSERT_EQ(want.size(), 20000u);

  constexpr size_t kConnections = 4;
  Listener listener(kConnections);
  ASSERT_NE(listener.port(), 0);
  std::vector<std::string> to_tcp = {sluice_gen_bin(), "--tcp",
                                     "127.0.0.1:" + std::to_string(listener.port()),
                                     "--connections", std::to_string(kConnections)};
  to_tcp.insert(to_tcp.end(), content.begin(), content.end());
  CommandResult r = run_command(to_tcp, dir);
  ASSERT_TRUE(exited_with(r, 0)) << r.status.describe() << ": " << r.err;
  ASSERT_EQ(listener.join(), "");
  ASSERT_EQ(listener.received().size(), kConnections);

  // Connection c carries events c, c + N, c + 2N, ... of the file's sequence.
  // Which accepted socket is which c is not assumed: each must match one c.
  size_t total_bytes = 0;
  std::vector<bool> matched(kConnections, false);
  for (const std::string& data : listener.received()) {
    total_bytes += data.size();
    std::vector<GenEvent> events = parse_events(data, kProducts, kCustomers);
    EXPECT_EQ(events.size(), want.size() / kConnections);
    const std::vector<std::string> got = complete_lines(data);
    bool found = false;
    for (size_t c = 0; c < kConnections && !found; ++c) {
      if (matched[c]) continue;
      bool same = got.size() == want.size() / kConnections;
      for (size_t j = 0; same && j < got.size(); ++j) same = got[j] == want[c + j * kConnections];
      if (same) matched[c] = found = true;
    }
    EXPECT_TRUE(found) << "a connection's events are not every " << kConnections
                       << "th event of the sequence";
  }
  std::map<std::string, double> report = parse_report(r.err);
  EXPECT_EQ(report["events"], 20000);
  EXPECT_EQ(report["bytes"], double(total_bytes));
  EXPECT_EQ(report["connections"], double(kConnections));
}

TEST(SluiceGen, LateFractionMakesThatShareOfEventsOlderThanLateBy) {
  TempDir dir;
  const std::string path = dir.file("events.ndjson");
  CommandResult r =
      run_command({sluice_gen_bin(), "--count", "20000", "--step", "1ms", "--jitter", "1s",
                   "--seed", "3", "--late-fraction", "0.25", "--late-by", "1h", "-o", path},
                  dir);
  ASSERT_TRUE(exited_with(r, 0)) << r.err;
  std::vector<GenEvent> events = parse_events(read_file(path), kProducts, kCustomers);
  ASSERT_EQ(events.size(), 20000u);
  const int64_t start = utc_ns(2024, 1, 1);
  uint64_t late = 0;
  for (size_t i = 0; i < events.size(); ++i) {
    const int64_t nominal = start + int64_t(i) * kNsPerMs;
    if (events[i].time_ns <= nominal - 60 * kNsPerMin) {
      ++late;
      EXPECT_GE(events[i].time_ns, nominal - 60 * kNsPerMin - kNsPerS) << "event " << i;
    } else {
      EXPECT_GE(events[i].time_ns, nominal - kNsPerS) << "event " << i;
    }
  }
  // Binomial(20 000, 0.25): sigma ~ 61; six sigma either side.
  EXPECT_GT(late, 5000u - 370);
  EXPECT_LT(late, 5000u + 370);
  EXPECT_EQ(parse_report(r.err)["late"], double(late));
}

// ---------------------------------------------------------------------------
// Rate and event time

TEST(SluiceGen, RateSpreadsTheEventsOverTheSchedule) {
  TempDir dir;
  const Clock::time_point before = Clock::now();
  CommandResult r = run_command(
      {sluice_gen_bin(), "--rate", "2000", "--count", "2000", "-o", dir.file("events.ndjson")},
      dir);
  const double took_s = std::chrono::duration<double>(Clock::now() - before).count();
  ASSERT_TRUE(exited_with(r, 0)) << r.err;
  // 2000 events at 2000/s: the last is due after 0.9995 s. Bounds are generous: only a
  // generator that ignores the rate (or hangs) fails them.
  EXPECT_GT(took_s, 0.5);
  EXPECT_LT(took_s, 10.0);
  EXPECT_EQ(complete_lines(read_file(dir.file("events.ndjson"))).size(), 2000u);
  std::map<std::string, double> report = parse_report(r.err);
  EXPECT_EQ(report["events"], 2000);
  EXPECT_EQ(report["target_rate"], 2000);
  EXPECT_GT(report["seconds"], 0.5);
  EXPECT_LT(report["seconds"], 10.0);
  // rate is events / seconds before rounding; seconds is printed to the millisecond.
  EXPECT_NEAR(report["rate"], report["events"] / report["seconds"], 0.01 * report["rate"] + 1);
  EXPECT_GE(report["lag_max_ms"], report["lag_p99_ms"]);
  EXPECT_GE(report["lag_p99_ms"], 0);
}

TEST(SluiceGen, DurationWithARateSendsTheScheduledEvents) {
  TempDir dir;
  Listener listener(2);
  ASSERT_NE(listener.port(), 0);
  CommandResult r = run_command(
      {sluice_gen_bin(), "--tcp", "127.0.0.1:" + std::to_string(listener.port()), "--connections",
       "2", "--rate", "5000", "--duration", "1s", "--progress", "--no-nodelay"},
      dir);
  ASSERT_TRUE(exited_with(r, 0)) << r.err;
  ASSERT_EQ(listener.join(), "");
  // Events due in [0, 1 s) at 5000/s: exactly 5000.
  size_t lines = 0, bytes = 0;
  for (const std::string& data : listener.received()) {
    lines += parse_events(data, kProducts, kCustomers).size();
    bytes += data.size();
  }
  EXPECT_EQ(lines, 5000u);
  std::map<std::string, double> report = parse_report(r.err);
  EXPECT_EQ(report["events"], double(lines));
  EXPECT_EQ(report["bytes"], double(bytes));
  EXPECT_EQ(report["target_rate"], 5000);
}

TEST(SluiceGen, TimeNowStampsEventsWithTheWallClockTheyAreDue) {
  TempDir dir;
  Listener listener(1);
  ASSERT_NE(listener.port(), 0);
  auto wall_ns = [] {
    return int64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count());
  };
  const int64_t before = wall_ns();
  CommandResult r =
      run_command({sluice_gen_bin(), "--tcp", "127.0.0.1:" + std::to_string(listener.port()),
                   "--time", "now", "--rate", "1000", "--count", "500"},
                  dir);
  const int64_t after = wall_ns();
  ASSERT_TRUE(exited_with(r, 0)) << r.err;
  ASSERT_EQ(listener.join(), "");
  std::vector<GenEvent> events = parse_events(listener.received().at(0), kProducts, kCustomers);
  ASSERT_EQ(events.size(), 500u);
  for (size_t i = 0; i < events.size(); ++i) {
    // Due between the test's two clock readings; no jitter, so in schedule order.
    EXPECT_GE(events[i].time_ns, before) << "event " << i;
    EXPECT_LE(events[i].time_ns, after) << "event " << i;
    if (i > 0) {
      EXPECT_GE(events[i].time_ns, events[i - 1].time_ns) << "event " << i;
    }
  }
  // Event 499 is due 0.499 s after event 0: the times follow the schedule, not the send.
  EXPECT_NEAR(double(events.back().time_ns - events.front().time_ns) / 1e9, 0.499, 0.002);
}

// ---------------------------------------------------------------------------
// Failures

TEST(SluiceGenError, ConnectionRefusedExitsOneWithAMessage) {
  TempDir dir;
  // A port that is bound but not listening refuses connections.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string target = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  CommandResult r = run_command({sluice_gen_bin(), "--tcp", target, "--count", "10"}, dir);
  ::close(fd);
  EXPECT_TRUE(exited_with(r, 1)) << r.status.describe();
  EXPECT_NE(r.err.find("cannot connect to " + target), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Connection refused"), std::string::npos) << r.err;
}

TEST(SluiceGenError, ConnectionResetMidRunExitsOneAndReportsWhatWasSent) {
  TempDir dir;
  // The listener resets each connection after 1 MiB, long before the run ends.
  Listener listener(2, 1 << 20);
  ASSERT_NE(listener.port(), 0);
  const std::string target = "127.0.0.1:" + std::to_string(listener.port());
  CommandResult r = run_command(
      {sluice_gen_bin(), "--tcp", target, "--connections", "2", "--count", "100000000"}, dir);
  ASSERT_EQ(listener.join(), "");
  EXPECT_TRUE(exited_with(r, 1)) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.err.find("sluice-gen: " + target), std::string::npos) << r.err;
  const bool named = r.err.find("Connection reset by peer") != std::string::npos ||
                     r.err.find("Broken pipe") != std::string::npos;
  EXPECT_TRUE(named) << r.err;
  std::map<std::string, double> report = parse_report(r.err);
  EXPECT_LT(report["events"], 100000000);
  EXPECT_GE(report["bytes"], double(1 << 20));
}

TEST(SluiceGenError, BadOptionsAreUsageErrors) {
  TempDir dir;
  const std::vector<std::vector<std::string>> cases = {
      {"--late-fraction", "0.5"},                     // no --late-by
      {"--late-fraction", "1.5", "--late-by", "1s"},  // not a fraction
      {"--time", "now", "--start", "2024-01-01T00:00:00Z"},
      {"--duration", "soon"},
      {"--count", "0"},
      {"--connections", "2"},  // without --tcp
      {"--tcp", "nowhere"},
      {"--tcp", "127.0.0.1:9400", "-o", "file.ndjson"},  // two outputs
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv = {sluice_gen_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    CommandResult r = run_command(argv, dir);
    EXPECT_TRUE(exited_with(r, 2)) << args[0] << " " << args[1] << ": " << r.status.describe();
    EXPECT_EQ(r.out, "") << args[0] << " " << args[1] << ": no events on a usage error";
  }
}

}  // namespace
}  // namespace sluice::integration
