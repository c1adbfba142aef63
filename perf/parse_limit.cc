// The ceiling for Sluice's file source in perf/run.sh: simdjson On-Demand
// parsing of the same NDJSON bytes on one core, line by line as Sluice does
// (one parser.iterate() per line, with padding readable after it), extracting
// the same five fields: product_id (int64), customer_id (string), quantity
// (int64), revenue (double) and timestamp (the string, not parsed). Nothing
// else: no framing checks, no RFC 3339 parse, no key encoding or hashing, no
// validation of skipped content, no windows, no output. Whatever Sluice does
// beyond this is the price of the engine.
//
// The file is read into memory (with simdjson's padding after it) before the
// clock starts; each pass splits it at '\n' with memchr and parses every
// non-empty line. Fields are matched by name in whatever order they come, as
// Sluice's decoder does. A pass must see every line parse, or the run fails.
//
//   sluice-perf-parse-limit FILE [PASSES]
// prints one line per pass:
//   events=N bytes=B seconds=S events_per_s=R mb_per_s=M checksum=C
// (bytes counts the whole file, newlines included, as Sluice's bytes_in does;
// checksum keeps the extraction from being optimised away).
#include <simdjson.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace {

namespace od = simdjson::ondemand;

// The padding Sluice's framer guarantees after each line (operators/framing.h
// kLinePadding); simdjson reads up to this far past a document.
constexpr size_t kLinePadding = 64;
static_assert(kLinePadding >= simdjson::SIMDJSON_PADDING);
// Sluice's default line_bytes_max: the parser is sized for it once, as each
// shard's decoder is.
constexpr size_t kLineBytesMax = 1 << 20;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "sluice-perf-parse-limit: %s\n", what.c_str());
  std::exit(1);
}

struct Totals {
  uint64_t events = 0;
  uint64_t checksum = 0;
};

// Parses one line; false when it is not an object with all five fields.
bool extract(od::parser& parser, const char* line, size_t len, Totals& t) {
  od::document doc;
  if (parser.iterate(line, len, len + kLinePadding).get(doc) != simdjson::SUCCESS) return false;
  od::object obj;
  if (doc.get_object().get(obj) != simdjson::SUCCESS) return false;
  int64_t product_id = 0, quantity = 0;
  double revenue = 0;
  std::string_view customer_id, timestamp;
  unsigned seen = 0;
  for (auto field_result : obj) {
    if (field_result.error() != simdjson::SUCCESS) return false;
    od::field field = field_result.value_unsafe();
    std::string_view name;
    if (field.unescaped_key().get(name) != simdjson::SUCCESS) return false;
    od::value v = field.value();
    bool ok = true;
    if (name == "product_id") {
      ok = v.get_int64().get(product_id) == simdjson::SUCCESS;
      seen |= 1;
    } else if (name == "customer_id") {
      ok = v.get_string().get(customer_id) == simdjson::SUCCESS;
      seen |= 2;
    } else if (name == "quantity") {
      ok = v.get_int64().get(quantity) == simdjson::SUCCESS;
      seen |= 4;
    } else if (name == "revenue") {
      ok = v.get_double().get(revenue) == simdjson::SUCCESS;
      seen |= 8;
    } else if (name == "timestamp") {
      ok = v.get_string().get(timestamp) == simdjson::SUCCESS;
      seen |= 16;
    }
    if (!ok) return false;
  }
  if (seen != 31) return false;
  ++t.events;
  t.checksum += uint64_t(product_id) + uint64_t(quantity) + uint64_t(revenue) + customer_id.size() +
                uint64_t(timestamp.empty() ? 0 : timestamp.back());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) die("usage: sluice-perf-parse-limit FILE [PASSES]");
  const int passes = argc == 3 ? std::atoi(argv[2]) : 1;
  if (passes < 1) die("PASSES must be at least 1");

  FILE* f = std::fopen(argv[1], "rb");
  if (f == nullptr) die(std::string(argv[1]) + ": " + std::strerror(errno));
  std::fseek(f, 0, SEEK_END);
  long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  if (size <= 0) die(std::string(argv[1]) + ": empty or unreadable");
  const size_t bytes = size_t(size);
  std::unique_ptr<char[]> buf(new char[bytes + kLinePadding]);
  if (std::fread(buf.get(), 1, bytes, f) != bytes) die(std::string(argv[1]) + ": short read");
  std::fclose(f);
  std::memset(buf.get() + bytes, 0, kLinePadding);

  od::parser parser;
  if (parser.allocate(kLineBytesMax + kLinePadding) != simdjson::SUCCESS)
    die("parser allocation failed");

  for (int pass = 0; pass < passes; ++pass) {
    Totals t;
    uint64_t lines = 0;
    auto start = std::chrono::steady_clock::now();
    const char* p = buf.get();
    const char* end = p + bytes;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
      const char* line_end = nl ? nl : end;
      size_t len = size_t(line_end - p);
      if (len > 0 && p[len - 1] == '\r') --len;
      if (len > 0) {
        ++lines;
        if (!extract(parser, p, len, t)) die("line " + std::to_string(lines) + " did not parse");
      }
      p = line_end + 1;
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "events=%llu bytes=%zu seconds=%.6f events_per_s=%.0f mb_per_s=%.1f checksum=%llu\n",
        static_cast<unsigned long long>(t.events), bytes, seconds, double(t.events) / seconds,
        double(bytes) / seconds / 1e6, static_cast<unsigned long long>(t.checksum));
  }
  return 0;
}
