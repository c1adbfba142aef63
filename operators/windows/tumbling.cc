// Tumbling windows: fixed size, no overlap, aligned to the epoch (a window
// starts at a multiple of `size`). Each event belongs to exactly one.
#include "operators/window_kind.h"

namespace sluice {

extern const WindowAssignment kTumblingWindows = {
    .config = {.name = "tumbling", .keys = {}, .parse = [](TableReader&, WindowConfig&) {}},
    .windows_max = [](const WindowConfig&) -> uint32_t { return 1; },
    .windows_of =
        [](const WindowConfig& c, int64_t t, int64_t* starts) -> size_t {
          const TumblingWindows w(c.size_ns);
          if (!w.window_fits(t)) return 0;
          starts[0] = w.window_start(t);
          return 1;
        },
    .end_of = [](const WindowConfig& c, int64_t start) { return start + c.size_ns; },
};

}  // namespace sluice
