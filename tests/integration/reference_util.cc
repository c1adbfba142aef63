#include "tests/integration/reference.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

namespace sluice::integration {

namespace {

const char* fn_name(AggFn fn) {
  switch (fn) {
    case AggFn::count:
      return "count";
    case AggFn::sum:
      return "sum";
    case AggFn::min:
      return "min";
    case AggFn::max:
      return "max";
    case AggFn::avg:
      return "avg";
    case AggFn::approx_count_distinct:
      return "approx_count_distinct";
  }
  return "?";
}

// A value as TOML writes it.
std::string toml_value(const FieldValue& v) {
  if (std::holds_alternative<int64_t>(v)) return std::to_string(std::get<int64_t>(v));
  if (std::holds_alternative<std::string>(v)) return toml_string(std::get<std::string>(v));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, std::get<double>(v));
  std::string out(buf, end);
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

const char* kind_name(FieldKind k) {
  switch (k) {
    case FieldKind::int64:
      return "int64";
    case FieldKind::float64:
      return "float64";
    case FieldKind::string:
      return "string";
  }
  return "?";
}

// In the largest unit that is exact: "1m", "30s", "250ms".
std::string duration(int64_t ns) {
  if (ns != 0 && ns % kNsPerMin == 0) return std::to_string(ns / kNsPerMin) + "m";
  if (ns % kNsPerS == 0) return std::to_string(ns / kNsPerS) + "s";
  if (ns % kNsPerMs == 0) return std::to_string(ns / kNsPerMs) + "ms";
  return std::to_string(ns) + "ns";
}

// Up to this many individual differences are listed in a failure message.
constexpr size_t kReportedDifferencesMax = 20;

}  // namespace

std::string PipelineSpec::toml() const {
  std::ostringstream t;
  t << "[schema]\nkey = [";
  for (size_t i = 0; i < key_fields.size(); ++i) t << (i ? ", " : "") << toml_string(key_fields[i]);
  t << "]\ntime = { field = " << toml_string(time_field)
    << ", format = " << toml_string(time_format) << " }\nfields = {";
  bool first = true;
  for (const auto& [name, kind] : fields) {
    t << (first ? " " : ", ") << toml_string(name) << " = ";
    first = false;
    auto optional = optional_fields.find(name);
    if (optional == optional_fields.end()) {
      t << "\"" << kind_name(kind) << "\"";
    } else if (optional->second.default_value) {
      t << "{ type = \"" << kind_name(kind) << "\", default = " << toml_value(*optional->second.default_value)
        << " }";
    } else {
      t << "{ type = \"" << kind_name(kind) << "\", optional = true }";
    }
  }
  t << " }\n\n[window]\nkind = \"tumbling\"\nsize = \"" << duration(window_ns)
    << "\"\nwatermark_delay = \"" << duration(delay_ns) << "\"\nidle_timeout = \"" << idle_timeout
    << "\"\n";
  for (const AggSpec& a : aggregates) {
    t << "\n[[aggregates]]\nname = " << toml_string(a.name) << "\nfn = \"" << fn_name(a.fn)
      << "\"\n";
    if (!a.field.empty()) t << "field = " << toml_string(a.field) << "\n";
  }
  return t.str();
}

std::string describe(const Key& key) {
  std::string out = "[";
  for (size_t i = 0; i < key.size(); ++i) {
    if (i) out += ", ";
    out += std::holds_alternative<int64_t>(key[i]) ? std::to_string(std::get<int64_t>(key[i]))
                                                   : json_string(std::get<std::string>(key[i]));
  }
  return out + "]";
}

std::string Row::describe() const {
  std::string out = format_rfc3339(window_start) + " " + integration::describe(key) + " {";
  for (size_t i = 0; i < aggregates.size(); ++i) out += (i ? ", " : "") + aggregates[i].describe();
  return out + "}";
}

// ---------------------------------------------------------------------------
// The model

ReferenceModel::ReferenceModel(PipelineSpec spec) : spec_(std::move(spec)) {}

bool ReferenceModel::offer(int stream, const Event& e) {
  auto max_it = max_time_.find(stream);
  if (max_it != max_time_.end()) {
    if (window_end(e.time_ns) <= max_it->second - spec_.delay_ns) {
      ++late_;
      return false;
    }
    if (e.time_ns < max_it->second) ++accepted_out_of_order_;
    max_it->second = std::max(max_it->second, e.time_ns);
  } else {
    max_time_[stream] = e.time_ns;
  }
  ++accepted_;

  Accumulator& acc = windows_[{window_start(e.time_ns), e.key}];
  const size_t n = spec_.aggregates.size();
  if (acc.count == 0) {
    acc.values.assign(n, 0);
    acc.int_sum.assign(n, 0);
    acc.float_sum.assign(n, 0);
    acc.min.assign(n, FieldValue{});
    acc.max.assign(n, FieldValue{});
    acc.distinct.assign(n, {});
  }
  ++acc.count;
  for (size_t a = 0; a < n; ++a) {
    const AggSpec& agg = spec_.aggregates[a];
    if (agg.field.empty()) continue;  // count of events: acc.count
    // The event's value of the field: its own, its default, or none.
    const FieldValue* v = nullptr;
    if (auto it = e.values.find(agg.field); it != e.values.end()) {
      v = &it->second;
    } else if (auto opt = spec_.optional_fields.find(agg.field); opt != spec_.optional_fields.end()) {
      if (opt->second.default_value) v = &*opt->second.default_value;
    } else {
      ADD_FAILURE() << "the model was given an event without the required field " << agg.field;
    }
    if (v == nullptr) continue;  // skipped by this aggregate
    ++acc.values[a];
    if (agg.fn == AggFn::count) continue;
    if (agg.fn == AggFn::approx_count_distinct) {
      acc.distinct[a].insert(*v);
      continue;
    }
    if (std::holds_alternative<int64_t>(*v)) {
      acc.int_sum[a] += std::get<int64_t>(*v);
    } else {
      acc.float_sum[a] += std::get<double>(*v);
    }
    if (acc.values[a] == 1 || *v < acc.min[a]) acc.min[a] = *v;
    if (acc.values[a] == 1 || acc.max[a] < *v) acc.max[a] = *v;
  }
  return true;
}

std::optional<int64_t> ReferenceModel::watermark(int stream) const {
  auto it = max_time_.find(stream);
  if (it == max_time_.end()) return std::nullopt;
  return it->second - spec_.delay_ns;
}

std::optional<int64_t> ReferenceModel::max_watermark() const {
  std::optional<int64_t> out;
  for (const auto& [stream, t] : max_time_) {
    if (!out || t - spec_.delay_ns > *out) out = t - spec_.delay_ns;
  }
  return out;
}

std::vector<Row> ReferenceModel::rows() const {
  std::vector<Row> out;
  for (const auto& [where, acc] : windows_) {
    Row row{where.first, where.second, {}};
    for (size_t a = 0; a < spec_.aggregates.size(); ++a) {
      const AggSpec& agg = spec_.aggregates[a];
      const bool integer = !agg.field.empty() && spec_.field_kind(agg.field) == FieldKind::int64;
      // Documented: JSON has no inf/nan, so a float that is not finite is written as null.
      auto floating = [](double f) { return std::isfinite(f) ? Scalar::floating(f) : Scalar{}; };
      auto value = [](const FieldValue& v) {
        return std::holds_alternative<int64_t>(v) ? Scalar::integer(std::get<int64_t>(v))
                                                  : Scalar::floating(std::get<double>(v));
      };
      // Documented: over no value at all (an optional field every event
      // lacked) sum, min, max and avg are null.
      const bool none = !agg.field.empty() && acc.values[a] == 0;
      switch (agg.fn) {
        case AggFn::count:
          row.aggregates.push_back(Scalar::integer(agg.field.empty() ? acc.count : acc.values[a]));
          break;
        case AggFn::approx_count_distinct:
          row.aggregates.push_back(Scalar::integer(int64_t(acc.distinct[a].size())));
          break;
        case AggFn::sum:
          if (none) {
            row.aggregates.push_back(Scalar{});
          } else if (!integer) {
            row.aggregates.push_back(floating(double(acc.float_sum[a])));
          } else if (acc.int_sum[a] < std::numeric_limits<int64_t>::min() ||
                     acc.int_sum[a] > std::numeric_limits<int64_t>::max()) {
            // Documented: a sum that does not fit int64 is null. The exact sum
            // decides, so the result does not depend on the order of events.
            row.aggregates.push_back(Scalar{});
          } else {
            row.aggregates.push_back(Scalar::integer(int64_t(acc.int_sum[a])));
          }
          break;
        case AggFn::min:
          row.aggregates.push_back(none ? Scalar{} : value(acc.min[a]));
          break;
        case AggFn::max:
          row.aggregates.push_back(none ? Scalar{} : value(acc.max[a]));
          break;
        case AggFn::avg: {
          if (none) {
            row.aggregates.push_back(Scalar{});
            break;
          }
          long double sum = integer ? (long double)acc.int_sum[a] : acc.float_sum[a];
          row.aggregates.push_back(floating(double(sum / acc.values[a])));
          break;
        }
      }
    }
    out.push_back(std::move(row));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Output rows

std::vector<Row> parse_ndjson_rows(const PipelineSpec& spec,
                                   const std::vector<std::string>& lines) {
  std::vector<Row> rows;
  const size_t nkeys = spec.key_fields.size();
  const size_t naggs = spec.aggregates.size();
  for (size_t li = 0; li < lines.size(); ++li) {
    const std::string& line = lines[li];
    std::string error;
    auto fields = parse_flat_object(line, &error);
    auto bad = [&](const std::string& why) {
      ADD_FAILURE() << "output line " << li + 1 << ": " << why << ": " << line;
    };
    if (!fields) {
      bad(error);
      continue;
    }
    if (fields->size() != 2 + nkeys + naggs) {
      bad("expected " + std::to_string(2 + nkeys + naggs) + " fields");
      continue;
    }
    std::vector<std::string> names = {"window_start", "window_end"};
    names.insert(names.end(), spec.key_fields.begin(), spec.key_fields.end());
    for (const AggSpec& a : spec.aggregates) names.push_back(a.name);
    bool ok = true;
    for (size_t i = 0; i < names.size() && ok; ++i) {
      if ((*fields)[i].first != names[i]) {
        bad("field " + std::to_string(i + 1) + " should be \"" + names[i] + "\"");
        ok = false;
      }
    }
    if (!ok) continue;
    const Scalar& ws = (*fields)[0].second;
    const Scalar& we = (*fields)[1].second;
    if (ws.kind != Scalar::Kind::string || we.kind != Scalar::Kind::string) {
      bad("window bounds are not strings");
      continue;
    }
    const std::optional<int64_t> start = parse_rfc3339(ws.s);
    const std::optional<int64_t> end = parse_rfc3339(we.s);
    if (!start.has_value() || !end.has_value()) {
      bad("window bounds are not RFC 3339 times");
      continue;
    }
    // The documented spelling: UTC with "Z", fraction digits only when needed.
    if (ws.s != format_rfc3339(*start) || we.s != format_rfc3339(*end)) {
      bad("window bounds not written as " + format_rfc3339(*start) + " / " + format_rfc3339(*end));
    }
    if (*end != *start + spec.window_ns) bad("window_end != window_start + size");
    Row row{*start, {}, {}};
    for (size_t k = 0; k < nkeys; ++k) {
      const Scalar& v = (*fields)[2 + k].second;
      if (v.kind == Scalar::Kind::integer) {
        row.key.emplace_back(v.i);
      } else if (v.kind == Scalar::Kind::string) {
        row.key.emplace_back(v.s);
      } else {
        bad("key field " + spec.key_fields[k] + " is neither an integer nor a string");
        ok = false;
      }
    }
    for (size_t a = 0; a < naggs; ++a) row.aggregates.push_back((*fields)[2 + nkeys + a].second);
    if (ok) rows.push_back(std::move(row));
  }
  return rows;
}

namespace {

// RFC 4180 fields of one line (no embedded line breaks in these tests).
std::optional<std::vector<std::string>> csv_fields(std::string_view line) {
  std::vector<std::string> out;
  size_t i = 0;
  for (;;) {
    std::string field;
    if (i < line.size() && line[i] == '"') {
      for (++i;; ++i) {
        if (i >= line.size()) return std::nullopt;
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            ++i;
          } else {
            ++i;
            break;
          }
        } else {
          field += line[i];
        }
      }
      if (i < line.size() && line[i] != ',') return std::nullopt;
    } else {
      size_t comma = line.find(',', i);
      field = std::string(line.substr(i, comma == std::string_view::npos ? line.npos : comma - i));
      if (field.find('"') != std::string::npos) return std::nullopt;
      i = comma == std::string_view::npos ? line.size() : comma;
    }
    out.push_back(std::move(field));
    if (i >= line.size()) return out;
    ++i;  // the comma
  }
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::vector<Row> parse_csv_rows(const PipelineSpec& spec, const std::vector<FieldKind>& key_kinds,
                                const std::vector<std::string>& lines) {
  std::vector<Row> rows;
  std::string header = "window_start,window_end";
  for (const std::string& k : spec.key_fields) header += "," + k;
  for (const AggSpec& a : spec.aggregates) header += "," + a.name;
  if (lines.empty() || lines[0] != header) {
    ADD_FAILURE() << "CSV header should be \"" << header << "\", got \""
                  << (lines.empty() ? "(no lines)" : lines[0]) << "\"";
    return rows;
  }
  const size_t nkeys = spec.key_fields.size();
  for (size_t li = 1; li < lines.size(); ++li) {
    auto bad = [&](const std::string& why) {
      ADD_FAILURE() << "CSV line " << li + 1 << ": " << why << ": " << lines[li];
    };
    auto f = csv_fields(lines[li]);
    if (!f || f->size() != 2 + nkeys + spec.aggregates.size()) {
      bad("wrong number of fields or bad quoting");
      continue;
    }
    auto start = parse_rfc3339((*f)[0]);
    auto end = parse_rfc3339((*f)[1]);
    if (!start || !end || (*f)[0] != format_rfc3339(*start) || *end != *start + spec.window_ns) {
      bad("bad window bounds");
      continue;
    }
    Row row{*start, {}, {}};
    bool ok = true;
    for (size_t k = 0; k < nkeys; ++k) {
      const std::string& text = (*f)[2 + k];
      if (key_kinds[k] == FieldKind::int64) {
        auto v = parse_int(text);
        if (!v) {
          bad("key field " + spec.key_fields[k] + " is not an integer");
          ok = false;
        } else {
          row.key.emplace_back(*v);
        }
      } else {
        row.key.emplace_back(text);
      }
    }
    for (size_t a = 0; a < spec.aggregates.size(); ++a) {
      const AggSpec& agg = spec.aggregates[a];
      const std::string& text = (*f)[2 + nkeys + a];
      const bool integer = agg.fn == AggFn::count || agg.fn == AggFn::approx_count_distinct ||
                           (agg.fn != AggFn::avg && spec.field_kind(agg.field) == FieldKind::int64);
      if (text.empty()) {
        row.aggregates.push_back(Scalar{});
      } else if (integer) {
        auto v = parse_int(text);
        if (!v) {
          bad("aggregate " + agg.name + " is not an integer");
          ok = false;
        } else {
          row.aggregates.push_back(Scalar::integer(*v));
        }
      } else {
        double v;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || p != text.data() + text.size() ||
            text.find_first_of(".eE") == std::string::npos) {
          bad("aggregate " + agg.name + " is not a float with a '.' or an exponent");
          ok = false;
        } else {
          row.aggregates.push_back(Scalar::floating(v));
        }
      }
    }
    if (ok) rows.push_back(std::move(row));
  }
  return rows;
}

namespace {

bool same_scalar(const Scalar& a, const Scalar& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Scalar::Kind::null:
      return true;
    case Scalar::Kind::boolean:
      return a.b == b.b;
    case Scalar::Kind::integer:
      return a.i == b.i;
    case Scalar::Kind::string:
      return a.s == b.s;
    case Scalar::Kind::floating: {
      constexpr double kRelativeTolerance = 1e-9;
      return a.f == b.f ||
             std::fabs(a.f - b.f) <= kRelativeTolerance * std::max(std::fabs(a.f), std::fabs(b.f));
    }
  }
  return false;
}

}  // namespace

::testing::AssertionResult same_rows(const std::vector<Row>& expected,
                                     const std::vector<Row>& actual) {
  std::map<std::pair<int64_t, Key>, const Row*> want;
  for (const Row& r : expected) want[{r.window_start, r.key}] = &r;
  std::set<std::pair<int64_t, Key>> seen;
  std::vector<std::string> problems;
  for (const Row& r : actual) {
    auto where = std::make_pair(r.window_start, r.key);
    if (!seen.insert(where).second) {
      problems.push_back("duplicate row: " + r.describe());
      continue;
    }
    auto it = want.find(where);
    if (it == want.end()) {
      problems.push_back("unexpected row: " + r.describe());
      continue;
    }
    const Row& w = *it->second;
    bool same = w.aggregates.size() == r.aggregates.size();
    for (size_t a = 0; same && a < w.aggregates.size(); ++a) {
      same = same_scalar(w.aggregates[a], r.aggregates[a]);
    }
    if (!same)
      problems.push_back("wrong values:\n    expected " + w.describe() + "\n    actual   " +
                         r.describe());
  }
  for (const Row& r : expected) {
    if (!seen.contains({r.window_start, r.key})) problems.push_back("missing row: " + r.describe());
  }
  if (problems.empty()) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << problems.size() << " difference(s) between " << expected.size() << " expected and "
          << actual.size() << " actual rows:";
  for (size_t i = 0; i < problems.size() && i < kReportedDifferencesMax; ++i) {
    failure << "\n  " << problems[i];
  }
  return failure;
}

::testing::AssertionResult windows_ascending(const std::vector<Row>& rows) {
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].window_start < rows[i - 1].window_start) {
      return ::testing::AssertionFailure()
             << "row " << i + 1 << " (" << rows[i].describe()
             << ") comes after a row of a later window (" << rows[i - 1].describe() << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult keys_ascending_within_windows(const std::vector<Row>& rows) {
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].window_start != rows[i - 1].window_start) continue;
    // std::variant orders by alternative, then by value: integers numerically,
    // strings by bytes (char_traits<char> compares as unsigned char).
    if (!(rows[i - 1].key < rows[i].key)) {
      return ::testing::AssertionFailure()
             << "rows " << i << " and " << i + 1
             << " of one window are not in key order: " << describe(rows[i - 1].key) << " then "
             << describe(rows[i].key);
    }
  }
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------
// Dead letters

