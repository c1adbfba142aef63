#include "core/metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <memory>

#include "core/clock.h"

namespace sluice {

namespace {

constexpr std::string_view kPrefix = "sluice_";

// Quantiles of every latency summary, with their label text and JSON key.
struct Quantile {
  double percentile;
  std::string_view label;
  std::string_view json_key;
};
constexpr std::array<Quantile, 4> kQuantiles = {{
    {50.0, "0.5", "p50_ms"},
    {90.0, "0.9", "p90_ms"},
    {99.0, "0.99", "p99_ms"},
    {99.9, "0.999", "p999_ms"},
}};

// Words promtool's linter refuses in a name, split on '_' (client_golang
// promlint): abbreviated units, unit words (the unit is MetricUnit's job),
// and type names.
constexpr std::array<std::string_view, 14> kUnitAbbreviations = {
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"};
constexpr std::array<std::string_view, 24> kUnitWords = {
    "amperes", "bytes",  "celsius", "grams", "joules", "kelvin",   "meters",  "metres",
    "seconds", "volts",  "minutes", "hours", "days",   "weeks",    "kelvins", "fahrenheit",
    "rankine", "inches", "yards",   "miles", "bits",   "calories", "pounds",  "ounces"};
constexpr std::array<std::string_view, 18> kUnitPrefixes = {
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo",
    "kibi", "mega", "mebi",  "giga",  "gibi",  "tera", "tebi", "peta",  "pebi"};
constexpr std::array<std::string_view, 5> kTypeWords = {"counter", "gauge", "summary", "histogram",
                                                        "untyped"};
// Suffixes Prometheus gives meaning to (and the renderer adds).
constexpr std::array<std::string_view, 5> kReservedLastWords = {"total", "sum", "count", "bucket",
                                                                "created"};

template <size_t N>
bool contains(const std::array<std::string_view, N>& words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

bool is_unit_word(std::string_view w) {
  if (contains(kUnitWords, w)) return true;
  for (std::string_view p : kUnitPrefixes) {
    if (w.starts_with(p) && contains(kUnitWords, w.substr(p.size()))) return true;
  }
  return false;
}

bool is_lower_snake(std::string_view s, bool leading_underscore_ok) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return leading_underscore_ok || s[0] != '_';
}

bool valid_metric_name(std::string_view name) {
  if (!is_lower_snake(name, false) || name.back() == '_') return false;
  if (name.find("__") != std::string_view::npos) return false;
  std::string_view last;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t end = name.find('_', pos);
    if (end == std::string_view::npos) end = name.size();
    std::string_view word = name.substr(pos, end - pos);
    if (contains(kUnitAbbreviations, word) || is_unit_word(word) || contains(kTypeWords, word)) {
      return false;
    }
    last = word;
    pos = end + 1;
  }
  return !contains(kReservedLastWords, last);
}

bool valid_label_name(std::string_view name) {
  if (!is_lower_snake(name, true) || name.starts_with("__")) return false;
  return name != "quantile" && name != "le";
}

// Well-formed UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
      n = 1, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::string_view unit_suffix(MetricUnit unit) {
  switch (unit) {
    case MetricUnit::none:
      return "";
    case MetricUnit::bytes:
      return "_bytes";
    case MetricUnit::nanoseconds:
      return "_seconds";
  }
  return "";
}

std::string_view json_unit_suffix(MetricUnit unit) {
  switch (unit) {
    case MetricUnit::none:
      return "";
    case MetricUnit::bytes:
      return "_bytes";
    case MetricUnit::nanoseconds:
      return "_ns";
  }
  return "";
}

void append_uint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Shortest text that reads back as the same double. Prometheus spells NaN "NaN".
void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

double ns_to_seconds(double ns) {
  return ns / double(kNsPerS);
}
double ns_to_ms(double ns) {
  return ns / double(kNsPerMs);
}

// Label values: backslash, double quote and line feed are escaped (format 0.0.4).
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text: backslash and line feed are escaped; quotes are not.
void append_help(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_json_string(std::string& out, std::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : v) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  out += '"';
}

void append_json_labels(std::string& out, const std::vector<MetricLabel>& labels) {
  out += "\"labels\":{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, labels[i].name);
    out += ':';
    append_json_string(out, labels[i].value);
  }
  out += '}';
}

// `,"p50_ms":x,...,"max_ms":x` after a "count"; null for an empty histogram.
void append_json_latency_figures(std::string& out, const HistogramSnapshot& s) {
  out += "\"count\":";
  append_uint(out, s.count());
  for (const Quantile& q : kQuantiles) {
    out += ",\"";
    out += q.json_key;
    out += "\":";
    if (s.count() == 0) {
      out += "null";
    } else {
      append_double(out, ns_to_ms(double(s.value_at_percentile(q.percentile))));
    }
  }
  out += ",\"max_ms\":";
  if (s.count() == 0) {
    out += "null";
  } else {
    append_double(out, ns_to_ms(double(s.max())));
  }
}

// One sample line: name, optional {labels[,extra]}, value.
void append_sample_head(std::string& out, std::string_view name, std::string_view suffix,
                        std::string_view labels, std::string_view extra_label) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra_label.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra_label.empty()) out += ',';
    out += extra_label;
    out += '}';
  }
  out += ' ';
}

