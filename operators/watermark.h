// Event-time progress of one source (a TCP connection, a file, later a Kafka
// partition), and the lateness rule.
//
// watermark = max(floor, largest event time delivered so far - delay)
//
// The floor is the pipeline's fired watermark at the moment the source joined
// (or came back from idle): a source that joins a running pipeline cannot
// deliver into windows that have already been written out. For a source
// present from the start the floor is kTimeMin and the formula is exactly the
// documented one.
//
// An event is late when the end of its window is <= its own source's
// watermark at the moment it arrives (the event's own time does not count).
//
// Owned by the shard that reads the source.
#pragma once

#include <cstdint>

#include "core/clock.h"

namespace sluice {

class SourceWatermark {
 public:
  explicit SourceWatermark(int64_t delay_ns, int64_t floor_ns = kTimeMin)
      : delay_ns_(delay_ns), floor_ns_(floor_ns) {}

  int64_t watermark() const {
    int64_t wm = sub_sat(max_event_ns_, delay_ns_);
    if (max_event_ns_ == kTimeMin) wm = kTimeMin;
    return wm > floor_ns_ ? wm : floor_ns_;
  }
  bool is_late(int64_t window_end_ns) const { return window_end_ns <= watermark(); }
  // Records an accepted event's time. Call after the lateness check.
  void observe(int64_t event_ns) {
    if (event_ns > max_event_ns_) max_event_ns_ = event_ns;
  }
  void raise_floor(int64_t floor_ns) {
    if (floor_ns > floor_ns_) floor_ns_ = floor_ns;
  }
  int64_t max_event_ns() const { return max_event_ns_; }

 private:
  int64_t delay_ns_;
  int64_t floor_ns_;
  int64_t max_event_ns_ = kTimeMin;
};

}  // namespace sluice
