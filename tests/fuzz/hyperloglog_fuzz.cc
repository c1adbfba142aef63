// A HyperLogLog sketch's checkpoint bytes (operators/hyperloglog.h): any
// bytes are refused or give a valid sketch, whose bytes are exactly the
// input (one encoding per sketch), which counts, merges and takes values.
// The first byte picks the precision the reader expects.
#include <cstdint>
#include <cstring>
#include <vector>

#include "operators/hyperloglog.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t p = hll::kPrecisionMin + data[0] % (hll::kPrecisionMax - hll::kPrecisionMin + 1);
  const char* in = reinterpret_cast<const char*>(data + 1);
  hll::Sketch* s = hll::deserialize(p, in, size - 1);
  if (s == nullptr) return 0;
  std::vector<char> out(hll::serialized_bytes_max(p));
  const size_t n = hll::serialize(s, out.data());
  FUZZ_CHECK(n == size - 1 && std::memcmp(out.data(), in, n) == 0);
  const uint64_t before = hll::count(s);
  hll::Sketch* other = hll::create(p);
  hll::merge(other, s);
  FUZZ_CHECK(hll::count(other) == before);
  hll::add(s, 0x9e3779b97f4a7c15ULL);
  FUZZ_CHECK(hll::get(s, uint32_t(0x9e3779b97f4a7c15ULL & ((1u << p) - 1))) >= 1);
  hll::destroy(other);
  hll::destroy(s);
  return 0;
}
