// The registry of sink kinds: one line per kind (see io/sources/sources.cc
// for why a list and not self-registration).
#include <vector>

#include "io/sink.h"

namespace sluice {

extern const SinkKind kFileSinkKind;
extern const SinkKind kStdoutSinkKind;

namespace {
const SinkKind* const kBuiltins[] = {
    &kFileSinkKind,
    &kStdoutSinkKind,
};

std::vector<const SinkKind*>& registered() {
  static std::vector<const SinkKind*> kinds;
  return kinds;
}
}  // namespace

const SinkKind* find_sink_kind(SinkType type) {
  for (const SinkKind* k : kBuiltins) {
    if (k->type == type) return k;
  }
  for (const SinkKind* k : registered()) {
    if (k->type == type) return k;
  }
  return nullptr;
}

void register_sink_kind(const SinkKind* kind) {
  if (find_sink_kind(kind->type) == nullptr) registered().push_back(kind);
}

}  // namespace sluice
