// RESP replies from a Redis server (io/redis/resp.h): any bytes are a
// complete reply, incomplete or malformed, without crashing; a complete
// reply's length is within the input, and reading it again from a copy cut
// right after it gives the same reply and length (nothing read past it).
#include <cstdint>
#include <string>
#include <string_view>

#include "io/redis/resp.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  // A stream of replies, as the sink reads them.
  while (!in.empty()) {
    resp::Reply reply;
    size_t consumed = 0;
    const resp::ParseStatus s = resp::parse_reply(in, reply, consumed);
    if (s != resp::ParseStatus::complete) return 0;
    FUZZ_CHECK(consumed > 0 && consumed <= in.size());
    const std::string cut(in.substr(0, consumed));
    resp::Reply again;
    size_t consumed_again = 0;
    FUZZ_CHECK(resp::parse_reply(cut, again, consumed_again) == resp::ParseStatus::complete);
    FUZZ_CHECK(consumed_again == consumed && again.type == reply.type);
    // A proper prefix is never complete (so a reply is never taken early).
    if (consumed > 1) {
      resp::Reply partial;
      size_t n = 0;
      FUZZ_CHECK(resp::parse_reply(in.substr(0, consumed - 1), partial, n) != resp::ParseStatus::complete);
    }
    (void)resp::transient_error(reply.text);
    in.remove_prefix(consumed);
  }
  return 0;
}
