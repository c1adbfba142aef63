// The baseline for perf/kafka_consume.sh: librdkafka's own consumer reading
// every partition of a topic from the beginning to its end, counting records
// and value bytes. A perf tool only; the engine never links librdkafka.
//
//   sluice-perf-rdkafka-consume BROKERS TOPIC [check_crcs] [batch]
// batch: rd_kafka_consume_batch_queue (up to 10 000 messages per call) instead
// of one rd_kafka_consumer_poll per message; the faster way to use librdkafka.
// prints: records=N bytes=B seconds=S records_per_s=R
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {
[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "sluice-perf-rdkafka-consume: %s\n", what.c_str());
  std::exit(1);
}
void set(rd_kafka_conf_t* conf, const char* key, const char* value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) die(err);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) die("usage: sluice-perf-rdkafka-consume BROKERS TOPIC [check_crcs]");
  const char* brokers = argv[1];
  const char* topic = argv[2];
  bool check_crcs = false, batch = false;
  for (int i = 3; i < argc; ++i) {
    check_crcs |= std::strcmp(argv[i], "check_crcs") == 0;
    batch |= std::strcmp(argv[i], "batch") == 0;
  }

  auto start = std::chrono::steady_clock::now();
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", brokers);
  set(conf, "group.id", "sluice-perf");  // required by the consumer API; offsets are not committed
  set(conf, "enable.auto.commit", "false");
  set(conf, "enable.partition.eof", "true");
  set(conf, "check.crcs", check_crcs ? "true" : "false");
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) die(err);

  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic, nullptr);
  if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
    die("metadata");
  }
  int partitions = md->topics[0].partition_cnt;
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  if (rd_kafka_assign(rk, list) != RD_KAFKA_RESP_ERR_NO_ERROR) die("assign");
  rd_kafka_topic_partition_list_destroy(list);

  uint64_t records = 0, bytes = 0, checksum = 0;
  int at_end = 0;
  auto take = [&](rd_kafka_message_t* m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      ++at_end;
    } else if (m->err) {
      die(rd_kafka_message_errstr(m));
    } else {
      ++records;
      bytes += m->len;
      // Touch the value as a consumer would, so the comparison with Sluice
      // (which reads every value) is fair.
      if (m->len > 0) checksum += static_cast<const unsigned char*>(m->payload)[m->len - 1];
    }
    rd_kafka_message_destroy(m);
  };
  if (batch) {
    constexpr size_t kBatch = 10000;
    static rd_kafka_message_t* msgs[kBatch];
    rd_kafka_queue_t* q = rd_kafka_queue_get_consumer(rk);
    while (at_end < partitions) {
      ssize_t n = rd_kafka_consume_batch_queue(q, 1000, msgs, kBatch);
      if (n < 0) die("consume_batch_queue");
      for (ssize_t i = 0; i < n; ++i) take(msgs[i]);
    }
    rd_kafka_queue_destroy(q);
  } else {
    while (at_end < partitions) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 1000);
      if (m != nullptr) take(m);
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("records=%llu bytes=%llu seconds=%.3f records_per_s=%.0f checksum=%llu\n",
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(bytes),
              seconds, double(records) / seconds, static_cast<unsigned long long>(checksum));
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}
