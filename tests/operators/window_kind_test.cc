// Window kinds through their table: the built-in tumbling kind agrees with
// its inline arithmetic, and a test-only kind (two windows per event)
// registers with one line and is what Windows answers with.
#include <gtest/gtest.h>

#include <random>

#include "core/config_model.h"
#include "operators/window_kind.h"
#include "tests/plugins/plugins.h"

namespace sluice {
namespace {

TEST(WindowKind, TumblingThroughTheTableAgreesWithTheInlinePath) {
  const WindowAssignment* kind = find_window_assignment(WindowKind::tumbling);
  ASSERT_NE(kind, nullptr);
  std::mt19937_64 rng(4);
  for (int64_t size : {int64_t(1), int64_t(7), int64_t(300'000'000'000)}) {
    WindowConfig cfg;
    cfg.size_ns = size;
    Windows inline_path(cfg);
    for (int i = 0; i < 20000; ++i) {
      const int64_t t = int64_t(rng()) >> (rng() % 64);
      int64_t a[kWindowsPerEventMax], b[kWindowsPerEventMax];
      const size_t na = inline_path.of(t, a);
      const size_t nb = kind->windows_of(cfg, t, b);
      ASSERT_EQ(na, nb) << t;
      if (na == 1) {
        ASSERT_EQ(a[0], b[0]) << t;
        ASSERT_EQ(inline_path.end_of(a[0]), kind->end_of(cfg, b[0]));
        ASSERT_LE(a[0], t);
        ASSERT_GT(inline_path.end_of(a[0]), t);
      }
    }
  }
}

TEST(WindowKind, APluginKindGivesEveryWindowThatHoldsTheEvent) {
  test_plugins::register_test_plugins();
  WindowConfig cfg;
  cfg.kind = test_plugins::kTestHalfHop;
  cfg.size_ns = 10;
  Windows w(cfg);
  EXPECT_EQ(w.windows_max(), 2u);
  for (int64_t t = -25; t <= 25; ++t) {
    int64_t starts[kWindowsPerEventMax];
    ASSERT_EQ(w.of(t, starts), 2u);
    EXPECT_EQ(starts[1] - starts[0], 5);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_LE(starts[i], t) << t;
      EXPECT_GT(w.end_of(starts[i]), t) << t;
      EXPECT_EQ(starts[i] % 5, 0) << t;
    }
  }
}

}  // namespace
}  // namespace sluice
