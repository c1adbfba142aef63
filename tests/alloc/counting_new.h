// Allocation counting for the alloc_tests binary.
//
// counting_new_test.cc replaces every global operator new / operator delete
// of this binary (plain, array, nothrow, aligned, sized) with versions that
// bump relaxed atomic counters and then use malloc/free. Any thread's
// allocations are counted, so the engine's shard threads are covered.
//
// Only C++ allocation is counted. malloc/calloc/realloc called directly are
// not: Sluice's own code, simdjson, fmt, toml++ and moodycamel all allocate
// through operator new, and the C library calls the data path makes
// (snprintf into stack buffers, memchr, clock_gettime, io_uring via liburing
// on preallocated rings) do not allocate. A C-level hook (interposing
// malloc) would also see glibc-internal and gtest noise and is not needed to
// prove the data-path claim.
//
// Finding an allocation: set SLUICE_ALLOC_TRACE=N in the environment and the
// first N allocations made inside an AllocTraceScope print a backtrace to
// stderr (backtrace_symbols_fd; addresses in the test binary resolve with
// `addr2line -f -C -e alloc_tests 0x...`, or run under gdb with
// `break sluice_alloc_traced`, which every traced allocation calls).
#pragma once

#include <cstdint>

namespace sluice::alloc_test {

// Calls of any operator new form since the process started (all threads).
uint64_t allocations();
// Bytes requested by those calls.
uint64_t allocated_bytes();
// Calls of any operator delete form with a non-null pointer.
uint64_t deallocations();

// While one is alive, allocations are traced as described above (only when
// SLUICE_ALLOC_TRACE is set). Not nestable; one at a time.
class AllocTraceScope {
 public:
  AllocTraceScope();
  ~AllocTraceScope();
  AllocTraceScope(const AllocTraceScope&) = delete;
  AllocTraceScope& operator=(const AllocTraceScope&) = delete;
};

}  // namespace sluice::alloc_test
