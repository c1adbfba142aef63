// A test-only window kind: hopping windows of `size` every size / 2, so each
// event belongs to two windows. It proves the window seam: one file,
// registered with one line (register_window_assignment(&kTestHalfHopWindows)),
// used by the event path, firing and the gatherer without them knowing it.
#include "tests/plugins/plugins.h"

namespace sluice::test_plugins {

extern const WindowAssignment kTestHalfHopWindows = {
    .config = {.name = "test_half_hop", .keys = {}, .parse = [](TableReader&, WindowConfig&) {}},
    .windows_max = [](const WindowConfig&) -> uint32_t { return 2; },
    .windows_of =
        [](const WindowConfig& c, int64_t t, int64_t* starts) -> size_t {
          const int64_t hop = c.size_ns / 2;
          // The hop holding t starts the later window; the one before starts the earlier.
          if (t < kTimeMin + 2 * c.size_ns || t > kTimeMax - 2 * c.size_ns) return 0;
          const int64_t later = floor_div(t, hop) * hop;
          starts[0] = later - hop;
          starts[1] = later;
          return 2;
        },
    .end_of = [](const WindowConfig& c, int64_t start) { return start + c.size_ns; },
};

}  // namespace sluice::test_plugins
