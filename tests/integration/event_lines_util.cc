#include "tests/integration/event_lines.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace sluice::integration {

namespace {

bool one_in(std::mt19937_64& rng, unsigned n) {
  return std::uniform_int_distribution<unsigned>(1, n)(rng) == 1;
}

template <typename T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& pool) {
  return pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
}

std::string number_text(double v, std::chars_format format) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, format);
  return std::string(buf, end);
}

std::string timestamp_text(const PipelineSpec& spec, int64_t t, std::mt19937_64* rng) {
  if (spec.time_format == "epoch_ms") return std::to_string(floor_div(t, kNsPerMs));
  if (rng == nullptr) return json_string(format_rfc3339(t));
  // The same instant spelled at other offsets and with more fraction digits than needed.
  static const std::vector<int> offsets = {0, 0, 120, -330, 545, -720};
  static const std::vector<int> digits = {-1, -1, 3, 6, 9};
  int d = pick(*rng, digits);
  if (d == 3 && t % kNsPerMs != 0) d = 9;
  return json_string(format_rfc3339(t, pick(*rng, offsets), d));
}

// "name":value for each field of `e`, in a canonical order (rng == nullptr)
// or spelled and ordered at random.
std::vector<std::string> field_texts(const PipelineSpec& spec, const Event& e,
                                     std::mt19937_64* rng) {
  std::vector<std::string> out;
  for (size_t k = 0; k < spec.key_fields.size(); ++k) {
    std::string v;
    if (std::holds_alternative<int64_t>(e.key[k])) {
      v = std::to_string(std::get<int64_t>(e.key[k]));
    } else {
      const std::string& s = std::get<std::string>(e.key[k]);
      // JSON escapes spell the same key: "e\u0075" is "eu".
      v = (s == "eu" && rng != nullptr && one_in(*rng, 3)) ? "\"e\\u0075\"" : json_string(s);
    }
    out.push_back(json_string(spec.key_fields[k]) + ":" + v);
  }
  out.push_back(json_string(spec.time_field) + ":" + timestamp_text(spec, e.time_ns, rng));
  for (const auto& [name, value] : e.values) {
    std::string v;
    if (std::holds_alternative<int64_t>(value)) {
      v = std::to_string(std::get<int64_t>(value));
    } else if (std::holds_alternative<double>(value)) {
      double d = std::get<double>(value);
      // Any spelling of the same number decodes to the same double.
      // Integer spelling only where it is exact and plainly an int64.
      if (rng != nullptr && d == std::floor(d) && std::fabs(d) < 1e15 && one_in(*rng, 2)) {
        v = std::to_string(int64_t(d));
      } else if (rng != nullptr && one_in(*rng, 4)) {
        v = number_text(d, std::chars_format::scientific);
      } else {
        v = number_text(d, std::chars_format::general);
      }
    } else {
      v = json_string(std::get<std::string>(value));
    }
    out.push_back(json_string(name) + ":" + v);
  }
  if (rng != nullptr) {
    std::shuffle(out.begin(), out.end(), *rng);
    static const std::vector<std::string> extras = {
        R"("meta":{"a":[1,2,{"b":null}],"c":"x"})", R"("flag":true)", R"("unused":null)",
        R"("qty_text":"7")", R"("price_list":[1.5,2.5])"};
    if (one_in(*rng, 3)) {
      auto at =
          out.begin() + std::ptrdiff_t(std::uniform_int_distribution<size_t>(0, out.size())(*rng));
      out.insert(at, pick(*rng, extras));
    }
  }
  return out;
}

std::string object(const std::vector<std::string>& fields) {
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + fields[i];
  return out + "}";
}

// The canonical fields with `name`'s entry replaced by "name":value (or removed when value is
// empty).
std::string with_field(const PipelineSpec& spec, const Event& e, const std::string& name,
                       const std::string& value) {
  std::vector<std::string> fields;
  const std::string prefix = json_string(name) + ":";
  for (std::string& f : field_texts(spec, e, nullptr)) {
    if (!f.starts_with(prefix)) {
      fields.push_back(std::move(f));
    } else if (!value.empty()) {
      fields.push_back(prefix + value);
    }
  }
  return object(fields);
}

}  // namespace

PipelineSpec sales_spec(std::string time_format, int64_t window_ns, int64_t delay_ns) {
  PipelineSpec spec;
  spec.key_fields = {"region", "product"};
  spec.time_field = "ts";
  spec.time_format = std::move(time_format);
  spec.fields = {
      {"qty", FieldKind::int64}, {"price", FieldKind::float64}, {"note", FieldKind::string}};
  spec.window_ns = window_ns;
  spec.delay_ns = delay_ns;
  spec.aggregates = {
      {"n", AggFn::count, ""},
      {"qty_sum", AggFn::sum, "qty"},
      {"qty_min", AggFn::min, "qty"},
      {"qty_max", AggFn::max, "qty"},
      {"qty_avg", AggFn::avg, "qty"},
      {"price_sum", AggFn::sum, "price"},
      {"price_min", AggFn::min, "price"},
      {"price_max", AggFn::max, "price"},
      {"price_avg", AggFn::avg, "price"},
  };
  return spec;
}

