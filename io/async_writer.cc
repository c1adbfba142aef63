#include "io/async_writer.h"

#include <cerrno>
#include <utility>

namespace sluice {

bool AsyncWriter::start(Ring& ring) {
  if (in_flight_ || fill_.empty() || error_ != 0) return false;
  std::swap(fill_, flight_);
  flight_off_ = 0;
  submit(ring);
  return true;
}

void AsyncWriter::submit(Ring& ring) {
  io_uring_sqe* sqe = ring.sqe();
  // Offset -1: use and advance the file position (and append under O_APPEND);
  // works for regular files, pipes and terminals alike.
  io_uring_prep_write(sqe, fd_, flight_.data() + flight_off_, unsigned(flight_.size() - flight_off_),
                      uint64_t(-1));
  io_uring_sqe_set_data64(sqe, user_data_);
  in_flight_ = true;
  ++writes_;
}

void AsyncWriter::on_complete(Ring& ring, int res) {
  in_flight_ = false;
  if (res == -EAGAIN || res == -EINTR) {
    submit(ring);
    return;
  }
  if (res < 0) {
    error_ = -res;
    flight_.clear();
    fill_.clear();
    return;
  }
  bytes_written_ += uint64_t(res);
  flight_off_ += size_t(res);
  if (flight_off_ < flight_.size()) {
    if (res == 0) {  // no progress at all: treat as a full device
      error_ = ENOSPC;
      return;
    }
    submit(ring);
    return;
  }
  flight_.clear();
}

}  // namespace sluice
