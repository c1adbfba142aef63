// The registry of source kinds: one line per kind. (An explicit list rather
// than self-registering globals: a static library drops an object file that
// nothing references, and its registration with it.)
#include "io/source.h"

namespace sluice {

extern const SourceKind kTcpSourceKind;
extern const SourceKind kFileSourceKind;
extern const SourceKind kGeneratorSourceKind;
extern const SourceKind kKafkaSourceKind;

namespace {
const SourceKind* const kSourceKinds[] = {
    &kTcpSourceKind,
    &kFileSourceKind,
    &kGeneratorSourceKind,
    &kKafkaSourceKind,
};
}  // namespace

const SourceKind* find_source_kind(SourceType type) {
  for (const SourceKind* k : kSourceKinds) {
    if (k->type == type) return k;
  }
  return nullptr;
}

}  // namespace sluice
