// Record batches that fail their CRC-32C: a proxy between Sluice and the mock
// broker (kafka_proxy.h) flips one byte inside one chosen batch of one
// partition in the Fetch responses it forwards. Documented behaviour: a bad
// batch is fetched once more; if it is bad again it becomes one corrupt_batch
// dead letter naming the partition and offset range, and reading goes on
// after it. Records are never lost otherwise, nor counted twice.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <string>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/kafka_peers.h"
#include "tests/integration/kafka_proxy.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

constexpr int32_t kCorruptPartition = 0;
// The third batch of the partition: batches before and after it must be delivered.
constexpr int kCorruptOrdinal = 2;

struct Topic {
  std::string name = "crc";
  std::vector<std::vector<InputLine>> partitions;  // in offset order
};

// Partition 0 in five producer runs (so several batches, in several codecs),
// partition 1 in two; events in time order with jitter, a few late ones and
// malformed lines.
::testing::AssertionResult produce_topic(const KafkaPeers& peers, const TempDir& dir,
                                         const KafkaMock& mock, const PipelineSpec& spec,
                                         Topic& topic) {
  std::mt19937_64 rng(81);
  const int64_t t0 = utc_ns(2024, 2, 29, 23, 0, 0);
  const std::vector<std::vector<std::string>> codecs = {{"none", "lz4", "none", "zstd", "gzip"},
                                                        {"snappy", "none"}};
  size_t next_bad = 0;
  topic.partitions.assign(codecs.size(), {});
  for (size_t p = 0; p < codecs.size(); ++p) {
    for (size_t run = 0; run < codecs[p].size(); ++run) {
      SegmentShape shape;
      shape.from_ns = t0 + int64_t(run) * 10 * kNsPerMin;
      shape.to_ns = shape.from_ns + 10 * kNsPerMin;
      shape.events = 24;
      shape.jitter_ns = 90 * kNsPerS;
      shape.late = 2;
      shape.bad = 1;
      const std::vector<InputLine> lines = sales_segment(spec, rng, shape, next_bad);
      std::vector<OutRecord> records;
      for (const std::string& v : values_of(lines)) records.push_back({v, std::nullopt});
      auto ok = kcat_produce(peers, dir, mock.bootstrap(),
                             {topic.name, int32_t(p), codecs[p][run], false, {}, {}}, records);
      if (!ok) return ok;
      auto& all = topic.partitions[p];
      all.insert(all.end(), lines.begin(), lines.end());
    }
  }
  const std::vector<InRecord> consumed = kcat_consume(peers, dir, mock.bootstrap(), topic.name);
  for (size_t p = 0; p < codecs.size(); ++p) {
    auto ok = partition_holds(consumed, int32_t(p), values_of(topic.partitions[p]));
    if (!ok) return ok;
  }
  return ::testing::AssertionSuccess();
}

class KafkaCorruptBatchTest : public ::testing::TestWithParam<KafkaProxy::Corrupt> {};

TEST_P(KafkaCorruptBatchTest, ExactlyTheBadBatchIsLost) {
  const bool always = GetParam() == KafkaProxy::Corrupt::always;
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  Topic topic;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(
      peers, dir, {"--brokers", "2", "--topic", topic.name + ":2", "--leaders", "round-robin"}));
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, kNsPerMin);
  ASSERT_TRUE(produce_topic(peers, dir, mock, spec, topic));

  KafkaProxy proxy;
  ASSERT_TRUE(proxy.start(mock.brokers(), {topic.name, kCorruptPartition, kCorruptOrdinal,
                                           GetParam(), Clock::duration::zero()}));
  KafkaSourceToml source;
  source.brokers = proxy.addresses();
  source.topic = topic.name;
  write_file(dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 2, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());
  proxy.stop();
  EXPECT_EQ(proxy.error(), "");

  // The proxy says which batch it spoiled: the expectation leaves out exactly
  // its records when it was spoiled every time it was served.
  const KafkaProxy::Corrupted bad = proxy.corrupted();
  const int64_t size = int64_t(topic.partitions[kCorruptPartition].size());
  ASSERT_GT(bad.base_offset, 0) << "the third batch starts after the first two";
  ASSERT_EQ(bad.records, bad.last_offset - bad.base_offset + 1);
  ASSERT_LT(bad.last_offset, size - 1) << "records follow the bad batch";
  if (always) {
    EXPECT_EQ(bad.times, 2) << "fetched once more, then given up";
  } else {
    EXPECT_EQ(bad.times, 1);
  }
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "sales";
  const auto& lines = topic.partitions[kCorruptPartition];
  if (always) {
    feed_partition(model, topic.name, kCorruptPartition,
                   {lines.begin(), lines.begin() + bad.base_offset}, expected, 0);
    feed_partition(model, topic.name, kCorruptPartition,
                   {lines.begin() + bad.last_offset + 1, lines.end()}, expected,
                   bad.last_offset + 1);
    expected.dead_letters.push_back(
        {"corrupt_batch", kafka_origin(topic.name, kCorruptPartition, bad.base_offset), ""});
  } else {
    feed_partition(model, topic.name, kCorruptPartition, lines, expected);
  }
  feed_partition(model, topic.name, 1, topic.partitions[1], expected);
  expected.rows = model.rows();
  expected.events_in = model.accepted();

  const std::string log = run.stderr_text();
  expect_kafka_output(spec, expected, dir, log, {"; fetching it again"});
  EXPECT_NE(log.find(fmt::format("partition {}/{}: batch at offset {}: ", topic.name,
                                 kCorruptPartition, bad.base_offset)),
            std::string::npos)
      << "no warning about the bad batch:\n"
      << log;
  EXPECT_EQ(logged_next_offsets(log, topic.name),
            (std::map<int32_t, int64_t>{{0, size}, {1, int64_t(topic.partitions[1].size())}}));
  if (always) {
    // The dead letter's detail names the partition and the offset range.
    const std::string detail = fmt::format("partition {} offsets {}-{}", kCorruptPartition,
                                           bad.base_offset, bad.last_offset);
    int found = 0;
    for (const std::string& l : complete_lines(read_file(dir.file("dead.ndjson")))) {
      std::string error;
      std::optional<DeadLetterRecord> d = parse_dead_letter(l, &error);
      if (d && d->reason == "corrupt_batch") {
        ++found;
        EXPECT_NE(d->detail.find(detail), std::string::npos) << l;
      }
    }
    EXPECT_EQ(found, 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Kafka, KafkaCorruptBatchTest,
                         ::testing::Values(KafkaProxy::Corrupt::once, KafkaProxy::Corrupt::always),
                         [](const ::testing::TestParamInfo<KafkaProxy::Corrupt>& info) {
                           return info.param == KafkaProxy::Corrupt::once
                                      ? "bad_once_refetched"
                                      : "bad_always_dead_letter";
                         });

}  // namespace
}  // namespace sluice::integration
