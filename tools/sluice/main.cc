// sluice: the engine's command line.
//   sluice run PIPELINE.toml     run a pipeline until its input ends or SIGINT/SIGTERM
//   sluice check PIPELINE.toml   validate a pipeline file without running it
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <unistd.h>
#include <filesystem>
#include <cstring>
#include <cerrno>
#include <string>

#include "core/config.h"
#include "core/log.h"
#include "dataflow/engine.h"
#include "dataflow/pipeline_config.h"
#include "io/sink.h"
#include "io/source.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

namespace {

using namespace sluice;

int print_errors(const std::vector<ConfigError>& errors) {
  for (const ConfigError& e : errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
  std::fprintf(stderr, "%zu error%s\n", errors.size(), errors.size() == 1 ? "" : "s");
  return 2;
}

std::string describe_sources(const PipelineConfig& cfg, const Engine* engine) {
  std::string out;
  for (size_t i = 0; i < cfg.sources.size(); ++i) {
    const SourceConfig& s = cfg.sources[i];
    if (!out.empty()) out += ", ";
    out += s.name + " (" + to_string(s.type);
    // A listener shows the address it is bound to (port 0 picks one).
    const std::string bound = engine ? engine->listen_addresses()[i] : std::string();
    const std::string what = bound.empty() ? find_source_kind(s.type)->describe(s) : bound;
    if (!what.empty()) out += " " + what;
    out += ")";
  }
  return out;
}

std::string describe_sinks(const PipelineConfig& cfg) {
  std::string out;
  for (const SinkConfig& s : cfg.sinks) {
    if (!out.empty()) out += ", ";
    out += s.name + " (" + find_sink_kind(s.type)->describe(s) + ")";
  }
  return out;
}

// What `run` would find out only when it starts: input files that cannot be
// read, output files whose directory cannot be written (or made).
std::vector<std::string> check_files(const PipelineConfig& cfg) {
  namespace fs = std::filesystem;
  std::vector<std::string> problems;
  for (const SourceConfig& s : cfg.sources) {
    if (s.type != SourceType::file) continue;
    for (const std::string& p : s.file.paths) {
      std::error_code ec;
      if (!fs::exists(p, ec)) {
        problems.push_back(fmt::format("source {}: {} does not exist", s.name, p));
      } else if (fs::is_directory(p, ec)) {
        problems.push_back(fmt::format("source {}: {} is a directory", s.name, p));
      } else if (::access(p.c_str(), R_OK) != 0) {
        problems.push_back(fmt::format("source {}: cannot read {}: {}", s.name, p, std::strerror(errno)));
      }
    }
  }
  auto writable = [&](const std::string& what, const std::string& file) {
    // The file itself when it exists, else the nearest directory that exists
    // (the missing ones are made at start).
    std::error_code ec;
    fs::path p = fs::absolute(file, ec);
    if (fs::exists(p, ec)) {
      if (::access(p.c_str(), W_OK) != 0) {
        problems.push_back(fmt::format("{}: cannot write {}: {}", what, file, std::strerror(errno)));
      }
      return;
    }
    for (p = p.parent_path(); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    }
    if (!fs::is_directory(p, ec)) {
      problems.push_back(fmt::format("{}: cannot make the directory of {}: {} is not a directory", what, file,
                                     p.string()));
    } else if (::access(p.c_str(), W_OK | X_OK) != 0) {
      problems.push_back(fmt::format("{}: cannot create {}: {}: {}", what, file, p.string(), std::strerror(errno)));
    }
  };
  for (const SinkConfig& s : cfg.sinks) {
    if (s.type == SinkType::file) writable("sink " + s.name, s.path);
  }
  if (!cfg.dead_letter.path.empty()) writable("[dead_letter]", cfg.dead_letter.path);
  return problems;
}

int cmd_check(const std::string& path) {
  ConfigResult cfg = load_pipeline_config(path);
  if (!cfg) return print_errors(cfg.error());
  if (const std::vector<std::string> problems = check_files(*cfg); !problems.empty()) {
    for (const std::string& p : problems) std::fprintf(stderr, "%s: %s\n", path.c_str(), p.c_str());
    std::fprintf(stderr, "%zu error%s\n", problems.size(), problems.size() == 1 ? "" : "s");
    return 2;
  }
  const uint32_t shards = effective_shards(*cfg);
  auto fixed = check_fixed_memory(*cfg, shards);
  if (!fixed) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), fixed.error().c_str());
    return 2;
  }
  std::printf("%s: ok: pipeline \"%s\", %zu source%s [%s], %zu aggregate%s, %zu sink%s [%s]; %u shard%s, "
              "fixed memory %s\n",
              path.c_str(), cfg->name.c_str(), cfg->sources.size(), cfg->sources.size() == 1 ? "" : "s",
              describe_sources(*cfg, nullptr).c_str(), cfg->aggregates.size(),
              cfg->aggregates.size() == 1 ? "" : "s", cfg->sinks.size(), cfg->sinks.size() == 1 ? "" : "s",
              describe_sinks(*cfg).c_str(), shards, shards == 1 ? "" : "s", fixed->describe().c_str());
  std::printf("  schema: %s\n", describe_schema(cfg->schema).c_str());
  return 0;
}

