#include "operators/row_encoder.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/config_model.h"
#include "operators/result_row.h"

namespace sluice {
namespace {

constexpr int64_t k2024Ns = 1'704'067'200'000'000'000;  // 2024-01-01T00:00:00Z
constexpr int64_t kFiveMinNs = 300'000'000'000;

// Key encoding from operators/event.h, written for the test.
std::string key_int(int64_t v) {
  std::string s(1, 'i');
  for (int i = 0; i < 8; ++i) s.push_back(char((uint64_t(v) >> (8 * i)) & 0xff));
  return s;
}
std::string key_str(std::string_view v) {
  std::string s(1, 's');
  uint32_t n = uint32_t(v.size());
  for (int i = 0; i < 4; ++i) s.push_back(char((n >> (8 * i)) & 0xff));
  return s + std::string(v);
}

AggValue int_value(int64_t v) {
  AggValue a;
  a.kind = AggValue::Kind::int64;
  a.v.i = v;
  return a;
}
AggValue float_value(double v) {
  AggValue a;
  a.kind = AggValue::Kind::float64;
  a.v.f = v;
  return a;
}
AggValue null_value() { return AggValue{}; }

AggregateConfig agg(std::string name, AggFn fn) {
  AggregateConfig a;
  a.name = std::move(name);
  a.fn = fn;
  return a;
}

SchemaConfig schema(std::vector<std::string> key) {
  SchemaConfig s;
  s.key = std::move(key);
  s.time_field = "timestamp";
  return s;
}

// Encodes one row through the binary row format, as the gatherer does.
std::string encode(const RowEncoder& enc, int64_t start, const std::string& key, const std::vector<AggValue>& vals,
                   int64_t size = kFiveMinNs) {
  std::vector<char> row(result_row_bytes(key.size(), vals.size()));
  size_t n = write_result_row(start, key, vals.data(), vals.size(), row.data());
  EXPECT_EQ(n, row.size());
  ResultRowView view = ResultRowView::parse(row.data(), vals.size());
  EXPECT_EQ(view.bytes, row.size());
  EXPECT_EQ(view.window_start, start);
  EXPECT_EQ(view.key, key);
  std::string out(enc.row_bytes_max() + 64, '#');
  size_t len = enc.encode(view, size, out.data());
  EXPECT_LE(len, enc.row_bytes_max());
  EXPECT_EQ(out[len], '#');
  return out.substr(0, len);
}

TEST(ResultRow, RoundTripsThroughTheBinaryForm) {
  std::string key = key_str("abc") + key_int(-5);
  std::vector<AggValue> vals = {int_value(7), float_value(2.5), null_value()};
  std::vector<char> row(result_row_bytes(key.size(), vals.size()));
  ASSERT_EQ(write_result_row(-42, key, vals.data(), vals.size(), row.data()), row.size());
  ResultRowView v = ResultRowView::parse(row.data(), vals.size());
  EXPECT_EQ(v.window_start, -42);
  EXPECT_EQ(v.key, key);
  EXPECT_EQ(v.bytes, 8 + 2 + key.size() + 3 * 9);
  EXPECT_EQ(v.agg(0).kind, AggValue::Kind::int64);
  EXPECT_EQ(v.agg(0).v.i, 7);
  EXPECT_EQ(v.agg(1).kind, AggValue::Kind::float64);
  EXPECT_EQ(v.agg(1).v.f, 2.5);
  EXPECT_EQ(v.agg(2).kind, AggValue::Kind::null);
}

TEST(RowEncoder, NdjsonIntKey) {
  RowEncoder enc(OutputFormat::ndjson, schema({"product_id"}),
                 {agg("n", AggFn::count), agg("total", AggFn::sum), agg("mean", AggFn::avg)});
  EXPECT_EQ(enc.header(), "");
  EXPECT_EQ(encode(enc, k2024Ns, key_int(17), {int_value(3), int_value(10), float_value(3.5)}),
            R"({"window_start":"2024-01-01T00:00:00Z","window_end":"2024-01-01T00:05:00Z","product_id":17,)"
            R"("n":3,"total":10,"mean":3.5})"
            "\n");
  EXPECT_EQ(encode(enc, k2024Ns, key_int(-9), {int_value(1), int_value(-9), float_value(-9.0)}),
            R"({"window_start":"2024-01-01T00:00:00Z","window_end":"2024-01-01T00:05:00Z","product_id":-9,)"
            R"("n":1,"total":-9,"mean":-9.0})"
            "\n");
}

TEST(RowEncoder, NdjsonStringKeyNeedingEscapes) {
  RowEncoder enc(OutputFormat::ndjson, schema({"customer"}), {agg("n", AggFn::count)});
  std::string out = encode(enc, k2024Ns + 1'500'000'000, key_str("a\"b,c\nd\\e\x01"), {int_value(2)}, kNsPerS);
  EXPECT_EQ(out,
            R"({"window_start":"2024-01-01T00:00:01.500Z","window_end":"2024-01-01T00:00:02.500Z",)"
            R"("customer":"a\"b,c\nd\\e\u0001","n":2})"
            "\n");
  // And it is JSON that reads back to the key.
  simdjson::dom::parser p;
  simdjson::padded_string ps(out.substr(0, out.size() - 1));
  std::string_view customer;
  ASSERT_EQ(p.parse(ps)["customer"].get_string().get(customer), simdjson::SUCCESS);
  EXPECT_EQ(customer, "a\"b,c\nd\\e\x01");
}

TEST(RowEncoder, NdjsonMultiFieldKeyAndNull) {
  RowEncoder enc(OutputFormat::ndjson, schema({"region", "product_id"}),
                 {agg("total", AggFn::sum), agg("avg_price", AggFn::avg), agg("n", AggFn::count)});
  EXPECT_EQ(encode(enc, 0, key_str("eu") + key_int(4), {null_value(), float_value(2.0), int_value(5)}, 60 * kNsPerS),
            R"({"window_start":"1970-01-01T00:00:00Z","window_end":"1970-01-01T00:01:00Z","region":"eu",)"
            R"("product_id":4,"total":null,"avg_price":2.0,"n":5})"
            "\n");
}

TEST(RowEncoder, NdjsonNegativeWindow) {
  RowEncoder enc(OutputFormat::ndjson, schema({"k"}), {agg("n", AggFn::count)});
  EXPECT_EQ(encode(enc, -kNsPerS, key_int(1), {int_value(1)}, kNsPerS),
            R"({"window_start":"1969-12-31T23:59:59Z","window_end":"1970-01-01T00:00:00Z","k":1,"n":1})"
            "\n");
}

TEST(RowEncoder, CsvHeaderAndRows) {
  RowEncoder enc(OutputFormat::csv, schema({"region", "product_id"}),
                 {agg("n", AggFn::count), agg("total", AggFn::sum), agg("mean", AggFn::avg)});
  EXPECT_EQ(enc.header(), "window_start,window_end,region,product_id,n,total,mean\n");
  EXPECT_EQ(encode(enc, k2024Ns, key_str("eu") + key_int(17), {int_value(3), int_value(10), float_value(3.5)}),
            "2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,eu,17,3,10,3.5\n");
  // Null is an empty field; a float always shows its point.
  EXPECT_EQ(encode(enc, k2024Ns, key_str("us") + key_int(-1), {int_value(1), null_value(), float_value(4.0)}),
            "2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,us,-1,1,,4.0\n");
  EXPECT_EQ(encode(enc, k2024Ns, key_str("x") + key_int(0), {int_value(1), int_value(2), null_value()}),
            "2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,x,0,1,2,\n");
}

TEST(RowEncoder, CsvQuotesStringKeys) {
  RowEncoder enc(OutputFormat::csv, schema({"customer"}), {agg("n", AggFn::count)});
  EXPECT_EQ(encode(enc, k2024Ns, key_str("a\"b,c"), {int_value(1)}),
            "2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,\"a\"\"b,c\",1\n");
  EXPECT_EQ(encode(enc, k2024Ns, key_str("line\nbreak"), {int_value(1)}),
            "2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,\"line\nbreak\",1\n");
  EXPECT_EQ(encode(enc, k2024Ns, key_str(""), {int_value(1)}), "2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,,1\n");
}

TEST(RowEncoder, CsvHeaderQuotesNames) {
  RowEncoder enc(OutputFormat::csv, schema({"a,b"}), {agg("say \"hi\"", AggFn::count)});
  EXPECT_EQ(enc.header(), "window_start,window_end,\"a,b\",\"say \"\"hi\"\"\"\n");
}

TEST(RowEncoder, WorstCaseRowFits) {
  // The longest key: one string field of control characters (6 bytes each escaped).
  std::string worst(kKeyBytesMax - 5, '\x01');
  std::vector<AggregateConfig> aggs;
  std::vector<AggValue> vals;
  for (int i = 0; i < 64; ++i) {
    aggs.push_back(agg("aggregate_" + std::to_string(i), AggFn::sum));
    vals.push_back(i % 2 ? int_value(std::numeric_limits<int64_t>::min()) : float_value(-1.7976931348623157e308));
  }
  for (OutputFormat f : {OutputFormat::ndjson, OutputFormat::csv}) {
    RowEncoder enc(f, schema({"k"}), aggs);
    std::string out = encode(enc, k2024Ns + 123'456'789, key_str(worst), vals, 1);
    EXPECT_LE(out.size(), enc.row_bytes_max());
  }
  // Eight int key fields at their longest.
  std::vector<std::string> names;
  std::string key;
  for (int i = 0; i < 8; ++i) {
    names.push_back("key_field_" + std::to_string(i));
    key += key_int(std::numeric_limits<int64_t>::min());
  }
  RowEncoder enc(OutputFormat::ndjson, schema(names), aggs);
  std::string out = encode(enc, k2024Ns + 123'456'789, key, vals, 1);
  EXPECT_LE(out.size(), enc.row_bytes_max());
}

// ---------------------------------------------------------------------------
// compare_keys, against a reference on decoded keys.

using Field = std::variant<int64_t, std::string>;

bool ref_less_field(const Field& a, const Field& b) {
  if (a.index() != b.index()) return a.index() == 0;  // integers before strings
  if (a.index() == 0) return std::get<0>(a) < std::get<0>(b);
  const std::string& x = std::get<1>(a);
  const std::string& y = std::get<1>(b);
  return std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end(),
                                      [](char p, char q) { return (unsigned char)p < (unsigned char)q; });
}
int ref_compare(const std::vector<Field>& a, const std::vector<Field>& b) {
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (ref_less_field(a[i], b[i])) return -1;
    if (ref_less_field(b[i], a[i])) return 1;
  }
  return a.size() < b.size() ? -1 : a.size() > b.size() ? 1 : 0;
}
std::string encode_key(const std::vector<Field>& k) {
  std::string s;
  for (const Field& f : k) s += f.index() == 0 ? key_int(std::get<0>(f)) : key_str(std::get<1>(f));
  return s;
}
int sign(int v) { return (v > 0) - (v < 0); }

