#include "core/config_env.h"

#include <fmt/format.h>

namespace sluice {

namespace {

bool name_char(char c, bool first) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

// Characters (code points) in UTF-8 bytes: continuation bytes do not count.
uint32_t chars(std::string_view s) {
  uint32_t n = 0;
  for (char c : s) n += (uint8_t(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace

EnvExpansion expand_env(std::string_view text, FunctionRef<const char*(const std::string&)> lookup) {
  EnvExpansion out;
  out.text.reserve(text.size());
  enum class In : uint8_t { code, comment, basic, literal, multi_basic, multi_literal } in = In::code;
  uint32_t line = 1;
  size_t line_start = 0;  // byte offset of the current line in `text`
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    const std::string_view rest = text.substr(i);
    if (c == '\n') {
      if (in == In::comment || in == In::basic || in == In::literal) in = In::code;
      out.text += c;
      ++i;
      ++line;
      line_start = i;
      continue;
    }
    switch (in) {
      case In::code:
        if (c == '#') {
          in = In::comment;
        } else if (rest.starts_with("\"\"\"")) {
          in = In::multi_basic;
          out.text += "\"\"";
          i += 2;
        } else if (rest.starts_with("'''")) {
          in = In::multi_literal;
          out.text += "''";
          i += 2;
        } else if (c == '"') {
          in = In::basic;
        } else if (c == '\'') {
          in = In::literal;
        }
        break;
      case In::comment: break;
      case In::basic:
      case In::multi_basic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] != '\n') {
          out.text += text.substr(i, 2);
          i += 2;
          continue;
        }
        if (in == In::basic && c == '"') in = In::code;
        if (in == In::multi_basic && rest.starts_with("\"\"\"")) {
          in = In::code;
          out.text += "\"\"";
          i += 2;
        }
        break;
      case In::literal:
        if (c == '\'') in = In::code;
        break;
      case In::multi_literal:
        if (rest.starts_with("'''")) {
          in = In::code;
          out.text += "''";
          i += 2;
        }
        break;
    }
    if (in == In::comment || c != '$') {
      out.text += c;
      ++i;
      continue;
    }
    const uint32_t column = chars(text.substr(line_start, i - line_start)) + 1;
    if (rest.starts_with("$${")) {  // a literal "${"
      out.text += "${";
      out.substitutions.push_back({line, column, 3, 2});
      i += 3;
      continue;
    }
    if (!rest.starts_with("${")) {
      out.text += c;
      ++i;
      continue;
    }
    const size_t close = rest.find('}');
    const size_t newline = rest.find('\n');
    if (close == std::string_view::npos || (newline != std::string_view::npos && newline < close)) {
      out.errors.push_back({line, column, "\"${\" without its \"}\" (write \"$${\" for a literal \"${\")"});
      out.text += c;
      ++i;
      continue;
    }
    const std::string_view inner = rest.substr(2, close - 2);
    const size_t dash = inner.find(":-");
    const std::string name(inner.substr(0, dash));
    bool valid = !name.empty();
    for (size_t k = 0; k < name.size(); ++k) valid = valid && name_char(name[k], k == 0);
    std::string value;
    if (!valid) {
      out.errors.push_back({line, column,
                            fmt::format("\"${{{}}}\": a variable name is letters, digits and _, not starting "
                                        "with a digit",
                                        inner)});
    } else {
      const char* v = lookup(name);
      if (v != nullptr && *v != '\0') {
        value = v;
      } else if (dash != std::string_view::npos) {
        value = std::string(inner.substr(dash + 2));
      } else {
        out.errors.push_back({line, column,
                              fmt::format("environment variable {} is not set (write ${{{}:-default}} for a "
                                          "default)",
                                          name, name)});
      }
      if (value.find_first_of("\r\n") != std::string::npos) {
        out.errors.push_back({line, column, fmt::format("the value of {} holds a line break", name)});
        value.clear();
      }
    }
    out.substitutions.push_back({line, column, chars(rest.substr(0, close + 1)), chars(value)});
    out.text += value;
    i += close + 1;
  }
  return out;
}

uint32_t file_column(const std::vector<EnvSubstitution>& subs, uint32_t line, uint32_t column) {
  int64_t shift = 0;  // expanded column - file column, before the next substitution
  for (const EnvSubstitution& s : subs) {
    if (s.line != line) continue;
    const int64_t start = int64_t(s.column) + shift;  // where its value starts, expanded
    if (column < start) break;
    if (column < start + s.value_chars) return s.column;  // inside a value: its ${
    shift += int64_t(s.value_chars) - int64_t(s.file_chars);
  }
  return uint32_t(std::max<int64_t>(1, int64_t(column) - shift));
}

}  // namespace sluice
