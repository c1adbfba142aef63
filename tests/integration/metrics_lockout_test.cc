// The metrics endpoint cannot be locked out: idle sockets that never send a
// request neither hold its slots (the one waiting longest makes room for a
// new connection) nor stay open past request_timeout; a pipelined burst gets
// one answer that says Connection: close.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

std::string pipeline(const TempDir& dir, std::string_view request_timeout) {
  CountPipeline p;
  p.source_keys = tcp_source_keys();
  p.sink_path = dir.file("rows.ndjson");
  p.more = "[metrics]\nlisten = \"127.0.0.1:0\"\nrequest_timeout = \"" + std::string(request_timeout) + "\"\n";
  return p.toml();
}

uint16_t metrics_port(const std::string& stderr_text) {
  std::smatch m;
  static const std::regex re(R"(metrics: http://127\.0\.0\.1:([0-9]+)/metrics)");
  return std::regex_search(stderr_text, m, re) ? uint16_t(std::stoi(m[1].str())) : 0;
}

// Reads until the server closes (or `timeout`); what it sent.
std::string read_to_close(int fd, Clock::duration timeout, bool* closed = nullptr) {
  std::string out;
  const Clock::time_point deadline = Clock::now() + timeout;
  char buf[4096];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf, size_t(n));
    } else if (n == 0 || errno != EAGAIN) {
      if (closed) *closed = true;
      return out;
    }
  }
  if (closed) *closed = false;
  return out;
}

// Regression: 8 idle sockets blocked every scrape for 45 s and more.
TEST(MetricsLockoutTest, IdleSocketsDoNotLockScrapersOut) {
  TempDir dir;
  // A long request_timeout: only making room for new connections can let the scrape in.
  write_file(dir.file("p.toml"), pipeline(dir, "1h"));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.wait_for_port("in"));
  const uint16_t port = metrics_port(run.stderr_text());
  ASSERT_NE(port, 0) << run.stderr_text();
  std::vector<TcpClient> idle(20);
  for (TcpClient& c : idle) ASSERT_EQ(c.connect(port), "");
  std::this_thread::sleep_for(200ms);
  for (int scrape = 0; scrape < 3; ++scrape) {
    TcpClient c;
    ASSERT_EQ(c.connect(port), "");
    ASSERT_EQ(c.send_all("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "");
    bool closed = false;
    const std::string response = read_to_close(c.fd(), 10s, &closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response.substr(0, 200);
    EXPECT_NE(response.find("sluice_events_applied_total"), std::string::npos);
  }
  ASSERT_TRUE(run.terminates_cleanly());
}

TEST(MetricsLockoutTest, ASocketThatSendsNoRequestIsClosedAfterRequestTimeout) {
  TempDir dir;
  write_file(dir.file("p.toml"), pipeline(dir, "300ms"));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.wait_for_port("in"));
  const uint16_t port = metrics_port(run.stderr_text());
  ASSERT_NE(port, 0);
  TcpClient silent, half;
  ASSERT_EQ(silent.connect(port), "");
  ASSERT_EQ(half.connect(port), "");
  ASSERT_EQ(half.send_all("GET /metrics HTTP/1.1\r\nHost:"), "");  // a head that never ends
  bool closed = false;
  EXPECT_EQ(read_to_close(silent.fd(), 10s, &closed), "");
  EXPECT_TRUE(closed) << "the silent socket was not closed";
  closed = false;
  EXPECT_EQ(read_to_close(half.fd(), 10s, &closed), "");
  EXPECT_TRUE(closed) << "the half-sent request was not closed";
  ASSERT_TRUE(run.terminates_cleanly());
}

TEST(MetricsLockoutTest, PipelinedRequestsGetOneAnswerThatSaysConnectionClose) {
  TempDir dir;
  write_file(dir.file("p.toml"), pipeline(dir, "5s"));
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.wait_for_port("in"));
  const uint16_t port = metrics_port(run.stderr_text());
  ASSERT_NE(port, 0);
  TcpClient c;
  ASSERT_EQ(c.connect(port), "");
  std::string burst;
  for (int i = 0; i < 100; ++i) burst += "GET /status HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(c.send_all(burst), "");
  bool closed = false;
  const std::string response = read_to_close(c.fd(), 10s, &closed);
  EXPECT_TRUE(closed);
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(response.find("\r\nConnection: close\r\n"), std::string::npos);
  size_t answers = 0;
  for (size_t at = response.find("HTTP/1.1 "); at != std::string::npos; at = response.find("HTTP/1.1 ", at + 1)) ++answers;
  EXPECT_EQ(answers, 1u);
  ASSERT_TRUE(run.terminates_cleanly());
}

}  // namespace
}  // namespace sluice::integration
