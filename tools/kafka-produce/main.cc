// sluice-kafka-produce: produces NDJSON lines as Kafka records with librdkafka.
//
// Each non-empty input line (file or stdin) becomes one record value, byte for
// byte (a trailing "\r" is dropped). The key is the text of one top-level JSON
// field (--key-field), the partition is fixed (--partition) or chosen by
// librdkafka's partitioner from the key. It waits for every delivery report and
// exits 0 only if every record was acknowledged by the broker. A test peer: it is
// never linked into the engine.
//
// Threads: main() produces and polls delivery reports; librdkafka's own threads
// do the network I/O. The delivery callback runs inside rd_kafka_poll/flush on
// the main thread, so the counters need no synchronisation.
#include <librdkafka/rdkafka.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

// How long rd_kafka_poll blocks when librdkafka's local queue is full: long
// enough not to spin, short enough to refill the queue as soon as batches leave.
constexpr int queue_full_poll_ms = 10;
// Largest key taken from --key-field; longer values are cut to this length and
// counted, since a key of that size is a broken input rather than a key.
constexpr size_t key_bytes_max = 4096;
// Bound on the start-up topic lookup; a broker that cannot answer metadata within
// this is not going to take a million records either.
constexpr int metadata_timeout_ms = 10'000;
// After a flush timeout, how long to wait for the purged records' reports.
constexpr int purge_reports_timeout_ms = 1'000;
// stdio buffer for the input file: large reads keep getline() cheap.
constexpr size_t input_buffer_bytes = 1 << 20;

struct Counts {
  uint64_t sent = 0;            // accepted by rd_kafka_produceva
  uint64_t delivered = 0;       // delivery report without error
  uint64_t failed = 0;          // delivery report with an error, or refused locally
  uint64_t without_key = 0;     // --key-field given but missing from the line
  uint64_t keys_truncated = 0;  // key longer than key_bytes_max
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* c = static_cast<Counts*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    ++c->delivered;
    return;
  }
  if (c->failed++ == 0) {
    c->first_error = m->err;
    std::fprintf(stderr, "sluice-kafka-produce: delivery failed: %s\n", rd_kafka_err2str(m->err));
  }
}

// --- A minimal scanner for one top-level field of a JSON object. -----------------
// It finds where values start and end; it does not validate JSON. Bad input gives
// "no such field", never a crash or a read past the line.

size_t skip_ws(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// REQUIRES: s[i] == '"'. Returns the index just past the closing quote, or npos.
size_t skip_string(std::string_view s, size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

// Returns the index just past the value that starts at i, or npos.
size_t skip_value(std::string_view s, size_t i) {
  if (i >= s.size()) return std::string_view::npos;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return std::string_view::npos;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
         s[i] != '\r' && s[i] != '\n') {
    ++i;
  }
  return i;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int hex_value(char h) {
  if (h >= '0' && h <= '9') return h - '0';
  if (h >= 'a' && h <= 'f') return h - 'a' + 10;
  if (h >= 'A' && h <= 'F') return h - 'A' + 10;
  return -1;
}

// The value of four hex digits at body[at..at+3], or -1.
int32_t hex4(std::string_view body, size_t at) {
  if (at + 4 > body.size()) return -1;
  int32_t v = 0;
  for (size_t k = 0; k < 4; ++k) {
    int digit = hex_value(body[at + k]);
    if (digit < 0) return -1;
    v = (v << 4) | digit;
  }
  return v;
}

// Decodes the body of a JSON string (between the quotes). An invalid escape is
// kept as written.
void unescape_into(std::string_view body, std::string& out) {
  out.clear();
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 >= body.size()) {
      out.push_back(body[i]);
      continue;
    }
    char e = body[++i];
    switch (e) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'u': {
        // Four hex digits follow (a high surrogate pairs with a following \uDCxx);
        // anything malformed is kept as written.
        int32_t cp = hex4(body, i + 1);
        if (cp < 0) {
          out.append("\\u");
          break;
        }
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF && i + 2 < body.size() && body[i + 1] == '\\' &&
            body[i + 2] == 'u') {
          int32_t low = hex4(body, i + 3);
          if (low >= 0xDC00 && low <= 0xDFFF) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        append_utf8(out, static_cast<uint32_t>(cp));
        break;
      }
      default:
        out.push_back(e);
        break;  // \" \\ \/ and anything else
    }
  }
}

