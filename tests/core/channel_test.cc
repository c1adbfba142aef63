#include "core/channel.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

namespace sluice {
namespace {

struct Item {
  explicit Item(size_t i) : index(i) {}
  size_t index;
  uint64_t seq = 0;
  uint64_t payload = 0;
};

SpscChannel<Item> make_channel(size_t n) {
  return SpscChannel<Item>(n, [](size_t i) { return std::make_unique<Item>(i); });
}

TEST(SpscChannel, BuildsEveryItemOnce) {
  std::vector<size_t> made;
  SpscChannel<Item> ch(5, [&](size_t i) {
    made.push_back(i);
    return std::make_unique<Item>(i);
  });
  EXPECT_EQ(made, (std::vector<size_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ch.capacity(), 5u);
  EXPECT_TRUE(ch.empty());
  EXPECT_EQ(ch.depth(), 0u);
}

TEST(SpscChannel, AcquireUntilExhaustedReturnsNullptr) {
  auto ch = make_channel(4);
  std::set<Item*> seen;
  std::set<size_t> indexes;
  for (int i = 0; i < 4; ++i) {
    Item* it = ch.try_acquire();
    ASSERT_NE(it, nullptr);
    EXPECT_TRUE(seen.insert(it).second) << "same item handed out twice";
    indexes.insert(it->index);
  }
  EXPECT_EQ(indexes, (std::set<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(ch.try_acquire(), nullptr);
  EXPECT_EQ(ch.try_acquire(), nullptr);
  EXPECT_EQ(ch.try_pop(), nullptr);  // acquired but not pushed: nothing to pop
}

TEST(SpscChannel, PushPopIsFifo) {
  auto ch = make_channel(3);
  Item* a = ch.try_acquire();
  Item* b = ch.try_acquire();
  Item* c = ch.try_acquire();
  a->payload = 1;
  b->payload = 2;
  c->payload = 3;
  ch.push(b);
  ch.push(a);
  ch.push(c);
  EXPECT_EQ(ch.depth(), 3u);
  EXPECT_FALSE(ch.empty());
  EXPECT_EQ(ch.try_pop(), b);
  EXPECT_EQ(ch.try_pop(), a);
  EXPECT_EQ(ch.try_pop(), c);
  EXPECT_EQ(ch.try_pop(), nullptr);
  EXPECT_TRUE(ch.empty());
  EXPECT_EQ(a->payload, 1u);
  EXPECT_EQ(b->payload, 2u);
  EXPECT_EQ(c->payload, 3u);
}

TEST(SpscChannel, ReleaseMakesAcquireSucceedAgain) {
  auto ch = make_channel(2);
  Item* a = ch.try_acquire();
  Item* b = ch.try_acquire();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(ch.try_acquire(), nullptr);
  ch.push(a);
  EXPECT_EQ(ch.try_acquire(), nullptr) << "a pushed item is still in flight";
  Item* got = ch.try_pop();
  ASSERT_EQ(got, a);
  ch.release(got);
  EXPECT_EQ(ch.try_acquire(), a);
  EXPECT_EQ(ch.try_acquire(), nullptr);
  ch.release(b);  // never pushed, handed straight back
  EXPECT_EQ(ch.try_acquire(), b);
}

TEST(SpscChannel, ManyCyclesThroughOneItem) {
  auto ch = make_channel(1);
  for (uint64_t i = 0; i < 1000; ++i) {
    Item* it = ch.try_acquire();
    ASSERT_NE(it, nullptr);
    ASSERT_EQ(ch.try_acquire(), nullptr);
    it->seq = i;
    ch.push(it);
    Item* got = ch.try_pop();
    ASSERT_EQ(got, it);
    ASSERT_EQ(got->seq, i);
    ch.release(got);
  }
}

// One producer thread and one consumer thread move a million items through a
// small channel. The consumer checks order (FIFO) and both sides keep sums, so
// a lost, duplicated or reordered item is caught.
TEST(SpscChannel, TwoThreadsMoveAMillionItems) {
  constexpr uint64_t kItems = 1'000'000;
  auto ch = make_channel(8);
  auto mix = [](uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
  };
  uint64_t produced_sum = 0;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kItems; ++i) {
      Item* it;
      while ((it = ch.try_acquire()) == nullptr) std::this_thread::yield();
      it->seq = i;
      it->payload = mix(i);
      produced_sum += it->payload;
      ch.push(it);
    }
  });
  uint64_t consumed = 0, consumed_sum = 0, out_of_order = 0, bad_payload = 0;
  std::set<Item*> items_seen;
  while (consumed < kItems) {
    Item* it = ch.try_pop();
    if (it == nullptr) {
      std::this_thread::yield();
      continue;
    }
    if (items_seen.size() < 8) items_seen.insert(it);
    if (it->seq != consumed) ++out_of_order;
    if (it->payload != mix(it->seq)) ++bad_payload;
    consumed_sum += it->payload;
    ++consumed;
    ch.release(it);
  }
  producer.join();
  EXPECT_EQ(out_of_order, 0u);
  EXPECT_EQ(bad_payload, 0u);
  EXPECT_EQ(consumed_sum, produced_sum);
  uint64_t want_sum = 0;
  for (uint64_t i = 0; i < kItems; ++i) want_sum += mix(i);
  EXPECT_EQ(consumed_sum, want_sum);
  EXPECT_EQ(ch.try_pop(), nullptr) << "more items than were produced";
  EXPECT_LE(items_seen.size(), 8u);
  // Every item is back in the free list.
  std::set<Item*> free_items;
  while (Item* it = ch.try_acquire()) free_items.insert(it);
  EXPECT_EQ(free_items.size(), 8u);
}

// Pooled channels: items are made on first use, up to the producer's limit,
// and can move between the producer's channels.
struct Pooled {
  uint64_t payload;
};

TEST(SpscChannelPool, ItemsAreMadeOnFirstUseUpToTheLimit) {
  ItemPool<Pooled> pool(3);
  SpscChannel<Pooled> a(&pool), b(&pool);
  EXPECT_EQ(pool.allocated(), 0u);
  EXPECT_EQ(a.capacity(), 3u);
  Pooled* x = a.try_acquire();
  Pooled* y = b.try_acquire();
  Pooled* z = a.try_acquire();
  ASSERT_TRUE(x && y && z);
  EXPECT_EQ(pool.allocated(), 3u);
  EXPECT_EQ(a.try_acquire(), nullptr);  // the pool is at its limit, nothing given back
  EXPECT_EQ(b.try_acquire(), nullptr);
  a.push(x);
  EXPECT_EQ(a.try_pop(), x);
  a.release(x);
  EXPECT_EQ(a.try_acquire(), x);  // recycled, not new
  EXPECT_EQ(pool.allocated(), 3u);
}

TEST(SpscChannelPool, AnItemGivenBackToOneChannelServesAnother) {
  ItemPool<Pooled> pool(2);
  SpscChannel<Pooled> a(&pool), b(&pool);
  Pooled* x = a.try_acquire();
  Pooled* y = a.try_acquire();
  ASSERT_TRUE(x && y);
  EXPECT_EQ(b.try_acquire(), nullptr);
  a.push(x);
  a.push(y);
  a.release(a.try_pop());
  a.release(a.try_pop());
  EXPECT_EQ(b.try_acquire(), nullptr);  // b never allocates past the pool ...
  Pooled* moved = a.steal();            // ... but may take what a was given back
  ASSERT_NE(moved, nullptr);
  // Every item of the pool can go through b: its queues hold them all.
  Pooled* other = a.steal();
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(a.steal(), nullptr);
  b.push(moved);
  b.push(other);
  EXPECT_EQ(b.depth(), 2u);
  b.release(b.try_pop());
  b.release(b.try_pop());
  EXPECT_NE(b.try_acquire(), nullptr);
  EXPECT_NE(b.try_acquire(), nullptr);
  EXPECT_EQ(pool.allocated(), 2u);
}

}  // namespace
}  // namespace sluice
