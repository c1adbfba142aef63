// The Kafka source end to end, against real peers: librdkafka's mock cluster
// (sluice-kafka-mock) as the broker; kcat, sluice-kafka-produce and kafkajs as
// producers; `kcat -C` as an independent consumer that tells the test where
// each record landed. Expectations come from the reference model, which sees
// each partition as one source stream in offset order (tests/peers/README.md,
// tools/kafka-mock/README.md).
#include <gtest/gtest.h>
#include <signal.h>

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/kafka_peers.h"
#include "tests/integration/reference.h"

namespace sluice::integration {
namespace {

// Longer values become line_too_long dead letters; every generated event line is shorter.
constexpr uint32_t kLineBytesMax = 1024;
constexpr size_t kTooLongBytes = 1500;

// The key sluice-kafka-produce and kafkajs derive from --key-field product:
// a string as it is, an integer as its decimal text.
std::string product_key(const Event& e) {
  const KeyPart& product = e.key.at(1);
  return std::holds_alternative<int64_t>(product) ? std::to_string(std::get<int64_t>(product))
                                                  : std::get<std::string>(product);
}

// Expected runs: every line of every partition, fed to the model in offset order.
ExpectedRun expect_partitions(ReferenceModel& model, const std::string& topic,
                              const std::vector<std::vector<InputLine>>& partitions) {
  ExpectedRun expected;
  expected.source = "sales";
  for (size_t p = 0; p < partitions.size(); ++p) {
    feed_partition(model, topic, int32_t(p), partitions[p], expected);
  }
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  return expected;
}

// Runs sluice with `toml` to its end (stop = "end") and checks everything.
void run_to_end_and_expect(const TempDir& dir, const std::string& toml, const PipelineSpec& spec,
                           const ExpectedRun& expected, const std::string& topic,
                           const std::map<int32_t, int64_t>& end_offsets) {
  write_file(dir.file("pipeline.toml"), toml);
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(run.exits_cleanly());
  expect_kafka_output(spec, expected, dir, run.stderr_text());
  EXPECT_EQ(logged_next_offsets(run.stderr_text(), topic), end_offsets);
}

// ---------------------------------------------------------------------------
// Every producer and every codec

// Four partitions on three brokers (partition p led by broker p % 3 + 1), two
// producer runs per partition, one after the other, so each partition's
// record order is the order the test produced in:
//   0: kcat none (no keys), kcat gzip (keyed)
//   1: kcat snappy (keyed), kcat lz4
//   2: kcat zstd (keyed), sluice-kafka-produce zstd (keyed, a header)
//   3: kafkajs gzip (keyed, headers), sluice-kafka-produce snappy
// Each run sends events a little out of order, events late for their
// partition, malformed and over-long values.
TEST(KafkaCodecsTest, EveryProducerAndCodecGivesTheExactResult) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/true));
  TempDir dir;
  const std::string topic = "sales_events";
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir,
                         {"--brokers", "3", "--topic", topic + ":4", "--leaders", "round-robin"}));

  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 2 * kNsPerMin);
  const int64_t t0 = utc_ns(2024, 3, 10, 8, 0, 0);
  std::mt19937_64 rng(11);
  size_t next_bad = 0;
  enum class Producer { kcat, tool, kafkajs };
  struct Run {
    Producer producer;
    std::string codec;
    bool keyed;
  };
  const std::vector<std::vector<Run>> plan = {
      {{Producer::kcat, "none", false}, {Producer::kcat, "gzip", true}},
      {{Producer::kcat, "snappy", true}, {Producer::kcat, "lz4", false}},
      {{Producer::kcat, "zstd", true}, {Producer::tool, "zstd", true}},
      {{Producer::kafkajs, "gzip", true}, {Producer::tool, "snappy", false}},
  };
  std::vector<std::vector<InputLine>> partitions(plan.size());
  // The keys each keyed record must carry (nullopt: no key), to check the producers.
  std::vector<std::vector<std::optional<std::string>>> keys(plan.size());
  for (size_t p = 0; p < plan.size(); ++p) {
    for (size_t s = 0; s < plan[p].size(); ++s) {
      const Run& run = plan[p][s];
      SegmentShape shape;
      shape.from_ns = t0 + int64_t(s) * 30 * kNsPerMin;
      shape.to_ns = shape.from_ns + 30 * kNsPerMin;
      shape.events = 60;
      shape.jitter_ns = 3 * kNsPerMin;
      shape.late = 4;
      shape.bad = 5;
      shape.too_long = 1;
      shape.too_long_bytes = kTooLongBytes;
      shape.json_only = run.producer == Producer::kafkajs;
      const std::vector<InputLine> lines = sales_segment(spec, rng, shape, next_bad);
      for (const InputLine& l : lines) {
        ASSERT_TRUE(l.kind == InputLine::Kind::bad || l.text.size() <= kLineBytesMax) << l.text;
      }

      std::vector<OutRecord> records;
      std::vector<std::optional<std::string>> want_keys;
      for (const InputLine& l : lines) {
        OutRecord r{l.text, std::nullopt};
        if (run.keyed && run.producer == Producer::kcat) {
          // One record in each keyed kcat run has no key (a line without the delimiter).
          if (&l != &lines.back()) r.key = fmt::format("k{}-{}", p, records.size());
        } else if (run.keyed && l.kind == InputLine::Kind::event) {
          r.key = product_key(l.event);
        }
        want_keys.push_back(r.key);
        records.push_back(std::move(r));
      }
      const std::vector<std::string> values = values_of(lines);
      ToolProduce tool{topic, int32_t(p), run.codec, run.keyed ? "product" : "", {}, {}};
      switch (run.producer) {
        case Producer::kcat:
          ASSERT_TRUE(kcat_produce(peers, dir, mock.bootstrap(),
                                   {topic, int32_t(p), run.codec, run.keyed, {"producer=kcat"}, {}},
                                   records));
          break;
        case Producer::tool:
          tool.headers = {"producer=sluice-kafka-produce"};
          ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), tool, values));
          break;
        case Producer::kafkajs:
          tool.headers = {"producer=kafkajs", "store=17"};
          ASSERT_TRUE(kafkajs_produce(peers, dir, mock.bootstrap(), tool, values));
          break;
      }
      partitions[p].insert(partitions[p].end(), lines.begin(), lines.end());
      keys[p].insert(keys[p].end(), want_keys.begin(), want_keys.end());
    }
  }

  // A real consumer confirms where every record is, and the keys the producers set
  // (keyless bad lines from the key-field producers may carry any key).
  const std::vector<InRecord> consumed = kcat_consume(peers, dir, mock.bootstrap(), topic);
  std::map<int32_t, int64_t> end_offsets;
  for (size_t p = 0; p < plan.size(); ++p) {
    ASSERT_TRUE(partition_holds(consumed, int32_t(p), values_of(partitions[p])));
    const std::vector<InRecord> records = records_of(consumed, int32_t(p));
    for (size_t i = 0; i < records.size(); ++i) {
      if (keys[p][i]) {
        EXPECT_EQ(records[i].key, keys[p][i]) << "partition " << p << " offset " << i;
      }
    }
    end_offsets[int32_t(p)] = int64_t(records.size());
  }

  ReferenceModel model(spec);
  const ExpectedRun expected = expect_partitions(model, topic, partitions);
  // The data exercises what it should: late and out-of-order events on every partition.
  for (size_t p = 0; p < plan.size(); ++p) {
    ReferenceModel one(spec);
    ExpectedRun ignored;
    feed_partition(one, topic, int32_t(p), partitions[p], ignored);
    EXPECT_GT(one.late(), 0u) << "partition " << p;
    EXPECT_GT(one.accepted_out_of_order(), 0u) << "partition " << p;
  }

  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  source.line_bytes_max = kLineBytesMax;
  // With two shards, one shard may finish its partitions before the other
  // has its Metadata answer; the result must not change (see
  // KafkaShardStartTest, which forces that order).
  for (uint32_t shards : {1u, 2u}) {
    SCOPED_TRACE(fmt::format("shards = {}", shards));
    TempDir run_dir;
    run_to_end_and_expect(run_dir, kafka_pipeline_toml(spec, source, shards, run_dir), spec,
                          expected, topic, end_offsets);
  }
  // The bootstrap brokers given by name: looked up off the shard's thread
  // (io/resolver.h), with the same result.
  KafkaSourceToml by_name = source;
  for (std::string& b : by_name.brokers) {
    ASSERT_EQ(b.rfind("127.0.0.1:", 0), 0u) << b;
    b = "localhost:" + b.substr(std::string("127.0.0.1:").size());
  }
  SCOPED_TRACE("brokers by name");
  TempDir run_dir;
  run_to_end_and_expect(run_dir, kafka_pipeline_toml(spec, by_name, 2, run_dir), spec, expected, topic,
                        end_offsets);
}