::testing::AssertionResult same_dead_letters(const std::vector<ExpectedDeadLetter>& expected,
                                             const std::vector<std::string>& lines,
                                             const std::string& source) {
  std::vector<std::string> problems;
  std::vector<bool> matched(expected.size(), false);
  // Candidates by (reason, origin); within one the first unmatched fitting one wins.
  std::map<std::pair<std::string, std::string>, std::vector<size_t>> index;
  for (size_t i = 0; i < expected.size(); ++i) {
    index[{expected[i].reason, expected[i].origin}].push_back(i);
  }
  for (const std::string& line : lines) {
    std::string error;
    auto d = parse_dead_letter(line, &error);
    if (!d) {
      problems.push_back("malformed dead-letter record (" + error + "): " + line);
      continue;
    }
    if (d->source != source) problems.push_back("wrong source \"" + d->source + "\": " + line);
    if (d->detail.empty()) problems.push_back("empty detail: " + line);
    bool found = false;
    for (size_t i : index[{d->reason, d->origin}]) {
      const ExpectedDeadLetter& e = expected[i];
      if (matched[i]) continue;
      const bool fits = e.truncated
                            ? d->raw_truncated && d->raw_bytes == e.raw.size() && !d->raw.empty() &&
                                  std::string_view(e.raw).starts_with(d->raw)
                            : !d->raw_truncated && d->raw == e.raw;
      if (!fits) continue;
      const bool utf8 = simdjson::validate_utf8(e.raw.data(), e.raw.size());
      if (d->raw_was_base64 == utf8) {
        problems.push_back(std::string("raw should be ") + (utf8 ? "\"raw\"" : "\"raw_base64\"") +
                           ": " + line);
      }
      matched[i] = true;
      found = true;
      break;
    }
    if (!found) problems.push_back("unexpected dead letter: " + line);
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    if (!matched[i]) {
      const ExpectedDeadLetter& e = expected[i];
      problems.push_back("missing dead letter: reason=" + e.reason + " origin=" + e.origin +
                         " raw=" + json_string(e.raw.substr(0, 200)) +
                         (e.truncated ? " (truncated)" : ""));
    }
  }
  if (problems.empty()) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  failure << problems.size() << " difference(s) between " << expected.size() << " expected and "
          << lines.size() << " actual dead letters:";
  for (size_t i = 0; i < problems.size() && i < kReportedDifferencesMax; ++i) {
    failure << "\n  " << problems[i];
  }
  return failure;
}

}  // namespace sluice::integration

