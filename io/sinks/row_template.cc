#include "io/sinks/row_template.h"

#include <cstring>

#include <fmt/format.h>

#include "core/config_model.h"

namespace sluice {

std::expected<RowRef, std::string> resolve_row_ref(std::string_view name, const ConfigContext& ctx) {
  if (name == "window_start") return RowRef{RowRef::Kind::window_start, 0};
  if (name == "window_end") return RowRef{RowRef::Kind::window_end, 0};
  if (ctx.schema != nullptr) {
    for (size_t i = 0; i < ctx.schema->key.size(); ++i) {
      if (ctx.schema->key[i] == name) return RowRef{RowRef::Kind::key_field, uint32_t(i)};
    }
  }
  if (ctx.aggregates != nullptr) {
    for (size_t i = 0; i < ctx.aggregates->size(); ++i) {
      if ((*ctx.aggregates)[i].name == name) return RowRef{RowRef::Kind::aggregate, uint32_t(i)};
    }
  }
  return std::unexpected(fmt::format("\"{}\" is not a key field, an aggregate, window_start or window_end", name));
}

std::expected<RowTemplate, std::string> parse_row_template(std::string_view text, const ConfigContext& ctx) {
  RowTemplate parts(1);
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      parts.back().literal += c;
      ++i;
    } else if (c == '{') {
      const size_t close = text.find('}', i);
      if (close == std::string_view::npos) return std::unexpected("a \"{\" without its \"}\"");
      auto ref = resolve_row_ref(text.substr(i + 1, close - i - 1), ctx);
      if (!ref) return std::unexpected(ref.error());
      parts.back().has_ref = true;
      parts.back().ref = *ref;
      parts.emplace_back();
      i = close;
    } else if (c == '}') {
      return std::unexpected("a \"}\" without its \"{\" (write \"}}\" for a brace)");
    } else {
      parts.back().literal += c;
    }
  }
  return parts;
}

size_t template_bytes_max(const RowTemplate& t) {
  size_t n = 0;
  for (const TemplatePart& p : t) n += p.literal.size() + (p.has_ref ? kRowValueBytesMax : 0);
  return n;
}

void decode_key(std::string_view key, KeyParts& parts) {
  size_t i = 0;
  size_t k = 0;
  for (; k < kValueFieldsMax && i < key.size(); ++k) {
    if (key[i] == kKeyInt) {
      std::memcpy(&parts.integer[k], key.data() + i + 1, 8);
      parts.is_int[k] = true;
      i += 9;
    } else {
      uint32_t len;
      std::memcpy(&len, key.data() + i + 1, 4);
      parts.text[k] = key.substr(i + 5, len);
      parts.is_int[k] = false;
      i += 5 + len;
    }
  }
  parts.count = k;
}

std::string_view RowRenderer::render(const RowRef& ref) {
  switch (ref.kind) {
    case RowRef::Kind::window_start: return {value_, format_rfc3339(row_->window_start, value_)};
    case RowRef::Kind::window_end: return {value_, format_rfc3339(row_->window_start + size_ns_, value_)};
    case RowRef::Kind::key_field:
      if (parts_.is_int[ref.index]) return {value_, write_int64(parts_.integer[ref.index], value_)};
      return parts_.text[ref.index];
    case RowRef::Kind::aggregate: {
      const AggValue v = row_->agg(ref.index);
      if (v.kind == AggValue::Kind::int64) return {value_, write_int64(v.v.i, value_)};
      if (v.kind == AggValue::Kind::float64) return {value_, write_double(v.v.f, value_)};
      return {};  // null: an empty string
    }
  }
  return {};
}

size_t RowRenderer::render(const RowTemplate& t, char* out) {
  size_t len = 0;
  for (const TemplatePart& part : t) {
    std::memcpy(out + len, part.literal.data(), part.literal.size());
    len += part.literal.size();
    if (part.has_ref) {
      const std::string_view v = render(part.ref);
      std::memcpy(out + len, v.data(), v.size());
      len += v.size();
    }
  }
  return len;
}

}  // namespace sluice
