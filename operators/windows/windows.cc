// The registry of window kinds: one line per built-in, and the ones
// registered at start-up (register_window_assignment). See
// io/sources/sources.cc for why a list and not self-registration.
#include <vector>

#include "core/assert.h"
#include "operators/window_kind.h"

namespace sluice {

extern const WindowAssignment kTumblingWindows;

namespace {
const WindowAssignment* const kBuiltins[] = {
    &kTumblingWindows,
};

std::vector<const WindowAssignment*>& registered() {
  static std::vector<const WindowAssignment*> kinds;
  return kinds;
}
}  // namespace

const WindowAssignment* find_window_assignment(WindowKind name) {
  for (const WindowAssignment* k : kBuiltins) {
    if (k->name == name) return k;
  }
  for (const WindowAssignment* k : registered()) {
    if (k->name == name) return k;
  }
  return nullptr;
}

void register_window_assignment(const WindowAssignment* kind) {
  if (find_window_assignment(kind->name) == nullptr) registered().push_back(kind);
}

Windows::Windows(const WindowConfig& config)
    : config_(config),
      kind_(find_window_assignment(config.kind)),
      tumbling_(config.kind == WindowKind::tumbling),
      tumbling_windows_(config.size_ns),
      windows_max_(0) {
  SLUICE_ASSERT(kind_ != nullptr);
  windows_max_ = kind_->windows_max(config);
  SLUICE_ASSERT(windows_max_ >= 1 && windows_max_ <= kWindowsPerEventMax);
}

}  // namespace sluice