// ---------------------------------------------------------------------------
// @kafka.key and @kafka.timestamp

// A JSON number that reads back as exactly `v`.
std::string number(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string out(buf, end);
  if (out.find_first_of(".eE") == std::string::npos) out += ".0";
  return out;
}

// The record key is the only key field and the record timestamp (CreateTime,
// set by the producer) is the event time. The test learns each record's key
// and timestamp from `kcat -C`, not from Sluice. Records with no key, or a key
// that is not UTF-8, are schema errors; an empty key is a key.
TEST(KafkaMetadataTest, RecordKeyAndTimestampAreTheKeyAndTheTime) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "keyed";
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "2", "--topic", topic + ":2"}));

  PipelineSpec spec;
  spec.key_fields = {"@kafka.key"};
  spec.time_field = "@kafka.timestamp";
  spec.time_format = "epoch_ms";
  spec.fields = {
      {"qty", FieldKind::int64}, {"price", FieldKind::float64}, {"note", FieldKind::string}};
  // Producer timestamps are wall-clock milliseconds; each producer run takes a
  // few of them, so 10 ms windows put the runs in several windows.
  spec.window_ns = 10 * kNsPerMs;
  spec.delay_ns = 0;
  spec.aggregates = {{"n", AggFn::count, ""},
                     {"qty_sum", AggFn::sum, "qty"},
                     {"price_max", AggFn::max, "price"},
                     {"price_avg", AggFn::avg, "price"}};

  // What each record's value is, in production order per partition.
  struct Sent {
    std::string value;
    Event event;  // values only: key and time come from the record
    bool bad_json = false;
  };
  std::vector<std::vector<Sent>> sent(2);
  std::mt19937_64 rng(21);
  const std::vector<std::string> key_pool = {"eu", "us", "zürich", "17", "a\"b\\c", "sku 1"};
  auto make = [&](const std::optional<std::string>& k, bool bad_json) {
    Sent s;
    s.event = random_sales_event(rng, 0);
    std::string fields =
        fmt::format(R"("qty":{},"price":{},"note":{})", std::get<int64_t>(s.event.values.at("qty")),
                    number(std::get<double>(s.event.values.at("price"))),
                    json_string(std::get<std::string>(s.event.values.at("note"))));
    if (k) fields = "\"k\":" + json_string(*k) + "," + fields;
    s.value = "{" + fields + (bad_json ? ",\"x\":tru}" : "}");
    s.bad_json = bad_json;
    return s;
  };
  auto pick_key = [&] {
    return key_pool[std::uniform_int_distribution<size_t>(0, key_pool.size() - 1)(rng)];
  };

  // Partition 0: three sluice-kafka-produce runs, the key from the value's "k" field.
  for (int run = 0; run < 3; ++run) {
    std::vector<std::string> values;
    for (int i = 0; i < 25; ++i) {
      Sent s = make(pick_key(), /*bad_json=*/run == 1 && i == 3);
      if (run == 2 && i == 7) s = make(std::nullopt, false);  // no "k": a null key
      values.push_back(s.value);
      sent[0].push_back(std::move(s));
    }
    ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, 0, "lz4", "k", {}, {}}, values));
  }
  // Partition 1: two kcat runs with explicit keys, among them an empty key, a
  // key that is not UTF-8 and a record with no key.
  for (int run = 0; run < 2; ++run) {
    std::vector<OutRecord> records;
    for (int i = 0; i < 25; ++i) {
      Sent s = make(std::nullopt, false);
      std::optional<std::string> key = pick_key();
      if (run == 0 && i == 5) key = "";
      if (run == 1 && i == 2) key = "bad \xff key";
      if (run == 1 && i == 9) key = std::nullopt;
      records.push_back({s.value, key});
      sent[1].push_back(std::move(s));
    }
    ASSERT_TRUE(
        kcat_produce(peers, dir, mock.bootstrap(), {topic, 1, "gzip", true, {}, {}}, records));
  }

  const std::vector<InRecord> consumed = kcat_consume(peers, dir, mock.bootstrap(), topic);
  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "sales";
  std::map<int32_t, int64_t> end_offsets;
  int null_keys = 0, bad_keys = 0, empty_keys = 0;
  for (int32_t p = 0; p < 2; ++p) {
    std::vector<std::string> values;
    for (const Sent& s : sent[p]) values.push_back(s.value);
    ASSERT_TRUE(partition_holds(consumed, p, values));
    const std::vector<InRecord> records = records_of(consumed, p);
    end_offsets[p] = int64_t(records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      const InRecord& r = records[i];
      const Sent& s = sent[p][i];
      const std::string origin = kafka_origin(topic, p, r.offset);
      ++expected.lines_in;
      if (s.bad_json) {
        expected.dead_letters.push_back({"parse_error", origin, s.value});
      } else if (!r.key) {
        ++null_keys;
        expected.dead_letters.push_back({"schema_error", origin, s.value});
      } else if (!simdjson::validate_utf8(r.key->data(), r.key->size())) {
        ++bad_keys;
        expected.dead_letters.push_back({"schema_error", origin, s.value});
      } else {
        empty_keys += r.key->empty();
        Event e = s.event;
        e.key = {*r.key};
        e.time_ns = r.timestamp_ms * kNsPerMs;
        if (!model.offer(p, e)) expected.dead_letters.push_back({"late", origin, s.value});
      }
    }
  }
  EXPECT_EQ(null_keys, 2);
  EXPECT_EQ(bad_keys, 1);
  EXPECT_EQ(empty_keys, 1) << "kcat sends an empty key as an empty key";
  expected.rows = model.rows();
  expected.events_in = model.accepted();

  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  // Two shards: partition p is read by shard p % 2, each record's key may belong to either.
  TempDir run_dir;
  run_to_end_and_expect(run_dir, kafka_pipeline_toml(spec, source, 2, run_dir), spec, expected,
                        topic, end_offsets);
}

