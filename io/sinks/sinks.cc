// The registry of sink kinds: one line per built-in kind.
#include "core/registry.h"
#include "io/sink.h"

namespace sluice {

extern const SinkKind kFileSinkKind;
extern const SinkKind kStdoutSinkKind;
extern const SinkKind kRedisSinkKind;
extern const SinkKind kKafkaSinkKind;
extern const SinkKind kPostgresSinkKind;

namespace {
KindRegistry<SinkKind, SinkType>& registry() {
  static KindRegistry<SinkKind, SinkType> r(
      {
          &kFileSinkKind,
          &kStdoutSinkKind,
          &kRedisSinkKind,
          &kKafkaSinkKind,
          &kPostgresSinkKind,
      },
      [](const SinkKind& k) { return k.type(); });
  return r;
}
}  // namespace

const SinkKind* find_sink_kind(SinkType type) { return registry().find(type); }
void register_sink_kind(const SinkKind* kind) { registry().add(kind); }
const std::vector<const SinkKind*>& sink_kinds() { return registry().kinds(); }

}  // namespace sluice
