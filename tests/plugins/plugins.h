// Test-only kinds that prove the seams: each is one file plus one
// registration line (register_test_plugins() holds the lines), used by the
// engine and its operators without their knowing it.
#pragma once

#include <cstdint>

#include "core/config_model.h"
#include "operators/aggregate.h"
#include "operators/window_kind.h"

namespace sluice::test_plugins {

// fn = "test_distinct": exact distinct count of an int64 field, state out of line.
inline constexpr AggFn kTestDistinct{"test_distinct"};
// kind = "test_half_hop": windows of `size` every size / 2 (two per event).
inline constexpr WindowKind kTestHalfHop{"test_half_hop"};

extern const AggregateFunction kTestDistinctFunction;
extern const WindowAssignment kTestHalfHopWindows;

// Distinct-count states currently allocated (to check none leaks).
int64_t live_distinct_states();

// Registers every test-only kind (idempotent).
void register_test_plugins();

}  // namespace sluice::test_plugins
