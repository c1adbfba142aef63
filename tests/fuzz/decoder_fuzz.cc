// Decoder: any bytes as a line never crash; a decoded event is consistent
// (same result twice, key bytes well-formed); every error has a detail.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "operators/decoder.h"
#include "operators/framing.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice;

namespace {
Decoder& decoder() {
  static std::unique_ptr<Decoder> d = [] {
    SchemaConfig schema;
    schema.key = {"product_id", "region"};
    schema.time_field = "timestamp";
    schema.time_format = TimeFormat::rfc3339;
    schema.fields = {{"customer_id", FieldType::string},
                     {"quantity", FieldType::int64},
                     {"revenue", FieldType::float64}};
    return std::make_unique<Decoder>(schema, 1 << 16);
  }();
  return *d;
}

bool key_well_formed(std::string_view key, size_t fields) {
  size_t i = 0, n = 0;
  while (i < key.size()) {
    if (key[i] == kKeyInt) {
      i += 9;
    } else if (key[i] == kKeyString) {
      if (i + 5 > key.size()) return false;
      uint32_t len;
      std::memcpy(&len, key.data() + i + 1, 4);
      i += 5 + len;
    } else {
      return false;
    }
    ++n;
  }
  return i == key.size() && n == fields;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 16)) return 0;
  std::vector<char> buf(size + kLinePadding, '\0');
  std::memcpy(buf.data(), data, size);
  std::string_view line(buf.data(), size);
  Decoder& d = decoder();
  Event a;
  DecodeStatus s1 = d.decode(line, a);
  std::string key1(a.key);
  std::string detail1(d.detail());
  Event b;
  DecodeStatus s2 = d.decode(line, b);
  FUZZ_CHECK(s1 == s2);
  if (s1 == DecodeStatus::ok) {
    FUZZ_CHECK(key1 == b.key);
    FUZZ_CHECK(a.time_ns == b.time_ns);
    FUZZ_CHECK(a.key_hash == b.key_hash);
    FUZZ_CHECK(key_well_formed(b.key, 2));
  } else {
    FUZZ_CHECK(!detail1.empty());
  }
  return 0;
}
