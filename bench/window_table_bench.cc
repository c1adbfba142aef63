// Window table: the per-event fold of an event into its (window, key) entry.
//
// Workload: sum(quantity) int64, sum(revenue) float64 and count over events
// whose int64 key (encoded 'i' + 8 bytes, operators/event.h) is drawn
// uniformly from 1k, 10k or 1M distinct keys. Every event's key is hashed
// with XXH3_64bits inside the timed loop, by the Sluice variants explicitly
// (as the decoder does) and by the baseline through its hasher, so all of
// them do the same work per event.
//
//   BM_WindowSetApply       WindowSet::apply: window lookup + KeyTable::upsert + AggLayout::update
//   BM_KeyTableUpsert       KeyTable::upsert + AggLayout::update (no window lookup)
//   BM_UnorderedMapBaseline std::unordered_map<std::string, std::vector<Value>>, same aggregation
//
// Those three run in steady state: every key is already in the table, as
// for all but the first event of a key in a window. The *Fill variants
// measure a window opening over the whole key set instead (each key
// inserted once), the WindowSet on a recycled table, the baseline after
// clear(). The *BytesPerEntry variants build a table of N keys and report
// its memory per (window, key) entry as counters.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_data.h"
#include "operators/aggregate.h"
#include "operators/window_table.h"

namespace sluice::bench {
namespace {

// Events per benchmark iteration: enough that the loop overhead is noise.
constexpr size_t kEventsPerIteration = 1024;
// Length of the pre-drawn key sequence (power of two: wrap with a mask). At
// 4 MiB it is larger than L2, so the sequence itself is not what is cached.
constexpr size_t kSequenceLength = size_t(1) << 20;
constexpr int64_t kWindowNs = 5 * 60 * kNsPerS;
constexpr int64_t kWindowStart = kStartNs;

const AggLayout& layout() {
  static const SchemaConfig schema = sales_schema();
  static const AggLayout l(sales_aggregates(), schema);
  return l;
}

// N distinct encoded keys and a random sequence of them.
struct Keys {
  std::vector<char> bytes;           // n * kIntKeyBytes
  std::vector<uint32_t> sequence;    // kSequenceLength key indices, uniform
  std::vector<uint32_t> permutation; // every key once, shuffled (for fills)
  size_t n = 0;
  std::string_view key(size_t i) const { return {bytes.data() + i * kIntKeyBytes, kIntKeyBytes}; }
};

const Keys& keys(size_t n) {
  static std::map<size_t, std::unique_ptr<Keys>> cache;
  auto& k = cache[n];
  if (!k) {
    k = std::make_unique<Keys>();
    k->n = n;
    k->bytes.resize(n * kIntKeyBytes);
    uint64_t rng = 7;
    // Spread-out ids, like product ids that are not 0..n-1.
    for (size_t i = 0; i < n; ++i) encode_int_key(int64_t(i) * 7919 + 100'000, &k->bytes[i * kIntKeyBytes]);
    k->sequence.resize(kSequenceLength);
    for (auto& s : k->sequence) s = uint32_t(splitmix64(rng) % n);
    k->permutation.resize(n);
    for (size_t i = 0; i < n; ++i) k->permutation[i] = uint32_t(i);
    for (size_t i = n - 1; i > 0; --i) std::swap(k->permutation[i], k->permutation[splitmix64(rng) % (i + 1)]);
  }
  return *k;
}

// Per-event values cycle through a small table: what they are does not matter.
struct Values {
  int64_t quantity[256];
  double revenue[256];
  Values() {
    uint64_t rng = 11;
    for (int i = 0; i < 256; ++i) {
      quantity[i] = int64_t(1 + splitmix64(rng) % 10);
      revenue[i] = double(quantity[i]) * 19.99;
    }
  }
};
const Values& values() {
  static const Values v;
  return v;
}

inline void fill_event(Event& e, std::string_view key, size_t i) {
  e.key = key;
  e.key_hash = hash_key(key);
  e.values[kQuantityField].i = values().quantity[i & 255];
  e.values[kRevenueField].f = values().revenue[i & 255];
}

// Heap bytes in use (small chunks + mmapped chunks), for the baseline's memory.
size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

// The baseline's hasher: the same XXH3 over the same bytes. Transparent, so
// lookups take a string_view without building a std::string.
struct Xxh3Hash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return hash_key(s); }
};
using BaselineMap = std::unordered_map<std::string, std::vector<Value>, Xxh3Hash, std::equal_to<>>;

inline Value* baseline_upsert(BaselineMap& map, std::string_view key) {
  auto it = map.find(key);
  if (it == map.end()) {
    it = map.emplace(std::string(key), std::vector<Value>(layout().slots())).first;
    layout().init(it->second.data());
  }
  return it->second.data();
}

void set_items(benchmark::State& state, size_t per_iteration) {
  state.SetItemsProcessed(int64_t(state.iterations()) * int64_t(per_iteration));
}

// --- steady state ----------------------------------------------------------

// Pipelined: the same events through apply_pipelined() (prefetches a few
// events ahead, as the engine calls it), flushed once per iteration.
template <bool Pipelined>
void BM_WindowSetApply(benchmark::State& state) {
  const Keys& k = keys(size_t(state.range(0)));
  WindowSet ws(layout());
  Event e{};
  for (size_t i = 0; i < k.n; ++i) {
    fill_event(e, k.key(i), i);
    ws.apply(kWindowStart, e);
  }
  size_t pos = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < kEventsPerIteration; ++j, ++pos) {
      fill_event(e, k.key(k.sequence[pos & (kSequenceLength - 1)]), pos);
      if constexpr (Pipelined) {
        ws.apply_pipelined(kWindowStart, e);
      } else {
        ws.apply(kWindowStart, e);
      }
    }
    ws.flush();
  }
  benchmark::DoNotOptimize(ws.entries());
  set_items(state, kEventsPerIteration);
}

