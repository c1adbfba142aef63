// Result rows -> output text (NDJSON or CSV).
//
// NDJSON: {"window_start":"...Z","window_end":"...Z",<key fields>,<aggregates>}
// CSV:    a header line, then one line per row in the same column order.
// Key fields keep their JSON type (integers bare, strings quoted/escaped);
// aggregates are integers (count; sum/min/max of int64 fields), floats (sums
// of float64 fields, avg) or null (an int64 sum outside int64, a float that
// is not finite). CSV writes null as an empty field.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_model.h"
#include "core/timestamp.h"
#include "operators/result_row.h"

namespace sluice {

class RowEncoder {
 public:
  RowEncoder(OutputFormat format, const SchemaConfig& schema,
             const std::vector<AggregateConfig>& aggregates);

  // CSV header line (with newline), empty for NDJSON.
  const std::string& header() const { return header_; }
  // Worst-case bytes of one encoded row.
  size_t row_bytes_max() const { return row_bytes_max_; }
  // Encodes one row with its newline. REQUIRES: out has row_bytes_max() bytes.
  size_t encode(const ResultRowView& row, int64_t window_size_ns, char* out) const;
  // Complete rows in `text`, a prefix of encoded rows (no header): after a
  // failed write, how many rows reached the output whole.
  size_t complete_rows(std::string_view text) const;

 private:
  OutputFormat format_;
  size_t aggregates_;
  std::vector<std::string> key_prefix_;  // NDJSON: ",\"name\":" per key field
  std::vector<std::string> agg_prefix_;  // NDJSON: ",\"name\":" per aggregate
  std::string header_;
  size_t row_bytes_max_;
  // The window's two timestamps, formatted once per window rather than per
  // row (rows come window by window). One encoder per thread.
  mutable bool have_window_ = false;
  mutable int64_t window_start_ = 0;
  mutable int64_t window_size_ = 0;
  mutable char start_text_[kRfc3339BytesMax];
  mutable char end_text_[kRfc3339BytesMax];
  mutable size_t start_len_ = 0;
  mutable size_t end_len_ = 0;
};

}  // namespace sluice