namespace sluice::integration {

void expect_run_output(const PipelineSpec& spec, const ExpectedRun& expected,
                       const std::string& rows_path, const std::string& dead_letter_path,
                       const std::string& stderr_text) {
  std::string tail;
  const std::vector<std::string> lines = complete_lines(read_file(rows_path), &tail);
  EXPECT_EQ(tail, "") << "the rows file does not end with a newline";
  const std::vector<Row> rows = parse_ndjson_rows(spec, lines);
  EXPECT_TRUE(same_rows(expected.rows, rows));
  EXPECT_TRUE(windows_ascending(rows));

  const std::vector<std::string> dl_lines = complete_lines(read_file(dead_letter_path), &tail);
  EXPECT_EQ(tail, "") << "the dead-letter file does not end with a newline";
  EXPECT_TRUE(same_dead_letters(expected.dead_letters, dl_lines, expected.source));

  std::map<std::string, uint64_t> reasons = {{"parse_error", 0},
                                             {"schema_error", 0},
                                             {"line_too_long", 0},
                                             {"late", 0},
                                             {"partial_line", 0},
                                             {"corrupt_batch", 0},
                                             {"future", 0}};
  for (const ExpectedDeadLetter& d : expected.dead_letters) ++reasons[d.reason];
  auto summary = parse_summary(stderr_text);
  ASSERT_TRUE(summary) << "no summary line in stderr:\n" << stderr_text;
  EXPECT_EQ(summary->events_in, expected.events_in);
  EXPECT_EQ(summary->lines_in, expected.lines_in);
  EXPECT_EQ(summary->rows_out, expected.rows.size());
  EXPECT_EQ(summary->dead_letters, reasons);
  EXPECT_EQ(warnings_and_errors(stderr_text), std::vector<std::string>{});
}

void run_file_and_expect(const TempDir& dir, const PipelineSpec& spec, const std::string& input,
                         uint32_t shards, const ExpectedRun& expected,
                         std::string_view extra_source_keys) {
  write_file(dir.file("pipeline.toml"), fmt::format(R"([pipeline]
name = "file-test"
shards = {}

[[sources]]
name = {}
type = "file"
path = {}
{}

{}
[[sinks]]
name = "rows"
type = "file"
path = {}

[dead_letter]
path = {}
)",
                                                    shards, toml_string(expected.source),
                                                    toml_string(input), extra_source_keys, spec.toml(),
                                                    toml_string(dir.file("rows.ndjson")),
                                                    toml_string(dir.file("dead.ndjson"))));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());
  expect_run_output(spec, expected, dir.file("rows.ndjson"), dir.file("dead.ndjson"),
                    run.stderr_text());
}

}  // namespace sluice::integration
