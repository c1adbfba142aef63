// The gatherer driven without the binary: result chunks from three shards
// arriving in random orders, with their fired-through marks. A window reaches
// the sink only once every shard has fired through its end, windows arrive in
// ascending order, each whole and once, and nothing is held back once every
// shard is final. The sink is the test-only collecting sink.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dataflow/gatherer.h"
#include "operators/result_row.h"
#include "tests/plugins/plugins.h"

namespace sluice {
namespace {

using test_plugins::CollectedRow;

constexpr uint32_t kShards = 3;
constexpr int64_t kSize = 10;

struct Harness {
  EngineShared sh;
  Reactor reactor;
  std::unique_ptr<Gatherer> gatherer;

  Harness() {
    test_plugins::register_test_plugins();
    test_plugins::clear_collected_rows();
    sh.config.window.size_ns = kSize;
    sh.config.schema.key = {"k"};
    sh.config.aggregates = {{"n", AggFn::count, "", -1}};
    SinkConfig sink;
    sink.name = "rows";
    sink.type = test_plugins::kTestCollect;
    sh.config.sinks.push_back(sink);
    sh.shards = kShards;
    sh.resources.sinks.push_back(SinkResource{});
    for (uint32_t i = 0; i < kShards; ++i) {
      auto m = std::make_unique<ShardMetrics>();
      m->sinks.push_back(std::make_unique<SinkMetrics>());
      sh.telemetry.metrics.push_back(std::move(m));
    }
    EXPECT_TRUE(reactor.init(64).has_value());
    auto g = Gatherer::make(sh, reactor);
    EXPECT_TRUE(g.has_value());
    if (g) gatherer = std::move(*g);
  }
};

// One shard's output: rows of (window start, key) and, between them, how far it has fired.
struct Step {
  uint32_t shard;
  std::vector<std::pair<int64_t, int64_t>> rows;  // window start, key
  int64_t fired_through;
  bool final;
};

ResultChunk make_chunk(const Step& s) {
  ResultChunk c;
  c.reset();
  for (auto [start, key] : s.rows) {
    char k[9] = {'i'};
    std::memcpy(k + 1, &key, 8);
    AggValue v;
    v.kind = AggValue::Kind::int64;
    v.v.i = int64_t(s.shard);
    c.used += uint32_t(write_result_row(start, std::string_view(k, 9), &v, 1, c.data + c.used));
    ++c.rows;
  }
  c.fired_through = s.fired_through;
  c.final = s.final;
  c.fire_ns = 0;
  return c;
}

TEST(Gatherer, AWindowIsWrittenOnlyWhenEveryShardHasFiredThroughItThenInOrder) {
  std::mt19937_64 rng(41);
  for (int round = 0; round < 200; ++round) {
    Harness h;
    // Each shard fires windows 0..7 in order, in steps; each window has a
    // few keys per shard (keys differ between shards, as key ownership does).
    std::vector<std::vector<Step>> per_shard(kShards);
    std::map<int64_t, std::set<std::pair<uint32_t, int64_t>>> expected;  // window -> (shard, key)
    for (uint32_t s = 0; s < kShards; ++s) {
      int64_t w = 0;
      while (w < 8) {
        Step st{s, {}, 0, false};
        const int64_t upto = std::min<int64_t>(8, w + 1 + int64_t(rng() % 3));
        for (; w < upto; ++w) {
          const int keys = int(rng() % 3);
          for (int k = 0; k < keys; ++k) {
            const int64_t key = int64_t(s) * 100 + k;
            st.rows.push_back({w * kSize, key});
            expected[w * kSize].insert({s, key});
          }
        }
        st.fired_through = w * kSize;
        per_shard[s].push_back(st);
      }
      per_shard[s].back().final = true;
    }
    // Interleave the shards' steps at random; shard 0 reports through set_progress.
    std::vector<size_t> next(kShards, 0);
    std::vector<int64_t> fired(kShards, kTimeMin);
    size_t left = 0;
    for (auto& q : per_shard) left += q.size();
    size_t seen_rows = 0;
    while (left > 0) {
      uint32_t s = uint32_t(rng() % kShards);
      while (next[s] == per_shard[s].size()) s = (s + 1) % kShards;
      const Step& st = per_shard[s][next[s]++];
      --left;
      const ResultChunk c = make_chunk(st);
      h.gatherer->add_chunk(s, c);
      fired[s] = st.fired_through;
      h.gatherer->step(0);
      // Everything written so far: whole windows that every shard has fired through.
      const std::vector<CollectedRow> rows = test_plugins::collected_rows();
      const int64_t through = *std::min_element(fired.begin(), fired.end());
      for (size_t i = seen_rows; i < rows.size(); ++i) {
        ASSERT_LE(rows[i].window_end, through) << "written before every shard fired through it";
        if (i > 0) {
          ASSERT_GE(rows[i].window_start, rows[i - 1].window_start) << "out of order";
        }
      }
      seen_rows = rows.size();
    }
    EXPECT_TRUE(h.gatherer->done());
    std::map<int64_t, std::set<std::pair<uint32_t, int64_t>>> got;
    for (const CollectedRow& r : test_plugins::collected_rows()) {
      int64_t key;
      std::memcpy(&key, r.key.data() + 1, 8);
      ASSERT_TRUE(got[r.window_start].insert({uint32_t(r.values[0].v.i), key}).second) << "row twice";
      EXPECT_EQ(r.window_end, r.window_start + kSize);
    }
    EXPECT_EQ(got, expected) << "round " << round;
    EXPECT_EQ(h.gatherer->rows_out(), test_plugins::collected_rows().size());
  }
}

}  // namespace
}  // namespace sluice
