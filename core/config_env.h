// Environment variables in a config file, as Vector has them: `${NAME}` is the
// variable's value, `${NAME:-default}` the default when it is unset or empty,
// `$${` a literal `${`. Expanded in the file's text before it is read as TOML,
// everywhere except in comments, so `path = "sales_${DAY}.csv"` needs no sed.
// An unset variable without a default is an error at its line and column; a
// value may not hold a line break (line numbers stay those of the file), and
// columns of later errors on a line with a substitution are mapped back to the
// file's own.
//
// Threads: plain functions (start-up).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/function_ref.h"

namespace sluice {

struct EnvSubstitution {
  uint32_t line = 0;          // 1-based
  uint32_t column = 0;        // 1-based, in characters, of the `$` in the file
  uint32_t file_chars = 0;    // characters of `${...}` in the file
  uint32_t value_chars = 0;   // characters of what replaced it
};

struct EnvError {
  uint32_t line = 0;
  uint32_t column = 0;
  std::string message;
};

struct EnvExpansion {
  std::string text;
  std::vector<EnvSubstitution> substitutions;  // in file order
  std::vector<EnvError> errors;
};

// `lookup` returns the variable's value, or nullptr when it is unset.
EnvExpansion expand_env(std::string_view text, FunctionRef<const char*(const std::string&)> lookup);

// A (line, column) of the expanded text as the file's own column.
uint32_t file_column(const std::vector<EnvSubstitution>& subs, uint32_t line, uint32_t column);

}  // namespace sluice
