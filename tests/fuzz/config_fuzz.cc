// The config loader: any text yields a config or errors with positions, never a crash.
#include <cstdint>
#include <string_view>

#include "core/config.h"
#include "dataflow/pipeline_config.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::ConfigResult r = sluice::parse_pipeline_config(text, "fuzz.toml");
  if (!r) {
    FUZZ_CHECK(!r.error().empty());
    for (const sluice::ConfigError& e : r.error()) FUZZ_CHECK(!e.message.empty());
  } else {
    FUZZ_CHECK(!r->sources.empty());
    FUZZ_CHECK(!r->sinks.empty());
    FUZZ_CHECK(r->window.size_ns > 0);
  }
  return 0;
}
