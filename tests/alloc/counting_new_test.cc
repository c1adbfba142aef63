// The counting global operator new/delete of the alloc_tests binary (see
// counting_new.h), and a test that every replaced form is really counted:
// the other alloc tests prove "zero allocations" only if a missed form
// cannot hide one.
#include "tests/alloc/counting_new.h"

#include <execinfo.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace sluice::alloc_test {
namespace {

std::atomic<uint64_t> g_allocs{0};
std::atomic<uint64_t> g_bytes{0};
std::atomic<uint64_t> g_frees{0};

// Tracing state: armed by AllocTraceScope, budget from SLUICE_ALLOC_TRACE.
std::atomic<bool> g_trace_armed{false};
std::atomic<int64_t> g_trace_left{0};
thread_local bool t_in_trace = false;

void trace(std::size_t size);

inline void count(std::size_t size) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  g_bytes.fetch_add(size, std::memory_order_relaxed);
  if (g_trace_armed.load(std::memory_order_relaxed)) trace(size);
}

void* allocate(std::size_t size, std::size_t align) {
  count(size);
  if (size == 0) size = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(size);
  void* p = nullptr;
  return posix_memalign(&p, align, size) == 0 ? p : nullptr;
}

// The throwing forms: retry through the new-handler, as the standard's do.
void* allocate_or_throw(std::size_t size, std::size_t align) {
  for (;;) {
    if (void* p = allocate(size, align)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

void deallocate(void* p) {
  if (p == nullptr) return;
  g_frees.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}

}  // namespace
}  // namespace sluice::alloc_test

// Called for each traced allocation: a gdb breakpoint target.
extern "C" __attribute__((noinline)) void sluice_alloc_traced(std::size_t size) {
  asm volatile("" : : "r"(size) : "memory");
}

namespace sluice::alloc_test {
namespace {

void trace(std::size_t size) {
  if (t_in_trace) return;  // backtrace() itself may allocate the first time
  t_in_trace = true;
  if (g_trace_left.fetch_sub(1, std::memory_order_relaxed) > 0) {
    char head[96];
    int n = std::snprintf(head, sizeof head, "\n=== alloc_tests: traced allocation of %zu bytes\n", size);
    if (n > 0) (void)!::write(STDERR_FILENO, head, size_t(n));
    void* frames[48];
    int depth = backtrace(frames, 48);
    backtrace_symbols_fd(frames, depth, STDERR_FILENO);
    sluice_alloc_traced(size);
  }
  t_in_trace = false;
}

}  // namespace

uint64_t allocations() { return g_allocs.load(std::memory_order_relaxed); }
uint64_t allocated_bytes() { return g_bytes.load(std::memory_order_relaxed); }
uint64_t deallocations() { return g_frees.load(std::memory_order_relaxed); }

AllocTraceScope::AllocTraceScope() {
  const char* env = std::getenv("SLUICE_ALLOC_TRACE");
  if (env == nullptr || *env == '\0') return;
  // Load the unwinder now, outside the traced region.
  void* frames[4];
  (void)backtrace(frames, 4);
  g_trace_left.store(std::max<int64_t>(1, std::atoll(env)), std::memory_order_relaxed);
  g_trace_armed.store(true, std::memory_order_relaxed);
}

AllocTraceScope::~AllocTraceScope() { g_trace_armed.store(false, std::memory_order_relaxed); }

}  // namespace sluice::alloc_test

// ---------------------------------------------------------------------------
// The replacements ([new.delete.single], [new.delete.array]): every form a
// program may replace.

using sluice::alloc_test::allocate;
using sluice::alloc_test::allocate_or_throw;
using sluice::alloc_test::deallocate;

void* operator new(std::size_t n) { return allocate_or_throw(n, 0); }
void* operator new[](std::size_t n) { return allocate_or_throw(n, 0); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return allocate(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return allocate_or_throw(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocate_or_throw(n, std::size_t(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, std::size_t(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return allocate(n, std::size_t(a));
}

void operator delete(void* p) noexcept { deallocate(p); }
void operator delete[](void* p) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::size_t) noexcept { deallocate(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete(void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t) noexcept { deallocate(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { deallocate(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { deallocate(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { deallocate(p); }

// ---------------------------------------------------------------------------

namespace sluice::alloc_test {
namespace {

struct alignas(64) OverAligned {
  char bytes[64];
};

// Calls through a volatile function pointer so the compiler cannot elide
// the new/delete pair (it may, for a plain new-expression).
template <typename F>
void opaque(F f) {
  static F volatile g;
  g = f;
  g();
}

TEST(CountingNew, CountsEveryReplacedForm) {
  struct Case {
    const char* name;
    void (*run)();
  };
  const Case cases[] = {
      {"new/delete", [] { ::operator delete(::operator new(24)); }},
      {"new[]/delete[]", [] { ::operator delete[](::operator new[](24)); }},
      {"sized delete", [] { ::operator delete(::operator new(24), 24); }},
      {"sized delete[]", [] { ::operator delete[](::operator new[](24), 24); }},
      {"nothrow new", [] { ::operator delete(::operator new(24, std::nothrow), std::nothrow); }},
      {"nothrow new[]", [] { ::operator delete[](::operator new[](24, std::nothrow), std::nothrow); }},
      {"aligned new", [] {
         void* p = ::operator new(64, std::align_val_t(64));
         EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
         ::operator delete(p, std::align_val_t(64));
       }},
      {"aligned new[]", [] { ::operator delete[](::operator new[](64, std::align_val_t(64)), std::align_val_t(64)); }},
      {"aligned sized delete", [] { ::operator delete(::operator new(64, std::align_val_t(64)), 64, std::align_val_t(64)); }},
      {"aligned sized delete[]", [] { ::operator delete[](::operator new[](64, std::align_val_t(64)), 64, std::align_val_t(64)); }},
      {"aligned nothrow new", [] {
         ::operator delete(::operator new(64, std::align_val_t(64), std::nothrow), std::align_val_t(64), std::nothrow);
       }},
      {"aligned nothrow new[]", [] {
         ::operator delete[](::operator new[](64, std::align_val_t(64), std::nothrow), std::align_val_t(64), std::nothrow);
       }},
      {"new-expression of an over-aligned type", [] { delete new OverAligned; }},
      {"std::vector", [] { std::vector<int> v(1000); }},
      {"std::string beyond SSO", [] { std::string s(100, 'x'); }},
  };
  for (const Case& c : cases) {
    uint64_t a0 = allocations(), f0 = deallocations();
    opaque(c.run);
    EXPECT_EQ(allocations() - a0, 1u) << c.name;
    EXPECT_EQ(deallocations() - f0, 1u) << c.name;
  }
}

TEST(CountingNew, CountsOtherThreads) {
  uint64_t a0 = allocations();
  std::atomic<uint64_t> seen{0};
  std::thread t([&] {
    uint64_t before = allocations();
    opaque(+[] { std::vector<int> v(10); });
    seen = allocations() - before;
  });
  t.join();
  EXPECT_GE(seen.load(), 1u);
  EXPECT_GE(allocations() - a0, 2u);  // the thread's state, and the vector
}

}  // namespace
}  // namespace sluice::alloc_test
