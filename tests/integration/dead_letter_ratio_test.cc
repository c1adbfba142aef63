// [dead_letter] max_ratio: a run whose dead letters pass the ratio fails with
// exit status 3 and says the counts by reason (a schema that names `qty`
// where the events have `quantity` yields no rows, and must not look like a
// success); at or under the ratio it exits 0; a bad ratio is a check error.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

std::string pipeline(const TempDir& dir, const std::string& field, const std::string& ratio) {
  return fmt::format(R"(
[[sources]]
name = "daily"
type = "file"
path = {}
[schema]
key = ["product_id"]
time = {{ field = "ts", format = "epoch_s" }}
fields = {{ {} = "int64" }}
[window]
size = "1m"
[[aggregates]]
name = "total"
fn = "sum"
field = "{}"
[[sinks]]
name = "out"
type = "file"
path = {}
[dead_letter]
path = {}
max_ratio = {}
)",
                     toml_string(dir.file("events.ndjson")), field, field, toml_string(dir.file("rows.ndjson")),
                     toml_string(dir.file("dead.ndjson")), ratio);
}

// 100 events with `quantity`, 3 of them without it.
std::string events() {
  std::string out;
  for (int i = 0; i < 100; ++i) {
    out += i % 40 == 7 ? fmt::format(R"({{"product_id":{},"ts":{}}})", i % 5, 1'700'000'000 + i)
                       : fmt::format(R"({{"product_id":{},"quantity":{},"ts":{}}})", i % 5, i, 1'700'000'000 + i);
    out += "\n";
  }
  return out;
}

int run_exit_code(const TempDir& dir, std::string& stderr_text) {
  SluiceRun run(dir, dir.file("p.toml"));
  EXPECT_TRUE(run.start());
  const std::optional<ExitStatus> status = run.process().wait_exit(kExitTimeout);
  stderr_text = run.stderr_text();
  EXPECT_TRUE(status.has_value() && status->exited) << stderr_text;
  return status ? status->code : -1;
}

TEST(DeadLetterRatio, ARunOfMostlyDeadLettersExitsThree) {
  TempDir dir;
  write_file(dir.file("events.ndjson"), events());
  write_file(dir.file("p.toml"), pipeline(dir, "qty", "0.01"));
  std::string err;
  EXPECT_EQ(run_exit_code(dir, err), 3) << err;
  EXPECT_NE(err.find("100 of 100 records read were dead letters"), std::string::npos) << err;
  EXPECT_NE(err.find("schema_error=100"), std::string::npos) << err;
  EXPECT_EQ(complete_lines(read_file(dir.file("dead.ndjson"))).size(), 100u);  // still all written
}

TEST(DeadLetterRatio, UnderOrAtTheRatioTheRunSucceeds) {
  TempDir dir;
  write_file(dir.file("events.ndjson"), events());
  std::string err;
  write_file(dir.file("p.toml"), pipeline(dir, "quantity", "0.03"));  // 3 of 100: at the ratio
  EXPECT_EQ(run_exit_code(dir, err), 0) << err;
  write_file(dir.file("p.toml"), pipeline(dir, "quantity", "0.02"));  // above it
  EXPECT_EQ(run_exit_code(dir, err), 3) << err;
  EXPECT_NE(err.find("3 of 100 records"), std::string::npos) << err;
  write_file(dir.file("p.toml"), pipeline(dir, "quantity", "1"));  // no limit
  EXPECT_EQ(run_exit_code(dir, err), 0) << err;
}

TEST(DeadLetterRatio, ABadRatioIsACheckError) {
  TempDir dir;
  for (const char* bad : {"1.5", "-0.1", "\"1%\""}) {
    const std::string toml = pipeline(dir, "quantity", bad);
    write_file(dir.file("p.toml"), toml);
    CommandResult r = run_command({sluice_bin(), "check", dir.file("p.toml")}, dir);
    EXPECT_EQ(r.status.code, 2) << bad;
    // The line of max_ratio, counted in the text.
    size_t line = 1;
    for (size_t i = 0; i < toml.find("max_ratio"); ++i) line += toml[i] == '\n';
    EXPECT_NE(r.err.find(fmt::format("p.toml:{}:", line)), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("max_ratio"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace sluice::integration
