#include "operators/row_encoder.h"

#include <cstring>

#include "core/timestamp.h"
#include "operators/event.h"
#include "operators/json_text.h"

namespace sluice {

int compare_keys(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    char ta = a[i], tb = b[j];
    if (ta != tb) return ta == kKeyInt ? -1 : 1;
    if (ta == kKeyInt) {
      int64_t x, y;
      std::memcpy(&x, a.data() + i + 1, 8);
      std::memcpy(&y, b.data() + j + 1, 8);
      if (x != y) return x < y ? -1 : 1;
      i += 9;
      j += 9;
    } else {
      uint32_t lx, ly;
      std::memcpy(&lx, a.data() + i + 1, 4);
      std::memcpy(&ly, b.data() + j + 1, 4);
      int c = std::string_view(a.data() + i + 5, lx).compare(std::string_view(b.data() + j + 5, ly));
      if (c != 0) return c < 0 ? -1 : 1;
      i += 5 + lx;
      j += 5 + ly;
    }
  }
  return (i < a.size()) - (j < b.size());
}

RowEncoder::RowEncoder(OutputFormat format, const SchemaConfig& schema,
                       const std::vector<AggregateConfig>& aggregates)
    : format_(format), aggregates_(aggregates.size()) {
  size_t names_bytes = 0;
  auto quoted = [](const std::string& name) {
    std::string s(json_escaped_bytes_max(name.size()), '\0');
    s.resize(json_quote(name, s.data()));
    return s;
  };
  for (const std::string& k : schema.key) {
    key_prefix_.push_back("," + quoted(k) + ":");
    names_bytes += key_prefix_.back().size();
  }
  for (const AggregateConfig& a : aggregates) {
    agg_prefix_.push_back("," + quoted(a.name) + ":");
    names_bytes += agg_prefix_.back().size();
  }
  if (format_ == OutputFormat::csv) {
    header_ = "window_start,window_end";
    auto field = [&](const std::string& name) {
      std::string f(csv_field_bytes_max(name.size()), '\0');
      f.resize(csv_field(name, f.data()));
      header_ += "," + f;
    };
    for (const std::string& k : schema.key) field(k);
    for (const AggregateConfig& a : aggregates) field(a.name);
    header_ += "\n";
  }
  // Two timestamps, every key byte escaped at worst 6x, every number at most
  // kNumberBytesMax, the names, and punctuation.
  row_bytes_max_ = 64 + 2 * (kRfc3339BytesMax + 24) + json_escaped_bytes_max(kKeyBytesMax) * 2 +
                   names_bytes + aggregates_ * (kNumberBytesMax + 4) + schema.key.size() * 8;
}

size_t RowEncoder::encode(const ResultRowView& row, int64_t window_size_ns, char* out) const {
  char* p = out;
  const bool csv = format_ == OutputFormat::csv;
  auto lit = [&](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  if (!have_window_ || row.window_start != window_start_ || window_size_ns != window_size_) {
    start_len_ = format_rfc3339(row.window_start, start_text_);
    end_len_ = format_rfc3339(row.window_start + window_size_ns, end_text_);
    window_start_ = row.window_start;
    window_size_ = window_size_ns;
    have_window_ = true;
  }
  const std::string_view start_text(start_text_, start_len_), end_text(end_text_, end_len_);
  if (csv) {
    lit(start_text);
    *p++ = ',';
    lit(end_text);
  } else {
    lit("{\"window_start\":\"");
    lit(start_text);
    lit("\",\"window_end\":\"");
    lit(end_text);
    *p++ = '"';
  }
  // Key fields, in schema order.
  size_t i = 0;
  for (size_t k = 0; k < key_prefix_.size() && i < row.key.size(); ++k) {
    if (csv) {
      *p++ = ',';
    } else {
      lit(key_prefix_[k]);
    }
    if (row.key[i] == kKeyInt) {
      int64_t v;
      std::memcpy(&v, row.key.data() + i + 1, 8);
      p += write_int64(v, p);
      i += 9;
    } else {
      uint32_t len;
      std::memcpy(&len, row.key.data() + i + 1, 4);
      std::string_view s(row.key.data() + i + 5, len);
      p += csv ? csv_field(s, p) : json_quote(s, p);
      i += 5 + len;
    }
  }
  for (size_t a = 0; a < aggregates_; ++a) {
    if (csv) {
      *p++ = ',';
    } else {
      lit(agg_prefix_[a]);
    }
    AggValue v = row.agg(a);
    switch (v.kind) {
      case AggValue::Kind::int64: p += write_int64(v.v.i, p); break;
      case AggValue::Kind::float64: p += write_double(v.v.f, p); break;
      case AggValue::Kind::null:
        if (!csv) lit("null");
        break;
    }
  }
  if (!csv) *p++ = '}';
  *p++ = '\n';
  return size_t(p - out);
}

size_t RowEncoder::complete_rows(std::string_view text) const {
  size_t rows = 0;
  if (format_ == OutputFormat::ndjson) {
    // Strings are JSON-escaped: every raw newline ends a row.
    for (char c : text) rows += c == '\n';
    return rows;
  }
  // CSV: a newline inside a quoted field is part of the field ("" is an
  // escaped quote and toggles twice).
  bool quoted = false;
  for (char c : text) {
    if (c == '"') {
      quoted = !quoted;
    } else if (c == '\n' && !quoted) {
      ++rows;
    }
  }
  return rows;
}

}  // namespace sluice
