#include "io/shard_metrics.h"

namespace sluice {

ShardCounters snapshot(const ShardMetrics& m) {
  ShardCounters c;
#define SLUICE_COUNTER_SNAPSHOT(field, name, help, unit) c.field = m.field.value();
  SLUICE_SHARD_COUNTERS(SLUICE_COUNTER_SNAPSHOT)
#undef SLUICE_COUNTER_SNAPSHOT
  for (size_t r = 0; r < kDeadLetterReasons; ++r) c.dead_letters[r] = m.dead_letters[r].value();
  return c;
}

ShardCounters& ShardCounters::operator+=(const ShardCounters& o) {
#define SLUICE_COUNTER_ADD(field, name, help, unit) field += o.field;
  SLUICE_SHARD_COUNTERS(SLUICE_COUNTER_ADD)
#undef SLUICE_COUNTER_ADD
  for (size_t r = 0; r < kDeadLetterReasons; ++r) dead_letters[r] += o.dead_letters[r];
  return *this;
}

}  // namespace sluice
