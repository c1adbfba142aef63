// The per-shard window state: for every open event-time window, a table from
// key to that key's accumulators.
//
// Owned by one shard; no locking. Lookup is by (window_start, key): first the
// window (a short sorted list of open windows, with the last hit cached), then
// the key in that window's KeyTable, an open-addressing index with linear
// probing whose slots hold a hash tag and an entry number. Entries are stored
// densely in insertion order, so firing a window is a linear scan.
//
// Memory: allocation happens only when a key is new to a window's table and
// the table (or its key arena) must grow, and when a window opens and no
// recycled table is free. A fired window's table is cleared and kept for the
// next window, so a steady stream over a stable key set allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
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
  Value* mutable_acc(size_t entry) { return accs(entry); }
  // Forgets every entry, keeps the memory.
  void clear();
  // Bytes held (capacity), for metrics and the bytes-per-entry benchmark.
  size_t memory_bytes() const;

  // Cache hints for a lookup of `hash` that comes soon (WindowSet's
  // pipelined apply): the index slot it starts at; then, once that slot is in
  // cache, the entry whose tag matches. Nothing read here affects results.
  void prefetch_index(uint64_t hash) const { __builtin_prefetch(&index_[home(uint32_t(hash >> 32))]); }
  void prefetch_entry(uint64_t hash) const {
    const uint32_t tag = uint32_t(hash >> 32);
    size_t i = home(tag);
    for (int n = 0; n < 4; ++n, i = (i + 1) & mask_) {
      uint64_t slot = index_[i];
      if (slot == 0) return;
      if (uint32_t(slot >> 32) == tag) {
        __builtin_prefetch(header(uint32_t(slot) - 1));
        return;
      }
    }
  }

 private:
  // Keys up to this many bytes (every integer key, short strings) live in
  // the entry itself, next to its accumulators, so a lookup that hits
  // touches one index slot and one entry. With the sales job's five
  // accumulator slots an entry is 64 bytes: one cache line, as the entry
  // block is line-aligned.
  static constexpr size_t kInlineKeyBytes = 16;
  struct Entry {
    uint32_t key_len;
    uint32_t key_off;                  // into keys_, for longer keys
    char inline_key[kInlineKeyBytes];  // for keys up to kInlineKeyBytes
    // followed by acc_slots_ Values
  };
  static_assert(sizeof(Entry) % sizeof(Value) == 0);
  static constexpr size_t kBlockAlign = 64;

  // The index: open addressing with linear probing. A slot holds the top 32
  // bits of the key's hash (its tag) and entry + 1 (0 = empty). The home slot
  // is the hash's top bits too, so growing rehashes from the tags alone, and
  // a probe reads an entry only when the tags match.
  static uint64_t make_slot(uint32_t tag, size_t entry) { return (uint64_t(tag) << 32) | uint64_t(entry + 1); }
  size_t home(uint32_t tag) const { return size_t(tag) >> tag_shift_; }

  // block_ is raw storage from the allocator, aligned to kBlockAlign, in which
  // Entry and Value are implicit-lifetime types (C++20 [intro.object]).
  Entry* header(size_t entry) { return reinterpret_cast<Entry*>(block_.get() + entry * stride_); }
  const Entry* header(size_t entry) const {
    return reinterpret_cast<const Entry*>(block_.get() + entry * stride_);
  }
  Value* accs(size_t entry) { return reinterpret_cast<Value*>(header(entry) + 1); }
  const Value* accs(size_t entry) const { return reinterpret_cast<const Value*>(header(entry) + 1); }
  void grow_index();
  void grow_block();
  size_t probe(uint32_t tag, std::string_view key, bool& found) const;

  struct AlignedFree {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t(kBlockAlign)); }
  };

  uint32_t acc_slots_;
  size_t stride_;  // bytes per entry: the header, then the accumulators
  std::vector<uint64_t> index_;  // size is a power of two, at least 16
  size_t mask_;
  unsigned tag_shift_;  // 32 - log2(index_.size())
  std::unique_ptr<std::byte[], AlignedFree> block_;  // entries, stride_ bytes each
  size_t block_capacity_ = 0;  // entries
  size_t size_ = 0;
  std::vector<char> keys_;  // keys longer than kInlineKeyBytes
};

