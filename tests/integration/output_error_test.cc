// Outputs that cannot be written: the engine must say so and exit 1, never
// hang and never report success. /dev/full fails every write with ENOSPC; a
// small tmpfs fills up part-way (short writes, then ENOSPC); a file size
// limit (prlimit --fsize) fails at an exact byte with EFBIG.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <set>
#include <string>
#include <thread>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

std::string pipeline(const std::string& input, const std::string& sink_path,
                     const std::string& dead_letter_path, std::string_view pipeline_keys = "",
                     std::string_view source_keys = "") {
  CountPipeline p;
  p.pipeline_keys = pipeline_keys;
  p.source_keys = file_source_keys(input) + "\n" + std::string(source_keys);
  p.sink_path = sink_path;
  p.dead_letter_path = dead_letter_path;
  return p.toml();
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

// `keys` events, one per key, all in the window [60 s, 120 s): one row per key.
std::string one_event_per_key(int keys) {
  std::string s;
  for (int k = 0; k < keys; ++k) s += "{\"k\":" + std::to_string(k) + ",\"ts\":60}\n";
  return s;
}

// The sink file holds only whole rows of the expected set (each key once,
// n = 1) plus at most one cut-off row at its end; returns how many whole rows.
size_t check_whole_rows(const std::string& path, int keys) {
  std::string tail;
  const std::vector<std::string> lines = complete_lines(read_file(path), &tail);
  static const std::regex row(
      R"re(\{"window_start":"1970-01-01T00:01:00Z","window_end":"1970-01-01T00:02:00Z","k":([0-9]+),"n":1\})re");
  std::set<int> seen;
  for (const std::string& line : lines) {
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, row)) << line;
    if (m.size() < 2) continue;
    const int k = std::stoi(m[1].str());
    EXPECT_LT(k, keys);
    EXPECT_TRUE(seen.insert(k).second) << "row for key " << k << " written twice";
  }
  EXPECT_LT(tail.size(), 100u) << "more than one cut-off row at the end";
  return lines.size();
}

// "sink rows failed (...): W rows written, L rows not written"
void expect_sink_failure_line(const std::string& err, size_t written, size_t keys) {
  const std::string line = " rows written, " + std::to_string(keys - written) + " rows not written";
  EXPECT_NE(err.find("): " + std::to_string(written) + line), std::string::npos) << err;
}

// Regression: on a full tmpfs the sink reported every row written and exit 0
// while most rows were missing (io_uring did not advance the file position
// after a short write, so later writes overwrote the file's tail).
TEST(OutputErrorTest, FullTmpfsSinkKeepsWholeRowsCountsThemAndExitsOne) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root; AsyncWriterTest covers the seam";
  TempDir dir;
  SmallTmpfs disk(dir.file("disk"), 1 << 20);
  ASSERT_TRUE(disk.mounted()) << disk.error();
  constexpr int kKeys = 30000;  // about 2.5 MB of rows for a 1 MiB disk
  write_file(dir.file("in.ndjson"), one_event_per_key(kKeys));
  write_file(dir.file("p.toml"), pipeline(dir.file("in.ndjson"), disk.file("rows.ndjson"),
                                          dir.file("dl.ndjson"), "shards = 2"));
  CommandResult r = run_command({sluice_bin(), "run", dir.file("p.toml")}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.err.find("sink rows: write failed: No space left on device"), std::string::npos) << r.err;
  const size_t whole = check_whole_rows(disk.file("rows.ndjson"), kKeys);
  EXPECT_GT(whole, 5000u);  // the disk took about 1 MiB of rows before it was full
  EXPECT_LT(whole, size_t(kKeys));
  const std::optional<RunSummary> summary = parse_summary(r.err);
  ASSERT_TRUE(summary) << r.err;
  EXPECT_EQ(summary->rows_out, whole) << "rows out must count rows whose write completed";
  expect_sink_failure_line(r.err, whole, kKeys);
}

// The same through a file size limit: EFBIG at an exact byte, not page aligned.
TEST(OutputErrorTest, FileSizeLimitOnSinkKeepsExactlyTheBytesBeforeIt) {
  TempDir dir;
  constexpr int kKeys = 5000;
  constexpr size_t kLimit = 100'037;
  write_file(dir.file("in.ndjson"), one_event_per_key(kKeys));
  write_file(dir.file("p.toml"),
             pipeline(dir.file("in.ndjson"), dir.file("rows.ndjson"), dir.file("dl.ndjson")));
  CommandResult r = run_command({"/usr/bin/prlimit", "--fsize=" + std::to_string(kLimit), sluice_bin(),
                                 "run", dir.file("p.toml")},
                                dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.err.find("sink rows: write failed: File too large"), std::string::npos) << r.err;
  EXPECT_EQ(read_file(dir.file("rows.ndjson")).size(), kLimit);
  const size_t whole = check_whole_rows(dir.file("rows.ndjson"), kKeys);
  const std::optional<RunSummary> summary = parse_summary(r.err);
  ASSERT_TRUE(summary) << r.err;
  EXPECT_EQ(summary->rows_out, whole);
  expect_sink_failure_line(r.err, whole, kKeys);
}

