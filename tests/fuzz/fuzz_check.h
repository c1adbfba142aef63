// A failed property in a fuzz target: report and trap (libFuzzer and the
// driver both treat the trap as a crash with the input saved/printed).
#pragma once

#include <cstdio>

#define FUZZ_CHECK(cond)                                                              \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      __builtin_trap();                                                               \
    }                                                                                 \
  } while (0)
