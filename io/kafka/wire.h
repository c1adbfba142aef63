// Kafka wire primitives: a bounds-checked Reader for bytes from the network and a Writer for
// requests. Only the non-flexible encodings are here (int16-length strings, int32-length bytes
// and arrays); varints are here too because record batches v2 use them.
//
// Reader never reads outside [data, data + size): every read first checks what remains. A read
// that cannot be satisfied (past the end, a negative length where null is not allowed, a length
// longer than what remains, a varint longer than its type) sets a sticky failure flag and
// returns a zero/empty value; every later read fails too. Callers read a whole structure and
// check ok() once, instead of checking every field. Strings and bytes are views into the
// buffer: no copy, no allocation, valid as long as the buffer is.
//
// Thread/shard: plain values over caller memory; used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/assert.h"

namespace sluice::kafka {

// The longest varints: 7 payload bits per byte, so 32 bits need 5 bytes and 64 bits need 10.
constexpr size_t kVarintBytesMax = 5;
constexpr size_t kVarlongBytesMax = 10;

class Reader {
 public:
  Reader() = default;
  // REQUIRES: data != nullptr || size == 0.
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  explicit Reader(std::span<const uint8_t> bytes) : Reader(bytes.data(), bytes.size()) {}

  // False once any read has failed; stays false.
  bool ok() const { return ok_; }
  // Bytes left to read (0 after a failure).
  size_t remaining() const { return size_t(end_ - p_); }
  // Where the next read starts.
  const uint8_t* position() const { return p_; }

  // Marks the reader failed: for values that decode but that the caller finds invalid.
  void fail() {
    ok_ = false;
    p_ = end_;
  }

  int8_t int8() { return int8_t(take_be<uint8_t>()); }
  int16_t int16() { return int16_t(take_be<uint16_t>()); }
  int32_t int32() { return int32_t(take_be<uint32_t>()); }
  int64_t int64() { return int64_t(take_be<uint64_t>()); }
  uint32_t uint32() { return take_be<uint32_t>(); }
  // Kafka's boolean: one byte, any non-zero value is true (as the Java client reads it).
  bool boolean() { return take_be<uint8_t>() != 0; }

  // Unsigned LEB128, at most 5 bytes. A value that does not fit 32 bits (5th byte > 0x0F) is
  // a failure: canonical encoders never write one, so it can only be corruption.
  uint32_t unsigned_varint() { return uint32_t(take_varint(kVarintBytesMax, 0x0F)); }
  // At most 10 bytes; the 10th may carry only bit 63.
  uint64_t unsigned_varlong() { return take_varint(kVarlongBytesMax, 0x01); }
  // Zig-zag signed varints: 0, -1, 1, -2, ... encode as 0, 1, 2, 3, ...
  int32_t varint() {
    uint32_t u = unsigned_varint();
    return int32_t((u >> 1) ^ (0u - (u & 1u)));
  }
  int64_t varlong() {
    uint64_t u = unsigned_varlong();
    return int64_t((u >> 1) ^ (0ull - (u & 1ull)));
  }

  // int16 length, then the bytes. The non-nullable form treats -1 as a failure.
  std::string_view string() {
    int16_t n = int16();
    if (n < 0) {
      fail();
      return {};
    }
    return as_chars(take(size_t(n)));
  }
  // std::nullopt for -1 (null) and on failure; check ok() to tell them apart.
  std::optional<std::string_view> nullable_string() {
    int16_t n = int16();
    if (n == -1 && ok_) return std::nullopt;
    if (n < 0) {
      fail();
      return std::nullopt;
    }
    std::span<const uint8_t> s = take(size_t(n));
    if (!ok_) return std::nullopt;
    return as_chars(s);
  }

  // int32 length, then the bytes.
  std::span<const uint8_t> bytes() {
    int32_t n = int32();
    if (n < 0) {
      fail();
      return {};
    }
    return take(size_t(n));
  }
  std::optional<std::span<const uint8_t>> nullable_bytes() {
    int32_t n = int32();
    if (n == -1 && ok_) return std::nullopt;
    if (n < 0) {
      fail();
      return std::nullopt;
    }
    std::span<const uint8_t> s = take(size_t(n));
    if (!ok_) return std::nullopt;
    return s;
  }

