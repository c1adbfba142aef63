#include "dataflow/pipeline_config.h"

#include "io/sink.h"
#include "io/source.h"
#include "operators/aggregate.h"
#include "operators/window_kind.h"

namespace sluice {

ConfigKinds registered_config_kinds() {
  ConfigKinds k;
  for (const SourceKind* s : source_kinds()) k.sources.push_back(&s->config);
  for (const SinkKind* s : sink_kinds()) k.sinks.push_back(&s->config);
  for (const AggregateFunction* f : aggregate_functions()) k.aggregates.push_back(&f->config);
  for (const WindowAssignment* w : window_assignments()) k.windows.push_back(&w->config);
  return k;
}

ConfigResult load_pipeline_config(const std::string& path) { return load_config(path, registered_config_kinds()); }

ConfigResult parse_pipeline_config(std::string_view text, std::string_view file_name) {
  return parse_config(text, file_name, registered_config_kinds());
}

}  // namespace sluice
