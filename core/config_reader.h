// Reading the keys of a TOML table with errors that name file, line and
// column: what the config loader uses, and what a kind of source, sink or
// window uses to read its own keys (core/config_kinds.h). Start-up only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <expected>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "core/config.h"

namespace sluice {

// "a string", "an integer", ... for messages.
const char* type_name(const toml::node& node);
// Levenshtein distance, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);

// "host:port", "[v6]:port" or "localhost:port".
struct ListenAddress {
  std::string host;
  uint16_t port = 0;
};

std::expected<ListenAddress, std::string> parse_listen(std::string_view text);

// Errors of one parse, each with the position of the node it is about.
class Diagnostics {
 public:
  explicit Diagnostics(std::string_view file) : file_(file) {}

  void at(const toml::source_region& where, std::string message) {
    errors_.push_back({file_, where.begin.line, where.begin.column, std::move(message)});
  }
  bool empty() const { return errors_.empty(); }

  // File order reads best; stable so two errors at one position keep the order they were found.
  std::vector<ConfigError> take_sorted() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    return std::move(errors_);
  }

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

enum class Need { optional, required };
enum class Empty { rejected, allowed };
enum class Zero { rejected, allowed };

template <typename T>
struct Choice {
  std::string_view name;
  T value;
};

template <typename T>
constexpr int64_t integer_max() {
  if constexpr (sizeof(T) >= sizeof(int64_t)) {
    return std::numeric_limits<int64_t>::max();
  } else {
    return int64_t(std::numeric_limits<T>::max());
  }
}

// Reads the keys of one TOML table. Each getter records its key as expected, reports a missing
// required key at the table and a bad value at the value, and on error leaves `out` as it was,
// so parsing goes on with the default and finds further errors. finish() reports the keys that
// no getter asked for.
class TableReader {
 public:
  // `where` names the table in messages: "[window]", "[[sources]] \"pos\"", "" for the root.
  TableReader(Diagnostics& diag, const toml::table& table, std::string where)
      : diag_(diag), table_(table), where_(std::move(where)) {}

  void set_where(std::string where) { where_ = std::move(where); }

  const toml::node* find(std::string_view key, Need need = Need::optional) {
    expected_.emplace_back(key);
    const toml::node* node = table_.get(key);
    if (node == nullptr && need == Need::required) {
      missing(key);
    }
    return node;
  }

  void missing(std::string_view key, std::string_view why = {}) {
    std::string message = where_.empty()
                              ? fmt::format("missing required key \"{}\" at the top level", key)
                              : fmt::format("missing required key \"{}\" in {}", key, where_);
    if (!why.empty()) message += fmt::format(" ({})", why);
    diag_.at(table_.source(), std::move(message));
  }

  // "<table> <key>: <message>" at the value of `key` (which must be present).
  void error(std::string_view key, std::string_view message) {
    error_at(*table_.get(key), key, message);
  }
  void error_at(const toml::node& node, std::string_view key, std::string_view message) {
    diag_.at(node.source(), where_.empty() ? fmt::format("{}: {}", key, message)
                                           : fmt::format("{} {}: {}", where_, key, message));
  }

  bool string(std::string_view key, std::string& out, Need need = Need::optional,
              Empty empty = Empty::rejected) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    return string_value(*node, key, out, empty);
  }

  template <typename T>
  bool integer(std::string_view key, T& out, int64_t min, int64_t max = integer_max<T>(),
               Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    const auto* value = node->as_integer();
    if (value == nullptr) {
      error_at(*node, key, fmt::format("expected an integer, got {}", type_name(*node)));
      return false;
    }
    int64_t v = value->get();
    if (v < min || v > max) {
      error_at(*node, key,
               max == integer_max<T>()
                   ? fmt::format("{} is out of range: must be at least {}", v, min)
                   : fmt::format("{} is out of range {}..{}", v, min, max));
      return false;
    }
    out = T(v);
    return true;
  }

