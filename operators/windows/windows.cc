// The registry of window kinds: one line per built-in. And Windows, the
// per-thread view of the configured kind.
#include "core/assert.h"
#include "core/registry.h"
#include "operators/window_kind.h"

namespace sluice {

extern const WindowAssignment kTumblingWindows;

namespace {
KindRegistry<WindowAssignment, WindowKind>& registry() {
  static KindRegistry<WindowAssignment, WindowKind> r(
      {
          &kTumblingWindows,
      },
      [](const WindowAssignment& k) { return k.name(); });
  return r;
}
}  // namespace

const WindowAssignment* find_window_assignment(WindowKind name) { return registry().find(name); }
void register_window_assignment(const WindowAssignment* kind) { registry().add(kind); }
const std::vector<const WindowAssignment*>& window_assignments() { return registry().kinds(); }

Windows::Windows(const WindowConfig& config)
    : config_(&config),
      kind_(find_window_assignment(config.kind)),
      tumbling_(config.kind == WindowKind::tumbling),
      tumbling_windows_(config.size_ns),
      windows_max_(0) {
  SLUICE_ASSERT(kind_ != nullptr);
  windows_max_ = kind_->windows_max(config);
  SLUICE_ASSERT(windows_max_ >= 1 && windows_max_ <= kWindowsPerEventMax);
}

}  // namespace sluice