// One string per label set, equal for equal sets whatever their order: the
// labels sorted by name, each as name, NUL, value length, NUL, value (names
// hold no NUL and the length delimits the value, so no two sets collide).
std::string label_set_key(const std::vector<MetricLabel>& labels) {
  std::vector<const MetricLabel*> sorted;
  sorted.reserve(labels.size());
  for (const MetricLabel& l : labels) sorted.push_back(&l);
  std::sort(sorted.begin(), sorted.end(),
            [](const MetricLabel* x, const MetricLabel* y) { return x->name < y->name; });
  std::string key;
  for (const MetricLabel* l : sorted) {
    key += l->name;
    key += '\0';
    key += std::to_string(l->value.size());
    key += '\0';
    key += l->value;
  }
  return key;
}

}  // namespace

const char* to_string(MetricsError e) {
  switch (e) {
    case MetricsError::ok:
      return "ok";
    case MetricsError::bad_name:
      return "bad metric name";
    case MetricsError::missing_help:
      return "missing help text";
    case MetricsError::bad_label_name:
      return "bad label name";
    case MetricsError::bad_label_value:
      return "label value is not valid UTF-8";
    case MetricsError::duplicate_label:
      return "duplicate label name in a series";
    case MetricsError::family_mismatch:
      return "metric name registered with another kind or unit";
    case MetricsError::duplicate_series:
      return "metric already registered with these labels";
  }
  return "unknown metrics error";
}

MetricsError MetricsRegistry::add(const MetricDesc& desc, const Counter& metric) {
  return add_series(desc, MetricKind::counter, desc.unit, &metric);
}

MetricsError MetricsRegistry::add(const MetricDesc& desc, const Gauge& metric) {
  return add_series(desc, MetricKind::gauge, desc.unit, &metric);
}

MetricsError MetricsRegistry::add(const MetricDesc& desc, const LatencyHistogram& metric) {
  return add_series(desc, MetricKind::latency, MetricUnit::nanoseconds, &metric);
}

MetricsError MetricsRegistry::add_series(
    const MetricDesc& desc, MetricKind kind, MetricUnit unit,
    std::variant<const Counter*, const Gauge*, const LatencyHistogram*> metric) {
  if (!valid_metric_name(desc.name)) return MetricsError::bad_name;
  if (desc.help.empty()) return MetricsError::missing_help;
  for (size_t i = 0; i < desc.labels.size(); ++i) {
    if (!valid_label_name(desc.labels[i].name)) return MetricsError::bad_label_name;
    if (!valid_utf8(desc.labels[i].value)) return MetricsError::bad_label_value;
    for (size_t j = 0; j < i; ++j) {
      if (desc.labels[j].name == desc.labels[i].name) return MetricsError::duplicate_label;
    }
  }
  Family* family = nullptr;
  for (Family& f : families_) {
    if (f.name == desc.name) family = &f;
  }
  if (family != nullptr) {
    if (family->kind != kind || family->unit != unit) return MetricsError::family_mismatch;
  } else {
    family = &families_.emplace_back(
        Family{std::string(desc.name), std::string(desc.help), kind, unit, {}, {}});
  }
  if (!family->label_sets.insert(label_set_key(desc.labels)).second) return MetricsError::duplicate_series;
  Series s{desc.labels, {}, metric};
  for (size_t i = 0; i < s.labels.size(); ++i) {
    if (i > 0) s.prometheus_labels += ',';
    s.prometheus_labels += s.labels[i].name;
    s.prometheus_labels += "=\"";
    append_label_value(s.prometheus_labels, s.labels[i].value);
    s.prometheus_labels += '"';
  }
  family->series.push_back(std::move(s));
  return MetricsError::ok;
}

size_t MetricsRegistry::series_count() const {
  size_t n = 0;
  for (const Family& f : families_) n += f.series.size();
  return n;
}