void BM_KeyTableUpsert(benchmark::State& state) {
  const Keys& k = keys(size_t(state.range(0)));
  const AggLayout& l = layout();
  KeyTable t(l.slots());
  Event e{};
  for (size_t i = 0; i < k.n; ++i) {
    fill_event(e, k.key(i), i);
    l.update(t.upsert(e.key_hash, e.key, l), e.values);
  }
  size_t pos = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < kEventsPerIteration; ++j, ++pos) {
      fill_event(e, k.key(k.sequence[pos & (kSequenceLength - 1)]), pos);
      l.update(t.upsert(e.key_hash, e.key, l), e.values);
    }
  }
  benchmark::DoNotOptimize(t.size());
  set_items(state, kEventsPerIteration);
}

void BM_UnorderedMapBaseline(benchmark::State& state) {
  const Keys& k = keys(size_t(state.range(0)));
  const AggLayout& l = layout();
  BaselineMap map;
  Value vals[kValueFieldsMax]{};
  for (size_t i = 0; i < k.n; ++i) {
    vals[kQuantityField].i = values().quantity[i & 255];
    vals[kRevenueField].f = values().revenue[i & 255];
    l.update(baseline_upsert(map, k.key(i)), vals);
  }
  size_t pos = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < kEventsPerIteration; ++j, ++pos) {
      vals[kQuantityField].i = values().quantity[pos & 255];
      vals[kRevenueField].f = values().revenue[pos & 255];
      l.update(baseline_upsert(map, k.key(k.sequence[pos & (kSequenceLength - 1)])), vals);
    }
  }
  benchmark::DoNotOptimize(map.size());
  set_items(state, kEventsPerIteration);
}

// --- a window opening over the whole key set -------------------------------

