// Writes a byte stream to one file descriptor through the owning shard's
// ring: producers append to the fill buffer; start() hands the filled bytes
// to the kernel as one write while a second buffer takes new bytes. At most
// one write is in flight, so bytes reach the fd in order. Both buffers are
// allocated once.
//
// Short writes continue from where they stopped. A regular file is written at
// explicit offsets that this writer keeps itself (io_uring does not advance
// the file position reliably after a short buffered write: on a full tmpfs,
// later writes at "the current position" overwrote the file's tail and
// reported success). Pipes, terminals and O_APPEND files use the stream
// position (offset -1), which the kernel keeps for them.
//
// The first failed write (ENOSPC, EIO, EFBIG, EPIPE...) ends the writer: it
// keeps the errno, writes nothing more, and remembers how much of the failed
// buffer did reach the fd, so its owner can say exactly what was written; the
// owner then discards the fill buffer (after counting what it held).
//
// Owned by one shard; used by result sinks (on the gatherer shard) and by
// each shard's dead-letter output.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "core/byte_buffer.h"
#include "core/ring.h"

namespace sluice {

// A fault-injection seam for tests (in the spirit of leveldb's
// fault_injection_test): each write submits at most write_bytes_max bytes
// (short writes), and the stream fails with fail_errno once fail_at_byte bytes
// have been written (the write that would cross it is cut there first, as a
// filling disk does). Defaults: no fault.
struct WriteFaults {
  size_t write_bytes_max = 0;           // 0: no cap
  uint64_t fail_at_byte = UINT64_MAX;   // stream offset (bytes written by this writer)
  int fail_errno = 28;                  // ENOSPC
};

// Opens (creating it and its directory if needed) a file to write output to:
// truncated, or kept for appending. No O_APPEND even when appending: the
// writer keeps its own offset from the file's size at start. Errors name
// `what` and the path.
std::expected<int, std::string> open_output_file(const std::string& path, bool append, std::string_view what);

class AsyncWriter {
 public:
  // offset: where the first byte goes in a regular file (0 after truncation,
  // the file size when appending), or -1 to use the fd's own position.
  AsyncWriter(int fd, size_t buffer_bytes, uint64_t user_data, int64_t offset = -1)
      : fd_(fd), user_data_(user_data), offset_(offset), fill_(buffer_bytes), flight_(buffer_bytes) {}

  // The offset to pass for fd: its current size for a regular file not opened
  // with O_APPEND, -1 otherwise (pipes, terminals, sockets, O_APPEND files).
  static int64_t offset_for(int fd);

  ByteBuffer& fill() { return fill_; }
  bool in_flight() const { return in_flight_; }
  // Nothing buffered, nothing in flight.
  bool idle() const { return !in_flight_ && fill_.empty(); }
  // Errno of the first failed write, 0 if none. After a failure nothing more is written.
  int error() const { return error_; }
  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t writes() const { return writes_; }
  // After a failure: the bytes of the failed buffer that did reach the fd
  // (a prefix of it), and the ones that did not.
  std::string_view failed_written() const { return {flight_.data(), flight_off_}; }
  std::string_view failed_unwritten() const {
    return {flight_.data() + flight_off_, flight_.size() - flight_off_};
  }

  // Starts writing the fill buffer if it holds bytes and no write is in flight.
  // Returns true if a write was started.
  bool start(Ring& ring);
  // Completion of this writer's write (res = cqe.res). Returns true when the
  // buffer that was in flight has now been written completely.
  bool on_complete(Ring& ring, int res);

  void set_faults(const WriteFaults& f) { faults_ = f; }

 private:
  void submit(Ring& ring);
  void fail(int err);

  int fd_;
  uint64_t user_data_;
  int64_t offset_;  // next file offset, or -1
  ByteBuffer fill_;
  ByteBuffer flight_;
  size_t flight_off_ = 0;
  bool in_flight_ = false;
  int error_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t writes_ = 0;
  WriteFaults faults_;
  bool fault_pending_ = false;  // the write in flight is the injected failure
};

}  // namespace sluice
