// sluice-gen: Sluice's load generator. Writes synthetic sales events (the
// generator source's events) as NDJSON to a file, stdout or N TCP connections,
// as fast as possible or on an open-loop schedule, and reports on stderr what
// it sent and how far it fell behind the schedule. Reproducible from --seed.
// See tools/gen/README.md.
#include <sched.h>
#include <CLI/CLI.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "core/config.h"
#include "core/timestamp.h"
#include "tools/gen/load.h"
#include "io/sources/sales_generator.h"

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) {
  g_stop_signal = sig;
}

// SIGINT/SIGTERM end the run with a report; without SA_RESTART, so a blocked
// sleep, poll or write returns at once to look at the flag.
void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // A closed pipe or reset connection is reported as EPIPE with its name, not
  // a silent death by SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
}

int usage_error(const std::string& message) {
  std::fprintf(stderr, "sluice-gen: %s\n", message.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice;
  CLI::App app{"Synthetic sales events as NDJSON: a file, stdout or an open-loop TCP load",
               "sluice-gen"};
  GeneratorSourceConfig g;
  g.count = 1'000'000;
  gen::LoadConfig load;
  LateEvents late;
  std::string start = "2024-01-01T00:00:00Z", step = "1ms", jitter = "0s", out = "-";
  std::string time_format = "rfc3339", time_mode = "synthetic", duration, late_by, tcp;
  uint32_t connections = 1;
  bool nodelay = true;
  int cpu = -1;

  auto* count_opt =
      app.add_option("--count", g.count, "events to send (default 1000000 without --duration)")
          ->capture_default_str();
  app.add_option("--duration", duration,
                 "with --rate: the schedule's length (events due before it); without: wall time");
  app.add_option("--rate", load.rate, "events per second over all outputs; 0 = as fast as possible")
      ->capture_default_str();
  app.add_option("--products", g.products, "distinct product_id values")->capture_default_str();
  app.add_option("--customers", g.customers, "distinct customer_id values")->capture_default_str();
  app.add_option("--time", time_mode,
                 "synthetic: event i at start + i * step; now: the wall-clock time it is due")
      ->check(CLI::IsMember({"synthetic", "now"}))
      ->capture_default_str();
  auto* start_opt = app.add_option("--start", start, "event time of the first event (RFC 3339)")
                        ->capture_default_str();
  auto* step_opt = app.add_option("--step", step, "event time between consecutive events")
                       ->capture_default_str();
  app.add_option("--jitter", jitter, "each event's time moves back by up to this")
      ->capture_default_str();
  app.add_option("--late-fraction", late.fraction,
                 "fraction of events moved back by --late-by more (late events)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--late-by", late_by, "how far a late event's time moves back");
  app.add_option("--seed", g.seed, "random seed")->capture_default_str();
  app.add_option("--time-format", time_format, "rfc3339, epoch_s, epoch_ms, epoch_us or epoch_ns")
      ->check(CLI::IsMember({"rfc3339", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns"}))
      ->capture_default_str();
  auto* out_opt =
      app.add_option("-o,--out", out, "output file, - for stdout")->capture_default_str();
  auto* tcp_opt =
      app.add_option("--tcp", tcp, "send to HOST:PORT over TCP instead")->excludes(out_opt);
  app.add_option("--connections", connections, "TCP connections; event i goes to connection i % N")
      ->check(CLI::Range(uint32_t(1), gen::connections_max))
      ->needs(tcp_opt)
      ->capture_default_str();
  app.add_flag("--nodelay,!--no-nodelay", nodelay,
               "TCP_NODELAY (default on: batches are already coalesced, Nagle only adds delay)");
  app.add_option("--cpu", cpu, "pin sluice-gen to this CPU (sched_setaffinity)")
      ->check(CLI::Range(0, CPU_SETSIZE - 1));
  app.add_flag("--progress", load.progress, "a report line on stderr every second");
  app.add_option("--batch-bytes", load.batch_bytes, "events buffered per output before a write")
      ->check(CLI::Range(gen::kBatchBytesMin, gen::kBatchBytesMax))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, as the checks below do.
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (!duration.empty()) {
    auto d = parse_duration(duration);
    if (!d) return usage_error("--duration: " + d.error());
    if (*d <= 0) return usage_error("--duration must be more than 0s");
    load.duration_ns = *d;
    if (count_opt->count() == 0) g.count = 0;  // the duration alone ends the run
  }
  if (count_opt->count() > 0 && g.count == 0) return usage_error("--count must be at least 1");
  if (g.products == 0 || g.customers == 0) {
    return usage_error("--products and --customers must be at least 1");
  }
  load.count = g.count;
  load.time_now = time_mode == "now";
  if (load.time_now && (start_opt->count() > 0 || step_opt->count() > 0)) {
    return usage_error("--start and --step are for --time synthetic");
  }
  if (late.fraction > 0 && late_by.empty()) return usage_error("--late-fraction needs --late-by");
  if (!late_by.empty()) {
    auto d = parse_duration(late_by);
    if (!d) return usage_error("--late-by: " + d.error());
    late.late_by_ns = *d;
  }

  std::optional<gen::HostPort> tcp_to;
  if (!tcp.empty()) {
    auto hp = gen::parse_host_port(tcp);
    if (!hp) return usage_error(hp.error());
    tcp_to = std::move(*hp);
  }

  int64_t start_ns;
  if (parse_rfc3339(start, start_ns) != TimestampError::ok) {
    return usage_error("--start: not an RFC 3339 time: " + start);
  }
  auto step_ns = parse_duration(step);
  auto jitter_ns = parse_duration(jitter);
  if (!step_ns) return usage_error("--step: " + step_ns.error());
  if (!jitter_ns) return usage_error("--jitter: " + jitter_ns.error());
  g.step_ns = *step_ns;
  g.jitter_ns = *jitter_ns;
  g.rate = load.rate;
  TimeFormat tf = time_format == "epoch_s"    ? TimeFormat::epoch_s
                  : time_format == "epoch_ms" ? TimeFormat::epoch_ms
                  : time_format == "epoch_us" ? TimeFormat::epoch_us
                  : time_format == "epoch_ns" ? TimeFormat::epoch_ns
                                              : TimeFormat::rfc3339;

  if (cpu >= 0) {
    // Before anything else runs, so every thread this process has (just this
    // one) stays on the CPU: the perf runs give sluice-gen one CPU and Sluice the others.
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::fprintf(stderr, "sluice-gen: --cpu %d: %s (is it a CPU this process may use?)\n", cpu,
                   std::strerror(errno));
      return 1;
    }
  }
  install_signal_handlers();

  auto outputs = tcp_to ? gen::connect_tcp(*tcp_to, connections, nodelay) : gen::open_file(out);
  if (!outputs) {
    std::fprintf(stderr, "sluice-gen: %s\n", outputs.error().c_str());
    return 1;
  }
  SalesGenerator generator(g, tf, start_ns, late);
  gen::LoadRunner runner(generator, std::move(*outputs), load);
  auto result = runner.run(g_stop_signal);
  if (!result) std::fprintf(stderr, "sluice-gen: %s\n", result.error().message.c_str());
  std::fprintf(stderr, "%s\n", runner.report().line().c_str());
  if (!result) {
    return result.error().code == gen::LoadErrorCode::interrupted ? 128 + int(g_stop_signal) : 1;
  }
  return 0;
}
