// What sinks that build their own keys and values from a result row share:
// references to a row's parts (`{product_id}`, `total_quantity`,
// `window_end`), templates made of literals and references
// ("product:{product_id}"), and rendering them into text without allocating.
// Used by the Redis sink (hash keys and fields) and the Kafka sink (record
// keys).
//
// Threads: plain values; a RowRenderer belongs to one sink (one thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "core/config_kinds.h"
#include "core/timestamp.h"
#include "operators/event.h"
#include "operators/json_text.h"
#include "operators/result_row.h"

namespace sluice {

// What a `{name}` in a template, or a value a sink writes, refers to.
struct RowRef {
  enum class Kind : uint8_t { aggregate, key_field, window_start, window_end } kind;
  uint32_t index = 0;  // of the aggregate or key field
};

struct TemplatePart {
  std::string literal;  // before the reference (or the whole tail)
  bool has_ref = false;
  RowRef ref{};
};
using RowTemplate = std::vector<TemplatePart>;

// "product_id" -> the key field; "total_quantity" -> the aggregate; window_start, window_end.
std::expected<RowRef, std::string> resolve_row_ref(std::string_view name, const ConfigContext& ctx);
// "product:{product_id}": literals and {references}; "{{" and "}}" are braces.
std::expected<RowTemplate, std::string> parse_row_template(std::string_view text, const ConfigContext& ctx);

// The longest text one reference renders to.
constexpr size_t kRowValueBytesMax = kKeyBytesMax > kRfc3339BytesMax ? kKeyBytesMax : kRfc3339BytesMax;
static_assert(kNumberBytesMax <= kRowValueBytesMax);
// The longest text a template renders to.
size_t template_bytes_max(const RowTemplate& t);

// Decoded key fields of a row, in schema order (see operators/event.h).
struct KeyParts {
  std::string_view text[kValueFieldsMax];
  int64_t integer[kValueFieldsMax];
  bool is_int[kValueFieldsMax];
  size_t count = 0;
};
void decode_key(std::string_view key, KeyParts& parts);

// Renders references and templates of one row at a time.
class RowRenderer {
 public:
  // Starts a row (its window is [window_start, window_start + size_ns)).
  void begin(const ResultRowView& row, int64_t size_ns) {
    row_ = &row;
    size_ns_ = size_ns;
    decode_key(row.key, parts_);
  }
  const KeyParts& key_parts() const { return parts_; }
  // A reference as text (an aggregate's null is empty); valid until the next render().
  std::string_view render(const RowRef& ref);
  // A template into out (REQUIRES: template_bytes_max(t) bytes); returns its length.
  size_t render(const RowTemplate& t, char* out);

 private:
  const ResultRowView* row_ = nullptr;
  int64_t size_ns_ = 0;
  KeyParts parts_;
  char value_[kRowValueBytesMax];
};

}  // namespace sluice
