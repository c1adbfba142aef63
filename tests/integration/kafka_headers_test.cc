// Kafka record headers as schema fields, end to end: "@kafka.header.source"
// is a key part, "@kafka.header.version" an optional string field (a distinct
// count and a count over it), "@kafka.header.tier" a string field with a
// default. kcat and sluice-kafka-produce send runs of records with the
// mission's headers, with none, with duplicates (the last one counts), with a
// null value and with a value that is not UTF-8. `kcat -C` reads the headers
// back, so the test knows the broker kept them as sent; the expectation is
// computed from what was sent by the reference model.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/harness.h"
#include "tests/integration/kafka_peers.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

using HeaderList = std::vector<std::pair<std::string, std::optional<std::string>>>;

// One producer run: its records all carry `headers`, in this order.
struct ProducerRun {
  int32_t partition = 0;
  bool kcat = true;  // else sluice-kafka-produce (which sends no null values)
  HeaderList headers;
};

// Kafka's lastHeader(name): the value of the last header of that name;
// nullopt when there is none or its value is null.
std::optional<std::string> last_value(const HeaderList& headers, const std::string& name) {
  std::optional<std::string> out;
  for (const auto& [n, v] : headers) {
    if (n == name) out = v;
  }
  return out;
}
bool has_header(const HeaderList& headers, const std::string& name) {
  for (const auto& [n, v] : headers) {
    if (n == name) return true;
  }
  return false;
}

bool has_duplicate(const HeaderList& headers) {
  for (size_t i = 0; i < headers.size(); ++i) {
    for (size_t j = i + 1; j < headers.size(); ++j) {
      if (headers[i].first == headers[j].first) return true;
    }
  }
  return false;
}

// As kcat prints them back (`%h`).
std::string render(const HeaderList& headers) {
  std::string out;
  for (const auto& [n, v] : headers) out += (out.empty() ? "" : ",") + n + "=" + (v ? *v : "NULL");
  return out;
}

bool utf8(const std::string& s) { return simdjson::validate_utf8(s.data(), s.size()); }