int cmd_run(const std::string& path, bool consume_only) {
  ConfigResult cfg = load_pipeline_config(path);
  if (!cfg) return print_errors(cfg.error());
  if (auto fixed = check_fixed_memory(*cfg, effective_shards(*cfg)); !fixed) {
    log_error("{}: {}", path, fixed.error());
    return 2;
  }
  PipelineConfig config = *cfg;
  Engine engine(std::move(*cfg));
  engine.set_consume_only(consume_only);
  if (!engine.handle_signals()) {
    log_error("cannot set up signal handling");
    return 1;
  }
  if (auto ok = engine.prepare(); !ok) {
    log_error("{}", ok.error());
    return 1;
  }
  log_info("fixed memory: up to {} (window state and TCP line buffers come on top)",
           engine.fixed_memory().describe());
  std::string cpus;
  for (int c : engine.cpus()) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
  log_info("pipeline \"{}\": starting{}; {} shard{} (cpus {}); sources: {}; sinks: {}; dead letters: {}",
           config.name, consume_only ? " in consume-only mode (no decoding, no results)" : "", engine.shards(), engine.shards() == 1 ? "" : "s", cpus,
           describe_sources(config, &engine), describe_sinks(config),
           config.dead_letter.path.empty() ? std::string("stderr") : config.dead_letter.path);
  if (!engine.metrics_address().empty()) {
    log_info("metrics: http://{}/metrics (Prometheus), http://{}/status (JSON)",
             engine.metrics_address(), engine.metrics_address());
  }
  int rc = engine.run();
  const EngineTotals& t = engine.totals();
  if (t.per_shard.empty()) return rc;  // the shards did not start (the error is logged)
  const ShardCounters& c = t.sum;
  std::string dl;
  for (size_t r = 0; r < kDeadLetterReasons; ++r) {
    dl += fmt::format("{}{}={}", r ? " " : "", to_string(DeadLetterReason(r)), c.dead_letters[r]);
  }
  log_info("pipeline \"{}\": {} shard{}, done in {:.3f} s: {} events in ({} lines, {:.1f} MB), {} rows out, "
           "{} windows; dead letters: {}; {:.0f} events/s",
           config.name, t.per_shard.size(), t.per_shard.size() == 1 ? "" : "s", t.seconds, c.events_in,
           c.lines_in, double(c.bytes_in) / 1e6, c.rows_out, c.windows_fired, dl,
           t.seconds > 0 ? double(c.events_in) / t.seconds : 0.0);
  for (const std::string& f : t.failures) log_error("{}", f);
  auto latency = [](const char* name, const LatencySummary& l) {
    if (l.count == 0) return fmt::format("{} n/a", name);
    return fmt::format("{} p50 {:.3f} p99 {:.3f} p99.9 {:.3f} max {:.3f}", name, l.p50_ms, l.p99_ms,
                       l.p999_ms, l.max_ms);
  };
  // Freshness is wall clock minus event time: for a replay of past events it
  // is the age of the data, not a latency. Say so rather than print years as ms.
  std::string freshness = latency("freshness", t.freshness);
  if (t.freshness.count > 0 && t.freshness.p50_ms > 3'600'000.0) {
    freshness += " (event time is more than an hour behind the wall clock: replayed data, not a latency)";
  }
  log_info("pipeline \"{}\": latency (ms): {}; {}; {}", config.name, latency("ingest", t.ingest),
           latency("emit", t.emit), freshness);
  uint64_t dead = 0;
  for (size_t r = 0; r < kDeadLetterReasons; ++r) dead += c.dead_letters[r];
  if (rc == 0 && config.dead_letter.max_ratio < 1.0 && dead > 0 &&
      double(dead) > config.dead_letter.max_ratio * double(std::max<uint64_t>(c.lines_in, 1))) {
    log_error("pipeline \"{}\": {} of {} records read were dead letters ({:.2f} %), above [dead_letter] "
              "max_ratio = {} ({}); exiting with status 3",
              config.name, dead, c.lines_in, 100.0 * double(dead) / double(std::max<uint64_t>(c.lines_in, 1)),
              config.dead_letter.max_ratio, dl);
    return 3;
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice: a thread-per-core streaming ETL engine (JSON events -> windowed aggregates)",
               "sluice"};
  app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION);
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));

  std::string run_path, check_path;
  bool consume_only = false;
  CLI::App* run = app.add_subcommand("run", "Run a pipeline until its input ends or SIGINT/SIGTERM");
  run->add_option("PIPELINE", run_path, "pipeline file (TOML)")->required();
  run->add_flag("--consume-only", consume_only,
                "Benchmark the transport: read and count events, but do not decode, aggregate or "
                "write them");
  CLI::App* check = app.add_subcommand("check", "Validate a pipeline file without running it");
  check->add_option("PIPELINE", check_path, "pipeline file (TOML)")->required();
  CLI11_PARSE(app, argc, argv);

  set_log_level(log_level == "debug" ? LogLevel::debug
                : log_level == "warn" ? LogLevel::warn
                : log_level == "error" ? LogLevel::error
                                       : LogLevel::info);
  if (*check) return cmd_check(check_path);
  return cmd_run(run_path, consume_only);
}
