// Regression tests for malformed input that looked like an event.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <random>
#include <string>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

// A line whose schema fields are all fine but which is not valid JSON
// because of a field the schema ignores must be a parse_error dead letter,
// not an event. (Found at 8cff373: such lines were aggregated, because
// On-Demand parsing skips unread values without validating them.)
TEST(MalformedInputTest, InvalidJsonInAnIgnoredFieldIsAParseError) {
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 10 * kNsPerS);
  const int64_t t0 = utc_ns(2024, 10, 1, 0, 0, 0);
  const std::vector<std::string> broken_extras = {R"("extra":tru)",       R"("extra":[1,2,])",
                                                  R"("extra":{"a":nul})", R"("extra":01)",
                                                  R"("extra":"\x")",      R"("extra":[1 2])"};
  std::mt19937_64 rng(21);
  std::vector<InputLine> lines;
  for (size_t i = 0; i < 40; ++i) {
    // In time order, all in windows still open: an invalid line taken for an
    // event would show up in the rows.
    const Event e = random_sales_event(rng, t0 + int64_t(i) * kNsPerS);
    const std::string valid = canonical_event_line(spec, e);
    if (i % 2 == 0) {
      lines.push_back(InputLine::of_event(e, valid));
    } else {
      const std::string& extra = broken_extras[i / 2 % broken_extras.size()];
      lines.push_back(
          InputLine::bad(valid.substr(0, valid.size() - 1) + "," + extra + "}", "parse_error"));
    }
  }
  run_lines_file_and_expect(spec, lines, 1);
}

}  // namespace
}  // namespace sluice::integration
