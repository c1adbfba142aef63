// Cross-shard channel: batches handed from a producer thread to a consumer
// thread and recycled back.
//
// Workload: the engine's EventBatch (64 KiB) with the engine's 32 batches per
// channel. The producer (the benchmark thread) acquires a free batch
// (spinning while all 32 are in flight), resets it, appends one event record
// and pushes it; the consumer thread pops it, reads the record back and
// releases the batch. One item = one batch. Both sides poll, as shards do
// while busy, so this measures the hand-off itself, not wake-ups; a side
// that finds nothing spins briefly, then yields its CPU (without the yield,
// on a shared 2-CPU machine one spinner can burn a whole time slice while
// the other side is descheduled). Wall-clock time (UseRealTime): two threads
// are involved. Argument pinned:1 pins the two threads to two different
// CPUs, as two shards are pinned; pinned:0 leaves placement to the
// scheduler, which on a shared machine can move a thread away from a busy
// CPU but also sometimes stacks both threads on one CPU.
//
//   BM_SpscChannel          core/channel.h SpscChannel (two moodycamel SPSC queues)
//   BM_MutexDequeBaseline   the same protocol over two std::mutex + std::deque
//                           queues (full and free) of the same batch pointers
//
// Every batch moves a few cache lines between the two CPUs, so results
// depend on how far apart those CPUs are; on a virtual machine that can
// change from run to run (bench/README.md shows how much).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/bench_data.h"
#include "core/channel.h"
#include "core/cpu.h"
#include "dataflow/batch.h"

namespace sluice::bench {
namespace {

constexpr size_t kValues = 3;  // the sales schema's value fields

// Called each time a poll finds nothing; `misses` counts them in a row.
// 16k pauses is some tens of microseconds: far longer than a hand-off takes
// when both threads run, short enough to give the CPU back when the peer
// has been descheduled.
constexpr unsigned kSpinsBeforeYield = 16384;
inline void wait_a_little(unsigned& misses) {
  if (++misses < kSpinsBeforeYield) {
    __builtin_ia32_pause();
  } else {
    misses = 0;
    std::this_thread::yield();
  }
}

// The baseline: what one would write first. Same interface as SpscChannel.
class MutexDequeChannel {
 public:
  explicit MutexDequeChannel(size_t items) {
    for (size_t i = 0; i < items; ++i) {
      storage_.push_back(std::make_unique<EventBatch>());
      free_.push_back(storage_.back().get());
    }
  }
  EventBatch* try_acquire() { return take(free_mu_, free_); }
  void push(EventBatch* b) { put(full_mu_, full_, b); }
  EventBatch* try_pop() { return take(full_mu_, full_); }
  void release(EventBatch* b) { put(free_mu_, free_, b); }

 private:
  static EventBatch* take(std::mutex& mu, std::deque<EventBatch*>& q) {
    std::lock_guard<std::mutex> lock(mu);
    if (q.empty()) return nullptr;
    EventBatch* b = q.front();
    q.pop_front();
    return b;
  }
  static void put(std::mutex& mu, std::deque<EventBatch*>& q, EventBatch* b) {
    std::lock_guard<std::mutex> lock(mu);
    q.push_back(b);
  }

  std::vector<std::unique_ptr<EventBatch>> storage_;
  std::mutex full_mu_, free_mu_;
  std::deque<EventBatch*> full_, free_;
};

// Pins the benchmark thread for the duration of a run and restores its mask.
class PinnedPair {
 public:
  explicit PinnedPair(bool want) {
    std::vector<int> cpus = allowed_cpus();
    if (!want) return;
    pinned_ = cpus.size() >= 2 && pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_) == 0;
    if (!pinned_) return;
    producer_cpu_ = cpus[0];
    consumer_cpu_ = cpus[1];
    pinned_ = pin_current_thread(producer_cpu_);
  }
  ~PinnedPair() {
    if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  bool pinned() const { return pinned_; }
  int consumer_cpu() const { return consumer_cpu_; }

 private:
  cpu_set_t saved_;
  bool pinned_ = false;
  int producer_cpu_ = -1;
  int consumer_cpu_ = -1;
};

template <typename Channel>
void run(benchmark::State& state, Channel& ch) {
  PinnedPair pin(state.range(0) != 0);
  if (state.range(0) != 0 && !pin.pinned()) state.SetLabel("not pinned: fewer than 2 CPUs allowed");
  char key[kIntKeyBytes];
  encode_int_key(42, key);
  Event proto{};
  proto.key = {key, sizeof key};
  proto.key_hash = hash_key(proto.key);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> pushed_total{0};
  uint64_t consumed = 0, checksum = 0;
  std::thread consumer([&] {
    if (pin.pinned()) pin_current_thread(pin.consumer_cpu());
    Event e{};
    unsigned misses = 0;
    for (;;) {
      if (EventBatch* b = ch.try_pop()) {
        misses = 0;
        b->read(0, e, kValues);
        checksum += uint64_t(e.time_ns);
        ch.release(b);
        ++consumed;
        continue;
      }
      if (stop.load(std::memory_order_acquire) &&
          consumed == pushed_total.load(std::memory_order_relaxed)) {
        break;
      }
      wait_a_little(misses);
    }
  });

  uint64_t pushed = 0;
  unsigned misses = 0;
  for (auto _ : state) {
    EventBatch* b;
    while ((b = ch.try_acquire()) == nullptr) wait_a_little(misses);
    misses = 0;
    b->reset();
    proto.time_ns = int64_t(pushed);
    b->append(proto, kValues);
    ch.push(b);
    ++pushed;
  }
  pushed_total.store(pushed, std::memory_order_relaxed);
  stop.store(true, std::memory_order_release);
  consumer.join();
  benchmark::DoNotOptimize(checksum);
  state.SetItemsProcessed(int64_t(pushed));
}

void BM_SpscChannel(benchmark::State& state) {
  SpscChannel<EventBatch> ch(kEventBatchesPerChannel, [](size_t) { return std::make_unique<EventBatch>(); });
  run(state, ch);
}

void BM_MutexDequeBaseline(benchmark::State& state) {
  MutexDequeChannel ch(kEventBatchesPerChannel);
  run(state, ch);
}

BENCHMARK(BM_SpscChannel)->ArgName("pinned")->Arg(1)->Arg(0)->UseRealTime();
BENCHMARK(BM_MutexDequeBaseline)->ArgName("pinned")->Arg(1)->Arg(0)->UseRealTime();

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
