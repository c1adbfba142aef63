// With several shards, each shard learns its partitions from its own
// Metadata request. The reference model (and the brief for a `stop = "end"`
// replay: a batch job) treats every partition of the topic as a source
// stream from the start, so a replay's result must not depend on which
// shard's Metadata answer comes first.
//
// This test makes one shard's answer late on purpose, through the proxy of
// kafka_proxy.h: Metadata responses on every connection but the first one
// accepted are held for a while (a broker that is slow to answer one client).
// The data has no late events at all, so any late dead letter is wrong.
//
// Regression: a shard whose Kafka source did not yet know its partitions had
// no opinion on the pipeline watermark, so the other shard could read its
// partitions to the end and fire every window; the late shard's partitions
// then started at the fired watermark and all their records were dead-lettered
// as late (also seen as ~1 run in 10 of KafkaCodecsTest with two shards).
// Fixed by 5d08679 ("a shard waiting for Kafka metadata holds the watermark back").
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

TEST(KafkaShardStartTest, PartitionsOfAShardWithLateMetadataAreNotLate) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "early";
  constexpr int32_t kPartitions = 4;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir,
                         {"--brokers", "2", "--topic", topic + ":" + std::to_string(kPartitions),
                          "--leaders", "round-robin"}));
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, kNsPerMin);
  const int64_t t0 = utc_ns(2024, 7, 14, 10, 0, 0);
  std::mt19937_64 rng(91);
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "sales";
  std::map<int32_t, int64_t> end_offsets;
  for (int32_t p = 0; p < kPartitions; ++p) {
    SegmentShape shape;
    shape.from_ns = t0;
    shape.to_ns = t0 + 30 * kNsPerMin;
    shape.events = 100;
    size_t next_bad = 0;
    const std::vector<InputLine> lines = sales_segment(spec, rng, shape, next_bad);
    ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, p, "lz4", "", {}, {}},
                             values_of(lines)));
    feed_partition(model, topic, p, lines, expected);
    end_offsets[p] = int64_t(lines.size());
  }
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  ASSERT_EQ(model.late(), 0u);

  KafkaProxy proxy;
  // Long against a whole run of the other shard (tens of milliseconds here).
  ASSERT_TRUE(proxy.start(mock.brokers(), {topic, 0, 0, KafkaProxy::Corrupt::never, 1500ms}));
  KafkaSourceToml source;
  source.brokers = proxy.addresses();
  source.topic = topic;
  write_file(dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 2, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());
  proxy.stop();
  EXPECT_EQ(proxy.error(), "");
  const std::string log = run.stderr_text();
  ASSERT_NE(log.find("shard 0 reads partitions 0,2"), std::string::npos) << log;
  ASSERT_NE(log.find("shard 1 reads partitions 1,3"), std::string::npos) << log;
  expect_kafka_output(spec, expected, dir, log);
  EXPECT_EQ(logged_next_offsets(log, topic), end_offsets);
}

}  // namespace
}  // namespace sluice::integration
