// Broker faults while Sluice reads a topic, injected through the mock's stdin
// commands (tools/kafka-mock/README.md): a leader moves, a broker goes down and
// comes back, Fetch requests fail with leadership errors, an offset falls out
// of range. Every broker answers late (`rtt`), so a run takes a couple of
// seconds and the fault lands in the middle of it; the test waits for the
// first rows (progress) before injecting and checks that Sluice logged its
// reaction. After a recoverable fault the result must be exact: no record
// lost, none counted twice.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <functional>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/kafka_peers.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

constexpr int32_t kPartitions = 4;
constexpr int kBrokers = 3;
// Records per partition and per record batch: 30 batches a partition. The
// mock serves one batch per partition per Fetch, so a connection needs 30
// round trips, each delayed by kRttMs: about 2 s of fetching per run.
constexpr int kEventsPerPartition = 280;
constexpr int kRecordsPerBatch = 10;
constexpr int kRttMs = 60;

struct FaultCase {
  std::string name;
  // Fetch versions the mock advertises ("" = its default 0..11). Fetch v7+
  // responses carry a top-level error code, which the mock sets for injected
  // errors; v4-v6 responses have per-partition errors only.
  std::string fetch_versions;
  // Injects the fault into a running pipeline; returns the log text Sluice
  // must show for it (checked after the run).
  std::function<std::vector<std::string>(KafkaMock&)> inject;
};

void PrintTo(const FaultCase& c, std::ostream* os) {
  *os << c.name;
}

class KafkaFaultTest : public ::testing::TestWithParam<FaultCase> {};

// Four partitions of sales events over 40 minutes of event time, a little out
// of order, with late events and malformed lines.
std::vector<std::vector<InputLine>> fault_data(const PipelineSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int64_t t0 = utc_ns(2024, 4, 2, 6, 0, 0);
  size_t next_bad = 0;
  std::vector<std::vector<InputLine>> out;
  for (int32_t p = 0; p < kPartitions; ++p) {
    SegmentShape shape;
    shape.from_ns = t0;
    shape.to_ns = t0 + 40 * kNsPerMin;
    shape.events = kEventsPerPartition - 12;
    shape.jitter_ns = 90 * kNsPerS;
    shape.late = 8;
    shape.bad = 4;
    out.push_back(sales_segment(spec, rng, shape, next_bad));
  }
  return out;
}

TEST_P(KafkaFaultTest, NothingLostNothingTwice) {
  const FaultCase& fault = GetParam();
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "faults";
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir,
                         {"--brokers", std::to_string(kBrokers), "--topic",
                          topic + ":" + std::to_string(kPartitions), "--leaders", "round-robin"}));
  if (!fault.fetch_versions.empty()) {
    ASSERT_TRUE(mock.ok("apiversion Fetch " + fault.fetch_versions));
  }

  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, kNsPerMin);
  const std::vector<std::vector<InputLine>> partitions = fault_data(spec, 61);
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "sales";
  std::map<int32_t, int64_t> end_offsets;
  for (int32_t p = 0; p < kPartitions; ++p) {
    ASSERT_TRUE(
        tool_produce(peers, dir, mock.bootstrap(),
                     {topic,
                      p,
                      p % 2 ? "lz4" : "none",
                      "",
                      {},
                      {"--batch-messages", std::to_string(kRecordsPerBatch), "--linger-ms", "50"}},
                     values_of(partitions[p])));
    feed_partition(model, topic, p, partitions[p], expected);
    end_offsets[p] = int64_t(partitions[p].size());
  }
  const std::vector<InRecord> consumed = kcat_consume(peers, dir, mock.bootstrap(), topic);
  for (int32_t p = 0; p < kPartitions; ++p) {
    ASSERT_TRUE(partition_holds(consumed, p, values_of(partitions[p])));
  }
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  // Every broker answers late from now on, so the run lasts long enough to be disturbed.
  for (int b = 1; b <= kBrokers; ++b) ASSERT_TRUE(mock.ok(fmt::format("rtt {} {}", b, kRttMs)));

  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  // Two shards: each has its own connection to each broker it needs.
  write_file(dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 2, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  std::vector<std::string> written;
  ASSERT_TRUE(wait_for_rows(run, dir, 1, written)) << "no progress before the fault";
  ASSERT_TRUE(run.process().running());
  const std::vector<std::string> must_log = fault.inject(mock);
  const bool still_running = run.process().running();
  ASSERT_TRUE(run.exits_cleanly());
  ASSERT_TRUE(still_running) << "the run ended before the fault was over: raise kRttMs";

  const std::string log = run.stderr_text();
  for (const std::string& text : must_log) {
    EXPECT_NE(log.find(text), std::string::npos) << "sluice did not log \"" << text << "\":\n"
                                                 << log;
  }
  // Reconnections are warnings; nothing else may be.
  expect_kafka_output(spec, expected, dir, log, {"source sales: broker "});
  EXPECT_EQ(logged_next_offsets(log, topic), end_offsets);
}

