// Loading a pipeline's config with every kind of source, sink, aggregate
// function and window registered (built-ins and those added at start-up):
// what `sluice check` and `sluice run` use.
#pragma once

#include <string>
#include <string_view>

#include "core/config_kinds.h"

namespace sluice {

// The config side of every registered kind, in registration order.
ConfigKinds registered_config_kinds();
ConfigResult load_pipeline_config(const std::string& path);
ConfigResult parse_pipeline_config(std::string_view text, std::string_view file_name);

}  // namespace sluice
