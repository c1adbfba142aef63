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
  // Load factor at most 1/2: linear probing stays short.
  index_.assign(round_up_pow2(size_t(capacity_hint) * 2), 0);
  mask_ = index_.size() - 1;
  tag_shift_ = unsigned(32 - __builtin_ctzll(index_.size()));
  block_capacity_ = std::max<size_t>(capacity_hint, 1);
  block_.reset(static_cast<std::byte*>(::operator new[](block_capacity_ * stride_, std::align_val_t(kBlockAlign))));
}

size_t KeyTable::probe(uint32_t tag, std::string_view key, bool& found) const {
  size_t i = home(tag);
  for (;;) {
    uint64_t slot = index_[i];
    if (slot == 0) {
      found = false;
      return i;
    }
    if (uint32_t(slot >> 32) == tag) {
      const Entry& entry = *header(uint32_t(slot) - 1);
      if (entry.key_len == key.size()) {
        const char* stored =
            key.size() <= kInlineKeyBytes ? entry.inline_key : keys_.data() + entry.key_off;
        if (keys_equal(stored, key.data(), key.size())) {
          found = true;
          return i;
        }
      }
    }
    i = (i + 1) & mask_;
  }
}

Value* KeyTable::upsert(uint64_t hash, std::string_view key, const AggLayout& layout) {
  const uint32_t tag = uint32_t(hash >> 32);
  bool found;
  size_t i = probe(tag, key, found);
  if (found) return accs(uint32_t(index_[i]) - 1);
  if ((size_ + 1) * 2 > index_.size()) {
    grow_index();
    i = probe(tag, key, found);
  }
  if (size_ == block_capacity_) grow_block();
  Entry& e = *header(size_);
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
  index_[i] = make_slot(tag, size_);
  ++size_;
  return acc;
}

const Value* KeyTable::find(uint64_t hash, std::string_view key) const {
  bool found;
  size_t i = probe(uint32_t(hash >> 32), key, found);
  return found ? accs(uint32_t(index_[i]) - 1) : nullptr;
}

void KeyTable::grow_index() {
  // Home slots come from the top bits of the 32-bit tag: at most 2^32 slots.
  SLUICE_ASSERT(index_.size() < (size_t(1) << 32));
  std::vector<uint64_t> old(index_.size() * 2, 0);
  old.swap(index_);
  mask_ = index_.size() - 1;
  tag_shift_ -= 1;
  for (uint64_t slot : old) {
    if (slot == 0) continue;
    size_t i = home(uint32_t(slot >> 32));
    while (index_[i] != 0) i = (i + 1) & mask_;
    index_[i] = slot;
  }
}

void KeyTable::grow_block() {
  size_t capacity = block_capacity_ * 2;
  std::unique_ptr<std::byte[], AlignedFree> bigger(
      static_cast<std::byte*>(::operator new[](capacity * stride_, std::align_val_t(kBlockAlign))));
  std::memcpy(bigger.get(), block_.get(), size_ * stride_);
  block_ = std::move(bigger);
  block_capacity_ = capacity;
}

void KeyTable::clear() {
  // Only the used part of the index needs zeroing when the table was sparse,
  // but a full fill is simple and runs once per window, not per event.
  std::fill(index_.begin(), index_.end(), 0);
  keys_.clear();
  size_ = 0;
}

size_t KeyTable::memory_bytes() const {
  return index_.capacity() * sizeof(uint64_t) + block_capacity_ * stride_ + keys_.capacity();
}

WindowSet::WindowSet(const AggLayout& layout) : layout_(layout) {
  for (const AggSpec& s : layout.specs()) {
    if (s.field_index >= 0) value_fields_ = std::max(value_fields_, size_t(s.field_index) + 1);
  }
  SLUICE_ASSERT(value_fields_ <= kValueFieldsMax);
}

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
  flush();
  Value* acc = table_for(start)->upsert(e.key_hash, e.key, layout_);
  layout_.update(acc, e.values, e.text, e.absent);
}

void WindowSet::apply_oldest_staged() {
  Staged& s = stage_[stage_head_];
  Value* acc = s.table->upsert(s.hash, std::string_view(s.key, s.key_len), layout_);
  layout_.update(acc, s.values, std::string_view(s.text, s.text_len), s.absent);
  stage_head_ = (stage_head_ + 1) % kStages;
  --staged_;
}

void WindowSet::apply_pipelined(int64_t start, const Event& e) {
  SLUICE_ASSERT(e.key.size() <= kKeyBytesMax);
  if (staged_ == kStages) apply_oldest_staged();
  if (staged_ > 0) {
    // The event staged last: its index slot was prefetched one event ago.
    const Staged& prev = stage_[(stage_head_ + staged_ - 1) % kStages];
    prev.table->prefetch_entry(prev.hash);
  }
  Staged& s = stage_[(stage_head_ + staged_) % kStages];
  // Opening the window now is safe: a table is released only by
  // pop_oldest(), which requires nothing staged.
  s.table = table_for(start);
  s.hash = e.key_hash;
  s.key_len = uint16_t(e.key.size());
  std::memcpy(s.key, e.key.data(), e.key.size());
  s.text_len = uint16_t(e.text.size());
  if (s.text_len > 0) std::memcpy(s.text, e.text.data(), e.text.size());
  s.absent = e.absent;
  std::memcpy(s.values, e.values, value_fields_ * sizeof(Value));
  s.table->prefetch_index(s.hash);
  ++staged_;
}

void WindowSet::pop_oldest() {
  SLUICE_ASSERT(!open_.empty());
  SLUICE_ASSERT(staged_ == 0);
  KeyTable* t = open_.front().table;
  release_state(*t);
  t->clear();
  free_.push_back(t);
  open_.erase(open_.begin());
  last_hit_ = 0;
}

void WindowSet::release_state(KeyTable& t) {
  if (!layout_.has_out_of_line_state()) return;
  for (size_t i = 0; i < t.size(); ++i) layout_.destroy(t.mutable_acc(i));
}

WindowSet::~WindowSet() {
  flush();
  for (const Open& w : open_) release_state(*w.table);
}

Value* WindowSet::restore_entry(int64_t start, uint64_t hash, std::string_view key) {
  SLUICE_ASSERT(staged_ == 0);
  return table_for(start)->upsert(hash, key, layout_);
}

size_t WindowSet::memory_bytes() const {
  size_t n = 0;
  for (const auto& t : tables_) n += t->memory_bytes();
  return n;
}

size_t WindowSet::entries_held() const {
  size_t n = 0;
  for (const Open& o : open_) n += o.table->size();
  return n;
}

size_t WindowSet::entries() const {
  SLUICE_ASSERT(staged_ == 0);
  size_t n = 0;
  for (const Open& o : open_) n += o.table->size();
  return n;
}

}  // namespace sluice
