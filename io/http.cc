#include "io/http.h"

#include <charconv>

#include "core/assert.h"

namespace sluice {

namespace {

// RFC 9110 §5.6.2 tchar.
bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
}

bool all_tchar(std::string_view s) {
  for (char c : s) {
    if (!is_tchar(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// A byte of a request-target: visible ASCII, no fragment.
bool is_target_byte(unsigned char c) {
  return c >= 0x21 && c <= 0x7E && c != '#';
}

// A byte of a header field value: HTAB, SP, VCHAR, obs-text.
bool is_field_value_byte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7F);
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
}

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

// The line's content without its terminator: a trailing CR goes (CRLF), any
// other CR stays and fails the byte checks below.
std::string_view strip_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Could `partial`, the start of a request line with no LF yet (and without
// the CR that may end it), still become a valid one? Only the byte classes are checked: enough to
// refuse binary garbage (a TLS hello, say) at once rather than after 8 KiB.
bool plausible_request_line(std::string_view partial) {
  for (char ch : partial) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7E) return false;
  }
  return true;
}

// Checks a header field line, whole (`complete`) or as read so far (then
// without the CR that may end it).
bool valid_header_line(std::string_view line, bool complete) {
  if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) return false;  // obs-fold
  size_t colon = line.find(':');
  std::string_view name = line.substr(0, colon);
  if (!all_tchar(name)) return false;
  if (colon == std::string_view::npos) return !complete;
  if (colon == 0) return false;
  std::string_view value = line.substr(colon + 1);
  for (char c : value) {
    if (!is_field_value_byte(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Fills path and query from the request-target. False when it is none of
// origin-form, absolute-form (http/https) or asterisk-form.
bool split_target(std::string_view target, HttpRequest& req) {
  for (char c : target) {
    if (!is_target_byte(static_cast<unsigned char>(c))) return false;
  }
  std::string_view rest;
  if (target[0] == '/') {
    rest = target;
  } else if (target == "*") {
    req.path = target;
    req.query = target.substr(target.size());  // empty, but still inside the input
    return true;
  } else {
    size_t scheme;
    if (starts_with_nocase(target, "http://")) {
      scheme = 7;
    } else if (starts_with_nocase(target, "https://")) {
      scheme = 8;
    } else {
      return false;
    }
    size_t authority_end = target.find_first_of("/?", scheme);
    if (authority_end == std::string_view::npos) authority_end = target.size();
    if (authority_end == scheme) return false;  // no host
    rest = target.substr(authority_end);
  }
  size_t q = rest.find('?');
  if (q == std::string_view::npos) {
    req.path = rest;
    req.query = rest.substr(rest.size());  // empty, but still inside the input
  } else {
    req.path = rest.substr(0, q);
    req.query = rest.substr(q + 1);
  }
  return true;
}

// method SP request-target SP HTTP-version, one SP each.
bool parse_request_line(std::string_view line, HttpRequest& req) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return false;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return false;
  req.method_token = line.substr(0, sp1);
  req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!all_tchar(req.method_token)) return false;
  if (version.size() != 8 || !version.starts_with("HTTP/1.") || version[7] < '0' ||
      version[7] > '9') {
    return false;
  }
  req.version_minor = uint8_t(version[7] - '0');
  if (req.method_token == "GET") {
    req.method = HttpMethod::get;
  } else if (req.method_token == "HEAD") {
    req.method = HttpMethod::head;
  } else {
    req.method = HttpMethod::other;
  }
  return split_target(req.target, req);
}

}  // namespace

const char* to_string(ParseStatus s) {
  switch (s) {
    case ParseStatus::complete:
      return "complete";
    case ParseStatus::need_more:
      return "need more bytes";
    case ParseStatus::bad_request:
      return "bad request";
    case ParseStatus::too_large:
      return "request head too large";
  }
  return "unknown parse status";
}

ParseStatus parse_request(std::string_view bytes, HttpRequest& out) {
  // Only the first kHttpRequestHeadBytesMax bytes count; when they are all
  // there and hold no verdict, no later byte can give one within the limit.
  std::string_view in = bytes.substr(0, kHttpRequestHeadBytesMax);
  const bool window_full = bytes.size() >= kHttpRequestHeadBytesMax;
  const ParseStatus unfinished = window_full ? ParseStatus::too_large : ParseStatus::need_more;

  size_t pos = 0;
  std::string_view request_line;
  for (;;) {  // empty lines before the request line are skipped (RFC 9112 §2.2)
    size_t lf = in.find('\n', pos);
    if (lf == std::string_view::npos) {
      return plausible_request_line(strip_cr(in.substr(pos))) ? unfinished
                                                              : ParseStatus::bad_request;
    }
    request_line = strip_cr(in.substr(pos, lf - pos));
    pos = lf + 1;
    if (!request_line.empty()) break;
  }
  HttpRequest req;
  if (!parse_request_line(request_line, req)) return ParseStatus::bad_request;

  for (;;) {
    size_t lf = in.find('\n', pos);
    if (lf == std::string_view::npos) {
      return valid_header_line(strip_cr(in.substr(pos)), false) ? unfinished
                                                                : ParseStatus::bad_request;
    }
    std::string_view line = strip_cr(in.substr(pos, lf - pos));
    pos = lf + 1;
    if (line.empty()) break;
    if (!valid_header_line(line, true)) return ParseStatus::bad_request;
  }
  req.head_bytes = pos;
  out = req;
  return ParseStatus::complete;
}

std::string_view http_reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

void build_response(int status, std::string_view content_type, std::string_view body,
                    std::string& out, ResponseBody mode) {
  SLUICE_ASSERT(status >= 200);
  SLUICE_ASSERT(status <= 599);
  SLUICE_ASSERT(status != 204);
  SLUICE_ASSERT(status != 304);
  SLUICE_DASSERT(content_type.find_first_of("\r\n") == std::string_view::npos);
  // Status line and headers fit in this with the longest phrase and type we send.
  constexpr size_t kHeadBytesReserve = 192;
  out.clear();
  out.reserve(kHeadBytesReserve + content_type.size() + body.size());
  char digits[24];
  out += "HTTP/1.1 ";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, status).ptr);
  out += ' ';
  out += http_reason_phrase(status);
  out += "\r\n";
  if (!content_type.empty()) {
    out += "Content-Type: ";
    out += content_type;
    out += "\r\n";
  }
  out += "Content-Length: ";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, body.size()).ptr);
  out += "\r\n";
  if (status == 405) out += "Allow: GET, HEAD\r\n";
  out += "Connection: close\r\n\r\n";
  if (mode == ResponseBody::include) out += body;
}

}  // namespace sluice
