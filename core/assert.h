// Two assertion levels (see STYLE.md):
//   SLUICE_ASSERT(cond)   always on; traps on a broken invariant or memory-safety hazard.
//   SLUICE_DASSERT(cond)  debug builds only; for checks too costly for the data path.
// Never assert on input: input errors are values (dead letters, config errors).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace sluice::detail {
[[noreturn]] inline void assert_fail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "sluice: assertion failed: %s (%s:%d)\n", expr, file, line);
  std::abort();
}
}  // namespace sluice::detail

#define SLUICE_ASSERT(cond)                                                   \
  do {                                                                        \
    if (__builtin_expect(!(cond), 0)) {                                       \
      ::sluice::detail::assert_fail(#cond, __FILE__, __LINE__);               \
    }                                                                         \
  } while (0)

#ifdef NDEBUG
#define SLUICE_DASSERT(cond) \
  do {                       \
  } while (0)
#else
#define SLUICE_DASSERT(cond) SLUICE_ASSERT(cond)
#endif
