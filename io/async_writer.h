// Writes a byte stream to one file descriptor through the owning shard's
// ring: producers append to the fill buffer; start() hands the filled bytes
// to the kernel as one write while a second buffer takes new bytes. At most
// one write is in flight, so bytes reach the fd in order. Short writes are
// resubmitted. Both buffers are allocated once.
//
// Owned by one shard; used by result sinks (on the gatherer shard) and by
// each shard's dead-letter output.
#pragma once

#include <cstdint>

#include "core/byte_buffer.h"
#include "io/ring.h"

namespace sluice {

class AsyncWriter {
 public:
  AsyncWriter(int fd, size_t buffer_bytes, uint64_t user_data)
      : fd_(fd), user_data_(user_data), fill_(buffer_bytes), flight_(buffer_bytes) {}

  ByteBuffer& fill() { return fill_; }
  bool in_flight() const { return in_flight_; }
  // Nothing buffered, nothing in flight.
  bool idle() const { return !in_flight_ && fill_.empty(); }
  // Errno of the first failed write, 0 if none. After a failure nothing more is written.
  int error() const { return error_; }
  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t writes() const { return writes_; }

  // Starts writing the fill buffer if it holds bytes and no write is in flight.
  // Returns true if a write was started.
  bool start(Ring& ring);
  // Completion of this writer's write (res = cqe.res).
  void on_complete(Ring& ring, int res);

 private:
  void submit(Ring& ring);

  int fd_;
  uint64_t user_data_;
  ByteBuffer fill_;
  ByteBuffer flight_;
  size_t flight_off_ = 0;
  bool in_flight_ = false;
  int error_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t writes_ = 0;
};

}  // namespace sluice
