// A fixed-capacity byte buffer, allocated once. Appends never reallocate:
// callers check room() first (the encoders state their worst-case size).
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

#include "core/assert.h"

namespace sluice {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(size_t capacity) : data_(new char[capacity]), cap_(capacity) {}

  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  size_t size() const { return len_; }
  size_t capacity() const { return cap_; }
  size_t room() const { return cap_ - len_; }
  bool empty() const { return len_ == 0; }
  std::string_view view() const { return {data_.get(), len_}; }

  // Where the next bytes go; commit(n) after writing n <= room() bytes there.
  char* tail() { return data_.get() + len_; }
  void commit(size_t n) {
    SLUICE_ASSERT(n <= room());
    len_ += n;
  }
  void append(std::string_view s) {
    SLUICE_ASSERT(s.size() <= room());
    std::memcpy(data_.get() + len_, s.data(), s.size());
    len_ += s.size();
  }
  void push(char c) {
    SLUICE_ASSERT(len_ < cap_);
    data_[len_++] = c;
  }
  // Drops the first n bytes (after a partial write).
  void consume(size_t n) {
    SLUICE_ASSERT(n <= len_);
    std::memmove(data_.get(), data_.get() + n, len_ - n);
    len_ -= n;
  }
  void clear() { len_ = 0; }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_ = 0;
  size_t len_ = 0;
};

}  // namespace sluice