// Regression: a full dead-letter output made the process hang (it logged the
// failure, and then the stream waited forever for room in the dead-letter
// buffers; SIGTERM did not help). Now it stops by itself: result rows are
// still written, the lost dead letters are counted, exit 1.
TEST(OutputErrorTest, FullDeadLetterFileStopsTheRunWritesTheRowsAndExitsOne) {
  TempDir dir;
  constexpr int kKeys = 3;
  // Far more dead letters than the dead-letter buffers hold (1 MiB each with
  // short lines), all in one 16 MiB read.
  constexpr int kBad = 200000;
  std::string input = one_event_per_key(kKeys);
  for (int i = 0; i < kBad; ++i) input += "not json, not at all: line " + std::to_string(i) + "\n";
  write_file(dir.file("in.ndjson"), input);
  write_file(dir.file("p.toml"), pipeline(dir.file("in.ndjson"), dir.file("rows.ndjson"),
                                          dir.file("dl.ndjson"), "",
                                          "line_bytes_max = 128\nread_bytes = 16777216"));
  CommandResult r = run_command({"/usr/bin/prlimit", "--fsize=65536", sluice_bin(), "run", dir.file("p.toml")},
                                dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 1) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.err.find("dead-letter output: write failed: File too large"), std::string::npos) << r.err;
  EXPECT_EQ(check_whole_rows(dir.file("rows.ndjson"), kKeys), size_t(kKeys));
  EXPECT_EQ(read_file(dir.file("dl.ndjson")).size(), 65536u);
  static const std::regex lost("dead-letter output failed \\(File too large\\): ([0-9]+) dead letters not written");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, lost)) << r.err;
  const size_t written = complete_lines(read_file(dir.file("dl.ndjson"))).size();
  EXPECT_GT(std::stoull(m[1].str()), 0u);
  EXPECT_LE(std::stoull(m[1].str()) + written, size_t(kBad));
}

// The same on a TCP source that keeps its connection open: the run must end
// by itself (exit 1) once the dead-letter output has failed, and a SIGTERM
// after the failure ends it at once.
TEST(OutputErrorTest, FullDeadLetterOutputOnTcpEndsTheRunWithoutAHang) {
  TempDir dir;
  CountPipeline tcp;
  tcp.pipeline_keys = "shards = 2";
  tcp.source_keys = tcp_source_keys() + "\nline_bytes_max = 128";
  tcp.sink_path = dir.file("rows.ndjson");
  tcp.dead_letter_path = dir.file("dl.ndjson");
  write_file(dir.file("p.toml"), tcp.toml());
  Process p;
  ASSERT_TRUE(p.start({"/usr/bin/prlimit", "--fsize=65536", sluice_bin(), "run", dir.file("p.toml")},
                      dir.file("out.txt"), dir.file("err.txt")));
  const Clock::time_point deadline = Clock::now() + kStartTimeout;
  static const std::regex port_re("127\\.0\\.0\\.1:([0-9]+)");
  std::smatch m;
  std::string err;
  while (!std::regex_search(err = read_file(dir.file("err.txt")), m, port_re)) {
    ASSERT_LT(Clock::now(), deadline) << err;
    std::this_thread::sleep_for(kPollInterval);
  }
  TcpClient c;
  ASSERT_EQ(c.connect(uint16_t(std::stoi(m[1].str()))), "");
  std::string input = one_event_per_key(3);
  for (int i = 0; i < 200000; ++i) input += "not json, not at all: line " + std::to_string(i) + "\n";
  // The engine may stop reading (and close) before it has taken everything.
  (void)c.send_all(input);
  // The engine stops by itself once the dead-letter file is full.
  std::optional<ExitStatus> st = p.wait_exit(kExitTimeout);
  ASSERT_TRUE(st) << "still running after the dead-letter output failed:\n" << read_file(dir.file("err.txt"));
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe();
  err = read_file(dir.file("err.txt"));
  EXPECT_NE(err.find("dead-letter output: write failed: File too large"), std::string::npos) << err;
  EXPECT_EQ(check_whole_rows(dir.file("rows.ndjson"), 3), 3u);
}

// A sink that never takes its bytes (a FIFO whose reader does not read):
// SIGTERM must still end the process, after stop_timeout, with exit 1 and a
// word on what was pending (the drain can never finish).
TEST(OutputErrorTest, StopTimeoutEndsADrainThatCannotFinish) {
  TempDir dir;
  const std::string fifo = dir.file("rows.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);  // opened, never read
  ASSERT_GE(reader, 0);
  write_file(dir.file("in.ndjson"), one_event_per_key(20000));  // well over a pipe's 64 KiB
  write_file(dir.file("p.toml"),
             pipeline(dir.file("in.ndjson"), fifo, dir.file("dl.ndjson"), "stop_timeout = \"1s\""));
  Process p;
  ASSERT_TRUE(p.start({sluice_bin(), "run", dir.file("p.toml")}, dir.file("out.txt"), dir.file("err.txt")));
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(p.running()) << read_file(dir.file("err.txt"));  // stuck on the sink, as it must be
  const Clock::time_point sent = Clock::now();
  p.signal(SIGTERM);
  std::optional<ExitStatus> st = p.wait_exit(kExitTimeout);
  ::close(reader);
  ASSERT_TRUE(st) << read_file(dir.file("err.txt"));
  EXPECT_TRUE(st->exited && st->code == 1) << st->describe();
  EXPECT_GE(Clock::now() - sent, 900ms);
  const std::string err = read_file(dir.file("err.txt"));
  EXPECT_NE(err.find("stop_timeout (1000 ms) passed before the pipeline drained"), std::string::npos) << err;
  EXPECT_NE(err.find("sink rows: "), std::string::npos) << err;
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
