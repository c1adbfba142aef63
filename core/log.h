// Logging to stderr. Start-up, shutdown and rare events only: never on the
// per-event path (STYLE.md). Each call formats into a stack buffer and issues
// one write(2), so lines from different shards do not interleave.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace sluice {

enum class LogLevel { debug, info, warn, error };

void log_line(LogLevel level, std::string_view message);
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

template <typename... Args>
void log_info(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::info)) log_line(LogLevel::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::warn)) log_line(LogLevel::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(fmt::format_string<Args...> f, Args&&... args) {
  log_line(LogLevel::error, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(LogLevel::debug)) log_line(LogLevel::debug, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace sluice