  // An int32 element count. Each element takes at least `entry_bytes_min` bytes, so a count
  // that could not fit in what remains is a failure here, before anyone reserves memory for
  // it: a hostile count can never ask for more than remaining() / entry_bytes_min entries.
  // The non-nullable form fails on -1; the nullable one returns -1 for null.
  // REQUIRES: entry_bytes_min >= 1.
  int32_t array_length(size_t entry_bytes_min) {
    int32_t n = nullable_array_length(entry_bytes_min);
    if (n < 0) {
      fail();
      return 0;
    }
    return n;
  }
  int32_t nullable_array_length(size_t entry_bytes_min) {
    SLUICE_ASSERT(entry_bytes_min >= 1);
    int32_t n = int32();
    if (!ok_) return 0;
    if (n == -1) return -1;
    if (n < 0 || size_t(n) > remaining() / entry_bytes_min) {
      fail();
      return 0;
    }
    return n;
  }

  void skip(size_t n) { take(n); }

  // A reader over the next n bytes; this one moves past them. If fewer than n remain, both
  // fail.
  Reader sub(size_t n) {
    std::span<const uint8_t> s = take(n);
    Reader r(s.data(), s.size());
    if (!ok_) r.fail();
    return r;
  }

 private:
  std::span<const uint8_t> take(size_t n) {
    if (n > remaining()) {
      fail();
      return {};
    }
    const uint8_t* at = p_;
    p_ += n;
    return {at, n};
  }

  template <class U>
  U take_be() {
    if (remaining() < sizeof(U)) {
      fail();
      return 0;
    }
    U v = 0;
    for (size_t i = 0; i < sizeof(U); ++i) v = U(v << 8 | U(p_[i]));  // compilers emit a bswap
    p_ += sizeof(U);
    return v;
  }

  // `last_byte_max`: the largest value the final allowed byte may hold (it cannot continue).
  uint64_t take_varint(size_t bytes_max, uint8_t last_byte_max) {
    uint64_t v = 0;
    for (size_t i = 0; i < bytes_max; ++i) {
      if (p_ == end_) {
        fail();
        return 0;
      }
      uint8_t b = *p_++;
      if (i + 1 == bytes_max && b > last_byte_max) {
        fail();
        return 0;
      }
      v |= uint64_t(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) return v;
    }
    return v;  // not reached: the last byte is <= last_byte_max < 0x80, so it ends the loop
  }

  static std::string_view as_chars(std::span<const uint8_t> s) {
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }

  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  bool ok_ = true;
};

enum class WriteError : uint8_t {
  none = 0,
  no_room,   ///< a fixed region is full (a vector sink grows instead)
  too_long,  ///< a string longer than int16 allows, bytes or a count longer than int32 allows
};

inline const char* to_string(WriteError e) {
  switch (e) {
    case WriteError::none: return "none";
    case WriteError::no_room: return "no room left in the output region";
    case WriteError::too_long: return "a value is longer than its length prefix can say";
  }
  return "unknown write error";
}

// Appends big-endian Kafka encodings to one of two sinks:
//  - a caller-owned std::vector<uint8_t>, appended to (and grown, which allocates: reserve at
//    start-up so that steady-state requests never do); size() is the vector's size;
//  - a fixed region, e.g. a ByteBuffer's free room, which never allocates and fails with
//    no_room when full; size() counts bytes written into the region, and the caller commits
//    them:  Writer w(reinterpret_cast<uint8_t*>(buf.tail()), buf.room());
//           ... encode ...;  if (w.ok()) buf.commit(w.size());
// A failure is sticky: later writes do nothing. Bytes already written stay; truncate() drops
// them (the request encoders do this themselves on failure).
//
// Thread/shard: one thread at a time; the sink must outlive the Writer.
class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : vec_(&out) {}
  // REQUIRES: region != nullptr || capacity == 0.
  Writer(uint8_t* region, size_t capacity) : region_(region), cap_(capacity) {}

  bool ok() const { return error_ == WriteError::none; }
  WriteError error() const { return error_; }
  size_t size() const { return vec_ != nullptr ? vec_->size() : len_; }
  // Drops what was written after the first `n` bytes. The failure flag, if set, stays.
  // REQUIRES: n <= size().
  void truncate(size_t n) {
    SLUICE_ASSERT(n <= size());
    if (vec_ != nullptr) {
      vec_->resize(n);
    } else {
      len_ = n;
    }
  }