Event random_sales_event(std::mt19937_64& rng, int64_t time_ns) {
  static const std::vector<std::string> regions = {"eu", "us", "ap", "zürich", "a\"b\\c"};
  static const std::vector<int64_t> int_products = {1, 2, 3, 7, 42, -7, 1'000'000'000'000};
  static const std::vector<std::string> string_products = {"7", "sku-1", "sku-2", "élan"};
  static const std::vector<std::string> notes = {
      "", "ok", "line\nbreak", "tab\tquote\"", "ünïcödé", "emoji \xF0\x9F\x98\x80"};
  Event e;
  e.time_ns = time_ns;
  e.key.emplace_back(pick(rng, regions));
  if (one_in(rng, 3)) {
    e.key.emplace_back(pick(rng, string_products));
  } else {
    e.key.emplace_back(pick(rng, int_products));
  }
  e.values["qty"] = std::uniform_int_distribution<int64_t>(-5, 100)(rng);
  const int64_t cents = std::uniform_int_distribution<int64_t>(0, 100'000)(rng);
  e.values["price"] = one_in(rng, 8) ? double(cents / 100) : double(cents) / 100.0;
  e.values["note"] = pick(rng, notes);
  return e;
}

std::string event_line(const PipelineSpec& spec, const Event& e, std::mt19937_64& rng) {
  return object(field_texts(spec, e, &rng));
}

std::string canonical_event_line(const PipelineSpec& spec, const Event& e) {
  return object(field_texts(spec, e, nullptr));
}

std::string padded_event_line(const PipelineSpec& spec, const Event& e, size_t bytes) {
  std::vector<std::string> fields = field_texts(spec, e, nullptr);
  fields.push_back(R"("pad":"")");
  std::string line = object(fields);
  if (line.size() > bytes) {
    ADD_FAILURE() << "cannot pad a " << line.size() << "-byte line to " << bytes << " bytes";
    return line;
  }
  line.insert(line.size() - 2, bytes - line.size(), 'x');
  return line;
}

std::vector<BadLine> sales_bad_lines(const PipelineSpec& spec, const Event& e) {
  const std::string canonical = object(field_texts(spec, e, nullptr));
  std::vector<BadLine> out = {
      // Not JSON at all.
      {canonical.substr(0, canonical.size() / 2), "parse_error"},
      {with_field(spec, e, "qty", "tru"), "parse_error"},
      {with_field(spec, e, "note", "\"bad \xff\xfe bytes\""), "parse_error"},
      {canonical + " x", "parse_error"},
      // Invalid JSON inside fields the schema ignores is still invalid JSON.
      {canonical.substr(0, canonical.size() - 1) + ",\"extra\":tru}", "parse_error"},
      {canonical.substr(0, canonical.size() - 1) + ",\"extra\":[1,2,]}", "parse_error"},
      {canonical.substr(0, canonical.size() - 1) + ",\"extra\":{\"a\":nul}}", "parse_error"},
      {"{region:\"eu\"}", "parse_error"},
      {"hello world", "parse_error"},
      // JSON, but not what the schema says.
      {"[" + canonical + "]", "schema_error"},
      {"42", "schema_error"},
      {with_field(spec, e, "qty", ""), "schema_error"},
      {with_field(spec, e, "region", ""), "schema_error"},
      {with_field(spec, e, "qty", "\"3\""), "schema_error"},
      {with_field(spec, e, "price", "\"1.5\""), "schema_error"},
      {with_field(spec, e, "note", "5"), "schema_error"},
      {with_field(spec, e, "product", "1.5"), "schema_error"},
      {with_field(spec, e, "region", "true"), "schema_error"},
      {with_field(spec, e, spec.time_field, "\"yesterday\""), "schema_error"},
  };
  if (spec.time_format == "rfc3339") {
    out.push_back(
        {with_field(spec, e, spec.time_field, "\"2024-01-01T12:00:00\""), "schema_error"});
    out.push_back({with_field(spec, e, spec.time_field, "1704067200"), "schema_error"});
  } else {
    out.push_back({with_field(spec, e, spec.time_field, "1e30"), "schema_error"});
  }
  return out;
}

InputLine InputLine::of_event(const Event& e, std::string text) {
  InputLine l;
  l.kind = Kind::event;
  l.text = std::move(text);
  l.event = e;
  return l;
}

InputLine InputLine::bad(std::string text, std::string reason, bool truncated) {
  InputLine l;
  l.kind = Kind::bad;
  l.text = std::move(text);
  l.reason = std::move(reason);
  l.truncated = truncated;
  return l;
}

InputLine InputLine::blank(std::string terminator) {
  InputLine l;
  l.terminator = std::move(terminator);
  return l;
}

std::string render(const std::vector<InputLine>& lines) {
  std::string out;
  for (const InputLine& l : lines) out += l.text + l.terminator;
  return out;
}

std::vector<bool> feed_lines(ReferenceModel& model, int stream, const std::vector<InputLine>& lines,
                             const std::function<std::string(size_t)>& origin,
                             ExpectedRun& expected) {
  std::vector<bool> accepted(lines.size(), false);
  for (size_t i = 0; i < lines.size(); ++i) {
    const InputLine& l = lines[i];
    switch (l.kind) {
      case InputLine::Kind::blank:
        break;
      case InputLine::Kind::event:
        ++expected.lines_in;
        accepted[i] = model.offer(stream, l.event);
        if (!accepted[i]) expected.dead_letters.push_back({"late", origin(i), l.text});
        break;
      case InputLine::Kind::bad:
        // A line cut off by a disconnect never was a whole line.
        if (l.reason != "partial_line") ++expected.lines_in;
        expected.dead_letters.push_back({l.reason, origin(i), l.text, l.truncated});
        break;
    }
  }
  return accepted;
}

void run_lines_file_and_expect(const PipelineSpec& spec, const std::vector<InputLine>& lines,
                               uint32_t shards) {
  TempDir dir;
  const std::string input = dir.file("in.ndjson");
  write_file(input, render(lines));
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "in";
  auto origin = [&](size_t i) { return input + ":" + std::to_string(i + 1); };
  feed_lines(model, 0, lines, origin, expected);
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  run_file_and_expect(dir, spec, input, shards, expected);
}

}  // namespace sluice::integration
