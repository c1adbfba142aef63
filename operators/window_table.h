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

#include <cstddef>
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

  size_t size() const { return size_; }
  std::string_view key(size_t entry) const {
    const Entry& e = *header(entry);
    return {e.key_len <= kInlineKeyBytes ? e.inline_key : keys_.data() + e.key_off, e.key_len};
  }
  const Value* acc(size_t entry) const { return accs(entry); }
  // Forgets every entry, keeps the memory.
  void clear();
  // Bytes held (capacity), for metrics and the bytes-per-entry benchmark.
  size_t memory_bytes() const;

 private:
  // Keys up to this many bytes (every integer key, short strings) live in
  // the entry itself, next to its hash and accumulators, so a lookup that
  // hits touches the index and one entry: no separate key or accumulator
  // arrays to miss in cache.
  static constexpr size_t kInlineKeyBytes = 16;
  struct Entry {
    uint64_t hash;
    uint32_t key_len;
    uint32_t key_off;                  // into keys_, for longer keys
    char inline_key[kInlineKeyBytes];  // for keys up to kInlineKeyBytes
    // followed by acc_slots_ Values
  };
  static_assert(sizeof(Entry) % sizeof(Value) == 0);

  // block_ is raw storage from the allocator (aligned for any scalar), in
  // which Entry and Value are implicit-lifetime types (C++20 [intro.object]).
  Entry* header(size_t entry) { return reinterpret_cast<Entry*>(block_.data() + entry * stride_); }
  const Entry* header(size_t entry) const {
    return reinterpret_cast<const Entry*>(block_.data() + entry * stride_);
  }
  Value* accs(size_t entry) { return reinterpret_cast<Value*>(header(entry) + 1); }
  const Value* accs(size_t entry) const { return reinterpret_cast<const Value*>(header(entry) + 1); }
  void grow();
  size_t probe(uint64_t hash, std::string_view key, bool& found) const;

  uint32_t acc_slots_;
  size_t stride_;  // bytes per entry: the header, then the accumulators
  std::vector<uint32_t> index_;  // entry + 1; 0 = empty. Size is a power of two.
  size_t mask_;
  std::vector<std::byte> block_;  // entries, stride_ bytes each
  size_t size_ = 0;
  std::vector<char> keys_;    // keys longer than kInlineKeyBytes
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

  // window_fits(t) and, if so, window_start(t), with one division at most:
  // the last window seen is remembered, and most events fall in it.
  bool window_of(int64_t t, int64_t& start) {
    if (has_last_ && t >= last_start_ && uint64_t(t) - uint64_t(last_start_) < uint64_t(size_ns_)) {
      start = last_start_;
      return true;
    }
    if (!window_fits(t)) return false;
    start = last_start_ = window_start(t);
    has_last_ = true;
    return true;
  }

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
  bool has_last_ = false;  // last_start_ is the start of a window that fits
  int64_t last_start_ = 0;
  std::vector<Open> open_;  // ascending start
  size_t last_hit_ = 0;
  std::vector<std::unique_ptr<KeyTable>> tables_;  // every table ever made
  std::vector<KeyTable*> free_;                   // cleared, ready for reuse
};

}  // namespace sluice