TEST(KafkaHeadersTest, HeadersAreKeyPartsAndFieldsTheLastOneCounts) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "headers";
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "1", "--topic", topic + ":2"}));

  PipelineSpec spec;
  spec.key_fields = {"product_id", "@kafka.header.source"};
  spec.time_field = "ts";
  spec.time_format = "epoch_ms";
  spec.fields = {{"qty", FieldKind::int64},
                 {"@kafka.header.version", FieldKind::string},
                 {"@kafka.header.tier", FieldKind::string}};
  spec.optional_fields = {{"@kafka.header.version", {}},
                          {"@kafka.header.tier", {FieldValue{std::string("basic")}}}};
  spec.window_ns = kNsPerMin;
  spec.delay_ns = 0;
  spec.aggregates = {{"n", AggFn::count, ""},
                     {"qty", AggFn::sum, "qty"},
                     {"with_version", AggFn::count, "@kafka.header.version"},
                     {"versions", AggFn::approx_count_distinct, "@kafka.header.version"},
                     {"tiers", AggFn::approx_count_distinct, "@kafka.header.tier"}};

  const std::optional<std::string> null;
  const std::vector<ProducerRun> runs = {
      // The mission's producer.
      {0, true, {{"source", "pos-system"}, {"version", "1.0"}}},
      // Duplicates: version 2.0 and tier gold count.
      {0, true, {{"source", "pos-system"}, {"version", "1.0"}, {"version", "2.0"}, {"tier", "gold"}}},
      // No headers at all: the key's header is missing, schema errors.
      {0, true, {}},
      {0, false, {{"source", "kiosk"}, {"version", "3.0"}, {"tier", "silver"}}},
      // Duplicate key header (app counts); a null version is no version.
      {1, true, {{"source", "web"}, {"source", "app"}, {"version", null}}},
      // A version that is not UTF-8: schema errors.
      {1, true, {{"source", "pos-system"}, {"version", "v\xff"}}},
      {1, true, {{"source", "pos-system"}, {"tier", "silver"}, {"tier", null}}},
      // A null key header: schema errors.
      {1, true, {{"source", null}, {"version", "1.0"}}},
      {1, true, {{"version", "2.0"}, {"source", "web"}}},
  };
  constexpr int kRecordsPerRun = 6;
  const int64_t start_ms = 1'704'067'200'000;  // 2024-01-01T00:00:00Z

  // What each record is, in production order per partition.
  struct Sent {
    std::string value;
    int64_t product = 0;
    int64_t qty = 0;
    int64_t ts_ms = 0;
    const ProducerRun* run = nullptr;
  };
  std::vector<Sent> sent[2];
  std::mt19937_64 rng(17);
  for (const ProducerRun& run : runs) {
    std::vector<Sent>& part = sent[run.partition];
    std::vector<std::string> values;
    for (int i = 0; i < kRecordsPerRun; ++i) {
      Sent s;
      s.product = 1 + int64_t(rng() % 2);
      s.qty = int64_t(rng() % 20) - 3;
      s.ts_ms = start_ms + int64_t(part.size()) * 13'000;  // in order: nothing is late
      s.value = fmt::format(R"({{"product_id":{},"qty":{},"ts":{}}})", s.product, s.qty, s.ts_ms);
      s.run = &run;
      values.push_back(s.value);
      part.push_back(s);
    }
    if (run.kcat) {
      std::vector<std::string> args;
      for (const auto& [n, v] : run.headers) args.push_back(v ? n + "=" + *v : n);  // "name" alone: a null value
      std::vector<OutRecord> records;
      for (const std::string& v : values) records.push_back({v, std::nullopt});
      ASSERT_TRUE(kcat_produce(peers, dir, mock.bootstrap(), {topic, run.partition, "lz4", false, args, {}}, records));
    } else {
      std::vector<std::string> args;
      for (const auto& [n, v] : run.headers) args.push_back(n + "=" + *v);
      ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, run.partition, "zstd", "", args, {}}, values));
    }
  }

  // The broker holds every record, with its headers as sent (duplicates and order kept).
  const std::vector<InRecord> consumed = kcat_consume(peers, dir, mock.bootstrap(), topic);
  const auto headers_back = kcat_consume_headers(peers, dir, mock.bootstrap(), topic);
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "sales";
  std::map<int32_t, int64_t> end_offsets;
  int missing_source = 0, null_source = 0, bad_version = 0, duplicates = 0, null_version = 0;
  for (int32_t p = 0; p < 2; ++p) {
    std::vector<std::string> values;
    for (const Sent& s : sent[p]) values.push_back(s.value);
    ASSERT_TRUE(partition_holds(consumed, p, values));
    end_offsets[p] = int64_t(values.size());
    for (size_t i = 0; i < sent[p].size(); ++i) {
      const Sent& s = sent[p][i];
      const HeaderList& h = s.run->headers;
      const int64_t offset = int64_t(i);
      auto back = headers_back.find({p, offset});
      ASSERT_NE(back, headers_back.end()) << p << "@" << offset;
      EXPECT_EQ(back->second, render(h)) << p << "@" << offset;

      ++expected.lines_in;
      const std::string origin = kafka_origin(topic, p, offset);
      const std::optional<std::string> source = last_value(h, "source");
      const std::optional<std::string> version = last_value(h, "version");
      const std::optional<std::string> tier = last_value(h, "tier");
      // Header values are text, the key's header is required.
      if (!source) {
        (has_header(h, "source") ? null_source : missing_source) += 1;
        expected.dead_letters.push_back({"schema_error", origin, s.value});
        continue;
      }
      if (version && !utf8(*version)) {
        ++bad_version;
        expected.dead_letters.push_back({"schema_error", origin, s.value});
        continue;
      }
      duplicates += has_duplicate(h);
      null_version += has_header(h, "version") && !version;
      Event e;
      e.time_ns = s.ts_ms * kNsPerMs;
      e.key = {s.product, *source};
      e.values["qty"] = s.qty;
      if (version) e.values["@kafka.header.version"] = *version;
      if (tier) e.values["@kafka.header.tier"] = *tier;
      if (!model.offer(p, e)) expected.dead_letters.push_back({"late", origin, s.value});
    }
  }
  // The data covers every case it is meant to.
  EXPECT_EQ(missing_source, kRecordsPerRun);
  EXPECT_EQ(null_source, kRecordsPerRun);
  EXPECT_EQ(bad_version, kRecordsPerRun);
  EXPECT_GE(duplicates, 2 * kRecordsPerRun);
  EXPECT_GE(null_version, kRecordsPerRun);
  EXPECT_EQ(model.late(), 0u);
  expected.rows = model.rows();
  expected.events_in = model.accepted();

  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  TempDir run_dir;
  write_file(run_dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 2, run_dir));
  SluiceRun run(run_dir, run_dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());
  expect_kafka_output(spec, expected, run_dir, run.stderr_text());
  EXPECT_EQ(logged_next_offsets(run.stderr_text(), topic), end_offsets);
  // The dead letters say which header was wrong.
  const std::string dead = read_file(run_dir.file("dead.ndjson"));
  EXPECT_NE(dead.find(R"(the record has no header \"source\")"), std::string::npos) << dead;
  EXPECT_NE(dead.find(R"(the record's header \"source\" is null)"), std::string::npos) << dead;
  EXPECT_NE(dead.find(R"(header \"version\" is not valid UTF-8)"), std::string::npos) << dead;
}

}  // namespace
}  // namespace sluice::integration