  // A number (integer or float) within [min, max].
  bool number(std::string_view key, double& out, double min, double max) {
    const toml::node* node = find(key);
    if (node == nullptr) return false;
    double v = 0;
    if (const auto* f = node->as_floating_point()) {
      v = f->get();
    } else if (const auto* i = node->as_integer()) {
      v = double(i->get());
    } else {
      error_at(*node, key, fmt::format("expected a number, got {}", type_name(*node)));
      return false;
    }
    if (!(v >= min && v <= max)) {
      error_at(*node, key, fmt::format("must be between {} and {}", min, max));
      return false;
    }
    out = v;
    return true;
  }

  bool boolean(std::string_view key, bool& out) {
    const toml::node* node = find(key);
    if (node == nullptr) return false;
    const auto* value = node->as_boolean();
    if (value == nullptr) {
      error_at(*node, key, fmt::format("expected true or false, got {}", type_name(*node)));
      return false;
    }
    out = value->get();
    return true;
  }

  bool duration(std::string_view key, int64_t& out_ns, Zero zero, Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    const auto* text = node->as_string();
    if (text == nullptr) {
      std::string message =
          fmt::format("expected a duration string like \"5m\", got {}", type_name(*node));
      if (const auto* number = node->as_integer()) {
        message += fmt::format(" (write the unit too, e.g. \"{0}s\" or \"{0}ms\")", number->get());
      }
      error_at(*node, key, message);
      return false;
    }
    auto ns = parse_duration(text->get());
    if (!ns) {
      error_at(*node, key, fmt::format("bad duration \"{}\": {}", text->get(), ns.error()));
      return false;
    }
    if (*ns == 0 && zero == Zero::rejected) {
      error_at(*node, key, "must be greater than 0");
      return false;
    }
    out_ns = *ns;
    return true;
  }

  template <typename T>
  bool choice(std::string_view key, T& out, std::initializer_list<Choice<T>> choices,
              Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    const auto* text = node->as_string();
    if (text != nullptr) {
      for (const auto& c : choices) {
        if (c.name == text->get()) {
          out = c.value;
          return true;
        }
      }
    }
    std::string names;
    for (const auto& c : choices) {
      names += fmt::format("{}\"{}\"", names.empty() ? "" : ", ", c.name);
    }
    error_at(*node, key,
             text != nullptr
                 ? fmt::format("expected one of {}, got \"{}\"", names, text->get())
                 : fmt::format("expected a string (one of {}), got {}", names, type_name(*node)));
    return false;
  }

  // A name out of a list known only at run time (the kinds registered):
  // its index, or -1 after reporting it (as choice() does).
  int choice_of(std::string_view key, std::span<const std::string_view> names, Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return -1;
    const auto* text = node->as_string();
    if (text != nullptr) {
      for (size_t i = 0; i < names.size(); ++i) {
        if (names[i] == text->get()) return int(i);
      }
    }
    std::string list;
    for (std::string_view n : names) list += fmt::format("{}\"{}\"", list.empty() ? "" : ", ", n);
    error_at(*node, key,
             text != nullptr ? fmt::format("expected one of {}, got \"{}\"", list, text->get())
                             : fmt::format("expected a string (one of {}), got {}", list, type_name(*node)));
    return -1;
  }

  // A string or an array of strings; every name non-empty and unique.
  bool string_list(std::string_view key, std::vector<std::string>& out, Need need,
                   bool single_string_ok) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return false;
    if (single_string_ok && node->is_string()) {
      std::string value;
      if (!string_value(*node, key, value, Empty::rejected)) return false;
      out = {std::move(value)};
      return true;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr || array->empty()) {
      error_at(*node, key,
               fmt::format("expected {}a non-empty array of strings, got {}",
                           single_string_ok ? "a string or " : "",
                           array != nullptr ? "an empty array" : type_name(*node)));
      return false;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (const toml::node& element : *array) {
      std::string value;
      if (!string_value(element, key, value, Empty::rejected)) {
        ok = false;
      } else if (std::find(values.begin(), values.end(), value) != values.end()) {
        error_at(element, key, fmt::format("\"{}\" is listed twice", value));
        ok = false;
      } else {
        values.push_back(std::move(value));
      }
    }
    if (ok) out = std::move(values);
    return ok;
  }

