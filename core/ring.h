// A thin owner of one io_uring, plus a provided-buffer ring.
//
// One Ring per shard, used only by that shard's thread (the ring is created
// with IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN when the kernel
// has them: completions are then processed only when this thread enters the
// kernel, which is exactly when the shard loop wants them).
//
// user_data of every request is the address of its Completion (or 0: a
// completion nobody waits for); whoever owns the ring dispatches by calling
// it (see core/reactor.h). The ring knows no subsystem.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <expected>
#include <string>

namespace sluice {

// What to do when one io_uring operation completes: fn(ctx, cqe). The
// address of the Completion travels in the request's user_data, so routing a
// completion is one indirect call, with no table and no scan. A Completion
// must stay where it is (and alive) while an operation that names it is in
// flight; owners embed one per kind of operation they issue.
struct Completion {
  using Fn = void (*)(void* ctx, const io_uring_cqe& cqe);
  Fn fn = nullptr;
  void* ctx = nullptr;

  // A Completion that calls (owner->*Method)(cqe).
  template <auto Method, typename T>
  static Completion to(T* owner) {
    return {[](void* c, const io_uring_cqe& cqe) { (static_cast<T*>(c)->*Method)(cqe); }, owner};
  }
  uint64_t user_data() const { return reinterpret_cast<uintptr_t>(this); }
};

// A Completion for one of several objects of one owner (a connection slot,
// a sink, a buffer): calls (owner->*Method)(index, cqe). bind() points the
// completion at this object, so it must not move afterwards: keep it in
// storage that does not relocate (a member of a heap object, a vector sized
// once).
template <typename T>
struct IndexedCompletion {
  Completion completion;
  T* owner = nullptr;
  uint32_t index = 0;

  template <void (T::*Method)(uint32_t, const io_uring_cqe&)>
  void bind(T* o, uint32_t i) {
    owner = o;
    index = i;
    completion = {[](void* ctx, const io_uring_cqe& cqe) {
                    auto* self = static_cast<IndexedCompletion*>(ctx);
                    (self->owner->*Method)(self->index, cqe);
                  },
                  this};
  }
  uint64_t user_data() const { return completion.user_data(); }
};

// user_data of a request whose completion nobody waits for (a close, a
// msg_ring's own completion).
constexpr uint64_t kNoCompletion = 0;

// Calls the Completion a cqe names (nothing for kNoCompletion).
inline void dispatch(const io_uring_cqe& cqe) {
  if (cqe.user_data == kNoCompletion) return;
  const Completion* c = reinterpret_cast<const Completion*>(uintptr_t(cqe.user_data));
  c->fn(c->ctx, cqe);
}

class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // An error message on failure.
  std::expected<void, std::string> init(unsigned entries);
  // Tears the ring down (cancelling what is still pending). Idempotent; the
  // destructor calls it too. Call it before freeing memory that pending
  // operations point into.
  void close();
  bool open() const { return initialised_; }

  io_uring* raw() { return &ring_; }
  int fd() const { return ring_.ring_fd; }
  bool single_issuer() const { return single_issuer_; }
  bool has_msg_ring() const { return has_msg_ring_; }

  // A submission entry; submits what is queued when the SQ is full.
  io_uring_sqe* sqe();

  // Submits queued entries and processes completions without blocking.
  void poll();
  // Submits and waits for at least one completion or timeout_ns (>= 0).
  void wait(int64_t timeout_ns);

  // Calls f(const io_uring_cqe&) for every completion ready, then marks them seen.
  template <typename F>
  unsigned drain(F&& f) {
    unsigned head, n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      f(*cqe);
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
    completions_ += n;
    return n;
  }

  uint64_t submissions() const { return submissions_; }
  uint64_t completions() const { return completions_; }

 private:
  io_uring ring_{};
  bool initialised_ = false;
  bool single_issuer_ = false;
  bool has_msg_ring_ = false;
  uint64_t submissions_ = 0;
  uint64_t completions_ = 0;
};

// Buffers the kernel picks from when a recv completes (IOSQE_BUFFER_SELECT),
// registered with io_uring_register_buf_ring (liburing 2.3). Each buffer has
// `padding` extra readable bytes after its registered size, so parsers that
// read past the end (simdjson) stay inside the allocation.
class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // count must be a power of two <= 32768. An error message on failure.
  std::expected<void, std::string> init(Ring& ring, uint16_t group, uint32_t count, uint32_t buffer_bytes,
                                        uint32_t padding);
  uint16_t group() const { return group_; }
  char* buffer(uint16_t id) { return slab_ + size_t(id) * stride_; }
  uint32_t buffer_bytes() const { return buffer_bytes_; }
  // Gives a buffer back to the kernel; publish() makes a batch of them visible.
  void recycle(uint16_t id);
  void publish();
  // Buffers currently owned by the kernel (available for receives).
  uint32_t available() const { return available_; }
  // A completion consumed one buffer.
  void on_taken() { --available_; }

 private:
  Ring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  size_t br_bytes_ = 0;
  char* slab_ = nullptr;
  size_t stride_ = 0;
  uint32_t count_ = 0;
  uint32_t buffer_bytes_ = 0;
  uint16_t group_ = 0;
  uint32_t pending_ = 0;
  uint32_t available_ = 0;
};

}  // namespace sluice
