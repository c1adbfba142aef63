// The registry of aggregate functions: one line per built-in, and the ones
// registered at start-up (register_aggregate_function). See
// io/sources/sources.cc for why a list and not self-registration.
#include <vector>

#include "operators/aggregate.h"

namespace sluice {

extern const AggregateFunction kCountFunction;
extern const AggregateFunction kSumFunction;
extern const AggregateFunction kMinFunction;
extern const AggregateFunction kMaxFunction;
extern const AggregateFunction kAvgFunction;

namespace {
const AggregateFunction* const kBuiltins[] = {
    &kCountFunction,
    &kSumFunction,
    &kMinFunction,
    &kMaxFunction,
    &kAvgFunction,
};

std::vector<const AggregateFunction*>& registered() {
  static std::vector<const AggregateFunction*> functions;
  return functions;
}
}  // namespace

const AggregateFunction* find_aggregate_function(AggFn name) {
  for (const AggregateFunction* f : kBuiltins) {
    if (f->name == name) return f;
  }
  for (const AggregateFunction* f : registered()) {
    if (f->name == name) return f;
  }
  return nullptr;
}

void register_aggregate_function(const AggregateFunction* function) {
  if (find_aggregate_function(function->name) == nullptr) registered().push_back(function);
}

}  // namespace sluice
