// The registry of source kinds: one line per built-in kind.
#include "core/registry.h"
#include "io/source.h"

namespace sluice {

extern const SourceKind kTcpSourceKind;
extern const SourceKind kFileSourceKind;
extern const SourceKind kGeneratorSourceKind;
extern const SourceKind kKafkaSourceKind;

namespace {
KindRegistry<SourceKind, SourceType>& registry() {
  static KindRegistry<SourceKind, SourceType> r(
      {
          &kTcpSourceKind,
          &kFileSourceKind,
          &kGeneratorSourceKind,
          &kKafkaSourceKind,
      },
      [](const SourceKind& k) { return k.type(); });
  return r;
}
}  // namespace

const SourceKind* find_source_kind(SourceType type) { return registry().find(type); }
void register_source_kind(const SourceKind* kind) { registry().add(kind); }
const std::vector<const SourceKind*>& source_kinds() { return registry().kinds(); }

}  // namespace sluice
