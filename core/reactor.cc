#include "core/reactor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice {

Reactor::Reactor()
    : eventfd_read_(Completion::to<&Reactor::on_eventfd>(this)),
      woken_{[](void*, const io_uring_cqe&) {}, nullptr} {}

Reactor::~Reactor() { close(); }

void Reactor::close() {
  // First the ring: its pending eventfd read points into this object.
  ring_.close();
  if (event_fd_ >= 0) ::close(event_fd_);
  event_fd_ = -1;
}

std::expected<void, std::string> Reactor::init(unsigned ring_entries) {
  if (auto ok = ring_.init(ring_entries); !ok) return ok;
  event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (event_fd_ < 0) return std::unexpected(std::string("eventfd: ") + std::strerror(errno));
  now_ = monotonic_ns();
  return {};
}

void Reactor::start() { arm_eventfd(); }

void Reactor::arm_eventfd() {
  io_uring_sqe* sqe = ring_.sqe();
  io_uring_prep_read(sqe, event_fd_, &event_fd_value_, sizeof event_fd_value_, 0);
  io_uring_sqe_set_data64(sqe, eventfd_read_.user_data());
}

void Reactor::on_eventfd(const io_uring_cqe&) { arm_eventfd(); }

void Reactor::external_wake() {
  uint64_t one = 1;
  ssize_t rc = ::write(event_fd_, &one, sizeof one);
  (void)rc;  // EAGAIN means the counter is already non-zero: a wake is pending anyway
}

void Reactor::wake(Reactor& t) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!t.sleeping_.load(std::memory_order_relaxed)) return;
  if (t.wake_pending_.exchange(true)) return;
  if (ring_.has_msg_ring()) {
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_msg_ring(sqe, t.ring_.fd(), 0, t.woken_.user_data(), 0);
    io_uring_sqe_set_data64(sqe, kNoCompletion);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  } else {
    t.external_wake();
  }
}

}  // namespace sluice
