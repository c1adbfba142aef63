// RESP (the Redis serialization protocol, version 2): commands as arrays of
// bulk strings, and a reply reader for what a server sends back. Sluice's
// Redis sink speaks it itself on the shard's io_uring (no client library).
//
// The reader takes bytes from a peer that may be hostile: every length is
// checked against what is there and against bounds, nesting is limited, and
// anything that is not RESP is reported as malformed, never trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::resp {

// Bytes of "*<n>\r\n" / "$<n>\r\n" headers at most (a 20-digit count).
constexpr size_t kHeaderBytesMax = 24;
// Nesting of arrays a reply may have (Sluice's commands get none).
constexpr int kDepthMax = 8;
// Elements and bulk bytes a reply may announce.
constexpr int64_t kArrayMax = 1 << 20;
constexpr int64_t kBulkMax = 512ll << 20;  // Redis's own proto-max-bulk-len default

// Writers: each returns the bytes written at out (which must have room:
// kHeaderBytesMax for a header, kHeaderBytesMax + 2 + s.size() for a bulk).
size_t write_array_header(size_t elements, char* out);
size_t write_bulk(std::string_view s, char* out);
inline constexpr size_t bulk_bytes_max(size_t len) { return kHeaderBytesMax + len + 2; }

struct Reply {
  enum class Type : uint8_t { simple, error, integer, bulk, null, array };
  Type type = Type::null;
  // simple and error: the line; bulk: the bytes; array: empty.
  std::string_view text;
  int64_t integer = 0;  // integer; array: elements
};

enum class ParseStatus : uint8_t { complete, incomplete, malformed };

// Reads one whole reply from the start of `in`: complete (reply and
// *consumed set; an array's elements are checked and skipped), incomplete
// (more bytes needed), or malformed.
ParseStatus parse_reply(std::string_view in, Reply& reply, size_t& consumed);

// The error's first word ("WRONGTYPE", "LOADING", "ERR").
std::string_view error_code(std::string_view error_line);
// Errors that heal by themselves (a server loading its data set, busy with
// a script, a replica, out of memory for now, a primary being down): the
// command is sent again after a back-off.
bool transient_error(std::string_view error_line);

}  // namespace sluice::resp
