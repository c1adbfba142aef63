#include "operators/window_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/config_model.h"
#include "operators/window_kind.h"

namespace sluice {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

SchemaConfig schema() {
  SchemaConfig s;
  s.key = {"k"};
  s.time_field = "t";
  s.fields = {{"v", FieldType::int64}};
  return s;
}

std::vector<AggregateConfig> count_and_sum() {
  AggregateConfig n;
  n.name = "n";
  n.fn = AggFn::count;
  AggregateConfig s;
  s.name = "s";
  s.fn = AggFn::sum;
  s.field = "v";
  s.field_index = 0;
  return {n, s};
}

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
uint64_t hash_of(const std::string& key) { return mix(std::hash<std::string>{}(key)); }

// Keys of varied lengths (0 to ~40 bytes), including bytes that are not text.
std::string key_for(uint64_t i) {
  std::string k = std::to_string(i);
  k.append(i % 37, char('a' + i % 26));
  if (i % 5 == 0) k.push_back('\0');
  if (i % 7 == 0) k.push_back(char(0xff));
  return k;
}

struct Ref {
  int64_t count = 0;
  int64_t sum = 0;
};

class TableFixture {
 public:
  TableFixture() : layout_(count_and_sum(), schema()) {}
  void add(KeyTable& t, uint64_t hash, const std::string& key, int64_t v) {
    Value* acc = t.upsert(hash, key, layout_);
    Value vals[1];
    vals[0].i = v;
    layout_.update(acc, vals);
  }
  int64_t count(const Value* acc) const { return layout_.result(acc, 0).v.i; }
  int64_t sum(const Value* acc) const { return layout_.result(acc, 1).v.i; }
  const AggLayout& layout() const { return layout_; }

 private:
  AggLayout layout_;
};

// Every key of `ref` is found with its accumulators; entries are in first-insertion order.
void check_table(const TableFixture& fx, const KeyTable& t, const std::map<std::string, Ref>& ref,
                 const std::vector<std::string>& insertion_order, uint64_t (*hash)(const std::string&)) {
  ASSERT_EQ(t.size(), ref.size());
  ASSERT_EQ(insertion_order.size(), ref.size());
  for (size_t e = 0; e < t.size(); ++e) {
    ASSERT_EQ(std::string(t.key(e)), insertion_order[e]) << "entry " << e;
    const Ref& r = ref.at(insertion_order[e]);
    ASSERT_EQ(fx.count(t.acc(e)), r.count) << "entry " << e;
    ASSERT_EQ(fx.sum(t.acc(e)), r.sum) << "entry " << e;
  }
  for (const auto& [key, r] : ref) {
    const Value* acc = t.find(hash(key), key);
    ASSERT_NE(acc, nullptr) << "key " << key;
    ASSERT_EQ(fx.count(acc), r.count);
    ASSERT_EQ(fx.sum(acc), r.sum);
  }
}

TEST(KeyTable, GrowsFromTinyCapacityTo100kKeys) {
  TableFixture fx;
  KeyTable t(fx.layout().slots(), 1);
  std::map<std::string, Ref> ref;
  std::vector<std::string> order;
  std::mt19937_64 rng(11);
  const uint64_t keys = 100'000;
  // Each key arrives first in order, then again at random, so lookups of
  // existing keys happen at every table size.
  for (uint64_t i = 0; i < keys; ++i) {
    std::string k = key_for(i);
    int64_t v = int64_t(rng() % 1000) - 500;
    fx.add(t, hash_of(k), k, v);
    Ref& r = ref[k];
    if (r.count == 0) order.push_back(k);
    r.count += 1;
    r.sum += v;
    if (i % 3 == 0) {
      std::string again = key_for(rng() % (i + 1));
      int64_t w = int64_t(rng() % 100);
      fx.add(t, hash_of(again), again, w);
      ref[again].count += 1;
      ref[again].sum += w;
    }
  }
  ASSERT_EQ(ref.size(), keys);
  check_table(fx, t, ref, order, hash_of);
  // Keys that were never inserted are not found.
  for (uint64_t i = keys; i < keys + 1000; ++i) {
    std::string k = key_for(i);
    EXPECT_EQ(t.find(hash_of(k), k), nullptr);
  }
  EXPECT_GT(t.memory_bytes(), keys * 8);
}

TEST(KeyTable, NewEntryIsInitialised) {
  TableFixture fx;
  KeyTable t(fx.layout().slots(), 4);
  Value* acc = t.upsert(1, "k", fx.layout());
  EXPECT_EQ(fx.count(acc), 0);
  EXPECT_EQ(fx.sum(acc), 0);
  EXPECT_EQ(t.upsert(1, "k", fx.layout()), acc) << "the same key gives the same accumulators";
  EXPECT_EQ(t.size(), 1u);
}

TEST(KeyTable, EmptyKey) {
  TableFixture fx;
  KeyTable t(fx.layout().slots());
  fx.add(t, 0, "", 5);
  fx.add(t, 0, std::string("\0", 1), 6);
  EXPECT_EQ(t.size(), 2u);
  ASSERT_NE(t.find(0, ""), nullptr);
  EXPECT_EQ(fx.sum(t.find(0, "")), 5);
  EXPECT_EQ(fx.sum(t.find(0, std::string("\0", 1))), 6);
}

TEST(KeyTable, CollisionsWithTheSameHash) {
  // Every key has hash 42: the table must tell keys apart by their bytes.
  TableFixture fx;
  KeyTable t(fx.layout().slots(), 1);
  std::map<std::string, Ref> ref;
  std::vector<std::string> order;
  auto same = [](const std::string&) -> uint64_t { return 42; };
  std::vector<std::string> keys = {"a", "ab", "abc", "b", "ba", std::string("a\0", 2), "", "A"};
  for (int i = 0; i < 1500; ++i) keys.push_back("key-" + std::to_string(i));
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < keys.size(); ++i) {
      int64_t v = int64_t(i) * 10 + round;
      fx.add(t, 42, keys[i], v);
      Ref& r = ref[keys[i]];
      if (r.count == 0) order.push_back(keys[i]);
      r.count += 1;
      r.sum += v;
    }
  }
  check_table(fx, t, ref, order, +same);
  EXPECT_EQ(t.find(42, "abcd"), nullptr);
  // The index keeps the top 32 bits of a hash as its tag: a hash that
  // differs there is a different key's.
  EXPECT_EQ(t.find(42 | (uint64_t(1) << 40), "abc"), nullptr) << "found with a different hash";
}

