// Out of memory is a clear error, not std::terminate: under an address-space
// limit (prlimit --as) a window state that outgrows it ends the run with
// exit 1 and a message saying what held the memory and what to change, and
// a start-up allocation that fails names itself.
//
// ASan reserves terabytes of address space for its shadow memory, so an
// address-space limit cannot be applied to the sanitizer build (and its
// operator new reports a fatal error instead of throwing std::bad_alloc):
// these tests are compiled into the Release build only (scripts/test.sh runs
// both builds), rather than reported as skipped by the other.
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

#if !defined(__SANITIZE_ADDRESS__)

std::string pipeline(const TempDir& dir, std::string_view source_keys) {
  return R"([pipeline]
shards = 1

[[sources]]
name = "g"
type = "generator"
)" + std::string(source_keys) + R"(

[schema]
key = ["product_id"]
time = { field = "timestamp", format = "rfc3339" }
fields = { quantity = "int64" }

[window]
size = "1h"

[[aggregates]]
name = "q"
fn = "sum"
field = "quantity"

[[sinks]]
name = "out"
type = "file"
path = )" + toml_string(dir.file("out.ndjson")) + "\n";
}

// Regression: a large state under an address-space cap ended in
// "terminate ... std::bad_alloc" (SIGABRT) with nothing written and no word
// on why. 30 M distinct keys in one window need about 2.5 GiB; the cap is 1 GiB.
TEST(OutOfMemoryTest, WindowStateOverTheMemoryIsAClearErrorAndExitOne) {
  TempDir dir;
  write_file(dir.file("p.toml"), pipeline(dir, "count = 30000000\nproducts = 30000000\nstep = \"1ns\""));
  CommandResult r = run_command({"/usr/bin/prlimit", "--as=1073741824", sluice_bin(), "run", dir.file("p.toml")},
                                dir, 120s);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << "\n" << r.err;
  EXPECT_NE(r.err.find("shard 0: out of memory: its window state holds "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("use fewer keys or shorter windows"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
}

TEST(OutOfMemoryTest, AStartUpAllocationThatFailsNamesItself) {
  TempDir dir;
  // 64 MiB lines: the decoder's parsers alone want about 1 GiB.
  write_file(dir.file("p.toml"), pipeline(dir, "count = 10\nline_bytes_max = 67108864"));
  CommandResult r = run_command({"/usr/bin/prlimit", "--as=629145600", sluice_bin(), "run", dir.file("p.toml")}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << "\n" << r.err;
  EXPECT_NE(r.err.find("out of memory at start-up while allocating the decoder"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line_bytes_max"), std::string::npos) << r.err;
}

#endif  // !defined(__SANITIZE_ADDRESS__)

}  // namespace
}  // namespace sluice::integration
