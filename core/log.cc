#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <cstring>

namespace sluice {
namespace {
std::atomic<int> g_level{int(LogLevel::info)};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "?";
}
}  // namespace

void set_log_level(LogLevel level) { g_level.store(int(level), std::memory_order_relaxed); }
bool log_enabled(LogLevel level) { return int(level) >= g_level.load(std::memory_order_relaxed); }

void log_line(LogLevel level, std::string_view message) {
  char buf[4096];
  int n = std::snprintf(buf, sizeof buf, "sluice %s: ", level_name(level));
  size_t room = sizeof buf - size_t(n) - 1;
  size_t len = message.size() < room ? message.size() : room;
  std::memcpy(buf + n, message.data(), len);
  buf[size_t(n) + len] = '\n';
  ssize_t rc = ::write(STDERR_FILENO, buf, size_t(n) + len + 1);
  (void)rc;  // Nothing sensible to do if stderr is gone.
}

}  // namespace sluice