  void int8(int8_t v) { put_be(uint8_t(v)); }
  void int16(int16_t v) { put_be(uint16_t(v)); }
  void int32(int32_t v) { put_be(uint32_t(v)); }
  void int64(int64_t v) { put_be(uint64_t(v)); }
  void uint32(uint32_t v) { put_be(v); }
  void boolean(bool v) { put_be(uint8_t(v ? 1 : 0)); }

  void unsigned_varint(uint32_t v) { put_varint(v); }
  void unsigned_varlong(uint64_t v) { put_varint(v); }
  void varint(int32_t v) { put_varint(uint32_t((uint32_t(v) << 1) ^ uint32_t(v >> 31))); }
  void varlong(int64_t v) { put_varint((uint64_t(v) << 1) ^ uint64_t(v >> 63)); }

  void string(std::string_view s) {
    if (s.size() > size_t(INT16_MAX)) return fail(WriteError::too_long);
    int16(int16_t(s.size()));
    put(s.data(), s.size());
  }
  void nullable_string(std::optional<std::string_view> s) {
    if (!s) return int16(-1);
    string(*s);
  }
  void bytes(std::span<const uint8_t> b) {
    if (b.size() > size_t(INT32_MAX)) return fail(WriteError::too_long);
    int32(int32_t(b.size()));
    put(b.data(), b.size());
  }
  void nullable_bytes(std::optional<std::span<const uint8_t>> b) {
    if (!b) return int32(-1);
    bytes(*b);
  }
  // An element count; the elements follow.
  void array_length(size_t n) {
    if (n > size_t(INT32_MAX)) return fail(WriteError::too_long);
    int32(int32_t(n));
  }
  // A null array (-1), where the field is nullable.
  void null_array() { int32(-1); }

  // Reserves an int32 size prefix and returns its position; end_size() fills it with the
  // number of bytes written after it. Frames may nest.
  size_t begin_size() {
    size_t mark = size();
    int32(0);
    return mark;
  }
  void end_size(size_t mark) {
    if (!ok()) return;
    SLUICE_ASSERT(mark + 4 <= size());
    size_t n = size() - mark - 4;
    if (n > size_t(INT32_MAX)) return fail(WriteError::too_long);
    uint8_t* at = (vec_ != nullptr ? vec_->data() : region_) + mark;
    for (int i = 0; i < 4; ++i) at[i] = uint8_t(uint32_t(n) >> (24 - 8 * i));
  }

  // Raw bytes, no length prefix.
  void put(const void* data, size_t n) {
    uint8_t* at = extend(n);
    if (at != nullptr && n != 0) std::memcpy(at, data, n);
  }

 private:
  void fail(WriteError e) {
    if (error_ == WriteError::none) error_ = e;
  }

  // Room for n more bytes, or nullptr (and a failure) if the region is full.
  uint8_t* extend(size_t n) {
    if (!ok()) return nullptr;
    if (vec_ != nullptr) {
      size_t at = vec_->size();
      vec_->resize(at + n);
      return vec_->data() + at;
    }
    if (n > cap_ - len_) {
      fail(WriteError::no_room);
      return nullptr;
    }
    uint8_t* at = region_ + len_;
    len_ += n;
    return at;
  }

  template <class U>
  void put_be(U v) {
    uint8_t b[sizeof(U)];
    for (size_t i = 0; i < sizeof(U); ++i) b[i] = uint8_t(v >> (8 * (sizeof(U) - 1 - i)));
    put(b, sizeof(U));
  }

  void put_varint(uint64_t v) {
    uint8_t b[kVarlongBytesMax];
    size_t n = 0;
    while (v >= 0x80) {
      b[n++] = uint8_t(v | 0x80);
      v >>= 7;
    }
    b[n++] = uint8_t(v);
    put(b, n);
  }

  std::vector<uint8_t>* vec_ = nullptr;
  uint8_t* region_ = nullptr;
  size_t cap_ = 0;
  size_t len_ = 0;
  WriteError error_ = WriteError::none;
};

}  // namespace sluice::kafka