void MetricsRegistry::render_prometheus(std::string& out) const {
  // One scratch snapshot for every latency series: 59 KiB is too much for a
  // shard's stack to take per series, and rendering is allowed to allocate.
  std::unique_ptr<HistogramSnapshot> snap;
  std::string name;
  for (const Family& f : families_) {
    name.assign(kPrefix);
    name += f.name;
    name += unit_suffix(f.unit);
    if (f.kind == MetricKind::counter) name += "_total";
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help(out, f.help);
    out += "\n# TYPE ";
    out += name;
    switch (f.kind) {
      case MetricKind::counter:
        out += " counter\n";
        break;
      case MetricKind::gauge:
        out += " gauge\n";
        break;
      case MetricKind::latency:
        out += " summary\n";
        break;
    }
    for (const Series& s : f.series) {
      switch (f.kind) {
        case MetricKind::counter: {
          uint64_t v = std::get<const Counter*>(s.metric)->value();
          append_sample_head(out, name, "", s.prometheus_labels, "");
          if (f.unit == MetricUnit::nanoseconds) {
            append_double(out, ns_to_seconds(double(v)));
          } else {
            append_uint(out, v);
          }
          break;
        }
        case MetricKind::gauge: {
          int64_t v = std::get<const Gauge*>(s.metric)->value();
          append_sample_head(out, name, "", s.prometheus_labels, "");
          if (f.unit == MetricUnit::nanoseconds) {
            append_double(out, ns_to_seconds(double(v)));
          } else {
            append_int(out, v);
          }
          break;
        }
        case MetricKind::latency: {
          if (!snap) snap = std::make_unique<HistogramSnapshot>();
          snap->clear();
          std::get<const LatencyHistogram*>(s.metric)->merge_into(*snap);
          std::string quantile_label;
          for (const Quantile& q : kQuantiles) {
            quantile_label.assign("quantile=\"");
            quantile_label += q.label;
            quantile_label += '"';
            append_sample_head(out, name, "", s.prometheus_labels, quantile_label);
            append_double(out,
                          snap->count() == 0
                              ? std::nan("")
                              : ns_to_seconds(double(snap->value_at_percentile(q.percentile))));
            out += '\n';
          }
          append_sample_head(out, name, "_sum", s.prometheus_labels, "");
          append_double(out, ns_to_seconds(double(snap->sum())));
          out += '\n';
          append_sample_head(out, name, "_count", s.prometheus_labels, "");
          append_uint(out, snap->count());
          break;
        }
      }
      out += '\n';
    }
  }
}

void MetricsRegistry::render_json(std::string& out) const {
  // Each metric is read once: a family's total and merged figures are built
  // from the same reads as its series, so they agree even while writers run.
  std::unique_ptr<HistogramSnapshot> merged;
  std::unique_ptr<HistogramSnapshot> one;
  std::string series;
  out += '{';
  const std::array<std::pair<MetricKind, std::string_view>, 3> sections = {{
      {MetricKind::counter, "counters"},
      {MetricKind::gauge, "gauges"},
      {MetricKind::latency, "latency"},
  }};
  for (size_t k = 0; k < sections.size(); ++k) {
    MetricKind kind = sections[k].first;
    if (k > 0) out += ',';
    append_json_string(out, sections[k].second);
    out += ":{";
    bool first_family = true;
    for (const Family& f : families_) {
      if (f.kind != kind) continue;
      if (!first_family) out += ',';
      first_family = false;
      uint64_t total = 0;
      if (kind == MetricKind::latency) {
        if (!merged) merged = std::make_unique<HistogramSnapshot>();
        if (!one) one = std::make_unique<HistogramSnapshot>();
        merged->clear();
      }
      series.clear();
      for (size_t i = 0; i < f.series.size(); ++i) {
        const Series& s = f.series[i];
        if (i > 0) series += ',';
        series += '{';
        append_json_labels(series, s.labels);
        series += ',';
        switch (kind) {
          case MetricKind::counter: {
            uint64_t v = std::get<const Counter*>(s.metric)->value();
            total += v;
            series += "\"value\":";
            append_uint(series, v);
            break;
          }
          case MetricKind::gauge:
            series += "\"value\":";
            append_int(series, std::get<const Gauge*>(s.metric)->value());
            break;
          case MetricKind::latency:
            one->clear();
            std::get<const LatencyHistogram*>(s.metric)->merge_into(*one);
            merged->merge(*one);
            append_json_latency_figures(series, *one);
            break;
        }
        series += '}';
      }
      std::string key = f.name;
      if (kind != MetricKind::latency) key += json_unit_suffix(f.unit);
      append_json_string(out, key);
      out += ":{";
      if (kind == MetricKind::counter) {
        out += "\"total\":";
        append_uint(out, total);
        out += ',';
      } else if (kind == MetricKind::latency) {
        append_json_latency_figures(out, *merged);
        out += ',';
      }
      out += "\"series\":[";
      out += series;
      out += "]}";
    }
    out += '}';
  }
  out += '}';
}

}  // namespace sluice