// Finds top-level field `name` in the JSON object `line`. A string value is
// decoded (no quotes); any other value is its text as written (17, true, {...}).
// Returns false when the line is not an object or has no such field.
bool find_key(std::string_view line, std::string_view name, std::string& key) {
  size_t i = skip_ws(line, 0);
  if (i >= line.size() || line[i] != '{') return false;
  i = skip_ws(line, i + 1);
  while (i < line.size() && line[i] == '"') {
    size_t name_end = skip_string(line, i);
    if (name_end == std::string_view::npos) return false;
    std::string_view field = line.substr(i + 1, name_end - i - 2);
    i = skip_ws(line, name_end);
    if (i >= line.size() || line[i] != ':') return false;
    i = skip_ws(line, i + 1);
    size_t value_end = skip_value(line, i);
    if (value_end == std::string_view::npos) return false;
    if (field == name) {
      std::string_view value = line.substr(i, value_end - i);
      if (value.size() >= 2 && value.front() == '"') {
        unescape_into(value.substr(1, value.size() - 2), key);
      } else {
        key.assign(value);
      }
      return true;
    }
    i = skip_ws(line, value_end);
    if (i >= line.size() || line[i] != ',') return false;
    i = skip_ws(line, i + 1);
  }
  return false;
}

struct Header {
  std::string name;
  std::string value;
};

