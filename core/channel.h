// A bounded single-producer/single-consumer channel of recycled items.
//
// One channel per ordered pair of shards (and per shard -> gatherer). The
// producer shard acquire()s a free item, fills it, push()es it; the consumer
// shard pop()s it, uses it, release()s it back. Items are either all
// allocated when the channel is built, or taken on first use from the
// producer's ItemPool (bounded per producer, shared by its channels). Either
// way nothing is allocated in steady state, and when every item is in flight
// acquire() returns nullptr, which is the producer's signal to stop reading
// input (back-pressure).
//
// Threads: exactly one producer thread (acquire/push) and one consumer thread
// (pop/release). Built on moodycamel::ReaderWriterQueue, whose try_enqueue
// never allocates once it is sized.
#pragma once

#include <readerwriterqueue/readerwriterqueue.h>

#include <cstddef>
#include <memory>
#include <type_traits>
#include <vector>

#include "core/assert.h"

namespace sluice {

// Items one producer may hold across all of its channels, allocated on first
// use up to items_max. Memory then grows with what a producer actually uses
// (and is bounded per producer), not with the number of channels: with one
// channel per ordered pair of shards, preallocating per channel made memory
// grow with the square of the shard count.
//
// Threads: the producer alone (allocate); items are never freed before the pool.
template <typename Item>
class ItemPool {
 public:
  explicit ItemPool(size_t items_max) : items_max_(items_max) { storage_.reserve(items_max); }
  ItemPool(const ItemPool&) = delete;
  ItemPool& operator=(const ItemPool&) = delete;

  // A new item, or nullptr when items_max have been made.
  Item* allocate() {
    if (storage_.size() >= items_max_) return nullptr;
    // Default-initialised: a large payload array stays untouched (and out of
    // the resident set) until it is written.
    storage_.push_back(std::make_unique_for_overwrite<Item>());
    return storage_.back().get();
  }
  size_t allocated() const { return storage_.size(); }
  size_t items_max() const { return items_max_; }

 private:
  size_t items_max_;
  std::vector<std::unique_ptr<Item>> storage_;
};

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
  // Items come from the producer's pool when first needed, and may move
  // between the producer's channels (steal()). Each queue holds as many
  // slots as the pool has items, so push() and release() still never fail.
  explicit SpscChannel(ItemPool<Item>* pool)
      : full_(pool->items_max()), free_(pool->items_max()), pool_(pool) {}
  SpscChannel(const SpscChannel&) = delete;
  SpscChannel& operator=(const SpscChannel&) = delete;

  // Producer: a free item (a new one from the pool if there is none and the
  // pool has room), or nullptr when all are in flight.
  Item* try_acquire() {
    Item* item = nullptr;
    if (free_.try_dequeue(item)) return item;
    if constexpr (std::is_default_constructible_v<Item>) {
      if (pool_ != nullptr) return pool_->allocate();
    }
    return nullptr;
  }
  // Producer: a free item of this channel for another channel of the same
  // producer and pool, or nullptr. Never allocates.
  Item* steal() {
    SLUICE_ASSERT(pool_ != nullptr);
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
  size_t capacity() const { return pool_ != nullptr ? pool_->items_max() : storage_.size(); }

 private:
  moodycamel::ReaderWriterQueue<Item*> full_;  // producer -> consumer
  moodycamel::ReaderWriterQueue<Item*> free_;  // consumer -> producer
  std::vector<std::unique_ptr<Item>> storage_;  // eager channels own their items
  ItemPool<Item>* pool_ = nullptr;              // pooled channels borrow them
};

}  // namespace sluice
