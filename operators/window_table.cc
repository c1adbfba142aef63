#include "operators/window_table.h"

#include <algorithm>
#include <cstring>

#include "core/assert.h"
#include "core/clock.h"

namespace sluice {

namespace {
// Keys are mostly short (9 bytes for an integer key): compare them with two
// overlapping 8-byte loads instead of a call to memcmp.
inline bool keys_equal(const char* a, const char* b, size_t n) {
  if (n >= 8 && n <= 16) {
    uint64_t a0, b0, a1, b1;
    std::memcpy(&a0, a, 8);
    std::memcpy(&b0, b, 8);
    std::memcpy(&a1, a + n - 8, 8);
    std::memcpy(&b1, b + n - 8, 8);
    return a0 == b0 && a1 == b1;
  }
  return std::memcmp(a, b, n) == 0;
}

size_t round_up_pow2(size_t n) {
  size_t p = 16;
  while (p < n) p <<= 1;
  return p;
}
}  // namespace

KeyTable::KeyTable(uint32_t acc_slots, uint32_t capacity_hint)
    : acc_slots_(acc_slots), stride_(sizeof(Entry) + sizeof(Value) * acc_slots) {
  // Load factor at most 1/2: linear probing stays short even with a weak hash mix.
  index_.assign(round_up_pow2(size_t(capacity_hint) * 2), 0);
  mask_ = index_.size() - 1;
  block_.reserve(size_t(capacity_hint) * stride_);
}

size_t KeyTable::probe(uint64_t hash, std::string_view key, bool& found) const {
  size_t i = size_t(hash) & mask_;
  for (;;) {
    uint32_t e = index_[i];
    if (e == 0) {
      found = false;
      return i;
    }
    const Entry& entry = *header(e - 1);
    if (entry.hash == hash && entry.key_len == key.size()) {
      const char* stored =
          key.size() <= kInlineKeyBytes ? entry.inline_key : keys_.data() + entry.key_off;
      if (keys_equal(stored, key.data(), key.size())) {
        found = true;
        return i;
      }
    }
    i = (i + 1) & mask_;
  }
}

Value* KeyTable::upsert(uint64_t hash, std::string_view key, const AggLayout& layout) {
  bool found;
  size_t i = probe(hash, key, found);
  if (found) return accs(index_[i] - 1);
  if ((size_ + 1) * 2 > index_.size()) {
    grow();
    i = probe(hash, key, found);
  }
  SLUICE_ASSERT(size_ < UINT32_MAX - 1);
  block_.resize(block_.size() + stride_);
  Entry& e = *header(size_);
  e.hash = hash;
  e.key_len = uint32_t(key.size());
  if (key.size() <= kInlineKeyBytes) {
    std::memcpy(e.inline_key, key.data(), key.size());
    e.key_off = 0;
  } else {
    SLUICE_ASSERT(keys_.size() + key.size() <= UINT32_MAX);
    e.key_off = uint32_t(keys_.size());
    keys_.insert(keys_.end(), key.begin(), key.end());
  }
  Value* acc = accs(size_);
  layout.init(acc);
  ++size_;
  index_[i] = uint32_t(size_);
  return acc;
}

const Value* KeyTable::find(uint64_t hash, std::string_view key) const {
  bool found;
  size_t i = probe(hash, key, found);
  return found ? accs(index_[i] - 1) : nullptr;
}

void KeyTable::grow() {
  index_.assign(index_.size() * 2, 0);
  mask_ = index_.size() - 1;
  for (size_t e = 0; e < size_; ++e) {
    size_t i = size_t(header(e)->hash) & mask_;
    while (index_[i] != 0) i = (i + 1) & mask_;
    index_[i] = uint32_t(e + 1);
  }
}

void KeyTable::clear() {
  // Only the used part of the index needs zeroing when the table was sparse,
  // but a full fill is simple and runs once per window, not per event.
  std::fill(index_.begin(), index_.end(), 0);
  block_.clear();
  keys_.clear();
  size_ = 0;
}

size_t KeyTable::memory_bytes() const {
  return index_.capacity() * sizeof(uint32_t) + block_.capacity() + keys_.capacity();
}

WindowSet::WindowSet(const AggLayout& layout, int64_t size_ns) : layout_(layout), size_ns_(size_ns) {
  SLUICE_ASSERT(size_ns > 0);
}

bool WindowSet::window_fits(int64_t t) const {
  int64_t start, end;
  return !__builtin_mul_overflow(floor_div(t, size_ns_), size_ns_, &start) &&
         !__builtin_add_overflow(start, size_ns_, &end);
}

int64_t WindowSet::window_start(int64_t t) const { return floor_div(t, size_ns_) * size_ns_; }

KeyTable* WindowSet::table_for(int64_t start) {
  if (last_hit_ < open_.size() && open_[last_hit_].start == start) return open_[last_hit_].table;
  auto it = std::lower_bound(open_.begin(), open_.end(), start,
                             [](const Open& o, int64_t s) { return o.start < s; });
  if (it == open_.end() || it->start != start) {
    KeyTable* table;
    if (!free_.empty()) {
      table = free_.back();
      free_.pop_back();
    } else {
      tables_.push_back(std::make_unique<KeyTable>(layout_.slots()));
      table = tables_.back().get();
    }
    it = open_.insert(it, Open{start, table});
  }
  last_hit_ = size_t(it - open_.begin());
  return it->table;
}

void WindowSet::apply(int64_t start, const Event& e) {
  Value* acc = table_for(start)->upsert(e.key_hash, e.key, layout_);
  layout_.update(acc, e.values);
}

void WindowSet::pop_oldest() {
  SLUICE_ASSERT(!open_.empty());
  KeyTable* t = open_.front().table;
  t->clear();
  free_.push_back(t);
  open_.erase(open_.begin());
  last_hit_ = 0;
}

size_t WindowSet::entries() const {
  size_t n = 0;
  for (const Open& o : open_) n += o.table->size();
  return n;
}

}  // namespace sluice