class WindowSet {
 public:
  // Which windows an event belongs to is not its business (operators/
  // window_kind.h): it keeps the tables of the windows it is given.
  explicit WindowSet(const AggLayout& layout);
  ~WindowSet();
  WindowSet(const WindowSet&) = delete;
  WindowSet& operator=(const WindowSet&) = delete;

  // Folds one event into its window (after the staged ones, if any).
  void apply(int64_t window_start, const Event& e);

  // The same as apply(), software-pipelined to hide cache misses in tables
  // larger than the cache: the event is staged and its index slot
  // prefetched, the event staged just before it has its entry prefetched,
  // and once kStages events are staged the oldest is applied. Events are
  // applied in the order given. flush() applies what is staged; call it
  // before reading tables (pop_oldest() and entries() check).
  void apply_pipelined(int64_t window_start, const Event& e);
  void flush() {
    while (staged_ > 0) apply_oldest_staged();
  }
  size_t staged() const { return staged_; }

  bool empty() const { return open_.empty(); }
  int64_t oldest_start() const { return open_.front().start; }
  size_t open_windows() const { return open_.size(); }
  size_t entries() const;
  // Bytes held by every table (open or kept for reuse), and the entries of
  // the open ones not counting staged events: for an out-of-memory report,
  // valid at any moment.
  size_t memory_bytes() const;
  size_t entries_held() const;

  // The oldest open window's table, to be read and then released with pop_oldest().
  const KeyTable& oldest() const { return *open_.front().table; }
  void pop_oldest();

  const AggLayout& layout() const { return layout_; }

  // State for checkpoints, reachable without knowing the tables' layout.
  // Every entry of every open window, in window order then insertion order.
  // REQUIRES: nothing staged (flush()).
  // (The entries keep only a tag of the key's hash: whoever restores them
  // hashes the key again, with hash_key() as the decoder does.)
  template <typename F>  // f(int64_t window_start, std::string_view key, const Value* acc)
  void for_each_entry(F&& f) const;
  // An entry to restore into: created (initialised) in window `start` if
  // new; the caller fills its accumulators (AggLayout::deserialize).
  Value* restore_entry(int64_t start, uint64_t hash, std::string_view key);

 private:
  struct Open {
    int64_t start;
    KeyTable* table;
  };
  KeyTable* table_for(int64_t start);
  // Gives back the out-of-line aggregate state of every entry of t.
  void release_state(KeyTable& t);
  void apply_oldest_staged();

  // An event between apply_pipelined() and its application. Key and values
  // are copied: the event's own memory is reused by the next decode.
  struct Staged {
    KeyTable* table;
    uint64_t hash;
    // 16-bit lengths leave room for the absent bits in the same 8 bytes, so
    // a stage stays as large as before they existed (its size is the
    // multiplier of every stage address).
    uint16_t key_len;
    uint16_t text_len;
    uint32_t absent;  // Event::absent
    Value values[kValueFieldsMax];
    char key[kKeyBytesMax];
    char text[kEventTextBytesMax];  // carried strings, when an aggregate reads any
  };
  static_assert(kKeyBytesMax <= UINT16_MAX && kEventTextBytesMax <= UINT16_MAX);
  static constexpr size_t kStages = 4;
  Staged stage_[kStages];
  size_t stage_head_ = 0;
  size_t staged_ = 0;
  size_t value_fields_ = 0;  // values an event carries that the layout reads

  const AggLayout& layout_;
  std::vector<Open> open_;  // ascending start
  size_t last_hit_ = 0;
  std::vector<std::unique_ptr<KeyTable>> tables_;  // every table ever made
  std::vector<KeyTable*> free_;                   // cleared, ready for reuse
};

template <typename F>
void WindowSet::for_each_entry(F&& f) const {
  for (const Open& w : open_) {
    const KeyTable& t = *w.table;
    for (size_t i = 0; i < t.size(); ++i) f(w.start, t.key(i), t.acc(i));
  }
}

}  // namespace sluice
