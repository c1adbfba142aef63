// Kafka peers for the integration tests: the mock broker (`sluice-kafka-mock`,
// driven over its stdin/stdout line protocol), the producers (kcat,
// `sluice-kafka-produce`, kafkajs' produce.js) and a real consumer (`kcat -C`)
// that tells the test, independently of Sluice, which partition, offset, key
// and timestamp each record got. Also: the pipeline file of a Kafka source,
// the dead-letter origin of a record, the offsets Sluice logs at exit, and an
// output check that, unlike expect_run_output, accepts the warnings a fault
// test provokes; and sales events laid out per producer run (sales_segment).
//
// Peers are never optional: a missing one fails the test with what to install
// or build (CI installs them all; see tests/peers/README.md).
//
// Threads: every object here is used by the test's own thread only.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/event_lines.h"
#include "tests/integration/harness.h"
#include "tests/integration/reference.h"

namespace sluice::integration {

// How long one peer command (a produce, a consume, a mock command) may take.
// Each takes well under a second on loopback; the bound is for a loaded
// machine and the ASan build, and turns a hung peer into a failure.
constexpr Clock::duration kPeerTimeout = 60s;
// A mock command is answered at once; the bound only catches a dead mock.
constexpr Clock::duration kMockReplyTimeout = 10s;

// ---------------------------------------------------------------------------
// Where the peers are

struct KafkaPeers {
  std::string mock;     // sluice-kafka-mock, next to SLUICE_BIN
  std::string produce;  // sluice-kafka-produce, next to SLUICE_BIN
  std::string kcat;     // on PATH
  std::string node;     // on PATH (only with kafkajs)
  std::string kafkajs;  // tests/peers/kafkajs/produce.js, its packages installed
};

// Finds the peers (kafkajs too when `need_kafkajs`). A failure names every
// missing peer and how to get it.
::testing::AssertionResult locate_kafka_peers(KafkaPeers& out, bool need_kafkajs);

// A peer command's result as an assertion: exit 0, or the command and its output.
::testing::AssertionResult command_ok(const std::vector<std::string>& argv, const CommandResult& r);

// ---------------------------------------------------------------------------
// The mock broker

// One `sluice-kafka-mock` process. Its stdin and stdout are one socket of a
// socketpair, so commands can be written without SIGPIPE and answers read with
// a bounded wait. The destructor closes stdin (the mock then exits 0) and
// kills it if it does not exit promptly.
class KafkaMock {
 public:
  KafkaMock() = default;
  ~KafkaMock();
  KafkaMock(const KafkaMock&) = delete;
  KafkaMock& operator=(const KafkaMock&) = delete;

  // Starts the mock with `args` (e.g. {"--brokers", "3", "--topic", "t:4"})
  // and reads its "bootstrap ..." line. Its stderr goes to dir/mock.stderr.
  ::testing::AssertionResult start(const KafkaPeers& peers, const TempDir& dir,
                                   const std::vector<std::string>& args);
  // "127.0.0.1:P1,127.0.0.1:P2,..." (broker 1 first).
  const std::string& bootstrap() const { return bootstrap_; }
  // Broker i + 1's "host:port".
  const std::vector<std::string>& brokers() const { return brokers_; }
  // Sends one command line and returns the answer ("ok" or "error ...");
  // "(no answer)" when the mock does not answer in time.
  std::string command(std::string_view line);
  // command(line) is "ok".
  ::testing::AssertionResult ok(std::string_view line);
  std::string stderr_text() const { return read_file(stderr_path_); }

 private:
  std::optional<std::string> read_line(Clock::duration timeout);

  pid_t pid_ = -1;
  int fd_ = -1;  // our end of the mock's stdin/stdout
  std::string in_;
  std::string stderr_path_;
  std::string bootstrap_;
  std::vector<std::string> brokers_;
};

// ---------------------------------------------------------------------------
// Producing

// One record to produce. Keys only where the producer takes them explicitly
// (kcat); the others take the key from a JSON field of the value.
struct OutRecord {
  std::string value;
  std::optional<std::string> key;
};

struct KcatProduce {
  std::string topic;
  int32_t partition = 0;
  std::string codec = "none";                 // none gzip snappy lz4 zstd
  bool keyed = false;                         // send OutRecord::key ("key\tvalue" lines)
  std::vector<std::string> headers;           // "name=value"
  std::vector<std::string> librdkafka_props;  // "name=value", passed as -X
};
// `kcat -P` of `records`, one per line, to one partition. Values and keys
// must not hold '\n' (and keys no '\t').
::testing::AssertionResult kcat_produce(const KafkaPeers& peers, const TempDir& dir,
                                        const std::string& bootstrap, const KcatProduce& how,
                                        const std::vector<OutRecord>& records);

struct ToolProduce {
  std::string topic;
  int32_t partition = 0;
  std::string codec = "none";
  std::string key_field;  // empty: no key
  std::vector<std::string> headers;
  std::vector<std::string> extra_args;  // e.g. {"--batch-messages", "10"}
};
// sluice-kafka-produce of `values`, one record per value, to one partition.
::testing::AssertionResult tool_produce(const KafkaPeers& peers, const TempDir& dir,
                                        const std::string& bootstrap, const ToolProduce& how,
                                        const std::vector<std::string>& values);
// kafkajs (tests/peers/kafkajs/produce.js) of `values` to one partition. Every
// value must be valid JSON in valid UTF-8 (produce.js parses it for the key).
::testing::AssertionResult kafkajs_produce(const KafkaPeers& peers, const TempDir& dir,
                                           const std::string& bootstrap, const ToolProduce& how,
                                           const std::vector<std::string>& values);

// ---------------------------------------------------------------------------
// Consuming with kcat (a real client, not Sluice)

struct InRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::optional<std::string> key;    // nullopt: null key
  std::optional<std::string> value;  // nullopt: null value (a tombstone)
};