TEST(KeyTable, HashesThatShareHighBits) {
  // Hashes differing only in their low 32 bits share the home slot and the
  // index tag (both come from the top bits): only the key bytes tell them apart.
  TableFixture fx;
  KeyTable t(fx.layout().slots(), 1);
  std::map<std::string, Ref> ref;
  std::vector<std::string> order;
  static std::map<std::string, uint64_t> hashes;
  hashes.clear();
  for (uint64_t i = 0; i < 3000; ++i) {
    std::string k = "h" + std::to_string(i);
    hashes[k] = (uint64_t(0xabcdef01) << 32) | i;
    fx.add(t, hashes[k], k, int64_t(i));
    fx.add(t, hashes[k], k, 1);
    ref[k] = {2, int64_t(i) + 1};
    order.push_back(k);
  }
  check_table(fx, t, ref, order, [](const std::string& k) { return hashes.at(k); });
}

TEST(KeyTable, HashesThatShareLowBits) {
  // Hashes differing only in high bits.
  TableFixture fx;
  KeyTable t(fx.layout().slots(), 1);
  std::map<std::string, Ref> ref;
  std::vector<std::string> order;
  static std::map<std::string, uint64_t> hashes;
  hashes.clear();
  for (uint64_t i = 0; i < 3000; ++i) {
    std::string k = "h" + std::to_string(i);
    hashes[k] = (i << 40) | 7;
    fx.add(t, hashes[k], k, int64_t(i));
    ref[k] = {1, int64_t(i)};
    order.push_back(k);
  }
  check_table(fx, t, ref, order, [](const std::string& k) { return hashes.at(k); });
}

TEST(KeyTable, ClearThenReuse) {
  TableFixture fx;
  KeyTable t(fx.layout().slots(), 2);
  for (int i = 0; i < 500; ++i) fx.add(t, hash_of(key_for(i)), key_for(i), 100);
  size_t memory = t.memory_bytes();
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.memory_bytes(), memory) << "clear keeps the memory";
  for (int i = 0; i < 500; ++i) EXPECT_EQ(t.find(hash_of(key_for(i)), key_for(i)), nullptr) << i;
  // Reinserted keys start from fresh accumulators.
  std::map<std::string, Ref> ref;
  std::vector<std::string> order;
  for (int i = 499; i >= 250; --i) {
    std::string k = key_for(i);
    fx.add(t, hash_of(k), k, i);
    ref[k] = {1, i};
    order.push_back(k);
  }
  check_table(fx, t, ref, order, hash_of);
  EXPECT_EQ(t.memory_bytes(), memory) << "no growth needed for fewer keys than before";
}

