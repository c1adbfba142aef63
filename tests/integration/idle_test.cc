// idle_timeout end to end: a source that delivers no event for idle_timeout
// stops holding the pipeline watermark back, while the others stay active
// (so the all-idle rule cannot be what releases the rows); bytes that never
// complete an event do not keep a source active; idle_timeout = "0s" means a
// source never counts as idle; and the same for a Kafka partition.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <atomic>
#include <optional>
#include <utility>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/kafka_peers.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

std::string tcp_pipeline(const PipelineSpec& spec, const TempDir& dir) {
  return fmt::format(R"([pipeline]
shards = 2

[[sources]]
name = "pos"
type = "tcp"
listen = "127.0.0.1:0"

{}
[[sinks]]
name = "rows"
type = "file"
path = {}
flush_interval = "10ms"

[dead_letter]
path = {}
)",
                     spec.toml(), toml_string(dir.file("rows.ndjson")), toml_string(dir.file("dead.ndjson")));
}

// The rows of the windows that end at or before `watermark`.
std::vector<Row> rows_through(const ReferenceModel& model, int64_t watermark) {
  std::vector<Row> out;
  for (const Row& r : model.rows()) {
    if (r.window_start + model.spec().window_ns <= watermark) out.push_back(r);
  }
  return out;
}

// Keeps a connection active: an event at time `at` (which is never late and
// never moves its watermark) every 100 ms until stopped. Remembers what it sent.
class Keeper {
 public:
  Keeper(TcpClient& client, const PipelineSpec& spec, int64_t at) {
    thread_ = std::thread([this, &client, spec, at] {
      std::mt19937_64 rng(99);
      while (!stop_.load()) {
        const Event e = random_sales_event(rng, at);
        InputLine line = InputLine::of_event(e, event_line(spec, e, rng));
        if (!client.send_all(line.text + "\n").empty()) break;
        sent_.push_back(std::move(line));
        std::this_thread::sleep_for(100ms);
      }
    });
  }
  // Stops it; then sent() is safe to read.
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  ~Keeper() { stop(); }
  const std::vector<InputLine>& sent() const { return sent_; }

 private:
  std::atomic<bool> stop_{false};
  std::vector<InputLine> sent_;
  std::thread thread_;
};

// Sends one byte every 100 ms (never a newline) until stopped.
class Trickler {
 public:
  Trickler(TcpClient& client, std::string text) : text_(std::move(text)) {
    thread_ = std::thread([this, &client] {
      size_t i = 0;
      while (!stop_.load()) {
        if (!client.send_all(std::string_view(text_).substr(i % text_.size(), 1)).empty()) break;
        sent_ += text_[i % text_.size()];
        ++i;
        std::this_thread::sleep_for(100ms);
      }
    });
  }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  ~Trickler() { stop(); }
  const std::string& sent() const { return sent_; }

 private:
  std::string text_;
  std::atomic<bool> stop_{false};
  std::string sent_;
  std::thread thread_;
};