bool set_conf(rd_kafka_conf_t* conf, const std::string& name, const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "sluice-kafka-produce: %s=%s: %s\n", name.c_str(), value.c_str(), errstr);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Produce NDJSON lines as Kafka records (librdkafka)", "sluice-kafka-produce"};
  std::string brokers, topic, file = "-", key_field, codec = "none";
  int32_t partition = RD_KAFKA_PARTITION_UA;
  int linger_ms = 5;
  int batch_size_bytes = 1'000'000;
  int batch_messages = 10'000;
  int timeout_ms = 60'000;
  std::string acks = "all";
  std::vector<std::string> header_args, conf_args;
  bool quiet = false;
  app.add_option("-b,--brokers", brokers, "bootstrap servers, host:port[,host:port...]")
      ->required();
  app.add_option("-t,--topic", topic, "topic to produce to")->required();
  app.add_option("-f,--file", file, "NDJSON input, - for stdin")->capture_default_str();
  app.add_option("-k,--key-field", key_field,
                 "top-level JSON field whose value is the record key (strings without quotes); "
                 "no key when absent");
  app.add_option("-p,--partition", partition,
                 "fixed partition; default: librdkafka's partitioner (key hash, or spread for "
                 "null keys)");
  app.add_option("--codec", codec, "compression codec")
      ->check(CLI::IsMember({"none", "gzip", "snappy", "lz4", "zstd"}))
      ->capture_default_str();
  app.add_option("-H,--header", header_args, "record header name=value (repeatable)");
  app.add_option("--linger-ms", linger_ms, "linger.ms: wait to fill a batch")
      ->check(CLI::Range(0, 900'000))
      ->capture_default_str();
  app.add_option("--batch-size", batch_size_bytes, "batch.size: max bytes per record batch")
      ->check(CLI::Range(1, 2'147'483'647))
      ->capture_default_str();
  app.add_option("--batch-messages", batch_messages, "batch.num.messages: max records per batch")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--acks", acks, "acks: all, 1 or 0")
      ->check(CLI::IsMember({"all", "-1", "1", "0"}))
      ->capture_default_str();
  app.add_option("--timeout-ms", timeout_ms, "max wait for outstanding delivery reports at the end")
      ->capture_default_str();
  app.add_option("-X", conf_args, "any librdkafka property name=value (repeatable)");
  app.add_flag("-q,--quiet", quiet, "no summary line on stdout");
  CLI11_PARSE(app, argc, argv);

  std::vector<Header> headers;
  for (const std::string& h : header_args) {
    size_t eq = h.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "sluice-kafka-produce: --header wants name=value: %s\n", h.c_str());
      return 2;
    }
    headers.push_back({h.substr(0, eq), h.substr(eq + 1)});
  }

  Counts counts;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  bool conf_ok = set_conf(conf, "bootstrap.servers", brokers) &&
                 set_conf(conf, "compression.codec", codec) &&
                 set_conf(conf, "linger.ms", std::to_string(linger_ms)) &&
                 set_conf(conf, "batch.size", std::to_string(batch_size_bytes)) &&
                 set_conf(conf, "batch.num.messages", std::to_string(batch_messages)) &&
                 set_conf(conf, "acks", acks);
  for (const std::string& kv : conf_args) {
    size_t eq = kv.find('=');
    conf_ok =
        conf_ok && eq != std::string::npos && set_conf(conf, kv.substr(0, eq), kv.substr(eq + 1));
    if (eq == std::string::npos) std::fprintf(stderr, "sluice-kafka-produce: -X %s\n", kv.c_str());
  }
  if (!conf_ok) {
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_conf_set_opaque(conf, &counts);

  FILE* in = file == "-" ? stdin : std::fopen(file.c_str(), "rb");
  if (in == nullptr) {
    std::perror(("sluice-kafka-produce: " + file).c_str());
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  // Static: stdin keeps using its buffer until exit() closes it, after main returns.
  static char in_buffer[input_buffer_bytes];
  setvbuf(in, in_buffer, _IOFBF, sizeof in_buffer);

  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (rk == nullptr) {
    std::fprintf(stderr, "sluice-kafka-produce: %s\n", errstr);
    return 1;
  }

  // Look the topic up first: it fails fast on a wrong --brokers/--topic/--partition,
  // and records for an explicit partition are not parked in librdkafka's
  // unassigned queue (scanned once a second) waiting for metadata.
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t md_err = rd_kafka_metadata(rk, 0, rkt, &md, metadata_timeout_ms);
  int partition_count = 0;
  if (md_err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1) {
    md_err = md->topics[0].err;
    partition_count = md->topics[0].partition_cnt;
  }
  if (md != nullptr) rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  if (md_err != RD_KAFKA_RESP_ERR_NO_ERROR || partition_count == 0) {
    std::fprintf(stderr, "sluice-kafka-produce: topic %s on %s: %s\n", topic.c_str(),
                 brokers.c_str(),
                 md_err != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(md_err) : "no partitions");
    rd_kafka_destroy(rk);
    return 1;
  }
  if (partition != RD_KAFKA_PARTITION_UA && (partition < 0 || partition >= partition_count)) {
    std::fprintf(stderr, "sluice-kafka-produce: --partition %d: topic %s has partitions 0..%d\n",
                 partition, topic.c_str(), partition_count - 1);
    rd_kafka_destroy(rk);
    return 2;
  }

  const auto start = std::chrono::steady_clock::now();
  // The argument vector for rd_kafka_produceva: topic, partition, value, key,
  // headers. Built once; per line only the value and key entries change.
  std::vector<rd_kafka_vu_t> vus;
  vus.reserve(5 + headers.size());
  vus.push_back({.vtype = RD_KAFKA_VTYPE_TOPIC, .u = {.cstr = topic.c_str()}});
  vus.push_back({.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u = {.i = RD_KAFKA_MSG_F_COPY}});
  if (partition != RD_KAFKA_PARTITION_UA) {
    vus.push_back({.vtype = RD_KAFKA_VTYPE_PARTITION, .u = {.i32 = partition}});
  }
  const size_t value_index = vus.size();
  vus.push_back({.vtype = RD_KAFKA_VTYPE_VALUE, .u = {.mem = {nullptr, 0}}});
  for (const Header& h : headers) {
    rd_kafka_vu_t vu{.vtype = RD_KAFKA_VTYPE_HEADER};
    vu.u.header.name = h.name.c_str();
    vu.u.header.val = h.value.data();
    vu.u.header.size = static_cast<ssize_t>(h.value.size());
    vus.push_back(vu);
  }
  const size_t key_index = vus.size();
  vus.push_back({.vtype = RD_KAFKA_VTYPE_KEY, .u = {.mem = {nullptr, 0}}});

  std::string key;
  key.reserve(key_bytes_max);
  char* line = nullptr;
  size_t line_cap = 0;
  ssize_t line_len;
  int rc = 0;
  while ((line_len = getline(&line, &line_cap, in)) >= 0) {
    std::string_view value(line, static_cast<size_t>(line_len));
    if (value.ends_with('\n')) value.remove_suffix(1);
    if (value.ends_with('\r')) value.remove_suffix(1);
    if (value.empty()) continue;
    vus[value_index].u.mem = {const_cast<char*>(value.data()), value.size()};
    size_t vu_count = vus.size();
    if (!key_field.empty() && find_key(value, key_field, key)) {
      if (key.size() > key_bytes_max) {
        key.resize(key_bytes_max);
        ++counts.keys_truncated;
      }
      vus[key_index].u.mem = {key.data(), key.size()};
    } else {
      if (!key_field.empty()) ++counts.without_key;
      vu_count = key_index;  // Leave the key entry out: a null key.
    }
    for (;;) {
      rd_kafka_error_t* error = rd_kafka_produceva(rk, vus.data(), vu_count);
      if (error == nullptr) {
        ++counts.sent;
        break;
      }
      rd_kafka_resp_err_t err = rd_kafka_error_code(error);
      rd_kafka_error_destroy(error);
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(rk, queue_full_poll_ms);  // Serve delivery reports to make room.
        continue;
      }
      if (counts.failed++ == 0) {
        counts.first_error = err;
        std::fprintf(stderr, "sluice-kafka-produce: produce failed: %s\n", rd_kafka_err2str(err));
      }
      break;
    }
    rd_kafka_poll(rk, 0);
  }
  if (std::ferror(in)) {
    std::perror("sluice-kafka-produce: read");
    rc = 1;
  }
  std::free(line);

  rd_kafka_resp_err_t flush_err = rd_kafka_flush(rk, timeout_ms);
  if (flush_err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::fprintf(stderr, "sluice-kafka-produce: %d records still undelivered after %d ms\n",
                 rd_kafka_outq_len(rk), timeout_ms);
    // Purged records get a delivery report with an error, so they count as failed.
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk, purge_reports_timeout_ms);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!quiet) {
    std::printf("sent %llu delivered %llu failed %llu without_key %llu seconds %.3f\n",
                static_cast<unsigned long long>(counts.sent),
                static_cast<unsigned long long>(counts.delivered),
                static_cast<unsigned long long>(counts.failed),
                static_cast<unsigned long long>(counts.without_key), seconds);
  }
  if (counts.keys_truncated > 0) {
    std::fprintf(stderr, "sluice-kafka-produce: %llu keys cut to %zu bytes\n",
                 static_cast<unsigned long long>(counts.keys_truncated), key_bytes_max);
  }
  if (in != stdin) std::fclose(in);
  rd_kafka_destroy(rk);
  if (rc == 0 && (counts.failed > 0 || counts.delivered != counts.sent)) rc = 1;
  return rc;
}
