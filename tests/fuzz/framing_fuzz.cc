// Framing: any bytes, chunked anywhere, with refusals anywhere, give the same
// lines as a plain reference splitter.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "operators/framing.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice;

namespace {
struct Out {
  std::string text;
  bool too_long;
  uint64_t total;
  bool operator==(const Out&) const = default;
};

std::vector<Out> reference(const std::string& s, size_t max) {
  std::vector<Out> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t nl = s.find('\n', start);
    bool last = nl == std::string::npos;
    size_t end = last ? s.size() : nl;
    std::string line = s.substr(start, end - start);
    if (!last || !line.empty()) {
      if (line.size() > max) {
        out.push_back({line.substr(0, std::min(kTooLongPrefixBytes, max)), true, line.size()});
      } else {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) out.push_back({line, false, line.size()});
      }
    }
    if (last) break;
    start = nl + 1;
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  size_t max = 64 + data[0] % 64;        // small limit so too_long paths are reached
  uint32_t chunk_seed = data[1];
  // 0: never refuse; otherwise refuse every 2nd..4th offer (a refused line is offered again).
  uint32_t refuse_every = data[2] % 4 == 0 ? 0 : data[2] % 4 + 1;
  std::string input(reinterpret_cast<const char*>(data + 3), size - 3);
  // Lines delivered only at end of stream (finish) are compared separately.
  std::vector<Out> expected = reference(input, max);

  LineFramer framer{uint32_t(max)};
  std::vector<Out> got;
  uint32_t calls = 0;
  auto on_line = [&](const Line& l) {
    if (refuse_every != 0 && ++calls % refuse_every == 0) return false;
    got.push_back({std::string(l.text), l.too_long, l.total_bytes});
    return true;
  };
  std::vector<char> buf(input.begin(), input.end());
  buf.resize(input.size() + kLinePadding, '\0');  // the framer reads up to kLinePadding past a chunk
  size_t pos = 0;
  uint32_t x = chunk_seed * 2654435761u + 1;
  while (pos < input.size()) {
    x = x * 1103515245u + 12345u;
    size_t len = 1 + (x >> 16) % 97;
    if (len > input.size() - pos) len = input.size() - pos;
    // Each chunk is fed until consumed (a refused line is offered again).
    size_t done = 0;
    for (int guard = 0; done < len; ++guard) {
      FUZZ_CHECK(guard < 100000);
      done += framer.feed(buf.data() + pos + done, len - done, on_line);
    }
    pos += len;
  }
  uint64_t partial = 0;
  while (!framer.finish(true, on_line, partial)) {
  }
  // With finish(true), the trailing unterminated line is delivered too, as
  // the reference does for the last segment.
  FUZZ_CHECK(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    FUZZ_CHECK(got[i] == expected[i]);
  }
  return 0;
}