// A running engine with two connections: a quiet one (one early event, then
// no event) and a busy one (three and a half minutes of events), and the
// reference model fed with both.
struct QuietAndBusy {
  TempDir dir;
  PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 10 * kNsPerS);
  const int64_t t0 = utc_ns(2024, 8, 1, 0, 0, 0);
  const int64_t busy_max = t0 + 3 * kNsPerMin + 30 * kNsPerS;
  std::optional<SluiceRun> run;
  TcpClient quiet, loud;
  std::optional<ReferenceModel> model;
  ExpectedRun expected;
  std::string quiet_peer, loud_peer;

  ::testing::AssertionResult start(const std::string& idle_timeout, uint64_t seed) {
    spec.idle_timeout = idle_timeout;
    std::mt19937_64 rng(seed);
    auto line_at = [&](int64_t t) {
      const Event e = random_sales_event(rng, t);
      return InputLine::of_event(e, event_line(spec, e, rng));
    };
    const std::vector<InputLine> quiet_first = {line_at(t0 + 5 * kNsPerS)};
    std::vector<InputLine> busy;
    for (int i = 0; i < 180; ++i) busy.push_back(line_at(t0 + i * kNsPerS));
    busy.push_back(line_at(busy_max));
    write_file(dir.file("pipeline.toml"), tcp_pipeline(spec, dir));
    run.emplace(dir, dir.file("pipeline.toml"));
    if (!run->start()) return ::testing::AssertionFailure() << "sluice did not start";
    const std::optional<uint16_t> port = run->wait_for_port("pos");
    if (!port) return ::testing::AssertionFailure() << "no port";
    for (auto [client, lines] : {std::pair{&quiet, &quiet_first}, std::pair{&loud, static_cast<const std::vector<InputLine>*>(&busy)}}) {
      if (std::string e = client->connect(*port); !e.empty()) return ::testing::AssertionFailure() << e;
      if (std::string e = client->send_all(render(*lines)); !e.empty()) return ::testing::AssertionFailure() << e;
    }
    model.emplace(spec);
    expected.source = "pos";
    quiet_peer = quiet.local_address();
    loud_peer = loud.local_address();
    feed_lines(*model, 1, quiet_first, [&](size_t) { return quiet_peer; }, expected);
    feed_lines(*model, 0, busy, [&](size_t) { return loud_peer; }, expected);
    return ::testing::AssertionSuccess();
  }
  // The rows of the windows the busy connection's watermark has passed.
  std::vector<Row> early() const { return rows_through(*model, busy_max - spec.delay_ns); }
  void feed_busy(const std::vector<InputLine>& lines) {
    feed_lines(*model, 0, lines, [&](size_t) { return loud_peer; }, expected);
  }
  // Both hang up; SIGTERM; everything checked against the model.
  bool quiet_finished = false;
  void finish_and_check() {
    if (!quiet_finished) {
      EXPECT_EQ(quiet.finish(), "");
    }
    EXPECT_EQ(loud.finish(), "");
    ASSERT_TRUE(run->terminates_cleanly());
    expected.rows = model->rows();
    expected.events_in = model->accepted();
    expect_run_output(spec, expected, dir.file("rows.ndjson"), dir.file("dead.ndjson"), run->stderr_text());
  }
};

// The quiet connection goes idle while the busy one stays active (the
// keeper), so the all-idle rule cannot be what releases the early rows.
// With `trickle`, the quiet connection keeps sending bytes of a line that
// never ends: bytes are not events, so it must still go idle.
void quiet_connection_among_active(bool trickle) {
  QuietAndBusy t;
  ASSERT_TRUE(t.start("1s", 8));
  Keeper keeper(t.loud, t.spec, t.busy_max);
  std::optional<Trickler> trickler;
  if (trickle) trickler.emplace(t.quiet, "{\"region\":\"never ends");
  const std::vector<Row> early = t.early();
  ASSERT_EQ(early.back().window_start, t.t0 + 2 * kNsPerMin);
  std::vector<std::string> written;
  ASSERT_TRUE(wait_for_rows(*t.run, t.dir, early.size(), written))
      << "the quiet connection never stopped holding the watermark back";
  EXPECT_TRUE(same_rows(early, parse_ndjson_rows(t.spec, written)));

  keeper.stop();
  t.feed_busy(keeper.sent());
  if (trickler) {
    trickler->stop();
    // The trickled bytes end as one line that is not JSON.
    ASSERT_EQ(t.quiet.send_all("\n"), "");
    ++t.expected.lines_in;
    t.expected.dead_letters.push_back({"parse_error", t.quiet_peer, trickler->sent()});
  }
  t.finish_and_check();
}

TEST(IdleTest, QuietConnectionAmongActiveOnesStopsHoldingBackTheWatermark) {
  quiet_connection_among_active(false);
}

// Regression: a client trickling bytes (never a whole line) held the pipeline
// watermark forever, whatever idle_timeout said.
TEST(IdleTest, TricklingBytesWithoutAnEventDoNotKeepAConnectionActive) {
  quiet_connection_among_active(true);
}

