#include "io/async_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

namespace sluice {

std::expected<int, std::string> open_output_file(const std::string& path, bool append, std::string_view what) {
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? 0 : O_TRUNC);
  const int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return std::unexpected(std::string(what) + ": cannot open " + path + ": " + std::strerror(errno));
  return fd;
}

int64_t AsyncWriter::offset_for(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (fl & O_APPEND)) return -1;
  return int64_t(st.st_size);
}

bool AsyncWriter::start(Ring& ring) {
  if (in_flight_ || fill_.empty() || error_ != 0) return false;
  std::swap(fill_, flight_);
  fill_.clear();
  flight_off_ = 0;
  submit(ring);
  return true;
}

void AsyncWriter::submit(Ring& ring) {
  size_t len = flight_.size() - flight_off_;
  if (faults_.write_bytes_max > 0) len = std::min(len, faults_.write_bytes_max);
  if (faults_.fail_at_byte != UINT64_MAX) {
    uint64_t room = faults_.fail_at_byte > bytes_written_ ? faults_.fail_at_byte - bytes_written_ : 0;
    if (room == 0) {
      // The injected fault arrives as a completion, like a real one: a no-op
      // whose result on_complete() replaces with the errno.
      io_uring_sqe* sqe = ring.sqe();
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, user_data_);
      in_flight_ = true;
      fault_pending_ = true;
      return;
    }
    len = size_t(std::min<uint64_t>(len, room));
  }
  io_uring_sqe* sqe = ring.sqe();
  // Regular files: at our own offset. Otherwise offset -1, the fd's position
  // (and the end of the file under O_APPEND).
  io_uring_prep_write(sqe, fd_, flight_.data() + flight_off_, unsigned(len),
                      offset_ >= 0 ? uint64_t(offset_) : uint64_t(-1));
  io_uring_sqe_set_data64(sqe, user_data_);
  in_flight_ = true;
  ++writes_;
}

void AsyncWriter::fail(int err) {
  error_ = err;
  in_flight_ = false;
}

bool AsyncWriter::on_complete(Ring& ring, int res) {
  in_flight_ = false;
  if (fault_pending_) {
    fault_pending_ = false;
    res = -faults_.fail_errno;
  }
  if (res == -EAGAIN || res == -EINTR) {
    submit(ring);
    return false;
  }
  if (res < 0) {
    fail(-res);
    return false;
  }
  if (res == 0 && flight_off_ < flight_.size()) {
    fail(ENOSPC);  // no progress at all: treat as a full device
    return false;
  }
  bytes_written_ += uint64_t(res);
  flight_off_ += size_t(res);
  if (offset_ >= 0) offset_ += res;
  if (flight_off_ < flight_.size()) {
    submit(ring);  // a short write: the rest, from where it stopped
    return false;
  }
  flight_.clear();
  flight_off_ = 0;
  return true;
}

}  // namespace sluice
