// The registry of aggregate functions: one line per built-in.
#include "core/registry.h"
#include "operators/aggregate.h"

namespace sluice {

extern const AggregateFunction kCountFunction;
extern const AggregateFunction kSumFunction;
extern const AggregateFunction kMinFunction;
extern const AggregateFunction kMaxFunction;
extern const AggregateFunction kAvgFunction;
extern const AggregateFunction kApproxCountDistinctFunction;

namespace {
KindRegistry<AggregateFunction, AggFn>& registry() {
  static KindRegistry<AggregateFunction, AggFn> r(
      {
          &kCountFunction,
          &kSumFunction,
          &kMinFunction,
          &kMaxFunction,
          &kAvgFunction,
          &kApproxCountDistinctFunction,
      },
      [](const AggregateFunction& f) { return f.name(); });
  return r;
}
}  // namespace

const AggregateFunction* find_aggregate_function(AggFn name) { return registry().find(name); }
void register_aggregate_function(const AggregateFunction* function) { registry().add(function); }
const std::vector<const AggregateFunction*>& aggregate_functions() { return registry().kinds(); }

}  // namespace sluice
