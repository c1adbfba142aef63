// Logging to stderr. Start-up, shutdown and rare events only: never on the
// per-event path (STYLE.md). Each call formats into a stack buffer and issues
// one write(2), so lines from different shards do not interleave.
#pragma once

#include <fmt/format.h>

#include <cstdint>
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

// At most one message per interval for a recurring event (a refused
// connection, an eviction): allow() says whether to log now, and how many
// were suppressed since the last logged one, so the log says how many.
// Owned by one thread.
class LogRateLimit {
 public:
  explicit LogRateLimit(int64_t interval_ns = 1'000'000'000) : interval_ns_(interval_ns) {}
  bool allow(int64_t now_ns, uint64_t& suppressed) {
    if (now_ns < next_ns_) {
      ++suppressed_;
      return false;
    }
    suppressed = suppressed_;
    suppressed_ = 0;
    next_ns_ = now_ns + interval_ns_;
    return true;
  }

 private:
  int64_t interval_ns_;
  int64_t next_ns_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace sluice
