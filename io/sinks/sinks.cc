// The registry of sink kinds: one line per kind (see io/sources/sources.cc
// for why a list and not self-registration).
#include "io/sink.h"

namespace sluice {

extern const SinkKind kFileSinkKind;
extern const SinkKind kStdoutSinkKind;

namespace {
const SinkKind* const kSinkKinds[] = {
    &kFileSinkKind,
    &kStdoutSinkKind,
};
}  // namespace

const SinkKind* find_sink_kind(SinkType type) {
  for (const SinkKind* k : kSinkKinds) {
    if (k->type == type) return k;
  }
  return nullptr;
}

}  // namespace sluice
