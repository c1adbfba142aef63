// HTTP/1.1 for the metrics endpoint: a request-head parser and a response
// builder. Pure functions over buffers: no sockets, no allocation in the
// parser, no exceptions. The server that uses them answers one request per
// connection (`Connection: close`), so keep-alive, pipelining and request
// bodies never need handling: bytes after the head are not looked at.
//
// What parse_request accepts (RFC 9112, narrowed to what a scraper sends):
//   request-line  = method SP request-target SP "HTTP/1." DIGIT
//   method        = token (any: the caller answers 405 to all but GET/HEAD)
//   request-target= origin-form ("/path[?query]"), absolute-form
//                   ("http[s]://host[:port][/path][?query]") or "*"; bytes 0x21..0x7E
//                   except '#' (a fragment is never sent)
//   header fields = field-name ":" OWS value OWS, field-name a token, value
//                   without control bytes other than HTAB; no obs-fold
//   end of head   = an empty line
// Lines end in CRLF or a bare LF (tolerated, RFC 9112 §2.2); a bare CR is
// refused. Empty lines before the request line are skipped (§2.2).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

// Longest request head accepted, request line and headers included, in bytes.
// A scraper's head is a few hundred bytes; 8 KiB is what most servers allow
// (nginx's large_client_header_buffers, Go's net/http default is 1 MiB) and
// bounds the work of re-parsing a partial head on every read.
constexpr size_t kHttpRequestHeadBytesMax = 8 * 1024;

enum class ParseStatus : uint8_t {
  complete,     ///< a whole, well-formed head: `out` is filled
  need_more,    ///< a well-formed prefix of a head: read more and call again
  bad_request,  ///< malformed (answer 400); more bytes cannot fix it
  too_large,    ///< no end of head within kHttpRequestHeadBytesMax (answer 431)
};

const char* to_string(ParseStatus s);

enum class HttpMethod : uint8_t { get, head, other };

// Views into the bytes given to parse_request: valid as long as they are.
struct HttpRequest {
  HttpMethod method = HttpMethod::other;
  std::string_view method_token;  ///< as sent, e.g. "GET", "POST"
  std::string_view target;        ///< the request-target as sent
  std::string_view path;          ///< target up to '?'; absolute-form: from the path on
                                  ///< (empty for "http://host", which means "/")
  std::string_view query;         ///< after the first '?', without it; empty when none
  uint8_t version_minor = 1;      ///< HTTP/1.x
  size_t head_bytes = 0;          ///< bytes of the head, up to and including the empty line
};

// Parses the request head at the start of `bytes`. Stateless: call it again
// with the whole buffer after each read (at most kHttpRequestHeadBytesMax bytes
// are looked at, so the re-parsing is bounded). `out` is written only when
// the result is `complete`. Verdicts are monotonic in the input: once a
// prefix gives bad_request, too_large or complete, every longer input with
// that prefix gives the same.
[[nodiscard]] ParseStatus parse_request(std::string_view bytes, HttpRequest& out);

// The reason phrase of the status codes the endpoint sends ("OK", "Not
// Found", ...); empty for others (the phrase is optional in HTTP/1.1).
std::string_view http_reason_phrase(int status);

enum class ResponseBody : uint8_t {
  include,  ///< GET and everything else
  omit,     ///< HEAD: the headers of a GET, Content-Length included, without the body
};

// Replaces `out` with a complete HTTP/1.1 response: status line, Content-Type
// (omitted when empty), Content-Length, `Connection: close`, and for 405
// `Allow: GET, HEAD` (which RFC 9110 §15.5.6 requires), then the body.
// No Date header: the builder is pure, and an origin server without a clock
// reference may omit it. Allocates only when `out` lacks the capacity.
// REQUIRES: 200 <= status <= 599, not 204 or 304 (which carry no body and no
// Content-Length: the endpoint never sends them); content_type holds no CR or LF.
void build_response(int status, std::string_view content_type, std::string_view body,
                    std::string& out, ResponseBody mode = ResponseBody::include);

}  // namespace sluice
