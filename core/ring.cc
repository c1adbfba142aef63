#include "core/ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/assert.h"

namespace sluice {

Ring::~Ring() { close(); }

void Ring::close() {
  if (initialised_) io_uring_queue_exit(&ring_);
  initialised_ = false;
}

std::expected<void, std::string> Ring::init(unsigned entries) {
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc == -EINVAL) {
    // Kernels before 6.1 lack DEFER_TASKRUN (and before 6.0 SINGLE_ISSUER).
    p = io_uring_params{};
    p.flags = IORING_SETUP_COOP_TASKRUN;
    rc = io_uring_queue_init_params(entries, &ring_, &p);
    if (rc == -EINVAL) {
      p = io_uring_params{};
      rc = io_uring_queue_init_params(entries, &ring_, &p);
    }
  } else if (rc == 0) {
    single_issuer_ = true;
  }
  if (rc < 0) return std::unexpected(std::string("io_uring_queue_init: ") + std::strerror(-rc));
  initialised_ = true;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring_)) {
    has_msg_ring_ = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
    io_uring_free_probe(probe);
  }
  if (!(p.features & IORING_FEAT_EXT_ARG)) {
    return std::unexpected("kernel too old: io_uring lacks IORING_FEAT_EXT_ARG (needs 5.11+)");
  }
  return {};
}

io_uring_sqe* Ring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s == nullptr) {
    int n = io_uring_submit(&ring_);
    if (n > 0) submissions_ += uint64_t(n);
    s = io_uring_get_sqe(&ring_);
    SLUICE_ASSERT(s != nullptr);
  }
  return s;
}

void Ring::poll() {
  int n = io_uring_submit_and_get_events(&ring_);
  if (n > 0) submissions_ += uint64_t(n);
}

void Ring::wait(int64_t timeout_ns) {
  __kernel_timespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
  unsigned queued = io_uring_sq_ready(&ring_);
  io_uring_cqe* cqe = nullptr;
  int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  if (rc >= 0) submissions_ += queued;  // rc is not the submit count on every path
}

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    if (ring_ != nullptr && ring_->open()) io_uring_unregister_buf_ring(ring_->raw(), group_);
    munmap(br_, br_bytes_);
  }
  std::free(slab_);
}

std::expected<void, std::string> BufferRing::init(Ring& ring, uint16_t group, uint32_t count,
                                                  uint32_t buffer_bytes, uint32_t padding) {
  SLUICE_ASSERT(count > 0 && (count & (count - 1)) == 0 && count <= 32768);
  ring_ = &ring;
  group_ = group;
  count_ = count;
  buffer_bytes_ = buffer_bytes;
  stride_ = (size_t(buffer_bytes) + padding + 63) & ~size_t(63);
  slab_ = static_cast<char*>(std::aligned_alloc(64, stride_ * count));
  if (slab_ == nullptr) return std::unexpected("out of memory for receive buffers");
  // Only the padding after each buffer is cleared: the buffers themselves
  // become resident when the kernel first receives into them, so a shard
  // that never reads a socket does not pay for them.
  for (uint32_t i = 0; i < count; ++i) std::memset(slab_ + size_t(i) * stride_ + buffer_bytes, 0, stride_ - buffer_bytes);
  br_bytes_ = count * sizeof(io_uring_buf);
  void* mem = mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return std::unexpected(std::string("mmap buffer ring: ") + std::strerror(errno));
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group;
  int rc = io_uring_register_buf_ring(ring.raw(), &reg, 0);
  if (rc < 0) {
    munmap(br_, br_bytes_);
    br_ = nullptr;
    return std::unexpected(std::string("io_uring_register_buf_ring: ") + std::strerror(-rc));
  }
  for (uint32_t i = 0; i < count; ++i) recycle(uint16_t(i));
  publish();
  return {};
}

void BufferRing::recycle(uint16_t id) {
  io_uring_buf_ring_add(br_, buffer(id), buffer_bytes_, id, io_uring_buf_ring_mask(count_),
                        int(pending_));
  ++pending_;
}

void BufferRing::publish() {
  if (pending_ == 0) return;
  io_uring_buf_ring_advance(br_, int(pending_));
  available_ += pending_;
  pending_ = 0;
}

}  // namespace sluice
