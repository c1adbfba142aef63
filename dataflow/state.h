// What a checkpoint needs of one shard, reachable from the shard that owns
// it (no format yet: the durable-pipeline issue defines one). A shard visits
// its state on its own thread: every open window entry (its accumulators as
// AggLayout::serialize writes them, out-of-line state included), every
// stream's position and watermark, the windows it has fired through, and on
// the gatherer's shard every sink's position.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "io/source.h"

namespace sluice {

class StateVisitor {
 public:
  virtual ~StateVisitor() = default;
  virtual void window_entry(int64_t window_start, std::string_view key, std::span<const char> accumulators) = 0;
  virtual void stream(uint32_t source_index, const StreamPosition& position) = 0;
  // The pipeline watermark this shard has fired windows up to, and the
  // largest watermark its idle or finished streams reached.
  virtual void progress(int64_t fired_through, int64_t retired) = 0;
  virtual void sink(uint32_t sink_index, uint64_t position) = 0;
};

}  // namespace sluice
