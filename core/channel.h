// A bounded single-producer/single-consumer channel of recycled items.
//
// One channel per ordered pair of shards (and per shard -> gatherer). The
// producer shard acquire()s a free item, fills it, push()es it; the consumer
// shard pop()s it, uses it, release()s it back. All items are allocated when
// the channel is built: nothing is allocated while it runs, and when every
// item is in flight acquire() returns nullptr, which is the producer's signal
// to stop reading input (back-pressure).
//
// Threads: exactly one producer thread (acquire/push) and one consumer thread
// (pop/release). Built on moodycamel::ReaderWriterQueue, whose try_enqueue
// never allocates once it is sized.
#pragma once

#include <readerwriterqueue/readerwriterqueue.h>

#include <cstddef>
#include <memory>
#include <vector>

#include "core/assert.h"

namespace sluice {

template <typename Item>
class SpscChannel {
 public:
  // Builds `items` items with make(index).
  template <typename Make>
  SpscChannel(size_t items, Make&& make) : full_(items), free_(items) {
    SLUICE_ASSERT(items > 0);
    storage_.reserve(items);
    for (size_t i = 0; i < items; ++i) {
      storage_.push_back(make(i));
      bool ok = free_.try_enqueue(storage_.back().get());
      SLUICE_ASSERT(ok);
    }
  }
  SpscChannel(const SpscChannel&) = delete;
  SpscChannel& operator=(const SpscChannel&) = delete;

  // Producer: a free item, or nullptr when all are in flight.
  Item* try_acquire() {
    Item* item = nullptr;
    return free_.try_dequeue(item) ? item : nullptr;
  }
  // Producer: hands a filled item to the consumer. Never fails: the queue
  // holds as many slots as there are items.
  void push(Item* item) {
    bool ok = full_.try_enqueue(item);
    SLUICE_ASSERT(ok);
  }
  // Consumer: the oldest filled item, or nullptr.
  Item* try_pop() {
    Item* item = nullptr;
    return full_.try_dequeue(item) ? item : nullptr;
  }
  // Consumer: gives an item back to the producer.
  void release(Item* item) {
    bool ok = free_.try_enqueue(item);
    SLUICE_ASSERT(ok);
  }
  // Either side: a snapshot, for wake-up decisions and metrics.
  size_t depth() const { return full_.size_approx(); }
  bool empty() const { return full_.size_approx() == 0; }
  size_t capacity() const { return storage_.size(); }

 private:
  moodycamel::ReaderWriterQueue<Item*> full_;  // producer -> consumer
  moodycamel::ReaderWriterQueue<Item*> free_;  // consumer -> producer
  std::vector<std::unique_ptr<Item>> storage_;
};

}  // namespace sluice