// Spaces out the commands of one fault so they hit different moments of the
// run; never an assertion about timing.
void pause_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

INSTANTIATE_TEST_SUITE_P(
    Kafka, KafkaFaultTest,
    ::testing::Values(
        // (a) Partitions 1 and 0 get new leaders mid-run: the old leader answers
        // NOT_LEADER_OR_FOLLOWER, Sluice asks Metadata and follows.
        FaultCase{"leader_moves", "",
                  [](KafkaMock& mock) -> std::vector<std::string> {
                    EXPECT_TRUE(mock.ok("leader faults 1 3"));
                    pause_ms(200);
                    EXPECT_TRUE(mock.ok("leader faults 0 2"));
                    return {"partition faults/1: NOT_LEADER_OR_FOLLOWER; asking Metadata",
                            "partition faults/0: NOT_LEADER_OR_FOLLOWER; asking Metadata"};
                  }},
        // (b) Broker 1 (leader of partitions 0 and 3, and the first bootstrap
        // broker) goes down for a while and comes back on the same port.
        FaultCase{"broker_down_then_up", "",
                  [](KafkaMock& mock) -> std::vector<std::string> {
                    EXPECT_TRUE(mock.ok("broker_down 1"));
                    pause_ms(600);
                    EXPECT_TRUE(mock.ok("broker_up 1"));
                    return {"source sales: broker 1 ("};
                  }},
        // (c) Fetch requests fail with leadership errors. With Fetch v11 the
        // mock also sets the top-level error code, so Sluice drops the
        // connection and reconnects; with v6 the errors are per partition and
        // Sluice refreshes Metadata for those partitions.
        FaultCase{"fetch_errors_v11", "",
                  [](KafkaMock& mock) -> std::vector<std::string> {
                    EXPECT_TRUE(mock.ok("errors Fetch 3 NOT_LEADER_OR_FOLLOWER"));
                    pause_ms(300);
                    EXPECT_TRUE(mock.ok("errors Fetch 2 LEADER_NOT_AVAILABLE"));
                    pause_ms(300);
                    EXPECT_TRUE(mock.ok("errors Fetch 2 UNKNOWN_TOPIC_OR_PARTITION"));
                    return {"NOT_LEADER_OR_FOLLOWER; reconnecting",
                            "LEADER_NOT_AVAILABLE; reconnecting",
                            "UNKNOWN_TOPIC_OR_PARTITION; reconnecting"};
                  }},
        FaultCase{"fetch_errors_v6", "4 6",
                  [](KafkaMock& mock) -> std::vector<std::string> {
                    EXPECT_TRUE(mock.ok("errors Fetch 3 NOT_LEADER_OR_FOLLOWER"));
                    pause_ms(300);
                    EXPECT_TRUE(mock.ok("errors Fetch 2 LEADER_NOT_AVAILABLE"));
                    pause_ms(300);
                    EXPECT_TRUE(mock.ok("errors Fetch 2 UNKNOWN_TOPIC_OR_PARTITION"));
                    return {"NOT_LEADER_OR_FOLLOWER; asking Metadata",
                            "LEADER_NOT_AVAILABLE; asking Metadata",
                            "UNKNOWN_TOPIC_OR_PARTITION; asking Metadata"};
                  }}),
    [](const ::testing::TestParamInfo<FaultCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// OFFSET_OUT_OF_RANGE with offset_reset = "fail"

// Checks a run that must fail: exit status 1 and one error line that names
// `partition` (a regex) as out of range.
void expect_out_of_range_failure(SluiceRun& run, const std::string& partition) {
  const std::optional<ExitStatus> status = run.process().wait_exit(kExitTimeout);
  ASSERT_TRUE(status) << "sluice did not exit; stderr:\n" << run.stderr_text();
  EXPECT_TRUE(status->exited && status->code == 1) << status->describe() << "\n"
                                                   << run.stderr_text();
  const std::regex error("^sluice error: source sales: partition " + partition +
                         R"(: offset [0-9]+ is out of range.*offset_reset = "fail")");
  int matching = 0;
  for (const std::string& l : complete_lines(run.stderr_text()))
    matching += std::regex_search(l, error);
  EXPECT_EQ(matching, 1) << run.stderr_text();
}

// The real thing: the mock keeps at most 5 MiB of batches per partition.
// While Sluice reads a partition slowly, 6 MiB more are produced into it, so
// the offset Sluice fetches next is no longer in the log.
TEST(KafkaOffsetResetTest, EvictedOffsetWithFailExitsNamingThePartition) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(
      mock.start(peers, dir, {"--brokers", "2", "--topic", "evict:2", "--leaders", "round-robin"}));
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 0);
  std::mt19937_64 rng(71);
  for (int32_t p = 0; p < 2; ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < 300; ++i) {
      values.push_back(canonical_event_line(
          spec, random_sales_event(rng, utc_ns(2024, 5, 5) + i * 10 * kNsPerS)));
    }
    ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(),
                             {"evict", p, "none", "", {}, {"--batch-messages", "10"}}, values));
  }
  // 30 batches a partition, each Fetch 100 ms late: seconds of reading.
  ASSERT_TRUE(mock.ok("rtt 1 100"));
  ASSERT_TRUE(mock.ok("rtt 2 100"));
  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = "evict";
  source.offset_reset = "fail";
  write_file(dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 1, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  std::vector<std::string> written;
  ASSERT_TRUE(wait_for_rows(run, dir, 1, written)) << "no progress before the eviction";

  // 6 MiB into partition 1 (led by broker 2): everything Sluice has not read yet is dropped.
  const std::string filler = "{\"pad\":\"" + std::string(1000, 'x') + "\"}";
  ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {"evict", 1, "none", "", {}, {}},
                           std::vector<std::string>(6 * 1024, filler)));
  expect_out_of_range_failure(run, "evict/1");
}

// The injected error. Fetch is limited to v4-v6 so that the mock's answer
// carries the error per partition only (with v7+ it also sets the response's
// top-level error code, which a broker uses for fetch-session errors and
// Sluice treats as a connection failure).
TEST(KafkaOffsetResetTest, InjectedOutOfRangeWithFailExitsNamingThePartition) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "1", "--topic", "oor:2"}));
  ASSERT_TRUE(mock.ok("apiversion Fetch 4 6"));
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 0);
  std::mt19937_64 rng(72);
  for (int32_t p = 0; p < 2; ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < 20; ++i) {
      values.push_back(canonical_event_line(spec, random_sales_event(rng, utc_ns(2024, 5, 6))));
    }
    ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {"oor", p, "none", "", {}, {}}, values));
  }
  ASSERT_TRUE(mock.ok("errors Fetch 1 OFFSET_OUT_OF_RANGE"));
  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = "oor";
  source.offset_reset = "fail";
  write_file(dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 1, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  // Both partitions are in the one Fetch that fails; Sluice stops at the first.
  expect_out_of_range_failure(run, "oor/[01]");
}

}  // namespace
}  // namespace sluice::integration
