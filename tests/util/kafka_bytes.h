// Test helper: Kafka protocol fields (big-endian integers, int16-length
// strings, int32-length bytes and array counts) appended one by one, to build
// requests and responses byte by byte, independent of io/kafka/'s encoders.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace sluice::testing_util {

class KafkaBytes {
 public:
  using Bytes = std::vector<uint8_t>;

  KafkaBytes& i8(int64_t v) { return be(uint64_t(v), 1); }
  KafkaBytes& i16(int64_t v) { return be(uint64_t(v), 2); }
  KafkaBytes& i32(int64_t v) { return be(uint64_t(v), 4); }
  KafkaBytes& i64(int64_t v) { return be(uint64_t(v), 8); }
  KafkaBytes& boolean(bool v) { return i8(v ? 1 : 0); }
  KafkaBytes& str(std::string_view s) {
    i16(int64_t(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
    return *this;
  }
  KafkaBytes& null_str() { return i16(-1); }
  KafkaBytes& count(int64_t n) { return i32(n); }  // array length
  KafkaBytes& blob(const Bytes& b) {
    i32(int64_t(b.size()));
    bytes_.insert(bytes_.end(), b.begin(), b.end());
    return *this;
  }
  KafkaBytes& null_blob() { return i32(-1); }
  KafkaBytes& zeros(size_t n) {
    bytes_.insert(bytes_.end(), n, 0);
    return *this;
  }
  const Bytes& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  KafkaBytes& be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) bytes_.push_back(uint8_t(v >> (8 * i)));
    return *this;
  }
  Bytes bytes_;
};

}  // namespace sluice::testing_util
