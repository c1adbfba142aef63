// The registry of source kinds: one line per kind. (An explicit list rather
// than self-registering globals: a static library drops an object file that
// nothing references, and its registration with it.)
#include <vector>

#include "io/source.h"

namespace sluice {

extern const SourceKind kTcpSourceKind;
extern const SourceKind kFileSourceKind;
extern const SourceKind kGeneratorSourceKind;
extern const SourceKind kKafkaSourceKind;

namespace {
const SourceKind* const kBuiltins[] = {
    &kTcpSourceKind,
    &kFileSourceKind,
    &kGeneratorSourceKind,
    &kKafkaSourceKind,
};

std::vector<const SourceKind*>& registered() {
  static std::vector<const SourceKind*> kinds;
  return kinds;
}
}  // namespace

const SourceKind* find_source_kind(SourceType type) {
  for (const SourceKind* k : kBuiltins) {
    if (k->type == type) return k;
  }
  for (const SourceKind* k : registered()) {
    if (k->type == type) return k;
  }
  return nullptr;
}

void register_source_kind(const SourceKind* kind) {
  if (find_source_kind(kind->type) == nullptr) registered().push_back(kind);
}

}  // namespace sluice
