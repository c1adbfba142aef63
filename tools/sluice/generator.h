// Synthetic sales events as NDJSON text, reproducible from a seed:
//   {"product_id":17,"customer_id":"c00042","quantity":3,"revenue":59.97,"timestamp":"..."}
// Event i has time start + i * step, moved back by a uniform amount in
// [0, jitter] (out-of-order input). The timestamp is written in the
// pipeline's time format. No allocation after construction.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/config_model.h"

namespace sluice {

class SalesGenerator {
 public:
  // Longest line generate() writes, newline included.
  static constexpr size_t kLineBytesMax = 192;

  SalesGenerator(const GeneratorSourceConfig& cfg, TimeFormat time_format, int64_t start_ns);

  // Writes up to `max_events` lines into out[0, cap) and stops before the
  // configured count. Returns bytes written; `events` gets the number of lines.
  size_t generate(char* out, size_t cap, uint64_t max_events, uint64_t& events);

  uint64_t produced() const { return produced_; }
  bool finished() const { return cfg_.count != 0 && produced_ >= cfg_.count; }

 private:
  uint64_t next_random();

  GeneratorSourceConfig cfg_;
  TimeFormat time_format_;
  int64_t start_ns_;
  uint64_t state_;
  uint64_t produced_ = 0;
};

}  // namespace sluice