TEST(CompareKeys, Examples) {
  auto cmp = [](const std::vector<Field>& a, const std::vector<Field>& b) {
    return sign(compare_keys(encode_key(a), encode_key(b)));
  };
  EXPECT_EQ(cmp({int64_t(1)}, {int64_t(1)}), 0);
  EXPECT_EQ(cmp({int64_t(-5)}, {int64_t(3)}), -1);
  EXPECT_EQ(cmp({int64_t(3)}, {int64_t(-5)}), 1);
  EXPECT_EQ(cmp({int64_t(-1)}, {int64_t(0)}), -1);  // not bytewise: -1 is 0xff...
  EXPECT_EQ(cmp({int64_t(255)}, {int64_t(256)}), -1);  // not little-endian bytewise
  EXPECT_EQ(cmp({std::numeric_limits<int64_t>::min()}, {std::numeric_limits<int64_t>::max()}), -1);
  EXPECT_EQ(cmp({std::numeric_limits<int64_t>::max()}, {std::string("")}), -1);  // ints before strings
  EXPECT_EQ(cmp({std::string("")}, {std::string("a")}), -1);
  EXPECT_EQ(cmp({std::string("a")}, {std::string("ab")}), -1);
  EXPECT_EQ(cmp({std::string("ab")}, {std::string("b")}), -1);   // not by length first
  EXPECT_EQ(cmp({std::string("Z")}, {std::string("a")}), -1);
  EXPECT_EQ(cmp({std::string("z")}, {std::string("\xc3\xa9")}), -1);  // bytes as unsigned
  EXPECT_EQ(cmp({std::string("a"), int64_t(9)}, {std::string("ab"), int64_t(1)}), -1);
  EXPECT_EQ(cmp({std::string("a"), int64_t(2)}, {std::string("a"), int64_t(10)}), -1);
  EXPECT_EQ(cmp({int64_t(1), std::string("b")}, {int64_t(2), std::string("a")}), -1);
  EXPECT_EQ(cmp({int64_t(2), std::string("a")}, {int64_t(2), std::string("a")}), 0);
}

