// What crosses between shards.
//
// EventBatch: events a source shard decoded for keys another shard owns, plus
// that source shard's watermark marker, sent in-band after the events so the
// owner never acts on a watermark before it has applied every event sent
// before it.
//
// ResultChunk: rows of fired windows on their way to the gatherer (shard 0),
// plus the sender's fired-through mark: every window ending at or before it
// has been fully sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/clock.h"
#include "operators/event.h"

namespace sluice {

// 64 KiB holds about a thousand typical events: large enough that the
// per-batch queue operation is noise, small enough to stay in L2.
constexpr size_t kEventBatchBytes = 64 * 1024;
// Batches in flight to one other shard at most, and batches one shard may
// hold for all others together (allocated on first use). Memory for the
// exchange is then at most shards x kEventBatchesPerShard x 64 KiB (4 MiB a
// shard), linear in the shard count; with two shards, one destination may
// use 32 batches, as before.
constexpr size_t kEventBatchesPerChannel = 32;
constexpr size_t kEventBatchesPerShard = 64;
static_assert(kEventBatchesPerShard >= kEventBatchesPerChannel);
constexpr size_t kResultChunkBytes = 64 * 1024;
constexpr size_t kResultChunksPerShard = 16;

// What a shard assumes of another before that shard's first marker arrives:
// it may have sources that have not delivered anything yet, so it holds the
// pipeline watermark back (an opinion at the lowest time).
struct Marker;
constexpr Marker initial_marker();

struct Marker {
  bool opinion = false;   // false: the sender has no active source (it does not hold anyone back)
  bool final = false;     // the sender will send no more events, ever
  int64_t watermark = kTimeMin;  // valid when opinion: min over the sender's active sources
  // Largest watermark any of the sender's idle or finished sources reached
  // (never decreases). When no shard has an active source, the pipeline
  // watermark advances to the largest of these: nothing holds it back.
  int64_t retired = kTimeMin;
};

constexpr Marker initial_marker() { return Marker{true, false, kTimeMin, kTimeMin}; }

struct EventBatch {
  uint32_t used = 0;
  uint32_t records = 0;
  int64_t recv_ns = kTimeMax;  // monotonic: when the oldest of its events was received
  Marker marker;
  alignas(8) char data[kEventBatchBytes];

  // Record: u64 hash | i64 time | u16 key_len | u16 text_len | u32 absent |
  // values[n] | key (padded to 8) | carried strings (padded to 8; usually none)
  static_assert(kKeyBytesMax <= UINT16_MAX && kEventTextBytesMax <= UINT16_MAX);
  static constexpr size_t record_bytes(size_t key_len, size_t values, size_t text_len = 0) {
    return 24 + 8 * values + ((key_len + 7) & ~size_t(7)) + ((text_len + 7) & ~size_t(7));
  }
  bool fits(const Event& e, size_t values) const {
    return used + record_bytes(e.key.size(), values, e.text.size()) <= kEventBatchBytes;
  }
  void append(const Event& e, size_t values) {
    char* p = data + used;
    uint16_t key_len = uint16_t(e.key.size());
    uint16_t text_len = uint16_t(e.text.size());
    std::memcpy(p, &e.key_hash, 8);
    std::memcpy(p + 8, &e.time_ns, 8);
    std::memcpy(p + 16, &key_len, 2);
    std::memcpy(p + 18, &text_len, 2);
    std::memcpy(p + 20, &e.absent, 4);
    // A few values: an inline loop, not a call to memcpy of a variable size.
    for (size_t i = 0; i < values; ++i) std::memcpy(p + 24 + 8 * i, &e.values[i], 8);
    std::memcpy(p + 24 + 8 * values, e.key.data(), key_len);
    if (text_len > 0) std::memcpy(p + 24 + 8 * values + ((key_len + 7) & ~size_t(7)), e.text.data(), text_len);
    used += uint32_t(record_bytes(key_len, values, text_len));
    ++records;
  }
  // Reads the record at `offset` into e (key and text point into the batch);
  // returns the next offset.
  size_t read(size_t offset, Event& e, size_t values) const {
    const char* p = data + offset;
    uint16_t key_len, text_len;
    std::memcpy(&e.key_hash, p, 8);
    std::memcpy(&e.time_ns, p + 8, 8);
    std::memcpy(&key_len, p + 16, 2);
    std::memcpy(&text_len, p + 18, 2);
    std::memcpy(&e.absent, p + 20, 4);
    for (size_t i = 0; i < values; ++i) std::memcpy(&e.values[i], p + 24 + 8 * i, 8);
    e.key = {p + 24 + 8 * values, key_len};
    e.text = {p + 24 + 8 * values + ((key_len + 7) & ~size_t(7)), text_len};
    return offset + record_bytes(key_len, values, text_len);
  }
  void reset() {
    used = 0;
    records = 0;
    recv_ns = kTimeMax;
    marker = Marker{};
  }
};

struct ResultChunk {
  uint32_t used = 0;
  uint32_t rows = 0;
  int64_t fired_through = kTimeMin;
  int64_t fire_ns = kTimeMax;  // monotonic time its first row's window was fired
  bool final = false;
  alignas(8) char data[kResultChunkBytes];

  void reset() {
    used = 0;
    rows = 0;
    fired_through = kTimeMin;
    fire_ns = kTimeMax;
    final = false;
  }
};

}  // namespace sluice
