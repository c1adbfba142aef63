// sluice-gen: writes synthetic sales events (the generator source's events)
// as NDJSON to a file or stdout. Reproducible from --seed.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>

#include "core/config.h"
#include "core/timestamp.h"
#include "tools/sluice/generator.h"

int main(int argc, char** argv) {
  using namespace sluice;
  CLI::App app{"Synthetic sales events as NDJSON", "sluice-gen"};
  GeneratorSourceConfig g;
  g.count = 1'000'000;
  std::string start = "2024-01-01T00:00:00Z", step = "1ms", jitter = "0s", out = "-", time_format = "rfc3339";
  app.add_option("--count", g.count, "events to write")->capture_default_str();
  app.add_option("--products", g.products, "distinct product_id values")->capture_default_str();
  app.add_option("--customers", g.customers, "distinct customer_id values")->capture_default_str();
  app.add_option("--start", start, "event time of the first event (RFC 3339)")->capture_default_str();
  app.add_option("--step", step, "event time between consecutive events")->capture_default_str();
  app.add_option("--jitter", jitter, "each event's time moves back by up to this")->capture_default_str();
  app.add_option("--seed", g.seed, "random seed")->capture_default_str();
  app.add_option("--time-format", time_format, "rfc3339, epoch_s, epoch_ms, epoch_us or epoch_ns")
      ->check(CLI::IsMember({"rfc3339", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns"}))
      ->capture_default_str();
  app.add_option("-o,--out", out, "output file, - for stdout")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (g.count == 0 || g.products == 0 || g.customers == 0) {
    std::fprintf(stderr, "sluice-gen: --count, --products and --customers must be at least 1\n");
    return 2;
  }

  int64_t start_ns;
  if (parse_rfc3339(start, start_ns) != TimestampError::ok) {
    std::fprintf(stderr, "sluice-gen: --start: not an RFC 3339 time: %s\n", start.c_str());
    return 2;
  }
  auto step_ns = parse_duration(step);
  auto jitter_ns = parse_duration(jitter);
  if (!step_ns || !jitter_ns) {
    std::fprintf(stderr, "sluice-gen: %s\n", (!step_ns ? step_ns.error() : jitter_ns.error()).c_str());
    return 2;
  }
  g.step_ns = *step_ns;
  g.jitter_ns = *jitter_ns;
  TimeFormat tf = time_format == "epoch_s"    ? TimeFormat::epoch_s
                  : time_format == "epoch_ms" ? TimeFormat::epoch_ms
                  : time_format == "epoch_us" ? TimeFormat::epoch_us
                  : time_format == "epoch_ns" ? TimeFormat::epoch_ns
                                              : TimeFormat::rfc3339;
  FILE* f = out == "-" ? stdout : std::fopen(out.c_str(), "wb");
  if (f == nullptr) {
    std::perror(("sluice-gen: " + out).c_str());
    return 1;
  }
  SalesGenerator gen(g, tf, start_ns);
  constexpr size_t kChunk = 1 << 20;
  auto buf = std::make_unique<char[]>(kChunk);
  while (!gen.finished()) {
    uint64_t events;
    size_t n = gen.generate(buf.get(), kChunk, UINT64_MAX, events);
    if (std::fwrite(buf.get(), 1, n, f) != n) {
      std::perror("sluice-gen: write");
      return 1;
    }
  }
  if (f != stdout && std::fclose(f) != 0) {
    std::perror("sluice-gen: close");
    return 1;
  }
  return 0;
}
