// [schema] time future_limit: an event stamped far ahead of the wall clock is
// a `future` dead letter instead of moving its source's watermark into the
// far future (which made every later event `late` until restart).
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <regex>
#include <string>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

std::string pipeline(const TempDir& dir, std::string_view time_keys) {
  CountPipeline p;
  p.source_keys = file_source_keys(dir.file("in.ndjson"));
  p.time_keys = time_keys;
  p.sink_path = dir.file("rows.ndjson");
  p.dead_letter_path = dir.file("dead.ndjson");
  return p.toml();
}

struct Input {
  std::string text;
  std::map<std::pair<int64_t, int>, uint64_t> counts;  // (window start s, key) -> events, all but the stray
  std::string stray;                                   // the far-future line
};

// 200 events in time order over the last ~3 minutes, with one line stamped
// in the year 2255 between them.
Input make_input() {
  Input in;
  const int64_t now = int64_t(std::time(nullptr));
  for (int i = 0; i < 200; ++i) {
    if (i == 100) {
      in.stray = "{\"k\":9,\"ts\":9000000000}";
      in.text += in.stray + "\n";
    }
    const int64_t ts = now - 200 + i;
    in.text += "{\"k\":" + std::to_string(i % 5) + ",\"ts\":" + std::to_string(ts) + "}\n";
    ++in.counts[{ts - ts % 60, i % 5}];
  }
  return in;
}

std::map<std::pair<int64_t, int>, uint64_t> read_counts(const std::string& path) {
  static const std::regex row(R"re(\{"window_start":"([^"]+)","window_end":"[^"]+","k":([0-9]+),"n":([0-9]+)\})re");
  std::map<std::pair<int64_t, int>, uint64_t> got;
  for (const std::string& l : complete_lines(read_file(path))) {
    std::smatch m;
    EXPECT_TRUE(std::regex_match(l, m, row)) << l;
    if (m.size() < 4) continue;
    got[{*parse_rfc3339(m[1].str()) / kNsPerS, std::stoi(m[2].str())}] = std::stoull(m[3].str());
  }
  return got;
}

TEST(FutureLimitTest, AFarFutureEventIsAFutureDeadLetterAndTheRestAggregates) {
  TempDir dir;
  const Input in = make_input();
  write_file(dir.file("in.ndjson"), in.text);
  write_file(dir.file("p.toml"), pipeline(dir, ", future_limit = \"1h\""));
  CommandResult r = run_command({sluice_bin(), "run", dir.file("p.toml")}, dir);
  ASSERT_TRUE(r.status.exited && r.status.code == 0) << r.err;
  EXPECT_EQ(read_counts(dir.file("rows.ndjson")), in.counts);
  const std::vector<std::string> dead = complete_lines(read_file(dir.file("dead.ndjson")));
  ASSERT_EQ(dead.size(), 1u);
  std::string error;
  const std::optional<DeadLetterRecord> d = parse_dead_letter(dead[0], &error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->reason, "future");
  EXPECT_EQ(d->raw, in.stray);
  EXPECT_NE(d->detail.find("more than future_limit (3600 s) ahead of the wall clock"), std::string::npos)
      << d->detail;
  const std::optional<RunSummary> summary = parse_summary(r.err);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->dead_letters.at("future"), 1u);
  EXPECT_EQ(summary->dead_letters.at("late"), 0u);
  EXPECT_EQ(summary->events_in, 200u);
}

// The default (no limit) keeps replays of any era working, and shows the
// defect future_limit prevents: everything after the stray line is late.
TEST(FutureLimitTest, WithoutALimitTheStrayPoisonsItsSourcesWatermark) {
  TempDir dir;
  const Input in = make_input();
  write_file(dir.file("in.ndjson"), in.text);
  write_file(dir.file("p.toml"), pipeline(dir, ""));
  CommandResult r = run_command({sluice_bin(), "run", dir.file("p.toml")}, dir);
  ASSERT_TRUE(r.status.exited && r.status.code == 0) << r.err;
  const std::optional<RunSummary> summary = parse_summary(r.err);
  ASSERT_TRUE(summary);
  EXPECT_EQ(summary->dead_letters.at("late"), 100u);
  EXPECT_EQ(summary->dead_letters.at("future"), 0u);
}

}  // namespace
}  // namespace sluice::integration
