// NDJSON framing: turns a stream of byte chunks into lines.
//
// One LineFramer per byte stream (TCP connection, file); owned by the shard
// that reads the stream. A line is delivered as a view either into the caller's
// chunk (when it lies wholly inside it) or into the framer's carry buffer (when
// it was split across chunks). Either way at least kLinePadding readable bytes
// follow the view, as simdjson requires: callers must provide chunks with that
// much readable slack after `len`.
//
// Handles `\n` and `\r\n`, skips empty lines, and turns a line longer than
// line_bytes_max into a single `too_long` event (carrying a prefix of the line
// and its full length) without ever buffering more than line_bytes_max bytes.
//
// Back-pressure: the handler returns false to refuse a line; feed() then
// returns how many bytes of the chunk were consumed, and the caller feeds the
// rest again later. A refused line is delivered again on that later call.
//
// Memory: the carry buffer exists only while a line spans chunks. It grows
// (doubling, up to line_bytes_max) as such a line needs it, reserving from an
// optional MemoryBudget shared by many framers; a carry larger than
// kCarryKeepBytes is freed when its line is done. When the budget refuses,
// feed() stops before that line and out_of_budget() is true: the caller
// decides (a TCP connection is closed). Lines inside one chunk cost nothing.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/assert.h"
#include "core/memory_budget.h"

namespace sluice {

// simdjson reads up to 64 bytes past the end of a document.
constexpr size_t kLinePadding = 64;
// How much of an over-long line is kept for the dead-letter record (less when
// line_bytes_max is smaller).
constexpr size_t kTooLongPrefixBytes = 1024;
// A carry buffer up to this size is kept between lines (lines split across
// reads are common, and re-allocating for each would be churn); a larger one,
// grown for a long line, is freed when that line is done.
constexpr size_t kCarryKeepBytes = 64 * 1024;
// The first allocation of a carry buffer.
constexpr size_t kCarryInitialBytes = 4096;

struct Line {
  std::string_view text;   // without the line terminator
  bool too_long = false;   // text is only a prefix; total_bytes is the full length
  uint64_t total_bytes = 0;
};

class LineFramer {
 public:
  explicit LineFramer(uint32_t line_bytes_max, MemoryBudget* budget = nullptr)
      : line_bytes_max_(line_bytes_max),
        prefix_max_(std::min<size_t>(kTooLongPrefixBytes, line_bytes_max)),
        budget_(budget) {}
  ~LineFramer() { free_carry(); }
  LineFramer(const LineFramer&) = delete;
  LineFramer& operator=(const LineFramer&) = delete;

  // Feeds one chunk; calls on_line(const Line&) -> bool for each complete line.
  // Returns the number of bytes of the chunk consumed (== len unless a line was refused).
  // REQUIRES: data[len .. len + kLinePadding) is readable.
  template <typename OnLine>
  size_t feed(const char* data, size_t len, OnLine&& on_line);

  // End of stream. If an unterminated line is buffered, it is delivered as a
  // final line (files) when deliver_partial is true; otherwise it is dropped
  // and its size returned through partial_bytes (sockets: a peer that
  // disconnects mid-line). Returns false if the handler refused the line.
  template <typename OnLine>
  bool finish(bool deliver_partial, OnLine&& on_line, uint64_t& partial_bytes);

  // Bytes of an unterminated line held (or being discarded) right now.
  // 1-based number of the line being delivered (counting empty lines), for
  // dead-letter origins. Valid inside on_line.
  uint64_t line_number() const { return newlines_ + 1; }

  uint64_t pending_bytes() const { return discarding_ ? discarded_bytes_ : carry_len_; }
  std::string_view pending_prefix() const {
    return {carry_.get(), carry_len_ < prefix_max_ ? carry_len_ : prefix_max_};
  }
  // Starts a new stream (a new file): forgets the carry and the line count.
  void restart() {
    reset();
    newlines_ = 0;
  }
  void reset() {
    carry_len_ = 0;
    discarding_ = false;
    discarded_bytes_ = 0;
    if (carry_cap_ > kCarryKeepBytes) free_carry();
  }
  // The last feed() stopped because the budget refused to grow the carry.
  bool out_of_budget() const { return out_of_budget_; }
  // Bytes of carry buffer held now (what the budget was charged).
  size_t carry_capacity() const { return carry_cap_; }

 private:
  static std::string_view strip_cr(const char* p, size_t n) {
    if (n > 0 && p[n - 1] == '\r') --n;
    return {p, n};
  }