void BM_WindowSetFill(benchmark::State& state) {
  const Keys& k = keys(size_t(state.range(0)));
  WindowSet ws(layout());
  Event e{};
  auto fill = [&](int64_t start) {
    for (size_t i = 0; i < k.n; ++i) {
      fill_event(e, k.key(k.permutation[i]), i);
      ws.apply(start, e);
    }
  };
  fill(kWindowStart);  // the first window grows the table; later ones recycle it
  ws.pop_oldest();
  int64_t start = kWindowStart;
  for (auto _ : state) {
    start += kWindowNs;
    fill(start);
    ws.pop_oldest();  // fire: clear the table and keep it for the next window
  }
  set_items(state, k.n);
}

void BM_UnorderedMapBaselineFill(benchmark::State& state) {
  const Keys& k = keys(size_t(state.range(0)));
  const AggLayout& l = layout();
  BaselineMap map;
  Value vals[kValueFieldsMax]{};
  auto fill = [&] {
    for (size_t i = 0; i < k.n; ++i) {
      vals[kQuantityField].i = values().quantity[i & 255];
      vals[kRevenueField].f = values().revenue[i & 255];
      l.update(baseline_upsert(map, k.key(k.permutation[i])), vals);
    }
  };
  fill();
  map.clear();  // keeps the bucket array, frees the nodes
  for (auto _ : state) {
    fill();
    map.clear();
  }
  set_items(state, k.n);
}

// --- memory per (window, key) entry -----------------------------------------

// Each iteration builds a fresh table of N keys (timed: inserts with growth);
// counters report its size per entry. bytes_per_entry is what the table
// holds by capacity (KeyTable::memory_bytes(); for the map, malloc'd bytes),
// heap_bytes_per_entry what malloc reports in use, including its overhead.
void BM_KeyTableBytesPerEntry(benchmark::State& state) {
  const Keys& k = keys(size_t(state.range(0)));
  const AggLayout& l = layout();
  double bytes = 0, heap = 0;
  for (auto _ : state) {
    size_t before = heap_in_use();
    auto t = std::make_unique<KeyTable>(l.slots());
    for (size_t i = 0; i < k.n; ++i) {
      std::string_view key = k.key(k.permutation[i]);
      t->upsert(hash_key(key), key, l);
    }
    state.PauseTiming();
    bytes = double(t->memory_bytes()) / double(t->size());
    heap = double(heap_in_use() - before) / double(t->size());
    t.reset();
    state.ResumeTiming();
  }
  state.counters["bytes_per_entry"] = bytes;
  state.counters["heap_bytes_per_entry"] = heap;
  set_items(state, k.n);
}

void BM_UnorderedMapBytesPerEntry(benchmark::State& state) {
  const Keys& k = keys(size_t(state.range(0)));
  double heap = 0;
  for (auto _ : state) {
    size_t before = heap_in_use();
    auto map = std::make_unique<BaselineMap>();
    for (size_t i = 0; i < k.n; ++i) baseline_upsert(*map, k.key(k.permutation[i]));
    state.PauseTiming();
    heap = double(heap_in_use() - before) / double(map->size());
    map.reset();
    state.ResumeTiming();
  }
  state.counters["heap_bytes_per_entry"] = heap;
  set_items(state, k.n);
}

void key_counts(benchmark::internal::Benchmark* b) { b->Arg(1'000)->Arg(10'000)->Arg(1'000'000); }

BENCHMARK(BM_WindowSetApply<false>)->Name("BM_WindowSetApply")->Apply(key_counts);
BENCHMARK(BM_WindowSetApply<true>)->Name("BM_WindowSetApplyPipelined")->Apply(key_counts);
BENCHMARK(BM_KeyTableUpsert)->Apply(key_counts);
BENCHMARK(BM_UnorderedMapBaseline)->Apply(key_counts);
BENCHMARK(BM_WindowSetFill)->Apply(key_counts);
BENCHMARK(BM_UnorderedMapBaselineFill)->Apply(key_counts);
BENCHMARK(BM_KeyTableBytesPerEntry)->Apply(key_counts);
BENCHMARK(BM_UnorderedMapBytesPerEntry)->Apply(key_counts);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
