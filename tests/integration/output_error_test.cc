// Outputs that cannot be written: the engine must say so and exit 1, never
// hang and never report success. /dev/full fails every write with ENOSPC.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

std::string pipeline(const std::string& input, const std::string& sink_path,
                     const std::string& dead_letter_path) {
  return R"([[sources]]
name = "in"
type = "file"
path = )" + toml_string(input) + R"(

[schema]
key = ["k"]
time = { field = "ts", format = "epoch_s" }

[window]
size = "1m"

[[aggregates]]
name = "n"
fn = "count"

[[sinks]]
name = "rows"
type = "file"
path = )" + toml_string(sink_path) + R"(

[dead_letter]
path = )" + toml_string(dead_letter_path) + "\n";
}

TEST(OutputErrorTest, FullDiskSinkExitsOneAndSaysWhy) {
  TempDir dir;
  write_file(dir.file("in.ndjson"), "{\"k\":1,\"ts\":60}\n{\"k\":2,\"ts\":61}\n");
  write_file(dir.file("p.toml"), pipeline(dir.file("in.ndjson"), "/dev/full", dir.file("dl.ndjson")));
  CommandResult r = run_command({sluice_bin(), "run", dir.file("p.toml")}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.err.find("sink rows: write failed: No space left on device"), std::string::npos)
      << r.err;
}

TEST(OutputErrorTest, FullDiskDeadLetterOutputExitsOneAndSaysWhy) {
  TempDir dir;
  write_file(dir.file("in.ndjson"), "{\"k\":1,\"ts\":60}\nnot json\n");
  write_file(dir.file("p.toml"), pipeline(dir.file("in.ndjson"), dir.file("rows.ndjson"), "/dev/full"));
  CommandResult r = run_command({sluice_bin(), "run", dir.file("p.toml")}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.err.find("dead-letter output: write failed: No space left on device"),
            std::string::npos)
      << r.err;
}

TEST(OutputErrorTest, MissingInputFileIsAStartUpError) {
  TempDir dir;
  write_file(dir.file("p.toml"), pipeline(dir.file("absent.ndjson"), dir.file("rows.ndjson"),
                                          dir.file("dl.ndjson")));
  CommandResult r = run_command({sluice_bin(), "run", dir.file("p.toml")}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.err.find("cannot read " + dir.file("absent.ndjson")), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sluice::integration
