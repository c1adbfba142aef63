// HTTP request heads: any bytes parse to a verdict without crashing; the
// views of a complete head lie inside the input and inside the head; the
// verdict does not change when bytes are appended after a complete or bad
// head; the bytes before a complete head's end only need more.
#include <cstdint>
#include <string>
#include <string_view>

#include "io/http.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpRequest r;
  ParseStatus status = parse_request(in, r);
  std::string appended(in);
  appended += "GET / HTTP/1.1\r\n\r\n\x01";
  HttpRequest again;

  switch (status) {
    case ParseStatus::complete: {
      FUZZ_CHECK(r.head_bytes > 0);
      FUZZ_CHECK(r.head_bytes <= size);
      FUZZ_CHECK(r.head_bytes <= kHttpRequestHeadBytesMax);
      std::string_view head = in.substr(0, r.head_bytes);
      FUZZ_CHECK(head.ends_with("\n\n") || head.ends_with("\n\r\n"));
      for (std::string_view v : {r.method_token, r.target, r.path, r.query}) {
        FUZZ_CHECK(inside(v, head));
      }
      FUZZ_CHECK(!r.method_token.empty());
      FUZZ_CHECK(!r.target.empty());
      FUZZ_CHECK(inside(r.path, r.target));
      FUZZ_CHECK(inside(r.query, r.target));
      FUZZ_CHECK(r.version_minor <= 9);
      FUZZ_CHECK((r.method == HttpMethod::get) == (r.method_token == "GET"));
      FUZZ_CHECK((r.method == HttpMethod::head) == (r.method_token == "HEAD"));
      // The head alone gives the same request; one byte less needs more.
      HttpRequest alone;
      FUZZ_CHECK(parse_request(head, alone) == ParseStatus::complete);
      FUZZ_CHECK(alone.head_bytes == r.head_bytes);
      FUZZ_CHECK(alone.target.data() == r.target.data() && alone.target == r.target);
      HttpRequest shorter;
      FUZZ_CHECK(parse_request(head.substr(0, head.size() - 1), shorter) == ParseStatus::need_more);
      FUZZ_CHECK(parse_request(appended, again) == ParseStatus::complete);
      FUZZ_CHECK(again.head_bytes == r.head_bytes);
      // The response builder takes whatever the request carried.
      std::string out;
      build_response(r.method == HttpMethod::other ? 405 : 404, "text/plain", r.path, out,
                     r.method == HttpMethod::head ? ResponseBody::omit : ResponseBody::include);
      FUZZ_CHECK(out.starts_with("HTTP/1.1 "));
      break;
    }
    case ParseStatus::bad_request:
    case ParseStatus::too_large:
      FUZZ_CHECK(parse_request(appended, again) == status);
      break;
    case ParseStatus::need_more:
      FUZZ_CHECK(size < kHttpRequestHeadBytesMax);
      break;
  }
  return 0;
}