// ---------------------------------------------------------------------------
// WindowSet

int64_t ref_window_start(int64_t t, int64_t size) {
  __int128 q = __int128(t) / size;
  if (__int128(t) % size != 0 && t < 0) q -= 1;
  return int64_t(q * size);
}
bool ref_window_fits(int64_t t, int64_t size) {
  __int128 q = __int128(t) / size;
  if (__int128(t) % size != 0 && t < 0) q -= 1;
  __int128 start = q * size;
  return start >= kMin && start + size <= kMax;
}

TEST(WindowSet, WindowStartFloorsIncludingNegativeTimes) {
  TumblingWindows w(10);
  EXPECT_EQ(w.size_ns(), 10);
  EXPECT_EQ(w.window_start(0), 0);
  EXPECT_EQ(w.window_start(9), 0);
  EXPECT_EQ(w.window_start(10), 10);
  EXPECT_EQ(w.window_start(19), 10);
  EXPECT_EQ(w.window_start(-1), -10);
  EXPECT_EQ(w.window_start(-10), -10);
  EXPECT_EQ(w.window_start(-11), -20);
  EXPECT_EQ(w.window_start(-20), -20);

  const int64_t five_min = 300'000'000'000;
  TumblingWindows m(five_min);
  EXPECT_EQ(m.window_start(1'704'067'200'000'000'000), 1'704'067'200'000'000'000);
  EXPECT_EQ(m.window_start(1'704'067'499'999'999'999), 1'704'067'200'000'000'000);
  EXPECT_EQ(m.window_start(1'704'067'500'000'000'000), 1'704'067'500'000'000'000);
  EXPECT_EQ(m.window_start(-1), -five_min);

  std::mt19937_64 rng(8);
  for (int64_t size : {int64_t(1), int64_t(7), int64_t(1'000'000'000), five_min, int64_t(86'400'000'000'000)}) {
    TumblingWindows ws(size);
    for (int i = 0; i < 20000; ++i) {
      int64_t t = int64_t(rng()) >> (rng() % 64);
      if (!ref_window_fits(t, size)) continue;
      ASSERT_EQ(ws.window_start(t), ref_window_start(t, size)) << t << " size " << size;
    }
  }
}

TEST(WindowSet, WindowFitsNearInt64Limits) {
  TumblingWindows w(10);
  // INT64_MAX = ...807: its window would be [...800, ...810).
  EXPECT_FALSE(w.window_fits(kMax));
  EXPECT_FALSE(w.window_fits(9'223'372'036'854'775'800));
  EXPECT_TRUE(w.window_fits(9'223'372'036'854'775'799));
  EXPECT_EQ(w.window_start(9'223'372'036'854'775'799), 9'223'372'036'854'775'790);
  // INT64_MIN = -...808: its window would start at -...810.
  EXPECT_FALSE(w.window_fits(kMin));
  EXPECT_FALSE(w.window_fits(-9'223'372'036'854'775'801));
  EXPECT_TRUE(w.window_fits(-9'223'372'036'854'775'800));
  EXPECT_EQ(w.window_start(-9'223'372'036'854'775'800), -9'223'372'036'854'775'800);
  EXPECT_TRUE(w.window_fits(0));

  TumblingWindows one(1);
  EXPECT_TRUE(one.window_fits(kMin));
  EXPECT_FALSE(one.window_fits(kMax));
  EXPECT_TRUE(one.window_fits(kMax - 1));

  TumblingWindows huge(kMax);
  EXPECT_TRUE(huge.window_fits(0));
  EXPECT_TRUE(huge.window_fits(kMax - 1));
  EXPECT_FALSE(huge.window_fits(kMax));

  std::mt19937_64 rng(9);
  for (int64_t size : {int64_t(3), int64_t(1'000'000'000), int64_t(300'000'000'000), kMax / 3, kMax}) {
    TumblingWindows ws(size);
    // Times within two windows of either end of the range.
    const uint64_t span = uint64_t(size) <= (uint64_t(1) << 62) ? uint64_t(size) * 2 + 2 : uint64_t(1) << 63;
    for (int i = 0; i < 20000; ++i) {
      int64_t t = i % 2 ? kMax - int64_t(rng() % span) : kMin + int64_t(rng() % span);
      ASSERT_EQ(ws.window_fits(t), ref_window_fits(t, size)) << t << " size " << size;
      if (ws.window_fits(t)) {
        ASSERT_EQ(ws.window_start(t), ref_window_start(t, size));
      }
    }
  }
}

// window_of() remembers the last window: over runs of nearby times, jumps and
// times near both ends of the range, it agrees with the reference each time.
TEST(WindowSet, WindowOfAgreesWithTheReference) {
  std::mt19937_64 rng(11);
  for (int64_t size : {int64_t(1), int64_t(3), int64_t(1'000'000'000), kMax / 3, kMax}) {
    TumblingWindows ws(size);
    int64_t t = 0;
    for (int i = 0; i < 50000; ++i) {
      switch (rng() % 8) {  // mostly nearby: runs within one window
        case 0: t = int64_t(rng()); break;                                  // anywhere
        case 1: t = kMax - int64_t(rng() % 64); break;                      // near the top
        case 2: t = kMin + int64_t(rng() % 64); break;                      // near the bottom
        default: if (t < kMax - 8 && t > kMin + 8) t += int64_t(rng() % 9) - 4;  // nearby
      }
      int64_t start = 12345;
      bool fits = ws.window_of(t, start);
      ASSERT_EQ(fits, ref_window_fits(t, size)) << t << " size " << size;
      if (fits) {
        ASSERT_EQ(start, ref_window_start(t, size)) << t << " size " << size;
      }
    }
  }
}

Event event(uint64_t hash, std::string_view key, int64_t v) {
  Event e;
  e.key_hash = hash;
  e.key = key;
  e.values[0].i = v;
  return e;
}

TEST(WindowSet, WindowsOpenedOutOfOrderFireInAscendingOrder) {
  AggLayout layout(count_and_sum(), schema());
  WindowSet w(layout);
  EXPECT_TRUE(w.empty());
  std::map<std::pair<int64_t, std::string>, Ref> ref;
  std::mt19937_64 rng(10);
  std::vector<int64_t> starts = {30, -20, 10, 0, 40, -10, 20};
  std::vector<std::string> keys = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 3000; ++i) {
    int64_t start = starts[rng() % starts.size()];
    const std::string& k = keys[rng() % keys.size()];
    int64_t v = int64_t(rng() % 100);
    w.apply(start, event(hash_of(k), k, v));
    Ref& r = ref[{start, k}];
    r.count += 1;
    r.sum += v;
  }
  EXPECT_EQ(w.open_windows(), starts.size());
  EXPECT_EQ(w.entries(), ref.size());
  std::vector<int64_t> popped;
  while (!w.empty()) {
    int64_t start = w.oldest_start();
    const KeyTable& t = w.oldest();
    size_t n = 0;
    for (const auto& [sk, r] : ref) {
      if (sk.first != start) continue;
      ++n;
      const Value* acc = t.find(hash_of(sk.second), sk.second);
      ASSERT_NE(acc, nullptr) << start << " " << sk.second;
      EXPECT_EQ(layout.result(acc, 0).v.i, r.count);
      EXPECT_EQ(layout.result(acc, 1).v.i, r.sum);
    }
    EXPECT_EQ(t.size(), n) << start;
    popped.push_back(start);
    w.pop_oldest();
  }
  EXPECT_EQ(popped, (std::vector<int64_t>{-20, -10, 0, 10, 20, 30, 40}));
  EXPECT_EQ(w.entries(), 0u);
}

// apply_pipelined() defers and reorders nothing that shows: a random mix of
// pipelined and direct applies (the latter as for events from other shards),
// flushes and pops, over keys of every length and windows that open and
// grow, leaves every table exactly as direct applies do, entry order included.
TEST(WindowSet, PipelinedApplyMatchesDirectApply) {
  AggLayout layout(count_and_sum(), schema());
  WindowSet direct(layout), piped(layout);
  std::mt19937_64 rng(21);
  std::vector<std::string> keys;
  for (uint64_t i = 0; i < 3000; ++i) keys.push_back(key_for(i));
  int64_t low = 0;  // windows below were popped
  for (int step = 0; step < 60000; ++step) {
    uint64_t r = rng();
    if (r % 997 == 0) {
      // Fire the oldest window: both must have the same entries in the same order.
      piped.flush();
      ASSERT_EQ(piped.staged(), 0u);
      ASSERT_EQ(direct.open_windows(), piped.open_windows());
      if (direct.empty()) continue;
      ASSERT_EQ(direct.oldest_start(), piped.oldest_start());
      const KeyTable& a = direct.oldest();
      const KeyTable& b = piped.oldest();
      ASSERT_EQ(a.size(), b.size());
      for (size_t e = 0; e < a.size(); ++e) {
        ASSERT_EQ(a.key(e), b.key(e)) << "entry " << e;
        ASSERT_EQ(layout.result(a.acc(e), 0).v.i, layout.result(b.acc(e), 0).v.i);
        ASSERT_EQ(layout.result(a.acc(e), 1).v.i, layout.result(b.acc(e), 1).v.i);
      }
      low = direct.oldest_start() + 10;
      direct.pop_oldest();
      piped.pop_oldest();
      continue;
    }
    int64_t start = low + int64_t(rng() % 4) * 10;
    const std::string& k = keys[rng() % (step < 20000 ? 50 : keys.size())];  // then the tables grow
    Event e = event(hash_of(k), k, int64_t(rng() % 1000) - 500);
    direct.apply(start, e);
    if (r % 7 == 0) {
      piped.apply(start, e);  // applies what is staged first
    } else {
      piped.apply_pipelined(start, e);
    }
    if (r % 113 == 0) piped.flush();
  }
  piped.flush();
  ASSERT_EQ(direct.entries(), piped.entries());
}

TEST(WindowSet, InterleavedApplyAndPop) {
  // A random mix of new windows (older and newer than the open ones), events
  // into open windows and pops, against a std::map of window -> key -> sums.
  AggLayout layout(count_and_sum(), schema());
  WindowSet w(layout);
  std::map<int64_t, std::map<std::string, Ref>> ref;
  std::mt19937_64 rng(12);
  int64_t fired_below = -1000;  // windows at or below this were popped
  for (int step = 0; step < 20000; ++step) {
    if (rng() % 50 == 0 && !ref.empty()) {
      ASSERT_FALSE(w.empty());
      ASSERT_EQ(w.oldest_start(), ref.begin()->first);
      const KeyTable& t = w.oldest();
      ASSERT_EQ(t.size(), ref.begin()->second.size());
      for (const auto& [k, r] : ref.begin()->second) {
        const Value* acc = t.find(hash_of(k), k);
        ASSERT_NE(acc, nullptr);
        ASSERT_EQ(layout.result(acc, 0).v.i, r.count);
        ASSERT_EQ(layout.result(acc, 1).v.i, r.sum);
      }
      fired_below = ref.begin()->first;
      ref.erase(ref.begin());
      w.pop_oldest();
      continue;
    }
    int64_t start = fired_below + 5 * int64_t(1 + rng() % 8);
    std::string k = "k" + std::to_string(rng() % 30);
    int64_t v = int64_t(rng() % 7);
    w.apply(start, event(hash_of(k), k, v));
    Ref& r = ref[start][k];
    r.count += 1;
    r.sum += v;
    ASSERT_EQ(w.open_windows(), ref.size());
  }
}

TEST(WindowSet, PoppedTablesAreReused) {
  AggLayout layout(count_and_sum(), schema());
  WindowSet w(layout);
  for (int i = 0; i < 1000; ++i) {
    std::string k = key_for(uint64_t(i));
    w.apply(0, event(hash_of(k), k, 1));
  }
  const KeyTable* first = &w.oldest();
  size_t memory = first->memory_bytes();
  w.pop_oldest();
  EXPECT_TRUE(w.empty());
  w.apply(10, event(hash_of("x"), "x", 3));
  ASSERT_EQ(w.open_windows(), 1u);
  EXPECT_EQ(&w.oldest(), first) << "a new window takes the popped window's table";
  EXPECT_EQ(w.oldest().size(), 1u) << "and starts empty";
  EXPECT_EQ(w.oldest().memory_bytes(), memory) << "keeping its memory";
  const Value* acc = w.oldest().find(hash_of("x"), "x");
  ASSERT_NE(acc, nullptr);
  EXPECT_EQ(layout.result(acc, 0).v.i, 1);
  EXPECT_EQ(layout.result(acc, 1).v.i, 3);
  EXPECT_EQ(w.oldest().find(hash_of(key_for(5)), key_for(5)), nullptr);

  // Two windows open, both popped, two opened again: the same two tables.
  w.apply(20, event(1, "y", 1));
  std::set<const KeyTable*> before;
  before.insert(&w.oldest());
  w.pop_oldest();
  before.insert(&w.oldest());
  w.pop_oldest();
  w.apply(40, event(1, "y", 1));
  w.apply(30, event(1, "y", 1));
  std::set<const KeyTable*> after;
  after.insert(&w.oldest());
  EXPECT_EQ(w.oldest_start(), 30);
  w.pop_oldest();
  after.insert(&w.oldest());
  EXPECT_EQ(w.oldest_start(), 40);
  EXPECT_EQ(before, after);
}

}  // namespace
}  // namespace sluice
