// A file source end to end: several files read in order as one source, with
// out-of-order and late events, every kind of malformed line, CRLF and empty
// lines, and unterminated last lines. The expected rows, dead letters and
// counters come from the reference model fed with the lines as written.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <string>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

constexpr int64_t kWindowNs = kNsPerMin;
constexpr int64_t kDelayNs = 30 * kNsPerS;
// Small enough that over-long lines are cheap to write, and below the 1 KiB
// prefix the engine keeps of an over-long line.
constexpr size_t kLineBytesMax = 256;

struct FileCase {
  uint32_t shards;
  const char* time_format;
};

void PrintTo(const FileCase& c, std::ostream* os) {
  *os << "shards=" << c.shards << " time_format=" << c.time_format;
}

class FileSourceTest : public ::testing::TestWithParam<FileCase> {};

// Builds the input: three files (plus an empty one between the first two).
std::vector<std::vector<InputLine>> make_files(const PipelineSpec& spec, std::mt19937_64& rng,
                                               std::vector<size_t>& boundary_lines) {
  const int64_t t0 = utc_ns(2024, 3, 10, 8, 0, 0);
  constexpr int kEvents = 1200;
  constexpr int64_t kStepNs = 1500 * kNsPerMs;
  std::vector<std::vector<InputLine>> files(3);
  std::vector<InputLine>* file = &files[0];
  const std::vector<BadLine> catalogue = sales_bad_lines(spec, random_sales_event(rng, t0));
  size_t next_bad = 0;
  int64_t max_time = t0;
  for (int i = 0; i < kEvents; ++i) {
    if (i == kEvents * 4 / 10) file = &files[1];
    if (i == kEvents * 7 / 10) file = &files[2];
    const int64_t base = t0 + i * kStepNs;
    // Up to 45 s back: within the 30 s delay, or late, or in between.
    int64_t t = base - std::uniform_int_distribution<int64_t>(0, 45'000)(rng) * kNsPerMs;
    if (std::uniform_int_distribution<int>(0, 29)(rng) == 0) t = base - 5 * kNsPerMin;
    const Event e = random_sales_event(rng, t);
    max_time = std::max(max_time, t);
    file->push_back(InputLine::of_event(e, event_line(spec, e, rng)));
    if (std::uniform_int_distribution<int>(0, 4)(rng) == 0) file->back().terminator = "\r\n";

    if (i % 25 == 12) {
      const BadLine& b = catalogue[next_bad++ % catalogue.size()];
      file->push_back(InputLine::bad(b.text, b.reason));
    }
    if (i % 40 == 7) {
      file->push_back(InputLine::blank(i % 80 == 7 ? "\r\n" : "\n"));
    }
    if (i % 150 == 75) {
      // Around the length limit (LF only: a CR would count towards it). The
      // over-long ones carry a time an hour ahead, so taking one for an
      // event would move the watermark and show at once.
      const Event ahead = random_sales_event(rng, max_time + 60 * kNsPerMin);
      file->push_back(InputLine::of_event(e, padded_event_line(spec, e, kLineBytesMax)));
      for (size_t bytes : {kLineBytesMax + 1, size_t(300), size_t(1500), size_t(5000)}) {
        file->push_back(
            InputLine::bad(padded_event_line(spec, ahead, bytes), "line_too_long", true));
      }
    }
  }
  // Exactly at the lateness boundary: a new maximum puts the watermark on a
  // window boundary B; the window ending at B is late, the one starting at B is not.
  const int64_t b = (floor_div(max_time, kWindowNs) + 2) * kWindowNs;
  for (int64_t t : {b + kDelayNs, b - kNsPerMs, b, b - kWindowNs, b + kWindowNs - kNsPerMs}) {
    boundary_lines.push_back(files[2].size());
    const Event e = random_sales_event(rng, t);
    files[2].push_back(InputLine::of_event(e, event_line(spec, e, rng)));
  }
  // The second and third files end without a newline.
  for (size_t f : {1, 2}) {
    EXPECT_EQ(files[f].back().kind, InputLine::Kind::event)
        << "file " << f << " ends in a non-event";
    files[f].back().terminator = "";
  }
  return files;
}

TEST_P(FileSourceTest, ExactResultWithMalformedOutOfOrderAndLateLines) {
  const FileCase& c = GetParam();
  TempDir dir;
  const PipelineSpec spec = sales_spec(c.time_format, kWindowNs, kDelayNs);
  std::mt19937_64 rng(20240310);
  std::vector<size_t> boundary;
  const std::vector<std::vector<InputLine>> files = make_files(spec, rng, boundary);

  // Write the files; the reference model reads them in the same order.
  const std::vector<std::string> paths = {dir.file("a.ndjson"), dir.file("empty.ndjson"),
                                          dir.file("b.ndjson"), dir.file("c.ndjson")};
  const std::vector<int> file_of_path = {0, -1, 1, 2};
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "files";
  std::vector<bool> boundary_accepted;
  for (size_t p = 0; p < paths.size(); ++p) {
    if (file_of_path[p] < 0) {
      write_file(paths[p], "");
      continue;
    }
    const std::vector<InputLine>& lines = files[size_t(file_of_path[p])];
    write_file(paths[p], render(lines));
    auto origin = [&](size_t i) { return paths[p] + ":" + std::to_string(i + 1); };
    const std::vector<bool> accepted = feed_lines(model, 0, lines, origin, expected);
    if (p == 3) {
      for (size_t i : boundary) boundary_accepted.push_back(accepted[i]);
    }
  }
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  // The data exercises what it claims to.
  ASSERT_EQ(boundary_accepted, (std::vector<bool>{true, false, true, false, true}));
  ASSERT_GT(model.late(), 30u);
  ASSERT_GT(model.accepted_out_of_order(), 300u);

  std::string path_list;
  for (const std::string& p : paths) path_list += (path_list.empty() ? "" : ", ") + toml_string(p);
  const std::string config =
      fmt::format(R"([pipeline]
name = "file-test"
shards = {}

[[sources]]
name = "files"
type = "file"
paths = [{}]
line_bytes_max = {}
read_bytes = 4096  # the minimum: lines straddle reads

{}
[[sinks]]
name = "rows"
type = "file"
path = {}
format = "ndjson"

[dead_letter]
path = {}
)",
                  c.shards, path_list, kLineBytesMax, spec.toml(),
                  toml_string(dir.file("rows.ndjson")), toml_string(dir.file("dead.ndjson")));
  write_file(dir.file("pipeline.toml"), config);

  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());
  expect_run_output(spec, expected, dir.file("rows.ndjson"), dir.file("dead.ndjson"),
                    run.stderr_text());
}

INSTANTIATE_TEST_SUITE_P(Shards, FileSourceTest,
                         ::testing::Values(FileCase{1, "rfc3339"}, FileCase{2, "rfc3339"},
                                           FileCase{1, "epoch_ms"}, FileCase{2, "epoch_ms"}),
                         [](const ::testing::TestParamInfo<FileCase>& info) {
                           return fmt::format("shards{}_{}", info.param.shards,
                                              info.param.time_format);
                         });

}  // namespace
}  // namespace sluice::integration
