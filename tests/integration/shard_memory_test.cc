// Memory that does not depend on the data: linear in the shard count, small
// for an empty job, reported at start, and over a budget refused by `check`
// and `run` (exit 2) rather than found out by the OOM killer.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

std::string config(const TempDir& dir, int shards, std::string_view pipeline_keys = "") {
  CountPipeline p;
  p.pipeline_keys = "shards = " + std::to_string(shards) + "\n" + std::string(pipeline_keys);
  p.source_keys = tcp_source_keys();
  p.sink_path = dir.file("rows.ndjson");
  return p.toml();
}

// Regression: each ordered pair of shards preallocated 32 x 64 KiB batches
// (and every shard touched all its receive buffers): an empty job took
// 132 MiB at 8 shards and 2.3 GiB at 32. Now batches come from a bounded
// pool per shard, made on first use.
TEST(ShardMemoryTest, AnEmptyJobsMemoryIsSmallAndLinearInTheShardCount) {
  uint64_t rss[2] = {0, 0};
  const int shards[2] = {8, 32};
  for (int i = 0; i < 2; ++i) {
    TempDir dir;
    write_file(dir.file("p.toml"), config(dir, shards[i]));
    SluiceRun run(dir, dir.file("p.toml"));
    ASSERT_TRUE(run.start());
    ASSERT_TRUE(run.wait_for_port("in"));
    std::this_thread::sleep_for(300ms);  // every shard has started and sent its first markers
    rss[i] = rss_bytes(run.process().pid());
    std::printf("[ measure  ] %d shards, empty job: RSS %.1f MiB\n", shards[i], double(rss[i]) / (1 << 20));
    EXPECT_NE(run.stderr_text().find("fixed memory: up to "), std::string::npos) << run.stderr_text();
    ASSERT_TRUE(run.terminates_cleanly());
  }
  // Per added shard: well under the 2 MiB x shards of before (an 8 MiB
  // bound leaves room for the sanitizer build's shadow memory).
  EXPECT_LT(rss[1] - std::min(rss[1], rss[0]), uint64_t(24) * (8 << 20));
  EXPECT_LT(rss[1], uint64_t(400) << 20);
}

TEST(ShardMemoryTest, CheckAndRunRefuseAShardCountOverTheFixedMemoryBudget) {
  TempDir dir;
  write_file(dir.file("ok.toml"), config(dir, 4, "fixed_memory_bytes_max = 1073741824"));
  CommandResult ok = run_command({sluice_bin(), "check", dir.file("ok.toml")}, dir);
  EXPECT_TRUE(ok.status.exited && ok.status.code == 0) << ok.err;
  EXPECT_NE(ok.out.find("4 shards, fixed memory "), std::string::npos) << ok.out;

  write_file(dir.file("big.toml"), config(dir, 64, "fixed_memory_bytes_max = 1073741824"));
  for (const char* cmd : {"check", "run"}) {
    CommandResult r = run_command({sluice_bin(), cmd, dir.file("big.toml")}, dir);
    EXPECT_TRUE(r.status.exited && r.status.code == 2) << cmd << ": " << r.status.describe() << r.err;
    EXPECT_NE(r.err.find("64 shards need "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("more than the budget of 1.0 GiB (fixed_memory_bytes_max)"), std::string::npos)
        << r.err;
  }
}

}  // namespace
}  // namespace sluice::integration
