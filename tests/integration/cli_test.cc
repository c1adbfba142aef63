// The command line: `sluice check` (and `run`) on broken pipeline files must
// name file:line:column of each problem and exit 2; --version and --help exit 0.
#include <gtest/gtest.h>

#include <regex>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/harness.h"

namespace sluice::integration {
namespace {

// A pipeline file built line by line, so positions are known.
struct Text {
  std::vector<std::string> lines;

  std::string str() const {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
  }
  // "line:column" (both 1-based) of the first occurrence of `needle` on the line that starts with
  // `line_prefix`.
  std::string position(std::string_view line_prefix, std::string_view needle) const {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (!lines[i].starts_with(line_prefix)) continue;
      size_t col = lines[i].find(needle);
      if (col == std::string::npos) break;
      return std::to_string(i + 1) + ":" + std::to_string(col + 1);
    }
    ADD_FAILURE() << "no line starting with " << line_prefix << " holds " << needle;
    return "?";
  }
};

Text valid_pipeline() {
  return Text{{
      "[pipeline]",
      "name = \"cli-test\"",
      "",
      "[[sources]]",
      "name = \"in\"",
      "type = \"file\"",
      "path = \"in.ndjson\"",
      "",
      "[schema]",
      "key = [\"k\"]",
      "time = { field = \"ts\", format = \"rfc3339\" }",
      "fields = { v = \"int64\" }",
      "",
      "[window]",
      "size = \"5m\"",
      "watermark_delay = \"1m\"",
      "",
      "[[aggregates]]",
      "name = \"total\"",
      "fn = \"sum\"",
      "field = \"v\"",
      "",
      "[[sinks]]",
      "name = \"out\"",
      "type = \"file\"",
      "path = \"out.ndjson\"",
  }};
}

void replace_line(Text& t, std::string_view old_line, std::string new_line) {
  for (std::string& l : t.lines) {
    if (l == old_line) {
      l = std::move(new_line);
      return;
    }
  }
  ADD_FAILURE() << "no line " << old_line;
}

// stderr has a line "<file>:<position>: ...<words>..."
::testing::AssertionResult reports(const std::string& err, const std::string& file,
                                   const std::string& position, std::string_view words) {
  const std::string prefix = file + ":" + position + ": ";
  for (const std::string& line : complete_lines(err)) {
    if (line.starts_with(prefix) && line.find(words) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "no error \"" << prefix << "...(" << words << ")...\" in:\n"
         << err;
}

TEST(CliTest, CheckAcceptsAValidPipeline) {
  TempDir dir;
  const std::string path = dir.file("ok.toml");
  Text t = valid_pipeline();
  replace_line(t, "path = \"in.ndjson\"", "path = " + toml_string(dir.file("in.ndjson")));
  write_file(path, t.str());
  write_file(dir.file("in.ndjson"), "");  // check looks for the input
  CommandResult r = run_command({sluice_bin(), "check", path}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 0) << r.status.describe() << ": " << r.err;
  EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out;
}

// What run would find out only at start: an input that is missing or not a
// file, an output whose directory cannot be made or written.
TEST(CliTest, CheckReportsInputsItCannotReadAndOutputsItCannotWrite) {
  TempDir dir;
  Text t = valid_pipeline();
  replace_line(t, "path = \"in.ndjson\"", "path = " + toml_string(dir.file("in.ndjson")));
  const std::string path = dir.file("files.toml");
  write_file(path, t.str());
  CommandResult r = run_command({sluice_bin(), "check", path}, dir);
  EXPECT_EQ(r.status.code, 2) << r.err;
  EXPECT_NE(r.err.find("source in: " + dir.file("in.ndjson") + " does not exist"), std::string::npos) << r.err;

  std::filesystem::create_directory(dir.file("in.ndjson"));
  r = run_command({sluice_bin(), "check", path}, dir);
  EXPECT_NE(r.err.find("source in: " + dir.file("in.ndjson") + " is a directory"), std::string::npos) << r.err;
  std::filesystem::remove(dir.file("in.ndjson"));
  write_file(dir.file("in.ndjson"), "");

  // An output under a regular file cannot get its directory.
  write_file(dir.file("blocker"), "");
  std::string text = t.str();
  const size_t at = text.find("path = \"", text.find("[[sinks]]"));
  ASSERT_NE(at, std::string::npos);
  text.insert(at + 8, dir.file("blocker") + "/sub/");
  write_file(path, text);
  r = run_command({sluice_bin(), "check", path}, dir);
  EXPECT_EQ(r.status.code, 2) << r.err;
  EXPECT_NE(r.err.find("sink out: cannot make the directory of"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is not a directory"), std::string::npos) << r.err;
}

TEST(CliTest, CheckNamesFileLineAndColumnOfEachError) {
  TempDir dir;
  Text t = valid_pipeline();
  replace_line(t, "size = \"5m\"", "size = \"5x\"");
  replace_line(t, "watermark_delay = \"1m\"", "watermark_dealy = \"1m\"");
  replace_line(t, "field = \"v\"", "field = \"missing_field\"");
  const std::string path = dir.file("broken.toml");
  write_file(path, t.str());

  // `run` validates exactly like `check`, before doing anything.
  for (const char* command : {"check", "run"}) {
    SCOPED_TRACE(command);
    CommandResult r = run_command({sluice_bin(), command, path}, dir);
    EXPECT_TRUE(r.status.exited && r.status.code == 2) << r.status.describe() << ": " << r.err;
    EXPECT_TRUE(reports(r.err, path, t.position("size =", "\"5x\""), "size"));
    EXPECT_TRUE(
        reports(r.err, path, t.position("watermark_dealy", "watermark_dealy"), "watermark_dealy"));
    EXPECT_TRUE(reports(r.err, path, t.position("field =", "\"missing_field\""), "missing_field"));
    EXPECT_EQ(r.out, "");
  }
}

TEST(CliTest, CheckNamesTheLineOfATomlSyntaxError) {
  TempDir dir;
  Text t = valid_pipeline();
  replace_line(t, "name = \"cli-test\"", "name = \"cli-test");
  const std::string path = dir.file("syntax.toml");
  write_file(path, t.str());
  CommandResult r = run_command({sluice_bin(), "check", path}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 2) << r.status.describe() << ": " << r.err;
  // The column of a syntax error is where the parser noticed it; the line is certain.
  const std::string line = t.position("name = \"cli-test", "name");
  EXPECT_NE(r.err.find(path + ":" + line.substr(0, line.find(':')) + ":"), std::string::npos)
      << r.err;
}

TEST(CliTest, CheckReportsAMissingFile) {
  TempDir dir;
  const std::string path = dir.file("nonexistent.toml");
  CommandResult r = run_command({sluice_bin(), "check", path}, dir);
  EXPECT_TRUE(r.status.exited && r.status.code == 2) << r.status.describe() << ": " << r.err;
  EXPECT_TRUE(r.err.starts_with(path + ":")) << r.err;
}

TEST(CliTest, VersionAndHelpExitZero) {
  TempDir dir;
  CommandResult version = run_command({sluice_bin(), "--version"}, dir);
  EXPECT_TRUE(version.status.exited && version.status.code == 0) << version.status.describe();
  EXPECT_TRUE(std::regex_match(version.out, std::regex("sluice [0-9]+\\.[0-9]+\\.[0-9]+\n")))
      << version.out;

  CommandResult help = run_command({sluice_bin(), "--help"}, dir);
  EXPECT_TRUE(help.status.exited && help.status.code == 0) << help.status.describe();
  EXPECT_NE(help.out.find("run"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("check"), std::string::npos) << help.out;

  CommandResult nothing = run_command({sluice_bin()}, dir);
  EXPECT_TRUE(nothing.status.exited && nothing.status.code != 0) << nothing.status.describe();
}

}  // namespace
}  // namespace sluice::integration

namespace sluice::integration {
namespace {

// Every example config is valid as shipped (`sluice check` exits 0).
TEST(Examples, EveryExampleConfigChecks) {
  TempDir dir;
  // The batch example reads what sluice-gen wrote first (its comment says so).
  std::filesystem::create_directories(dir.file("out"));
  write_file(dir.file("out/sales.ndjson"), "");
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(SLUICE_SOURCE_DIR) + "/examples")) {
    if (entry.path().extension() != ".toml") continue;
    // From the temporary directory: the examples' relative paths are relative to where sluice runs.
    const CommandResult r = run_command(
        {"/bin/sh", "-c", "cd \"$0\" && exec \"$1\" check \"$2\"", dir.path(), sluice_bin(), entry.path().string()},
        dir);
    EXPECT_EQ(r.status.code, 0) << entry.path() << "\n" << r.err << r.out;
    ++checked;
  }
  EXPECT_GE(checked, 5);
}

}  // namespace
}  // namespace sluice::integration