  // Room for `need` bytes of line in the carry (need <= line_bytes_max_).
  // False when the budget refuses; the carry is then unchanged.
  bool ensure(size_t need) {
    if (need <= carry_cap_) return true;
    size_t cap = std::max({need, carry_cap_ * 2, kCarryInitialBytes});
    cap = std::min<size_t>(cap, std::max<size_t>(need, line_bytes_max_));
    if (budget_ != nullptr && !budget_->try_reserve(cap - carry_cap_)) {
      // Doubling does not fit: exactly what this line needs may.
      cap = need;
      if (!budget_->try_reserve(cap - carry_cap_)) {
        out_of_budget_ = true;
        return false;
      }
    }
    std::unique_ptr<char[]> grown(new char[cap + kLinePadding]);
    if (carry_len_ > 0) std::memcpy(grown.get(), carry_.get(), carry_len_);
    std::memset(grown.get() + cap, 0, kLinePadding);
    carry_ = std::move(grown);
    carry_cap_ = cap;
    return true;
  }
  void free_carry() {
    if (budget_ != nullptr && carry_cap_ > 0) budget_->release(carry_cap_);
    carry_.reset();
    carry_cap_ = 0;
  }

  uint32_t line_bytes_max_;
  // Bytes of an over-long line kept for its dead letter: at most 1 KiB, and
  // never more than the carry buffer holds (line_bytes_max_ may be smaller).
  size_t prefix_max_;
  MemoryBudget* budget_;
  std::unique_ptr<char[]> carry_;  // carry_cap_ + kLinePadding bytes, or none
  size_t carry_cap_ = 0;
  bool out_of_budget_ = false;
  size_t carry_len_ = 0;
  // Inside a line longer than the limit: carry_ holds its first bytes (the
  // prefix for the dead letter) and discarded_bytes_ counts all of it so far.
  bool discarding_ = false;
  uint64_t discarded_bytes_ = 0;
  uint64_t newlines_ = 0;
};

template <typename OnLine>
size_t LineFramer::feed(const char* data, size_t len, OnLine&& on_line) {
  size_t pos = 0;
  out_of_budget_ = false;
  while (pos < len) {
    const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', len - pos));
    size_t seg_len = nl ? size_t(nl - (data + pos)) : len - pos;

    if (discarding_) {
      if (!nl) {
        discarded_bytes_ += seg_len;
        return len;
      }
      Line line{pending_prefix(), true, discarded_bytes_ + seg_len};
      if (!on_line(line)) return pos;
      reset();
      pos += seg_len + 1;
      ++newlines_;
      continue;
    }

    if (carry_len_ == 0 && nl) {
      // Fast path: the whole line is inside the chunk.
      std::string_view text = strip_cr(data + pos, seg_len);
      if (seg_len > line_bytes_max_) {
        Line line{text.substr(0, prefix_max_), true, seg_len};
        if (!on_line(line)) return pos;
      } else if (!text.empty()) {
        if (!on_line(Line{text, false, text.size()})) return pos;
      }
      pos += seg_len + 1;
      ++newlines_;
      continue;
    }

    // The line continues a carried prefix and/or does not end in this chunk.
    if (carry_len_ + seg_len > line_bytes_max_) {
      // Over the limit: keep what the carry holds as the prefix, discard the rest.
      size_t keep = carry_len_ < prefix_max_ ? prefix_max_ - carry_len_ : 0;
      if (keep > seg_len) keep = seg_len;
      if (!ensure(carry_len_ + keep)) return pos;
      if (keep > 0) std::memcpy(carry_.get() + carry_len_, data + pos, keep);
      size_t before = carry_len_;
      carry_len_ += keep;
      discarding_ = true;
      discarded_bytes_ = before + seg_len;
      if (!nl) return len;
      Line line{pending_prefix(), true, discarded_bytes_};
      if (!on_line(line)) {
        // Undo so the refused line is rebuilt identically on the next call.
        carry_len_ = before;
        discarding_ = false;
        discarded_bytes_ = 0;
        return pos;
      }
      reset();
      pos += seg_len + 1;
      ++newlines_;
      continue;
    }
    if (!ensure(carry_len_ + seg_len)) return pos;
    if (seg_len > 0) std::memcpy(carry_.get() + carry_len_, data + pos, seg_len);
    if (!nl) {
      carry_len_ += seg_len;
      return len;
    }
    std::string_view text = strip_cr(carry_.get(), carry_len_ + seg_len);
    if (!text.empty() && !on_line(Line{text, false, text.size()})) return pos;  // carry_len_ unchanged
    carry_len_ = 0;
    if (carry_cap_ > kCarryKeepBytes) free_carry();
    pos += seg_len + 1;
    ++newlines_;
  }
  return len;
}

template <typename OnLine>
bool LineFramer::finish(bool deliver_partial, OnLine&& on_line, uint64_t& partial_bytes) {
  partial_bytes = 0;
  if (discarding_) {
    if (deliver_partial) {
      if (!on_line(Line{pending_prefix(), true, discarded_bytes_})) return false;
    } else {
      partial_bytes = discarded_bytes_;
    }
  } else if (carry_len_ > 0) {
    std::string_view text = strip_cr(carry_.get(), carry_len_);
    if (deliver_partial) {
      if (!text.empty() && !on_line(Line{text, false, text.size()})) return false;
    } else {
      partial_bytes = carry_len_;
    }
  }
  reset();
  return true;
}

}  // namespace sluice