// Every record of `topic` from the beginning to the end, ordered by
// (partition, offset). Fails the test (and returns nothing) on a kcat error.
std::vector<InRecord> kcat_consume(const KafkaPeers& peers, const TempDir& dir,
                                   const std::string& bootstrap, const std::string& topic);

// The headers of every record of `topic` as kcat reads them back (`-f %h`:
// "name=value,name=value", a null value as "name=NULL"), by (partition,
// offset). Exact for names and values without ',', '=' or a newline.
std::map<std::pair<int32_t, int64_t>, std::string> kcat_consume_headers(const KafkaPeers& peers,
                                                                        const TempDir& dir,
                                                                        const std::string& bootstrap,
                                                                        const std::string& topic);

// The records of one partition, in offset order.
std::vector<InRecord> records_of(const std::vector<InRecord>& all, int32_t partition);

// The partition holds exactly `values`, in this order, at offsets 0, 1, 2...
::testing::AssertionResult partition_holds(const std::vector<InRecord>& all, int32_t partition,
                                           const std::vector<std::string>& values);

// ---------------------------------------------------------------------------
// Sluice with a Kafka source

struct KafkaSourceToml {
  std::string name = "sales";
  std::vector<std::string> brokers;
  std::string topic;
  std::string start = "earliest";
  std::string stop = "end";
  std::string offset_reset = "earliest";
  // Short, because the mock holds a Fetch at the end of the log for the
  // whole max_wait even when records arrive meanwhile.
  std::string max_wait = "100ms";
  uint32_t line_bytes_max = 1 << 20;
};

// A pipeline file: one Kafka source, the spec's schema/window/aggregates, an
// NDJSON file sink dir/rows.ndjson (flushed every 20 ms) and dead letters in
// dir/dead.ndjson.
std::string kafka_pipeline_toml(const PipelineSpec& spec, const KafkaSourceToml& source,
                                uint32_t shards, const TempDir& dir);

// "host:port,host:port" -> {"host:port", "host:port"}
std::vector<std::string> split_brokers(const std::string& bootstrap);

// Dead-letter origin of a Kafka record: "topic/partition@offset".
std::string kafka_origin(const std::string& topic, int32_t partition, int64_t offset);

// The "partition T/P: next offset N" lines Sluice logs at exit: P -> N.
std::map<int32_t, int64_t> logged_next_offsets(std::string_view stderr_text,
                                               const std::string& topic);

// expect_run_output's checks (rows as a multiset, windows ascending, dead
// letters, the summary's counters), except that "sluice warn:" lines are
// allowed when they contain one of `allowed_warnings`; error lines and
// sanitizer reports never are.
void expect_kafka_output(const PipelineSpec& spec, const ExpectedRun& expected, const TempDir& dir,
                         const std::string& stderr_text,
                         const std::vector<std::string>& allowed_warnings = {});

// Feeds one partition's lines, stored at offsets first_offset, first_offset + 1, ...,
// to the model as stream `partition`, with Kafka origins. Returns, per line,
// whether it was an accepted event.
std::vector<bool> feed_partition(ReferenceModel& model, const std::string& topic, int32_t partition,
                                 const std::vector<InputLine>& lines, ExpectedRun& expected,
                                 int64_t first_offset = 0);

// The values of `lines` (their text; blank lines are not records).
std::vector<std::string> values_of(const std::vector<InputLine>& lines);

// Waits (bounded by `timeout`) until `run`'s stderr contains `text`; fails
// with the stderr when the run ends or the time is up first.
::testing::AssertionResult wait_for_log(SluiceRun& run, std::string_view text,
                                        Clock::duration timeout = kRowsTimeout);

// Waits (bounded by kRowsTimeout) until dir/rows.ndjson has at least `count`
// complete lines while `run` keeps running; `lines` gets them.
::testing::AssertionResult wait_for_rows(SluiceRun& run, const TempDir& dir, size_t count,
                                         std::vector<std::string>& lines);

// ---------------------------------------------------------------------------
// Test data: one producer's share of a partition

struct SegmentShape {
  int64_t from_ns = 0;  // events spread evenly over [from_ns, to_ns), in time order,
  int64_t to_ns = 0;    // each moved back by up to jitter_ns (whole milliseconds)
  int events = 60;
  int64_t jitter_ns = 0;
  int late = 0;      // events from the segment's first quarter, placed in its second half
  int bad = 0;       // malformed lines from the catalogue (sales_bad_lines)
  int too_long = 0;  // values of too_long_bytes bytes (over line_bytes_max)
  size_t too_long_bytes = 0;
  bool json_only = false;  // only valid JSON in valid UTF-8 (what kafkajs can send)
};

// The lines of one segment for the sales schema, shuffled as described;
// `next_bad` walks the catalogue across segments so every entry gets used.
std::vector<InputLine> sales_segment(const PipelineSpec& spec, std::mt19937_64& rng,
                                     const SegmentShape& shape, size_t& next_bad);

}  // namespace sluice::integration
