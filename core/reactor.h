// The event loop's I/O core: one io_uring, the time the loop runs at, the
// deadline it must wake by, and cross-thread wake-ups. It knows no
// subsystem: every request carries the address of its Completion in
// user_data (core/ring.h), and step() calls each completion as it is reaped.
// Sources, sinks, the Kafka client and the metrics endpoint are services
// built on it, never branches inside it.
//
// One Reactor per shard, created (init) and driven (step) by that shard's
// thread. Other threads only call external_wake(); another reactor's thread
// calls wake(target) after publishing work for target.
//
// A loop iteration is: step() (submit what the last iteration queued, wait
// if there was nothing to do, reap and dispatch every completion), then the
// owner runs its ready work, then it reports the earliest time it must run
// again with wake_at().
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <string>

#include "core/clock.h"
#include "core/ring.h"

namespace sluice {

class Reactor {
 public:
  Reactor();
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // On the owning thread: the ring (SINGLE_ISSUER binds it to this thread)
  // and the wake-up eventfd. An error message on failure.
  std::expected<void, std::string> init(unsigned ring_entries);
  // Arms the standing eventfd read; call once before the first step().
  void start();
  // Cancels what is pending and tears the ring down (the destructor does it
  // too). Call before freeing memory that pending operations point into.
  void close();

  Ring& ring() { return ring_; }
  io_uring_sqe* sqe() { return ring_.sqe(); }

  // Monotonic time of the current iteration (read once per step()).
  int64_t now() const { return now_; }
  // Re-reads the clock outside step() (before the first iteration).
  void update_now() { now_ = monotonic_ns(); }
  // The next step() that waits returns by t at the latest.
  void wake_at(int64_t t) {
    if (t < next_wake_) next_wake_ = t;
  }

  // One iteration's I/O. busy: submit and reap without blocking. Otherwise:
  // announce sleeping, then re-check pending() (work another thread queued
  // before it saw the announcement) and, if there is none, wait in the kernel
  // for a completion, a wake-up, or the earliest wake_at() time, at most
  // max_sleep_ns. Then refresh now() and dispatch every completion ready.
  template <typename Pending>
  void step(bool busy, Pending&& pending, int64_t max_sleep_ns);

  // From this reactor's thread, after publishing work for target (another
  // shard's reactor): if target sleeps, wake it (IORING_OP_MSG_RING on this
  // ring, or target's eventfd). Pairs with the fence in step().
  void wake(Reactor& target);
  // Any thread: wake this reactor if it sleeps (eventfd write).
  void external_wake();

 private:
  void on_eventfd(const io_uring_cqe& cqe);
  void arm_eventfd();

  Ring ring_;
  int event_fd_ = -1;
  uint64_t event_fd_value_ = 0;
  Completion eventfd_read_;
  Completion woken_;  // target of other reactors' msg_ring: nothing to do but return
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> wake_pending_{false};
  int64_t now_ = 0;
  int64_t next_wake_ = kTimeMax;
};

template <typename Pending>
void Reactor::step(bool busy, Pending&& pending, int64_t max_sleep_ns) {
  if (busy) {
    ring_.poll();
  } else {
    sleeping_.store(true, std::memory_order_relaxed);
    // Pairs with the fence in wake(): either the waker sees that we sleep, or
    // we see what it published before it looked.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (pending()) {
      sleeping_.store(false, std::memory_order_relaxed);
      ring_.poll();
    } else {
      const int64_t now = monotonic_ns();
      const int64_t until = next_wake_ < now + max_sleep_ns ? next_wake_ : now + max_sleep_ns;
      ring_.wait(until > now ? until - now : 0);
      sleeping_.store(false, std::memory_order_relaxed);
    }
    // Deadlines are reported anew by the iteration after a wait; a busy
    // iteration keeps what earlier ones reported.
    next_wake_ = kTimeMax;
  }
  wake_pending_.store(false, std::memory_order_relaxed);
  now_ = monotonic_ns();
  ring_.drain([](const io_uring_cqe& cqe) { dispatch(cqe); });
}

}  // namespace sluice
