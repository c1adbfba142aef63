// Window kinds: which event-time windows an event belongs to, and when each
// ends. Everything else (lateness, firing, completion in the gatherer, the
// window_end of a row) asks these two questions, so a kind is one place:
//
//   windows_of(t) -> the starts of the windows holding event time t
//                    (one for tumbling; several for hopping)
//   end_of(start) -> the end of the window starting at `start`
//
// An event is late when every window it belongs to has ended at or before
// its source's watermark (operators/watermark.h); a window fires once the
// pipeline watermark has passed its end.
//
// Adding a kind: a file in operators/windows/ that defines a WindowAssignment,
// plus its line in operators/windows/windows.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/clock.h"
#include "core/config_kinds.h"
#include "core/config_model.h"

namespace sluice {

// Most windows one event can belong to, over every kind.
constexpr size_t kWindowsPerEventMax = 64;

struct WindowAssignment {
  // Its part of [window]: its name (`kind = "..."`) and its keys beyond kind,
  // size, watermark_delay and idle_timeout.
  WindowConfigKind config;
  WindowKind name() const { return WindowKind{config.name}; }
  // Windows one event belongs to at most (<= kWindowsPerEventMax).
  uint32_t (*windows_max)(const WindowConfig& config);
  // The starts of the windows holding event time t, ascending, into
  // `starts`; how many. 0: t's windows are not representable in int64 ns.
  size_t (*windows_of)(const WindowConfig& config, int64_t t, int64_t* starts);
  // The end of the window that starts at `start` (exclusive).
  int64_t (*end_of)(const WindowConfig& config, int64_t start);
};

// The kind registered under `name`, or nullptr.
const WindowAssignment* find_window_assignment(WindowKind name);
// Adds a kind (start-up, before configs are built; built-ins are in
// operators/windows/windows.cc). A test or a plugin registers its own this way.
void register_window_assignment(const WindowAssignment* kind);
// Every registered kind, built-ins first.
const std::vector<const WindowAssignment*>& window_assignments();

// Tumbling windows of one size: [floor(t / size) * size, + size). The
// arithmetic of the built-in kind, kept inline for the per-event path.
class TumblingWindows {
 public:
  explicit TumblingWindows(int64_t size_ns) : size_ns_(size_ns) {}

  int64_t size_ns() const { return size_ns_; }
  // Start of the window holding event time t: floor(t / size) * size.
  // REQUIRES: window_fits(t).
  int64_t window_start(int64_t t) const { return floor_div(t, size_ns_) * size_ns_; }
  // Whether [start, start + size) of t's window is representable in int64 ns.
  bool window_fits(int64_t t) const {
    int64_t start, end;
    return !__builtin_mul_overflow(floor_div(t, size_ns_), size_ns_, &start) &&
           !__builtin_add_overflow(start, size_ns_, &end);
  }
  // window_fits(t) and, if so, window_start(t), with one division at most:
  // the last window seen is remembered, and most events fall in it.
  bool window_of(int64_t t, int64_t& start) {
    if (has_last_ && t >= last_start_ && uint64_t(t) - uint64_t(last_start_) < uint64_t(size_ns_)) {
      start = last_start_;
      return true;
    }
    if (!window_fits(t)) return false;
    start = last_start_ = window_start(t);
    has_last_ = true;
    return true;
  }

 private:
  int64_t size_ns_;
  bool has_last_ = false;  // last_start_ is the start of a window that fits
  int64_t last_start_ = 0;
};

// The windows of one pipeline, as one shard (or the gatherer) asks about
// them: the configured kind, with the tumbling kind's arithmetic inlined
// (the per-event path) and any other kind called through its table.
// One per thread (it remembers the last window).
class Windows {
 public:
  // REQUIRES: config.kind is registered (the config loader checks); config
  // outlives this object (it is the pipeline's).
  explicit Windows(const WindowConfig& config);

  uint32_t windows_max() const { return windows_max_; }
  // See WindowAssignment::windows_of. REQUIRES: starts has windows_max() room.
  size_t of(int64_t t, int64_t* starts) {
    if (tumbling_) return tumbling_windows_.window_of(t, starts[0]) ? 1 : 0;
    return kind_->windows_of(*config_, t, starts);
  }
  int64_t end_of(int64_t start) const {
    return tumbling_ ? start + tumbling_windows_.size_ns() : kind_->end_of(*config_, start);
  }

 private:
  const WindowConfig* config_;
  const WindowAssignment* kind_;
  bool tumbling_;
  TumblingWindows tumbling_windows_;
  uint32_t windows_max_;
};

}  // namespace sluice