// ---------------------------------------------------------------------------
// Kafka and TCP agree

// The same lines through two Kafka partitions and through two TCP
// connections: both runs match the model (which sees partition p and
// connection p as the same stream), so they give the same rows.
//
// Built like tcp_source_test's data, so that neither run depends on how the
// engine interleaves its streams: each stream sends its largest time first;
// every other event is late by its own stream's watermark or lies in a window
// that ends after every stream's final watermark.
TEST(KafkaTcpTest, SameEventsOverKafkaAndTcpGiveTheSameRows) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "pos";
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir,
                         {"--brokers", "2", "--topic", topic + ":2", "--leaders", "round-robin"}));
  constexpr int kStreams = 2;
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 5 * kNsPerMin);
  const int64_t t0 = utc_ns(2024, 6, 1, 9, 0, 0);
  std::mt19937_64 rng(31);
  auto ms_between = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo / kNsPerMs, hi / kNsPerMs)(rng) * kNsPerMs;
  };
  std::vector<int64_t> max_time(kStreams);
  for (int c = 0; c < kStreams; ++c) {
    max_time[c] = ms_between(t0 + 20 * kNsPerMin + c * 20 * kNsPerS,
                             t0 + 20 * kNsPerMin + c * 20 * kNsPerS + 9999 * kNsPerMs);
  }
  const int64_t open_from =
      floor_div(*std::max_element(max_time.begin(), max_time.end()) - spec.delay_ns,
                spec.window_ns) *
      spec.window_ns;
  const std::vector<BadLine> catalogue = sales_bad_lines(spec, random_sales_event(rng, t0));
  std::vector<std::vector<InputLine>> streams(kStreams);
  for (int c = 0; c < kStreams; ++c) {
    std::vector<InputLine> rest;
    for (int i = 0; i < 150; ++i) {
      const Event e = random_sales_event(rng, ms_between(open_from, max_time[c]));
      rest.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
    }
    const int64_t late_before =
        floor_div(max_time[c] - spec.delay_ns, spec.window_ns) * spec.window_ns;
    for (int i = 0; i < 12; ++i) {
      const Event e = random_sales_event(rng, ms_between(t0, late_before - kNsPerMs));
      rest.push_back(InputLine::of_event(e, event_line(spec, e, rng)));
    }
    for (size_t i = 0; i < catalogue.size(); i += kStreams) {
      const BadLine& b = catalogue[i + size_t(c) < catalogue.size() ? i + size_t(c) : i];
      rest.push_back(InputLine::bad(b.text, b.reason));
    }
    std::shuffle(rest.begin(), rest.end(), rng);
    const Event first = random_sales_event(rng, max_time[c]);
    streams[c].push_back(InputLine::of_event(first, event_line(spec, first, rng)));
    streams[c].insert(streams[c].end(), rest.begin(), rest.end());
  }

  // Over Kafka.
  for (int c = 0; c < kStreams; ++c) {
    ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, c, "lz4", "", {}, {}},
                             values_of(streams[c])));
  }
  const std::vector<InRecord> consumed = kcat_consume(peers, dir, mock.bootstrap(), topic);
  for (int c = 0; c < kStreams; ++c)
    ASSERT_TRUE(partition_holds(consumed, c, values_of(streams[c])));
  ReferenceModel kafka_model(spec);
  ExpectedRun kafka_expected;
  kafka_expected.source = "sales";
  std::vector<std::vector<bool>> accepted;
  for (int c = 0; c < kStreams; ++c) {
    accepted.push_back(feed_partition(kafka_model, topic, c, streams[c], kafka_expected));
  }
  kafka_expected.rows = kafka_model.rows();
  kafka_expected.events_in = kafka_model.accepted();
  // The data is timing-independent (see above) and has late events on every stream.
  const int64_t final_watermark_max = *kafka_model.max_watermark();
  for (int c = 0; c < kStreams; ++c) {
    int late = 0;
    for (size_t i = 0; i < streams[c].size(); ++i) {
      const InputLine& l = streams[c][i];
      if (l.kind != InputLine::Kind::event) continue;
      ASSERT_LE(l.event.time_ns, max_time[c]);
      if (accepted[c][i]) {
        ASSERT_GT(kafka_model.window_end(l.event.time_ns), final_watermark_max);
      } else {
        ++late;
      }
    }
    ASSERT_GT(late, 0) << "stream " << c;
  }
  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  TempDir kafka_dir;
  run_to_end_and_expect(kafka_dir, kafka_pipeline_toml(spec, source, 2, kafka_dir), spec,
                        kafka_expected, topic,
                        {{0, int64_t(streams[0].size())}, {1, int64_t(streams[1].size())}});

  // Over TCP.
  TempDir tcp_dir;
  write_file(tcp_dir.file("pipeline.toml"),
             fmt::format(R"([pipeline]
name = "tcp-twin"
shards = 2

[[sources]]
name = "sales"
type = "tcp"
listen = "127.0.0.1:0"

{}
[[sinks]]
name = "rows"
type = "file"
path = {}
flush_interval = "20ms"

[dead_letter]
path = {}
)",
                         spec.toml(), toml_string(tcp_dir.file("rows.ndjson")),
                         toml_string(tcp_dir.file("dead.ndjson"))));
  SluiceRun run(tcp_dir, tcp_dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  const std::optional<uint16_t> port = run.wait_for_port("sales");
  ASSERT_TRUE(port);
  std::vector<TcpClient> clients(kStreams);
  for (TcpClient& client : clients) ASSERT_EQ(client.connect(*port), "");
  ReferenceModel tcp_model(spec);
  ExpectedRun tcp_expected;
  tcp_expected.source = "sales";
  for (int c = 0; c < kStreams; ++c) {
    const std::string peer = clients[c].local_address();
    feed_lines(
        tcp_model, c, streams[c], [&](size_t) { return peer; }, tcp_expected);
  }
  tcp_expected.rows = tcp_model.rows();
  tcp_expected.events_in = tcp_model.accepted();
  for (int c = 0; c < kStreams; ++c) {
    std::mt19937_64 chunks(100 + c);
    ASSERT_EQ(clients[c].send_chunked(render(streams[c]), chunks), "");
    ASSERT_EQ(clients[c].finish(), "");
  }
  ASSERT_TRUE(run.terminates_cleanly());
  expect_run_output(spec, tcp_expected, tcp_dir.file("rows.ndjson"), tcp_dir.file("dead.ndjson"),
                    run.stderr_text());

  // And so the two runs agree with each other.
  EXPECT_TRUE(
      same_rows(parse_ndjson_rows(spec, complete_lines(read_file(kafka_dir.file("rows.ndjson")))),
                parse_ndjson_rows(spec, complete_lines(read_file(tcp_dir.file("rows.ndjson"))))));
}

