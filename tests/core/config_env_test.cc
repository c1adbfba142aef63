// ${NAME} and ${NAME:-default} in config files: expansion outside comments,
// errors at the line and column of the `$`, later errors' columns mapped back
// to the file's own. Positions are counted from the test texts themselves.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <string>

#include "core/config.h"
#include "core/config_env.h"
#include "dataflow/pipeline_config.h"

namespace sluice {
namespace {

EnvExpansion expand(std::string_view text, const std::map<std::string, std::string>& env) {
  return expand_env(text, [&](const std::string& name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(ConfigEnv, ExpandsValuesAndDefaultsOutsideComments) {
  const std::map<std::string, std::string> env = {{"DAY", "20240327"}, {"EMPTY", ""}, {"PORT", "9400"}};
  const EnvExpansion e = expand(
      "path = \"sales_${DAY}.csv\"  # ${NOT_SET} stays in a comment\n"
      "listen = \"127.0.0.1:${PORT}\"\n"
      "a = \"${EMPTY:-fallback}\" b = '${UNSET:-x y}' c = \"$${DAY}\" d = \"$5 ${DAY}\"\n"
      "e = \"\"\"\n${DAY}\n\"\"\" # \"${ALSO_NOT_SET}\n"
      "f = \"quote \\\" ${DAY}\" # ${X}\n",
      env);
  ASSERT_TRUE(e.errors.empty()) << e.errors[0].message;
  EXPECT_EQ(e.text,
            "path = \"sales_20240327.csv\"  # ${NOT_SET} stays in a comment\n"
            "listen = \"127.0.0.1:9400\"\n"
            "a = \"fallback\" b = 'x y' c = \"${DAY}\" d = \"$5 20240327\"\n"
            "e = \"\"\"\n20240327\n\"\"\" # \"${ALSO_NOT_SET}\n"
            "f = \"quote \\\" 20240327\" # ${X}\n");
}

TEST(ConfigEnv, ErrorsNameLineAndColumn) {
  const EnvExpansion e = expand("a = 1\nb = \"x ${MISSING}\"\nc = \"${1BAD}\" d = \"${OPEN\"\n", {});
  ASSERT_EQ(e.errors.size(), 3u);
  EXPECT_EQ(e.errors[0].line, 2u);
  EXPECT_EQ(e.errors[0].column, 8u);
  EXPECT_NE(e.errors[0].message.find("environment variable MISSING is not set"), std::string::npos);
  EXPECT_NE(e.errors[0].message.find("${MISSING:-default}"), std::string::npos);
  EXPECT_EQ(e.errors[1].line, 3u);
  EXPECT_EQ(e.errors[1].column, 6u);
  EXPECT_NE(e.errors[1].message.find("variable name"), std::string::npos);
  EXPECT_EQ(e.errors[2].line, 3u);
  EXPECT_EQ(e.errors[2].column, 20u);
  EXPECT_NE(e.errors[2].message.find("without its"), std::string::npos);
  const EnvExpansion nl = expand("a = \"${MULTI}\"\n", {{"MULTI", "x\ny"}});
  ASSERT_EQ(nl.errors.size(), 1u);
  EXPECT_NE(nl.errors[0].message.find("line break"), std::string::npos);
}

TEST(ConfigEnv, ColumnsAfterASubstitutionAreTheFilesOwn) {
  // "x = \"${A}\" y = 1" with A = "longer value": y is at column 12 of the file.
  const EnvExpansion e = expand("x = \"${A}\" y = 1\n", {{"A", "longer value"}});
  ASSERT_TRUE(e.errors.empty());
  const uint32_t y_expanded = uint32_t(e.text.find('y')) + 1;
  EXPECT_EQ(file_column(e.substitutions, 1, y_expanded), 12u);
  EXPECT_EQ(file_column(e.substitutions, 1, 6), 6u);   // inside the value: its "${"
  EXPECT_EQ(file_column(e.substitutions, 1, 1), 1u);   // before it
  EXPECT_EQ(file_column(e.substitutions, 2, 7), 7u);   // another line
}

TEST(ConfigEnv, APipelineReadsItsVariablesAndReportsFileColumns) {
  ::setenv("SLUICE_TEST_DAY", "20240327", 1);
  ::unsetenv("SLUICE_TEST_UNSET");
  const std::string text =
      "[[sources]]\nname = \"daily\"\ntype = \"file\"\npath = \"sales_${SLUICE_TEST_DAY}.ndjson\"\n"
      "[schema]\nkey = [\"product_id\"]\ntime = { field = \"timestamp\" }\nfields = { quantity = \"int64\" }\n"
      "[window]\nsize = \"${SLUICE_TEST_SIZE:-1d}\"\n"
      "[[sinks]]\nname = \"out\"\ntype = \"stdout\"\n";
  auto config = parse_pipeline_config(text, "env.toml");
  ASSERT_TRUE(config.has_value()) << config.error()[0].to_string();
  EXPECT_EQ(config->sources[0].file.paths.at(0), "sales_20240327.ndjson");
  EXPECT_EQ(config->window.size_ns, 86'400'000'000'000LL);

  // An unset variable: an error at its "$"; nothing else is read.
  auto missing = parse_pipeline_config("a = \"${SLUICE_TEST_UNSET}\"\n", "env.toml");
  ASSERT_FALSE(missing.has_value());
  ASSERT_EQ(missing.error().size(), 1u);
  EXPECT_EQ(missing.error()[0].to_string().substr(0, 16), "env.toml:1:6: en");

  // A bad value after a substitution on the same line: reported at the file's column.
  const std::string bad =
      "[schema]\nkey = [\"k\"]\ntime = { field = \"${SLUICE_TEST_DAY}\", format = \"bogus\" }\n";
  auto wrong = parse_pipeline_config(bad, "env.toml");
  ASSERT_FALSE(wrong.has_value());
  const uint32_t column = uint32_t(bad.find("\"bogus\"") - bad.find("time")) + 1;
  bool found = false;
  for (const ConfigError& e : wrong.error()) {
    if (e.line == 3 && e.column == column && e.message.find("bogus") != std::string::npos) found = true;
  }
  EXPECT_TRUE(found) << wrong.error()[0].to_string();
}

}  // namespace
}  // namespace sluice