  const toml::table* subtable(std::string_view key, Need need = Need::optional) {
    const toml::node* node = find(key, need);
    if (node == nullptr) return nullptr;
    const toml::table* table = node->as_table();
    if (table == nullptr) {
      error_at(*node, key, fmt::format("expected a table, got {}", type_name(*node)));
    }
    return table;
  }

  // Every table of the array of tables `key`; `noun` names one element ("source").
  std::vector<const toml::table*> tables(std::string_view key, Need need, std::string_view noun) {
    std::vector<const toml::table*> out;
    const toml::node* node = find(key);
    if (node == nullptr) {
      if (need == Need::required) {
        diag_.at(table_.source(),
                 fmt::format("missing [[{}]]: at least one {} is required", key, noun));
      }
      return out;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr) {
      error_at(*node, key,
               fmt::format("expected an array of tables ([[{}]]), got {}", key, type_name(*node)));
      return out;
    }
    if (array->empty() && need == Need::required) {
      error_at(*node, key, fmt::format("at least one {} is required", noun));
    }
    for (const toml::node& element : *array) {
      if (const toml::table* table = element.as_table()) {
        out.push_back(table);
      } else {
        error_at(element, key, fmt::format("expected a table, got {}", type_name(element)));
      }
    }
    return out;
  }

  // `key` is valid only for another variant of this table (another source type); say so at the
  // key rather than calling it unknown.
  void reject(std::string_view key, std::string_view variant) {
    known_.emplace_back(key);
    auto it = table_.find(key);
    if (it != table_.end()) {
      diag_.at(it->first.source(), fmt::format("key \"{}\" is not valid for {}", key, variant));
    }
  }

  // `key` is valid, but whether it fits depends on a value that was already reported as wrong:
  // one error is enough.
  void ignore(std::string_view key) { known_.emplace_back(key); }

  void finish() {
    for (const auto& [key, node] : table_) {
      if (std::ranges::find(expected_, key.str()) != expected_.end() ||
          std::ranges::find(known_, key.str()) != known_.end()) {
        continue;
      }
      std::string message = fmt::format("unknown key \"{}\" {}", key.str(),
                                        where_.empty() ? "at the top level" : "in " + where_);
      if (auto guess = closest_expected(key.str()); !guess.empty()) {
        message += fmt::format("; did you mean \"{}\"?", guess);
      }
      diag_.at(key.source(), std::move(message));
    }
  }

 private:
  bool string_value(const toml::node& node, std::string_view key, std::string& out, Empty empty) {
    const auto* value = node.as_string();
    if (value == nullptr) {
      error_at(node, key, fmt::format("expected a string, got {}", type_name(node)));
      return false;
    }
    if (value->get().empty() && empty == Empty::rejected) {
      error_at(node, key, "must not be empty");
      return false;
    }
    out = value->get();
    return true;
  }

  std::string_view closest_expected(std::string_view key) const {
    std::string_view best;
    size_t best_distance = 3;  // more than two edits is a different word, not a typo
    for (const auto& candidate : expected_) {
      size_t d = edit_distance(key, candidate);
      if (d < best_distance && d < candidate.size()) {
        best = candidate;
        best_distance = d;
      }
    }
    return best;
  }

  Diagnostics& diag_;
  const toml::table& table_;
  std::string where_;
  std::vector<std::string> expected_;  // keys asked for: also the "did you mean" candidates
  std::vector<std::string> known_;     // keys reported elsewhere or deliberately not checked
};

}  // namespace sluice
