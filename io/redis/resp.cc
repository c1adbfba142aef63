#include "io/redis/resp.h"

#include <charconv>
#include <cstring>

namespace sluice::resp {

namespace {

size_t write_header(char kind, size_t n, char* out) {
  out[0] = kind;
  const auto r = std::to_chars(out + 1, out + kHeaderBytesMax - 2, n);
  char* p = r.ptr;
  *p++ = '\r';
  *p++ = '\n';
  return size_t(p - out);
}

// The line at `at` without its CRLF; false if incomplete. A bare CR or LF
// inside the line is malformed.
enum class Line : uint8_t { ok, incomplete, malformed };
Line read_line(std::string_view in, size_t at, std::string_view& line, size_t& next) {
  const size_t lf = in.find('\n', at);
  if (lf == std::string_view::npos) {
    // A line longer than any reply Sluice can get is not worth waiting for.
    return in.size() - at > kBulkMax ? Line::malformed : Line::incomplete;
  }
  if (lf == at || in[lf - 1] != '\r') return Line::malformed;
  line = in.substr(at, lf - 1 - at);
  if (line.find('\r') != std::string_view::npos) return Line::malformed;
  next = lf + 1;
  return Line::ok;
}

bool parse_int(std::string_view s, int64_t& v) {
  if (s.empty()) return false;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

ParseStatus parse_at(std::string_view in, size_t at, int depth, Reply& reply, size_t& next) {
  if (at >= in.size()) return ParseStatus::incomplete;
  const char kind = in[at];
  std::string_view line;
  size_t after = 0;
  switch (read_line(in, at + 1, line, after)) {
    case Line::incomplete: return ParseStatus::incomplete;
    case Line::malformed: return ParseStatus::malformed;
    case Line::ok: break;
  }
  switch (kind) {
    case '+':
    case '-':
      reply.type = kind == '+' ? Reply::Type::simple : Reply::Type::error;
      reply.text = line;
      next = after;
      return ParseStatus::complete;
    case ':':
      if (!parse_int(line, reply.integer)) return ParseStatus::malformed;
      reply.type = Reply::Type::integer;
      reply.text = {};
      next = after;
      return ParseStatus::complete;
    case '$': {
      int64_t len;
      if (!parse_int(line, len) || len < -1 || len > kBulkMax) return ParseStatus::malformed;
      if (len == -1) {
        reply.type = Reply::Type::null;
        reply.text = {};
        next = after;
        return ParseStatus::complete;
      }
      if (in.size() - after < size_t(len) + 2) return ParseStatus::incomplete;
      if (in[after + size_t(len)] != '\r' || in[after + size_t(len) + 1] != '\n') return ParseStatus::malformed;
      reply.type = Reply::Type::bulk;
      reply.text = in.substr(after, size_t(len));
      next = after + size_t(len) + 2;
      return ParseStatus::complete;
    }
    case '*': {
      int64_t n;
      if (!parse_int(line, n) || n < -1 || n > kArrayMax) return ParseStatus::malformed;
      if (n == -1) {
        reply.type = Reply::Type::null;
        reply.text = {};
        next = after;
        return ParseStatus::complete;
      }
      if (depth >= kDepthMax) return ParseStatus::malformed;
      size_t p = after;
      for (int64_t i = 0; i < n; ++i) {
        Reply element;
        const ParseStatus s = parse_at(in, p, depth + 1, element, p);
        if (s != ParseStatus::complete) return s;
      }
      reply.type = Reply::Type::array;
      reply.text = {};
      reply.integer = n;
      next = p;
      return ParseStatus::complete;
    }
    default:
      return ParseStatus::malformed;
  }
}

}  // namespace

size_t write_array_header(size_t elements, char* out) { return write_header('*', elements, out); }

size_t write_bulk(std::string_view s, char* out) {
  size_t n = write_header('$', s.size(), out);
  std::memcpy(out + n, s.data(), s.size());
  n += s.size();
  out[n++] = '\r';
  out[n++] = '\n';
  return n;
}

ParseStatus parse_reply(std::string_view in, Reply& reply, size_t& consumed) {
  size_t next = 0;
  const ParseStatus s = parse_at(in, 0, 0, reply, next);
  if (s == ParseStatus::complete) consumed = next;
  return s;
}

std::string_view error_code(std::string_view error_line) {
  const size_t space = error_line.find(' ');
  return error_line.substr(0, space);
}

bool transient_error(std::string_view error_line) {
  const std::string_view code = error_code(error_line);
  return code == "LOADING" || code == "BUSY" || code == "READONLY" || code == "OOM" || code == "TRYAGAIN" ||
         code == "MASTERDOWN";
}

}  // namespace sluice::resp
