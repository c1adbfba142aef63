// The per-shard window state: for every open event-time window, a table from
// key to that key's accumulators.
//
// Owned by one shard; no locking. Lookup is by (window_start, key): first the
// window (a short sorted list of open windows, with the last hit cached), then
// the key in that window's KeyTable, an open-addressing table with linear
// probing over 32-bit entry indices. Entries are stored densely in insertion
// order, so firing a window is a linear scan.
//
// Memory: allocation happens only when a key is new to a window's table and
// the table (or its key arena) must grow, and when a window opens and no
// recycled table is free. A fired window's table is cleared and kept for the
// next window, so a steady stream over a stable key set allocates nothing.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "operators/aggregate.h"
#include "operators/event.h"

namespace sluice {

class KeyTable {
 public:
  // acc_slots: accumulator slots per entry (AggLayout::slots()).
  KeyTable(uint32_t acc_slots, uint32_t capacity_hint = 64);

  // The accumulators of `key`, created and initialised with layout.init() if new.
  Value* upsert(uint64_t hash, std::string_view key, const AggLayout& layout);
  // The accumulators of `key`, or nullptr.
  const Value* find(uint64_t hash, std::string_view key) const;

  size_t size() const { return entries_.size(); }
  std::string_view key(size_t entry) const {
    return {keys_.data() + entries_[entry].key_off, entries_[entry].key_len};
  }
  const Value* acc(size_t entry) const { return accs_.data() + entry * acc_slots_; }
  // Forgets every entry, keeps the memory.
  void clear();
  // Bytes held (capacity), for metrics and the bytes-per-entry benchmark.
  size_t memory_bytes() const;

 private:
  struct Entry {
    uint64_t hash;
    uint32_t key_off;
    uint32_t key_len;
  };
  void grow();
  size_t probe(uint64_t hash, std::string_view key, bool& found) const;

  uint32_t acc_slots_;
  std::vector<uint32_t> index_;  // entry + 1; 0 = empty. Size is a power of two.
  size_t mask_;
  std::vector<Entry> entries_;
  std::vector<Value> accs_;
  std::vector<char> keys_;
};

class WindowSet {
 public:
  WindowSet(const AggLayout& layout, int64_t size_ns);

  int64_t size_ns() const { return size_ns_; }
  // Start of the window holding event time t: floor(t / size) * size.
  // REQUIRES: window_fits(t).
  int64_t window_start(int64_t t) const;
  // Whether [start, start + size) of t's window is representable in int64 ns.
  bool window_fits(int64_t t) const;

  // Folds one event into its window.
  void apply(int64_t window_start, const Event& e);

  bool empty() const { return open_.empty(); }
  int64_t oldest_start() const { return open_.front().start; }
  size_t open_windows() const { return open_.size(); }
  size_t entries() const;

  // The oldest open window's table, to be read and then released with pop_oldest().
  const KeyTable& oldest() const { return *open_.front().table; }
  void pop_oldest();

  const AggLayout& layout() const { return layout_; }

 private:
  struct Open {
    int64_t start;
    KeyTable* table;
  };
  KeyTable* table_for(int64_t start);

  const AggLayout& layout_;
  int64_t size_ns_;
  std::vector<Open> open_;  // ascending start
  size_t last_hit_ = 0;
  std::vector<std::unique_ptr<KeyTable>> tables_;  // every table ever made
  std::vector<KeyTable*> free_;                   // cleared, ready for reuse
};

}  // namespace sluice