// ---------------------------------------------------------------------------
// start and stop

// start = "latest" with stop = "end": the end offsets seen at start are where
// it starts, so nothing is read, and the run is a batch job that exits 0.
TEST(KafkaStartStopTest, LatestWithStopAtEndReadsNothing) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "history";
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "2", "--topic", topic + ":3"}));
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 0);
  std::mt19937_64 rng(41);
  std::map<int32_t, int64_t> end_offsets;
  for (int32_t p = 0; p < 3; ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < 10 + p; ++i) {
      values.push_back(
          canonical_event_line(spec, random_sales_event(rng, utc_ns(2024, 1, 1) + i * kNsPerS)));
    }
    ASSERT_TRUE(tool_produce(peers, dir, mock.bootstrap(), {topic, p, "none", "", {}, {}}, values));
    end_offsets[p] = int64_t(values.size());
  }
  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  source.start = "latest";
  TempDir run_dir;
  ExpectedRun nothing;
  nothing.source = "sales";
  run_to_end_and_expect(run_dir, kafka_pipeline_toml(spec, source, 2, run_dir), spec, nothing,
                        topic, end_offsets);
}

// stop = "none": Sluice follows the topic. Records produced while it runs
// close windows, whose rows are written while it keeps running; SIGTERM then
// flushes the rest, exits 0, and the logged next offsets are the partitions'
// end offsets.
TEST(KafkaStartStopTest, FollowsTheTopicUntilSigterm) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  const std::string topic = "live";
  constexpr int32_t kPartitions = 3;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir,
                         {"--brokers", "2", "--topic", topic + ":" + std::to_string(kPartitions),
                          "--leaders", "round-robin"}));
  const PipelineSpec spec = sales_spec("rfc3339", kNsPerMin, 30 * kNsPerS);
  const int64_t t0 = utc_ns(2024, 9, 9, 12, 0, 0);
  std::mt19937_64 rng(51);

  // Started on an empty topic, so every partition exists (on both shards)
  // before the first record arrives.
  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = topic;
  source.stop = "none";
  write_file(dir.file("pipeline.toml"), kafka_pipeline_toml(spec, source, 2, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  ASSERT_TRUE(wait_for_log(run, "shard 0 reads"));
  ASSERT_TRUE(wait_for_log(run, "shard 1 reads"));

  ReferenceModel model(spec);
  ExpectedRun expected;
  expected.source = "sales";
  std::vector<int64_t> produced(kPartitions, 0);
  // Each wave: a few minutes of events on every partition, in time order with
  // a little jitter, produced while Sluice runs.
  auto wave = [&](int64_t from, int64_t to) -> ::testing::AssertionResult {
    for (int32_t p = 0; p < kPartitions; ++p) {
      SegmentShape shape;
      shape.from_ns = from;
      shape.to_ns = to;
      shape.events = 40;
      shape.jitter_ns = 20 * kNsPerS;
      size_t next_bad = 0;
      const std::vector<InputLine> lines = sales_segment(spec, rng, shape, next_bad);
      feed_partition(model, topic, p, lines, expected, produced[p]);
      produced[p] += int64_t(lines.size());
      auto ok = tool_produce(peers, dir, mock.bootstrap(), {topic, p, "zstd", "", {}, {}},
                             values_of(lines));
      if (!ok) return ok;
    }
    return ::testing::AssertionSuccess();
  };
  // Rows of the windows the pipeline watermark (the least of the partitions') has passed.
  auto closed_rows = [&] {
    int64_t watermark = *model.watermark(0);
    for (int32_t p = 1; p < kPartitions; ++p) watermark = std::min(watermark, *model.watermark(p));
    std::vector<Row> out;
    for (const Row& r : model.rows()) {
      if (r.window_start + spec.window_ns <= watermark) out.push_back(r);
    }
    return out;
  };

  ASSERT_TRUE(wave(t0, t0 + 5 * kNsPerMin));
  const std::vector<Row> first = closed_rows();
  ASSERT_FALSE(first.empty());
  std::vector<std::string> written;
  ASSERT_TRUE(wait_for_rows(run, dir, first.size(), written));
  EXPECT_TRUE(same_rows(first, parse_ndjson_rows(spec, written)));

  ASSERT_TRUE(wave(t0 + 5 * kNsPerMin, t0 + 10 * kNsPerMin));
  const std::vector<Row> second = closed_rows();
  ASSERT_GT(second.size(), first.size()) << "the second wave closes more windows";
  ASSERT_TRUE(wait_for_rows(run, dir, second.size(), written));
  EXPECT_TRUE(same_rows(second, parse_ndjson_rows(spec, written)));
  ASSERT_TRUE(run.process().running());

  ASSERT_TRUE(run.terminates_cleanly());
  expected.rows = model.rows();
  expected.events_in = model.accepted();
  ASSERT_LT(second.size(), expected.rows.size()) << "SIGTERM has open windows to flush";
  expect_kafka_output(spec, expected, dir, run.stderr_text());
  std::map<int32_t, int64_t> end_offsets;
  for (int32_t p = 0; p < kPartitions; ++p) end_offsets[p] = produced[p];
  EXPECT_EQ(logged_next_offsets(run.stderr_text(), topic), end_offsets);
}

// ---------------------------------------------------------------------------
// Version negotiation

// A broker whose Fetch versions (v0-v3) do not meet Sluice's (v4-v11): a
// start-up error naming the API and both ranges, exit status 1, no hang.
TEST(KafkaVersionTest, NoCommonFetchVersionIsAStartUpError) {
  KafkaPeers peers;
  ASSERT_TRUE(locate_kafka_peers(peers, /*need_kafkajs=*/false));
  TempDir dir;
  KafkaMock mock;
  ASSERT_TRUE(mock.start(peers, dir, {"--brokers", "1", "--topic", "old:1"}));
  ASSERT_TRUE(mock.ok("apiversion Fetch 0 3"));
  KafkaSourceToml source;
  source.brokers = mock.brokers();
  source.topic = "old";
  write_file(dir.file("pipeline.toml"),
             kafka_pipeline_toml(sales_spec("rfc3339", kNsPerMin, 0), source, 1, dir));
  SluiceRun run(dir, dir.file("pipeline.toml"));
  ASSERT_TRUE(run.start());
  const std::optional<ExitStatus> status = run.process().wait_exit(kExitTimeout);
  ASSERT_TRUE(status) << "sluice hangs on a broker without a common Fetch version; stderr:\n"
                      << run.stderr_text();
  EXPECT_TRUE(status->exited && status->code == 1) << status->describe();
  std::vector<std::string> errors;
  for (const std::string& l : complete_lines(run.stderr_text())) {
    if (l.starts_with("sluice error:")) errors.push_back(l);
  }
  ASSERT_EQ(errors.size(), 1u) << run.stderr_text();
  EXPECT_NE(errors[0].find("Fetch"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("v0-v3"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("v4-v11"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(mock.brokers()[0]), std::string::npos) << errors[0];
  EXPECT_EQ(read_file(dir.file("rows.ndjson")), "");
}

}  // namespace
}  // namespace sluice::integration
