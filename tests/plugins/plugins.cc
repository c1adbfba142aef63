#include "tests/plugins/plugins.h"

namespace sluice::test_plugins {

void register_test_plugins() {
  register_aggregate_function(&kTestDistinctFunction);
  register_window_assignment(&kTestHalfHopWindows);
  register_source_kind(&kTestMemorySourceKind);
  register_sink_kind(&kTestCollectSinkKind);
}

}  // namespace sluice::test_plugins
