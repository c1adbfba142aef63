// A byte budget shared by many owners on many shards: each owner reserves
// before it allocates and releases when it frees, so the sum of what they
// hold never exceeds the limit. Used for TCP connections' line buffers
// (a connection holds memory only while a line spans reads).
//
// Threads: any; one relaxed atomic read-modify-write per reservation. Owners
// reserve on growth of a buffer, never per event.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Reserves n bytes; false (and nothing reserved) if that would pass the limit.
  [[nodiscard]] bool try_reserve(uint64_t n) {
    uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ || used > limit_ - n) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  void release(uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t limit() const { return limit_; }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace sluice
