// A TCP source end to end: concurrent connections writing at random chunk
// sizes (so lines arrive split anywhere), with late, malformed, over-long and
// partial lines; and windows written while the engine runs.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

constexpr size_t kLineBytesMax = 256;

std::string tcp_config(uint32_t shards, const PipelineSpec& spec, const TempDir& dir,
                       std::string_view flush_interval) {
  return fmt::format(R"([pipeline]
name = "tcp-test"
shards = {}

[[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"
format = "ndjson"
line_bytes_max = {}

{}
[[sinks]]
name = "rows"
type = "file"
path = {}
format = "ndjson"
flush_interval = "{}"

[dead_letter]
path = {}
)",
                     shards, kLineBytesMax, spec.toml(), toml_string(dir.file("rows.ndjson")),
                     flush_interval, toml_string(dir.file("dead.ndjson")));
}

// Waits (up to kRowsTimeout) until the rows file has at least `count`
// complete lines, while the engine keeps running; `lines` gets them.
::testing::AssertionResult rows_written(SluiceRun& run, const std::string& path, size_t count,
                                        std::vector<std::string>& lines) {
  const Clock::time_point deadline = Clock::now() + kRowsTimeout;
  while ((lines = complete_lines(read_file(path))).size() < count) {
    if (!run.process().running()) {
      return ::testing::AssertionFailure() << "sluice exited early; stderr:\n" << run.stderr_text();
    }
    if (Clock::now() >= deadline) {
      return ::testing::AssertionFailure() << "only " << lines.size() << " of " << count
                                           << " rows of the closed windows were written";
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// Concurrent connections

// Which events are late must not depend on how the engine interleaves the
// connections. Each connection sends its largest event time M first; every
// other event is either late by the connection's own watermark (window end
// <= M - delay) or lies in a window ending after every connection's final
// watermark, so no window that receives a non-late event can close before
// the end. The test asserts this of the data it generates.
constexpr int kConnections = 8;
constexpr int64_t kWindowNs = kNsPerMin;
constexpr int64_t kDelayNs = 5 * kNsPerMin;

struct TcpCase {
  uint32_t shards;
  uint64_t seed;  // of the data and of the chunking
};

void PrintTo(const TcpCase& c, std::ostream* os) {
  *os << "shards=" << c.shards << " seed=" << c.seed;
}

class TcpSourceTest : public ::testing::TestWithParam<TcpCase> {};

std::vector<std::vector<InputLine>> make_connections(const PipelineSpec& spec,
                                                     std::mt19937_64& rng) {
  const int64_t t0 = utc_ns(2024, 5, 6, 12, 0, 0);
  auto ms_between = [&](int64_t lo, int64_t hi) {  // a whole-ms time in [lo, hi]
    return std::uniform_int_distribution<int64_t>(lo / kNsPerMs, hi / kNsPerMs)(rng) * kNsPerMs;
  };
  std::vector<int64_t> max_time(kConnections);
  for (int c = 0; c < kConnections; ++c) {
    max_time[c] = ms_between(t0 + 20 * kNsPerMin + c * 10 * kNsPerS,
                             t0 + 20 * kNsPerMin + c * 10 * kNsPerS + 9999 * kNsPerMs);
  }
  const int64_t final_watermark_max =
      *std::max_element(max_time.begin(), max_time.end()) - kDelayNs;
  // The first window that ends after every final watermark.
  const int64_t open_from = floor_div(final_watermark_max, kWindowNs) * kWindowNs;

  const std::vector<BadLine> catalogue = sales_bad_lines(spec, random_sales_event(rng, t0));
  size_t next_bad = 0;
  std::vector<std::vector<InputLine>> conns(kConnections);
  for (int c = 0; c < kConnections; ++c) {
    std::vector<InputLine> rest;
    for (int i = 0; i < 170; ++i) {
      const Event e = random_sales_event(rng, ms_between(open_from, max_time[c]));
      rest.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
    }
    const int64_t late_before = floor_div(max_time[c] - kDelayNs, kWindowNs) * kWindowNs;
    for (int i = 0; i < 15; ++i) {
      const Event e = random_sales_event(rng, ms_between(t0, late_before - kNsPerMs));
      rest.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
    }
    for (int i = 0; i < 6; ++i) {
      const BadLine& b = catalogue[next_bad++ % catalogue.size()];
      rest.push_back(InputLine::bad(b.text, b.reason));
    }
    for (auto& l : rest) {
      if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) l.terminator = "\r\n";
    }
    // Over-long lines, LF only (a CR would count towards the limit), one
    // longer than the 1 KiB prefix a dead letter keeps.
    const Event ahead = random_sales_event(rng, max_time[c] + 60 * kNsPerMin);
    for (size_t bytes : {kLineBytesMax + 1, size_t(3000)}) {
      rest.push_back(InputLine::bad(padded_event_line(spec, ahead, bytes), "line_too_long", true));
    }
    for (int i = 0; i < 5; ++i) rest.push_back(InputLine::blank(i % 2 ? "\r\n" : "\n"));
    std::shuffle(rest.begin(), rest.end(), rng);

    const Event first = random_sales_event(rng, max_time[c]);
    conns[c].push_back(InputLine::of_event(first, event_line(spec, first, rng)));
    conns[c].insert(conns[c].end(), rest.begin(), rest.end());
  }
  // The last connection hangs up in the middle of a line.
  const Event cut = random_sales_event(rng, max_time.back());
  const std::string cut_line = event_line(spec, cut, rng);
  InputLine partial = InputLine::bad(cut_line.substr(0, cut_line.size() / 2), "partial_line");
  partial.terminator = "";
  conns.back().push_back(partial);
  return conns;
}

TEST_P(TcpSourceTest, ConcurrentChunkedConnectionsGiveExactResult) {
  const TcpCase& param = GetParam();
  TempDir dir;
  const PipelineSpec spec = sales_spec("rfc3339", kWindowNs, kDelayNs);
  std::mt19937_64 rng(param.seed);
  const std::vector<std::vector<InputLine>> conns = make_connections(spec, rng);
  write_file(dir.file("pipeline.toml"), tcp_config(param.shards, spec, dir, "100ms"));

  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  const std::optional<uint16_t> port = run.wait_for_port("pos");
  ASSERT_TRUE(port);
  std::vector<TcpClient> clients(kConnections);
  for (TcpClient& client : clients) ASSERT_EQ(client.connect(*port), "");

  // The expectation, per connection in its own order; origins are the peers' addresses.
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "pos";
  std::vector<std::vector<bool>> accepted;
  for (int c = 0; c < kConnections; ++c) {
    const std::string peer = clients[c].local_address();
    auto origin = [&](size_t) { return peer; };
    accepted.push_back(feed_lines(model, c, conns[c], origin, expected));
  }
  expected.rows = model.rows();
  expected.events_in = model.accepted();

  // The data is timing-independent (see above), and has late events on every connection.
  const int64_t final_watermark_max = *model.max_watermark();
  for (int c = 0; c < kConnections; ++c) {
    int late = 0;
    for (size_t i = 0; i < conns[c].size(); ++i) {
      const InputLine& l = conns[c][i];
      if (l.kind != InputLine::Kind::event) continue;
      ASSERT_LE(l.event.time_ns, conns[c][0].event.time_ns) << "connection " << c << " line " << i;
      if (accepted[c][i]) {
        ASSERT_GT(model.window_end(l.event.time_ns), final_watermark_max)
            << "connection " << c << " line " << i;
      } else {
        ++late;
      }
    }
    ASSERT_GT(late, 0) << "connection " << c;
  }

  std::vector<std::string> errors(kConnections);
  std::vector<std::thread> senders;
  for (int c = 0; c < kConnections; ++c) {
    senders.emplace_back([&, c] {
      std::mt19937_64 chunks(param.seed * 1000 + c);
      errors[c] = clients[c].send_chunked(render(conns[c]), chunks);
      // Half-close, then wait until the engine has consumed the connection and closed it.
      if (errors[c].empty()) errors[c] = clients[c].finish();
    });
  }
  for (std::thread& t : senders) t.join();
  for (int c = 0; c < kConnections; ++c) EXPECT_EQ(errors[c], "") << "connection " << c;

  ASSERT_TRUE(run.terminates_cleanly());
  expect_run_output(spec, expected, dir.file("rows.ndjson"), dir.file("dead.ndjson"),
                    run.stderr_text());
}

INSTANTIATE_TEST_SUITE_P(Shards, TcpSourceTest,
                         ::testing::Values(TcpCase{1, 1}, TcpCase{1, 2}, TcpCase{1, 3},
                                           TcpCase{2, 1}, TcpCase{2, 2}, TcpCase{2, 3}),
                         [](const ::testing::TestParamInfo<TcpCase>& info) {
                           return fmt::format("shards{}_seed{}", info.param.shards,
                                              info.param.seed);
                         });

// ---------------------------------------------------------------------------
// Windows are written as the watermark passes them, not only at shutdown

TEST(TcpWindowsTest, WindowsAreWrittenWhileTheEngineRuns) {
  TempDir dir;
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 10 * kNsPerS);
  const int64_t t0 = utc_ns(2024, 7, 1, 0, 0, 0);
  std::mt19937_64 rng(7);

  // Three minutes of events, a little out of order (less than the delay) ...
  std::vector<InputLine> lines;
  for (int i = 0; i < 300; ++i) {
    const int64_t jitter = std::uniform_int_distribution<int64_t>(0, 5000)(rng) * kNsPerMs;
    const Event e = random_sales_event(rng, std::max(t0, t0 + i * 600 * kNsPerMs - jitter));
    lines.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
  }
  // ... then one that moves the watermark to t0 + 3m20s: the windows ending at
  // or before it (the first three) can be written; the fourth, which holds
  // this event, stays open.
  const Event ahead = random_sales_event(rng, t0 + 3 * kNsPerMin + 30 * kNsPerS);
  lines.push_back(InputLine::of_event(ahead, event_line(spec, ahead, rng)));

  write_file(dir.file("pipeline.toml"), tcp_config(2, spec, dir, "10ms"));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  const std::optional<uint16_t> port = run.wait_for_port("pos");
  ASSERT_TRUE(port);
  TcpClient client;
  ASSERT_EQ(client.connect(*port), "");

  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "pos";
  const std::string peer = client.local_address();
  auto origin = [&](size_t) { return peer; };
  feed_lines(model, 0, lines, origin, expected);
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  const int64_t watermark = *model.watermark(0);
  ASSERT_EQ(watermark, t0 + 3 * kNsPerMin + 20 * kNsPerS);
  std::vector<Row> early;
  for (const Row& r : expected.rows) {
    if (r.window_start + spec.window_ns <= watermark) early.push_back(r);
  }
  ASSERT_LT(early.size(), expected.rows.size());
  ASSERT_EQ(early.back().window_start, t0 + 2 * kNsPerMin);

  std::mt19937_64 chunks(77);
  ASSERT_EQ(client.send_chunked(render(lines), chunks), "");

  // The connection stays open: only the watermark can release these rows.
  std::vector<std::string> written;
  ASSERT_TRUE(rows_written(run, dir.file("rows.ndjson"), early.size(), written));
  EXPECT_TRUE(same_rows(early, parse_ndjson_rows(spec, written)));
  EXPECT_TRUE(windows_ascending(parse_ndjson_rows(spec, written)));
  // Nothing of the open window follows while the engine keeps running.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(complete_lines(read_file(dir.file("rows.ndjson"))), written);

  // SIGTERM with the client still connected: everything else is flushed.
  ASSERT_TRUE(run.terminates_cleanly());
  expect_run_output(spec, expected, dir.file("rows.ndjson"), dir.file("dead.ndjson"),
                    run.stderr_text());
}

// A connection that sends nothing for idle_timeout stops holding the pipeline
// watermark back; when it speaks again it cannot add to windows already
// written (its events for them are late), but it can to open ones.
TEST(TcpWindowsTest, IdleConnectionStopsHoldingBackTheWatermark) {
  TempDir dir;
  PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 10 * kNsPerS);
  spec.idle_timeout = "1s";
  const int64_t t0 = utc_ns(2024, 8, 1, 0, 0, 0);
  std::mt19937_64 rng(8);
  auto line_at = [&](int64_t t) {
    const Event e = random_sales_event(rng, t);
    return InputLine::of_event(e, event_line(spec, e, rng));
  };
  // The quiet connection: one early event, then silence.
  const std::vector<InputLine> quiet_first = {line_at(t0 + 5 * kNsPerS)};
  // The busy one: three minutes of events, then one that puts its watermark at t0 + 3m20s.
  std::vector<InputLine> busy;
  for (int i = 0; i < 180; ++i) busy.push_back(line_at(t0 + i * kNsPerS));
  busy.push_back(line_at(t0 + 3 * kNsPerMin + 30 * kNsPerS));
  // The quiet connection again, after the first windows are written: one
  // event for a written window, one for the open window.
  const InputLine into_written = line_at(t0 + 20 * kNsPerS);
  const InputLine into_open = line_at(t0 + 3 * kNsPerMin + 5 * kNsPerS);

  write_file(dir.file("pipeline.toml"), tcp_config(2, spec, dir, "10ms"));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  const std::optional<uint16_t> port = run.wait_for_port("pos");
  ASSERT_TRUE(port);
  TcpClient quiet, loud;
  ASSERT_EQ(quiet.connect(*port), "");
  ASSERT_EQ(quiet.send_all(render(quiet_first)), "");
  ASSERT_EQ(loud.connect(*port), "");
  ASSERT_EQ(loud.send_all(render(busy)), "");

  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "pos";
  const std::string quiet_peer = quiet.local_address(), loud_peer = loud.local_address();
  auto quiet_origin = [&](size_t) { return quiet_peer; };
  auto loud_origin = [&](size_t) { return loud_peer; };
  feed_lines(model, 1, quiet_first, quiet_origin, expected);
  feed_lines(model, 0, busy, loud_origin, expected);
  const int64_t watermark = *model.watermark(0);
  std::vector<Row> early;
  for (const Row& r : model.rows()) {
    if (r.window_start + spec.window_ns <= watermark) early.push_back(r);
  }
  ASSERT_EQ(early.back().window_start, t0 + 2 * kNsPerMin);

  // Only the quiet connection going idle can release these rows. It goes
  // idle one idle_timeout after its event, just before the busy one does
  // (whose last input came later): in between, the busy connection alone sets
  // the pipeline watermark, so these windows must be written, although both
  // connections are idle a moment later.
  std::vector<std::string> written;
  ASSERT_TRUE(rows_written(run, dir.file("rows.ndjson"), early.size(), written));
  EXPECT_TRUE(same_rows(early, parse_ndjson_rows(spec, written)));

  ASSERT_EQ(quiet.send_all(into_written.text + "\n" + into_open.text + "\n"), "");
  ++expected.lines_in;
  expected.dead_letters.push_back({"late", quiet_peer, into_written.text});
  ASSERT_TRUE(model.offer(1, into_open.event));
  ++expected.lines_in;
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  EXPECT_EQ(quiet.finish(), "");
  EXPECT_EQ(loud.finish(), "");
  ASSERT_TRUE(run.terminates_cleanly());
  expect_run_output(spec, expected, dir.file("rows.ndjson"), dir.file("dead.ndjson"),
                    run.stderr_text());
}

}  // namespace
}  // namespace sluice::integration
