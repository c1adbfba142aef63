// Dead-letter records: any raw bytes give one valid JSON line, within the
// declared size bound, whose raw (or raw_base64) gives the bytes back.
#include <simdjson.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "operators/dead_letter.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice;

namespace {
std::string base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = val(c);
    if (v < 0) break;
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  bool truncated = size > 0 && data[0] == 't';
  DeadLetter d{DeadLetterReason(size % kDeadLetterReasons), "detail \"x\"", "src", "127.0.0.1:1", raw,
               truncated, size};
  std::vector<char> out(dead_letter_bytes_max(d));
  size_t n = encode_dead_letter(d, out.data());
  FUZZ_CHECK(n <= out.size());
  FUZZ_CHECK(n > 0 && out[n - 1] == '\n');
  FUZZ_CHECK(std::memchr(out.data(), '\n', n - 1) == nullptr);  // one line
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  FUZZ_CHECK(parser.parse(out.data(), n - 1).get(doc) == simdjson::SUCCESS);
  std::string_view text;
  if (doc["raw"].get(text) == simdjson::SUCCESS) {
    if (truncated) {
      FUZZ_CHECK(raw.substr(0, text.size()) == text);  // a prefix, cut at a UTF-8 boundary
      FUZZ_CHECK(raw.size() - text.size() <= 5);  // at most one cut UTF-8 sequence
    } else {
      FUZZ_CHECK(text == raw);
    }
  } else {
    FUZZ_CHECK(doc["raw_base64"].get(text) == simdjson::SUCCESS);
    std::string bytes = base64_decode(text);
    FUZZ_CHECK(truncated ? raw.substr(0, bytes.size()) == bytes : bytes == raw);
  }
  return 0;
}