TEST(CompareKeys, MatchesReferenceOrder) {
  std::mt19937_64 rng(3);
  auto random_field = [&](int kind) -> Field {
    if (kind == 0) {
      static const int64_t ints[] = {std::numeric_limits<int64_t>::min(), -256, -255, -1, 0, 1, 127, 128, 255, 256,
                                     std::numeric_limits<int64_t>::max()};
      return rng() % 2 ? Field(ints[rng() % std::size(ints)]) : Field(int64_t(rng()));
    }
    std::string s(rng() % 4, ' ');
    for (char& c : s) c = "aAb\x00\x7f\x80\xff"[rng() % 7];
    return s;
  };
  std::vector<std::vector<Field>> keys;
  for (int i = 0; i < 600; ++i) {
    // Keys of one schema: the same field kinds in every key, or mixed (a key
    // field may be an integer in one event and a string in another).
    std::vector<Field> k;
    for (int f = 0; f < 3; ++f) k.push_back(random_field(i % 3 == 0 ? int(rng() % 2) : f % 2));
    keys.push_back(k);
  }
  std::vector<std::string> encoded;
  for (const auto& k : keys) encoded.push_back(encode_key(k));
  for (size_t i = 0; i < keys.size(); ++i) {
    for (size_t j = 0; j < keys.size(); j += 1 + rng() % 3) {
      ASSERT_EQ(sign(compare_keys(encoded[i], encoded[j])), ref_compare(keys[i], keys[j])) << i << " vs " << j;
    }
  }
}

}  // namespace
}  // namespace sluice
