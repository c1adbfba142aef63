// JSON line -> Event.
//
// Workload: 100k typical sales lines from the engine's generator (1000
// products, 10k customers, RFC 3339 timestamps with milliseconds), decoded
// one by one in order, each line followed in memory by the next (so the
// simdjson padding is always readable).
//
//   BM_Decoder               operators/decoder.h Decoder::decode: simdjson On-Demand,
//                            key encoding + XXH3, RFC 3339 parse, typed values
//   BM_DecoderOptional/0     the same lines with customer_id and revenue declared
//                            optional (every line has them): what declaring
//                            fields optional costs an event that has them
//   BM_DecoderOptional/1     the lines without their customer_id (absent in
//                            every event: the absent path)
//   BM_SimdjsonDomParse      baseline: simdjson DOM parse of the same line, nothing read
//   BM_SimdjsonDomExtract    baseline: DOM parse, then the five fields looked up
//                            by name and read as their types (no timestamp
//                            parse, no key encoding or hash)
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_data.h"
#include "operators/decoder.h"

namespace sluice::bench {
namespace {

constexpr uint64_t kLines = 100'000;
constexpr uint32_t kLineBytesMax = 1u << 20;  // limits::line_bytes_max_default

struct Corpus {
  NdjsonText text = sales_ndjson(kLines);
  std::vector<std::string_view> lines = split_lines(text);
};
const Corpus& corpus() {
  static const Corpus c;
  return c;
}

void set_rates(benchmark::State& state) {
  const Corpus& c = corpus();
  state.SetItemsProcessed(int64_t(state.iterations() * c.lines.size()));
  state.SetBytesProcessed(int64_t(state.iterations() * c.text.size));  // newlines included
}

void BM_Decoder(benchmark::State& state) {
  const Corpus& c = corpus();
  Decoder decoder(sales_schema(), kLineBytesMax);
  Event e{};
  uint64_t failed = 0, sum = 0;
  for (auto _ : state) {
    for (std::string_view line : c.lines) {
      if (decoder.decode(line, e) != DecodeStatus::ok) ++failed;
      sum += e.key_hash ^ uint64_t(e.time_ns);
    }
  }
  benchmark::DoNotOptimize(sum);
  if (failed != 0) state.SkipWithError("decode failed on generated lines");
  set_rates(state);
}

// The corpus with every line's "customer_id" member removed, padded as the
// engine pads its buffers.
struct CorpusWithoutCustomer {
  std::string bytes;
  std::vector<std::string_view> lines;
  size_t size = 0;
  CorpusWithoutCustomer() {
    for (std::string_view line : corpus().lines) {
      std::string l(line);
      const size_t at = l.find("\"customer_id\":");
      const size_t end = l.find_first_of(",}", l.find('"', at + 15) + 1);  // after the string value
      l.erase(at, end - at + (l[end] == ',' ? 1 : 0));
      if (l.ends_with(",}")) l.erase(l.size() - 2, 1);
      bytes += l + "\n";
    }
    size = bytes.size();
    bytes.append(kLinePadding, '\0');
    for (const char *p = bytes.data(), *end = p + size; p < end;) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
      lines.emplace_back(p, size_t(nl - p));
      p = nl + 1;
    }
  }
};

void BM_DecoderOptional(benchmark::State& state) {
  static const CorpusWithoutCustomer without;
  const bool absent = state.range(0) == 1;
  const std::vector<std::string_view>& lines = absent ? without.lines : corpus().lines;
  SchemaConfig schema = sales_schema();
  schema.fields[0].presence = FieldPresence::optional;  // customer_id
  schema.fields[2].presence = FieldPresence::optional;  // revenue
  Decoder decoder(schema, kLineBytesMax);
  Event e{};
  uint64_t failed = 0, sum = 0, absents = 0;
  for (auto _ : state) {
    for (std::string_view line : lines) {
      if (decoder.decode(line, e) != DecodeStatus::ok) ++failed;
      sum += e.key_hash ^ uint64_t(e.time_ns);
      absents += e.absent;
    }
  }
  benchmark::DoNotOptimize(sum);
  if (failed != 0) state.SkipWithError("decode failed on generated lines");
  if ((absents != 0) != absent) state.SkipWithError("customer_id absent where it should not be, or present");
  state.SetItemsProcessed(int64_t(state.iterations() * lines.size()));
  state.SetBytesProcessed(int64_t(state.iterations() * (absent ? without.size : corpus().text.size)));
}

void BM_SimdjsonDomParse(benchmark::State& state) {
  const Corpus& c = corpus();
  simdjson::dom::parser parser;
  if (parser.allocate(kLineBytesMax + kLinePadding) != simdjson::SUCCESS) {
    state.SkipWithError("allocate");
    return;
  }
  uint64_t failed = 0;
  for (auto _ : state) {
    for (std::string_view line : c.lines) {
      simdjson::dom::element root;
      if (parser.parse(line.data(), line.size(), false).get(root) != simdjson::SUCCESS) ++failed;
      benchmark::DoNotOptimize(root);
    }
  }
  if (failed != 0) state.SkipWithError("parse failed on generated lines");
  set_rates(state);
}

void BM_SimdjsonDomExtract(benchmark::State& state) {
  const Corpus& c = corpus();
  simdjson::dom::parser parser;
  if (parser.allocate(kLineBytesMax + kLinePadding) != simdjson::SUCCESS) {
    state.SkipWithError("allocate");
    return;
  }
  uint64_t failed = 0, sum = 0;
  for (auto _ : state) {
    for (std::string_view line : c.lines) {
      simdjson::dom::object obj;
      int64_t product = 0, quantity = 0;
      double revenue = 0;
      std::string_view customer, timestamp;
      if (parser.parse(line.data(), line.size(), false).get(obj) != simdjson::SUCCESS ||
          obj["product_id"].get(product) != simdjson::SUCCESS ||
          obj["customer_id"].get(customer) != simdjson::SUCCESS ||
          obj["quantity"].get(quantity) != simdjson::SUCCESS ||
          obj["revenue"].get(revenue) != simdjson::SUCCESS ||
          obj["timestamp"].get(timestamp) != simdjson::SUCCESS) {
        ++failed;
        continue;
      }
      sum += uint64_t(product + quantity) + uint64_t(revenue) + customer.size() + timestamp.size();
    }
  }
  benchmark::DoNotOptimize(sum);
  if (failed != 0) state.SkipWithError("parse failed on generated lines");
  set_rates(state);
}

BENCHMARK(BM_Decoder);
BENCHMARK(BM_DecoderOptional)->Arg(0)->Arg(1);
BENCHMARK(BM_SimdjsonDomParse);
BENCHMARK(BM_SimdjsonDomExtract);

}  // namespace
}  // namespace sluice::bench

BENCHMARK_MAIN();
