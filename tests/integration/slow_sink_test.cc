// A slow sink is back-pressure: a FIFO read at 200 KB/s while a TCP sender
// pushes as fast as it can. What waits for the sink is bounded
// (pending_bytes_max), windows stop firing and the sources pause, so the
// sender feels TCP back-pressure and the engine's memory stays flat; once
// the sink catches up, every row is there, exactly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <utility>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

constexpr int kKeys = 1000;
constexpr int kEventsPerSecond = 10000;  // of event time: 10 events per key and 1-second window

// Event i: key i % kKeys at second i / kEventsPerSecond.
std::string line(uint64_t i) {
  return "{\"k\":" + std::to_string(i % kKeys) + ",\"ts\":" + std::to_string(i / kEventsPerSecond) + "}\n";
}

TEST(SlowSinkTest, ASlowSinkPausesTheSourcesAndMemoryStaysBounded) {
  TempDir dir;
  const std::string fifo = dir.file("rows.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  CountPipeline config;
  config.pipeline_keys = "shards = 2";
  config.source_keys = tcp_source_keys();
  config.window = "1s";
  config.sink_path = fifo;
  config.sink_keys = "buffer_bytes = 262144\npending_bytes_max = 2097152\nflush_interval = \"10ms\"";
  config.dead_letter_path = dir.file("dead.ndjson");
  write_file(dir.file("p.toml"), config.toml());
  SluiceRun run(dir, dir.file("p.toml"));
  ASSERT_TRUE(run.start());
  const std::optional<uint16_t> port = run.wait_for_port("in");
  ASSERT_TRUE(port);
  ::fcntl(reader, F_SETFL, 0);  // blocking reads from now on

  // The sink: 20 KB every 100 ms (200 KB/s), then as fast as it can.
  std::atomic<bool> fast{false};
  std::string out;
  std::thread sink([&] {
    std::vector<char> buf(1 << 16);
    for (;;) {
      const size_t want = fast.load() ? buf.size() : 20'000;
      ssize_t n = ::read(reader, buf.data(), want);
      if (n <= 0) break;
      out.append(buf.data(), size_t(n));
      if (!fast.load()) std::this_thread::sleep_for(100ms);
    }
  });
  // The sender: whole lines, as fast as the engine takes them.
  std::atomic<bool> stop_sending{false};
  std::atomic<uint64_t> sent_lines{0}, sent_bytes{0};
  TcpClient client;
  ASSERT_EQ(client.connect(*port), "");
  std::thread sender([&] {
    uint64_t i = 0;
    std::string chunk;
    while (!stop_sending.load()) {
      chunk.clear();
      for (int j = 0; j < 2000; ++j) chunk += line(i + uint64_t(j));
      if (!client.send_all(chunk).empty()) return;
      i += 2000;
      sent_lines.store(i);
      sent_bytes.fetch_add(chunk.size());
    }
  });

  std::this_thread::sleep_for(1s);
  const uint64_t rss_start = rss_bytes(run.process().pid());
  uint64_t rss_max = rss_start;
  for (int t = 0; t < 40; ++t) {  // 4 s under the slow sink
    std::this_thread::sleep_for(100ms);
    rss_max = std::max(rss_max, rss_bytes(run.process().pid()));
  }
  const uint64_t bytes_slow = sent_bytes.load();
  std::printf("[ measure  ] slow sink (200 KB/s): sender pushed %.1f MB in 5 s, sink took %.1f MB; "
              "RSS %.1f -> max %.1f MiB\n",
              double(bytes_slow) / 1e6, double(out.size()) / 1e6, double(rss_start) / (1 << 20),
              double(rss_max) / (1 << 20));
  // Before the fix the engine took everything (hundreds of MB) and held the
  // rows: RSS rose with the backlog. Now what waits is pending_bytes_max (2 MiB)
  // plus what the paused sources hold (receive buffers, open windows).
  EXPECT_LT(rss_max, rss_start + (uint64_t(48) << 20)) << "memory grew with the sink's backlog";

  // The sink catches up; the sender stops; SIGTERM flushes the rest.
  fast.store(true);
  stop_sending.store(true);
  sender.join();
  EXPECT_EQ(client.finish(), "");
  ASSERT_TRUE(run.terminates_cleanly());
  sink.join();
  ::close(reader);

  // Every (window, key) count, computed from the lines sent.
  const uint64_t n = sent_lines.load();
  std::map<std::pair<int64_t, int>, uint64_t> expected;
  for (uint64_t i = 0; i < n; ++i) ++expected[{int64_t(i / kEventsPerSecond), int(i % kKeys)}];
  static const std::regex row(
      R"re(\{"window_start":"([^"]+)","window_end":"[^"]+","k":([0-9]+),"n":([0-9]+)\})re");
  std::map<std::pair<int64_t, int>, uint64_t> got;
  size_t bad = 0;
  for (const std::string& l : complete_lines(out)) {
    std::smatch m;
    if (!std::regex_match(l, m, row)) {
      ++bad;
      continue;
    }
    const std::optional<int64_t> start = parse_rfc3339(m[1].str());
    ASSERT_TRUE(start) << l;
    auto [it, fresh] = got.emplace(std::make_pair(*start / kNsPerS, std::stoi(m[2].str())), std::stoull(m[3].str()));
    EXPECT_TRUE(fresh) << "row written twice: " << l;
  }
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "rows differ from what was sent (" << n << " lines)";
  EXPECT_NE(run.stderr_text().find("events in"), std::string::npos);
}

}  // namespace
}  // namespace sluice::integration
