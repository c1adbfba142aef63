// RFC 3339: any text parses or is refused without crashing; whatever parses
// formats to a string that parses back to the same instant.
#include <cstdint>
#include <string_view>

#include "core/timestamp.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  int64_t ns;
  if (parse_rfc3339(s, ns) != TimestampError::ok) return 0;
  char buf[kRfc3339BytesMax];
  size_t n = format_rfc3339(ns, buf);
  FUZZ_CHECK(n <= kRfc3339BytesMax);
  int64_t back;
  FUZZ_CHECK(parse_rfc3339(std::string_view(buf, n), back) == TimestampError::ok);
  FUZZ_CHECK(back == ns);
  return 0;
}