// idle_timeout = "0s": the quiet connection holds the watermark for as long as
// it is open; its hang-up (a finished source) releases the rows.
TEST(IdleTest, ZeroIdleTimeoutMeansASourceNeverGoesIdle) {
  QuietAndBusy t;
  ASSERT_TRUE(t.start("0s", 9));
  Keeper keeper(t.loud, t.spec, t.busy_max);
  // Three seconds: three idle timeouts of the other tests. Nothing may fire
  // while the quiet connection is open (its watermark is t0 - 5 s).
  std::this_thread::sleep_for(3s);
  keeper.stop();
  EXPECT_EQ(read_file(t.dir.file("rows.ndjson")), "") << "a source went idle with idle_timeout = 0s";
  t.feed_busy(keeper.sent());
  // The quiet connection hangs up: finished sources do not hold anyone back.
  EXPECT_EQ(t.quiet.finish(), "");
  t.quiet_finished = true;
  std::vector<std::string> written;
  ASSERT_TRUE(wait_for_rows(*t.run, t.dir, t.early().size(), written));
  EXPECT_TRUE(same_rows(t.early(), parse_ndjson_rows(t.spec, written)));
  t.finish_and_check();
}

// A Kafka partition that receives nothing stops holding the watermark back
// while another partition stays active.
TEST(IdleTest, IdleKafkaPartitionAmongActiveOnes) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "idle";
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "1", "--topic", topic + ":2"}));
  PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 10 * kNsPerS);
  spec.idle_timeout = "1s";
  const int64_t t0 = utc_ns(2024, 9, 9, 12, 0, 0);
  std::mt19937_64 rng(61);
  auto line_at = [&](int64_t t) {
    const Event e = random_sales_event(rng, t);
    return InputLine::of_event(e, canonical_event_line(spec, e));
  };
  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  source.stop = "none";
  write_file(dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 2, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(wait_for_log(run, "shard 0 reads"));
  ASSERT_TRUE(wait_for_log(run, "shard 1 reads"));

  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "sales";
  // Partition 1: one early event, then nothing.
  const std::vector<InputLine> quiet = {line_at(t0 + 5 * kNsPerS)};
  ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, 1, "none", "", {}, {}}, values_of(quiet)));
  feed_partition(model, topic, 1, quiet, expected);
  // Partition 0: three and a half minutes of events.
  std::vector<InputLine> busy;
  for (int i = 0; i < 180; ++i) busy.push_back(line_at(t0 + i * kNsPerS));
  const int64_t busy_max = t0 + 3 * kNsPerMin + 30 * kNsPerS;
  busy.push_back(line_at(busy_max));
  ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, 0, "none", "", {}, {}}, values_of(busy)));
  int64_t offset0 = int64_t(busy.size());
  feed_partition(model, topic, 0, busy, expected);
  const std::vector<Row> early = rows_through(model, busy_max - spec.delay_ns);

  // Partition 0 stays active (an event at its largest time every 200 ms)
  // until the rows appear: partition 1 going idle is what must release them.
  std::vector<std::string> written;
  const Clock::time_point deadline = Clock::now() + kRowsTimeout;
  while ((written = complete_lines(read_file(dir.file("rows.ndjson")))).size() < early.size()) {
    ASSERT_TRUE(run.process().running()) << run.stderr_text();
    ASSERT_LT(Clock::now(), deadline) << "the idle partition kept holding the watermark back";
    const std::vector<InputLine> more = {line_at(busy_max)};
    ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, 0, "none", "", {}, {}}, values_of(more)));
    feed_partition(model, topic, 0, more, expected, offset0);
    ++offset0;
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_TRUE(same_rows(early, parse_ndjson_rows(spec, written)));
  ASSERT_TRUE(run.terminates_cleanly());
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  expect_kafka_output(spec, expected, dir, run.stderr_text());
}

}  // namespace
}  // namespace sluice::integration
