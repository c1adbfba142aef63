// Synthetic sales events as NDJSON text, reproducible from a seed:
//   {"product_id":17,"customer_id":"c00042","quantity":3,"revenue":59.97,"timestamp":"..."}
// Event i has a nominal time, start + i * step (or a time the caller gives:
// sluice-gen's real-time mode), moved back by a uniform amount in [0, jitter]
// (out-of-order input) and, for a configured fraction of events, by late_by
// more (late input). The timestamp is written in the pipeline's time format.
// No allocation after construction.
//
// Compatibility: with the default LateEvents (none), the text for a given
// config, format and start is exactly what every earlier version wrote; the
// engine's generator source and sluice-gen are compared on that.
//
// Threads: one owner thread per object; nothing is shared between objects.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/config_model.h"

namespace sluice {

// Which events are late, and by how much (sluice-gen --late-fraction/--late-by).
struct LateEvents {
  // Probability that an event is late, in [0, 1]. Drawn from a random stream of
  // its own (seeded from the config's seed), so turning lateness on changes the
  // timestamps of the late events and nothing else.
  double fraction = 0;
  // A late event's time is its nominal time minus late_by, minus its jitter.
  // With W = watermark_delay, S = window size and C connections carrying the
  // events round-robin, late_by >= W + S + jitter + C * step guarantees that
  // the event's window has closed by the time it arrives. REQUIRES: >= 0.
  int64_t late_by_ns = 0;
};

class SalesGenerator {
 public:
  // Longest line generate() writes, newline included.
  static constexpr size_t kLineBytesMax = 192;

  SalesGenerator(const GeneratorSourceConfig& cfg, TimeFormat time_format, int64_t start_ns,
                 const LateEvents& late = {});

  // Writes up to `max_events` lines into out[0, cap) and stops before the
  // configured count. Returns bytes written; `events` gets the number of lines.
  size_t generate(char* out, size_t cap, uint64_t max_events, uint64_t& events);

  // Writes the next event (nominal time start + i * step) as one line.
  // REQUIRES: !finished(); out has kLineBytesMax bytes. Returns bytes written.
  size_t generate_one(char* out) { return write_line(out, nominal_ns(produced_)); }

  // Writes the next event with nominal time `due_ns` in place of start + i * step;
  // jitter and lateness still apply. For real-time load, where an event's time
  // is the wall-clock time the caller is due to send it: every other field is
  // exactly what generate_one() would write. REQUIRES: as generate_one().
  size_t generate_one_at(char* out, int64_t due_ns) { return write_line(out, due_ns); }

  uint64_t produced() const { return produced_; }
  // Events among produced() that were made late.
  uint64_t late_produced() const { return late_produced_; }
  bool finished() const { return cfg_.count != 0 && produced_ >= cfg_.count; }

 private:
  int64_t nominal_ns(uint64_t i) const { return start_ns_ + int64_t(i) * cfg_.step_ns; }
  size_t write_line(char* out, int64_t nominal_ns);
  char* put_rfc3339(char* p, int64_t t);

  GeneratorSourceConfig cfg_;
  TimeFormat time_format_;
  int64_t start_ns_;
  LateEvents late_;
  uint64_t state_;       // the event fields and jitter: the stream every version has used
  uint64_t late_state_;  // the late/not-late draws, a separate stream (see LateEvents)
  uint64_t produced_ = 0;
  uint64_t late_produced_ = 0;
  // "YYYY-MM-DDT" of the day cached_day_ (days since 1970-01-01): consecutive
  // events mostly share it, and computing the date was a quarter of the
  // generator's time. kNoDay: nothing cached yet.
  static constexpr int64_t kNoDay = INT64_MIN;
  int64_t cached_day_ = kNoDay;
  char day_text_[11] = {};
};

}  // namespace sluice
