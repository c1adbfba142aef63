// Test-only kinds that prove the seams: each is one file plus one
// registration line (register_test_plugins() holds the lines), used by the
// engine and its operators without their knowing it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/config_model.h"
#include "io/sink.h"
#include "io/source.h"
#include "operators/aggregate.h"
#include "operators/window_kind.h"

namespace sluice::test_plugins {

// fn = "test_distinct": exact distinct count of an int64 field, state out of line.
inline constexpr AggFn kTestDistinct{"test_distinct"};
// kind = "test_half_hop": windows of `size` every size / 2 (two per event).
inline constexpr WindowKind kTestHalfHop{"test_half_hop"};

// type = "test_memory": NDJSON lines from memory (set_memory_lines), read by one shard.
inline constexpr SourceType kTestMemory{"test_memory"};
// type = "test_collect": every row kept in memory (collected_rows).
inline constexpr SinkType kTestCollect{"test_collect"};

extern const AggregateFunction kTestDistinctFunction;
extern const WindowAssignment kTestHalfHopWindows;
extern const SourceKind kTestMemorySourceKind;
extern const SinkKind kTestCollectSinkKind;

// What the next test_memory source reads.
void set_memory_lines(const std::vector<std::string>& lines);

struct CollectedRow {
  int64_t window_start;
  int64_t window_end;
  std::string key;  // encoded key bytes (operators/event.h)
  std::vector<AggValue> values;
};
std::vector<CollectedRow> collected_rows();
void clear_collected_rows();

// Distinct-count states currently allocated (to check none leaks).
int64_t live_distinct_states();

// Registers every test-only kind (idempotent).
void register_test_plugins();

}  // namespace sluice::test_plugins
