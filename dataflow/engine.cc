#include "dataflow/engine.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <latch>
#include <thread>

#include "core/cpu.h"
#include "core/log.h"
#include "io/net.h"
#include "io/async_writer.h"
#include "io/sink.h"
#include "io/source.h"
#include "operators/framing.h"
#include "dataflow/shard.h"

namespace sluice {

Engine::Engine(PipelineConfig config) { shared_.config = std::move(config); }

namespace {

// Every metric of every shard, with its labels. Start-up only.
std::string register_metrics(EngineShared& sh) {
  const PipelineConfig& cfg = sh.config;
  MetricsRegistry& r = sh.telemetry.registry;
  std::string error;
  auto check = [&](MetricsError e, std::string_view name) {
    if (e != MetricsError::ok && error.empty()) {
      error = std::string("metric ") + std::string(name) + ": " + to_string(e);
    }
  };
  for (uint32_t i = 0; i < sh.shards; ++i) {
    ShardMetrics& m = *sh.telemetry.metrics[i];
    std::vector<MetricLabel> shard{{"shard", std::to_string(i)}};
    auto counter = [&](std::string_view name, std::string_view help, const Counter& c,
                       MetricUnit unit = MetricUnit::none) {
      check(r.add({name, help, unit, shard}, c), name);
    };
    auto gauge = [&](std::string_view name, std::string_view help, const Gauge& g,
                     MetricUnit unit = MetricUnit::none) {
      check(r.add({name, help, unit, shard}, g), name);
    };
#define SLUICE_COUNTER_REGISTER(field, name, help, unit) \
  if (i == 0 || std::string_view(#field) != "rows_out") counter(name, help, m.field, MetricUnit::unit);
    SLUICE_SHARD_COUNTERS(SLUICE_COUNTER_REGISTER)
#undef SLUICE_COUNTER_REGISTER
    for (size_t d = 0; d < kDeadLetterReasons; ++d) {
      std::vector<MetricLabel> labels = shard;
      labels.push_back({"reason", to_string(DeadLetterReason(d))});
      check(r.add({"dead_letters", "Input lines that did not become part of a result, by reason",
                   MetricUnit::none, labels},
                  m.dead_letters[d]),
            "dead_letters");
    }
    gauge("open_windows", "Event-time windows open on this shard", m.open_windows);
    gauge("window_entries", "(window, key) entries held on this shard", m.window_entries);
    check(r.add({"ingest_latency", "Bytes received to event applied to its window table",
                 MetricUnit::nanoseconds, shard},
                m.ingest_latency),
          "ingest_latency");
    if (i == 0) {
      check(r.add({"emit_latency", "Window fired to its rows written by the sink",
                   MetricUnit::nanoseconds, {}},
                  m.emit_latency),
            "emit_latency");
      check(r.add({"freshness", "Window end plus watermark_delay (wall clock) to its rows written",
                   MetricUnit::nanoseconds, {}},
                  m.freshness),
            "freshness");
      for (size_t k = 0; k < cfg.sinks.size(); ++k) {
        std::vector<MetricLabel> labels{{"sink", cfg.sinks[k].name}};
        check(r.add({"sink_rows", "Result rows written to this sink", MetricUnit::none, labels},
                    m.sinks[k]->rows_out),
              "sink_rows");
        check(r.add({"sink_output", "Bytes written to this sink", MetricUnit::bytes, labels},
                    m.sinks[k]->bytes_out),
              "sink_output");
        check(r.add({"sink_buffer", "Encoded result bytes waiting to be written",
                     MetricUnit::bytes, labels},
                    m.sinks[k]->buffer_bytes),
              "sink_buffer");
        check(r.add({"sink_pending", "Result bytes waiting for this sink (rows not yet encoded and "
                     "bytes not yet written; bounded by pending_bytes_max)",
                     MetricUnit::bytes, labels},
                    m.sinks[k]->pending_bytes),
              "sink_pending");
        check(r.add({"sink_writes", "Writes (a file) or pipelined command batches (Redis) started by this sink",
                     MetricUnit::none, labels},
                    m.sinks[k]->writes),
              "sink_writes");
        check(r.add({"sink_retries", "Batches this sink sent again after a transient error reply", MetricUnit::none,
                     labels},
                    m.sinks[k]->retries),
              "sink_retries");
        check(r.add({"sink_reconnects", "Connections of this sink lost or refused", MetricUnit::none, labels},
                    m.sinks[k]->reconnects),
              "sink_reconnects");
        check(r.add({"sink_errors", "Error replies and failed writes of this sink", MetricUnit::none, labels},
                    m.sinks[k]->errors),
              "sink_errors");
        check(r.add({"sink_write_latency", "A write or command batch of this sink, started to completed",
                     MetricUnit::nanoseconds, labels},
                    m.sinks[k]->write_latency),
              "sink_write_latency");
      }
    }
    for (size_t s = 0; s < cfg.sources.size(); ++s) {
      std::vector<MetricLabel> labels = shard;
      labels.push_back({"source", cfg.sources[s].name});
      SourceMetrics& sm = *m.sources[s];
      check(r.add({"source_lines", "Lines or records read from this source", MetricUnit::none,
                   labels},
                  sm.lines_in),
            "source_lines");
      check(r.add({"source_input", "Bytes read from this source", MetricUnit::bytes, labels},
                  sm.bytes_in),
            "source_input");
      check(r.add({"source_watermark", "Lowest watermark of this source's active streams here",
                   MetricUnit::nanoseconds, labels},
                  sm.watermark),
            "source_watermark");
      check(r.add({"source_watermark_lag", "Wall clock minus that watermark",
                   MetricUnit::nanoseconds, labels},
                  sm.watermark_lag),
            "source_watermark_lag");
    }
    for (uint32_t d = 0; d < sh.shards; ++d) {
      if (d == i) continue;
      std::vector<MetricLabel> labels = shard;
      labels.push_back({"to_shard", std::to_string(d)});
      check(r.add({"channel_depth", "Event batches queued to another shard", MetricUnit::none,
                   labels},
                  *m.channel_depth[d]),
            "channel_depth");
    }
  }
  return error;
}

}  // namespace

namespace {
std::string bytes_text(uint64_t b) {
  if (b >= (uint64_t(1) << 30)) return fmt::format("{:.1f} GiB", double(b) / double(1 << 30));
  return fmt::format("{:.1f} MiB", double(b) / double(1 << 20));
}
}  // namespace

std::string FixedMemory::describe() const {
  return fmt::format("{} ({} per shard)", bytes_text(total), bytes_text(per_shard));
}

FixedMemory estimate_fixed_memory(const PipelineConfig& cfg, uint32_t shards) {
  uint32_t line_max = limits::line_bytes_max_min;
  for (const SourceConfig& s : cfg.sources) line_max = std::max(line_max, s.line_bytes_max);
  // Every shard: receive buffers, its exchange batches, two dead-letter
  // buffers, the decoder's two simdjson parsers (about 16 bytes per byte of
  // the longest line, an estimate), and on shards != 0 the result chunks.
  const uint64_t recv = uint64_t(kRecvBuffers) * (kRecvBufferBytes + kLinePadding + 64);
  const uint64_t exchange = shards > 1 ? kEventBatchesPerShard * sizeof(EventBatch) : 0;
  const uint64_t chunks = kResultChunksPerShard * sizeof(ResultChunk);
  const uint64_t base = recv + exchange + 2 * uint64_t(dead_letter_buffer_bytes(line_max)) +
                        16 * uint64_t(line_max);
  std::vector<uint64_t> shard(shards, base);
  for (uint32_t i = 1; i < shards; ++i) shard[i] += chunks;
  // Sources: what each kind holds on each shard (file read buffers, the
  // generator's chunk, Kafka response buffers), placed as the engine places them.
  const std::vector<uint32_t> placed = place_sources(cfg, shards);
  for (size_t i = 0; i < cfg.sources.size(); ++i) {
    const SourceKind* kind = find_source_kind(cfg.sources[i].type);
    for (uint32_t k = 0; k < shards; ++k) shard[k] += kind->fixed_bytes(cfg.sources[i], k, shards, placed[i]);
  }
  // Sinks (shard 0): their buffers.
  for (const SinkConfig& s : cfg.sinks) shard[0] += find_sink_kind(s.type)->fixed_bytes(s);
  FixedMemory m;
  for (uint64_t v : shard) {
    m.total += v;
    m.per_shard = std::max(m.per_shard, v);
  }
  return m;
}

std::vector<uint32_t> place_sources(const PipelineConfig& cfg, uint32_t shards) {
  std::vector<uint32_t> placed;
  uint32_t next = 0;
  for (const SourceConfig& src : cfg.sources) {
    // Sources read by one shard are spread over shards so several files parse in parallel.
    placed.push_back(find_source_kind(src.type)->placed ? next++ % shards : 0);
  }
  return placed;
}

bool all_sources_finite(const PipelineConfig& cfg) {
  for (const SourceConfig& src : cfg.sources) {
    if (!find_source_kind(src.type)->finite(src)) return false;
  }
  return true;
}

uint32_t effective_shards(const PipelineConfig& cfg) {
  return cfg.shards != 0 ? cfg.shards : uint32_t(allowed_cpus().size());
}

uint64_t fixed_memory_budget(const PipelineConfig& cfg) {
  if (cfg.fixed_memory_bytes_max != 0) return cfg.fixed_memory_bytes_max;
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) / 2 : UINT64_MAX;
}

std::expected<FixedMemory, std::string> check_fixed_memory(const PipelineConfig& cfg, uint32_t shards) {
  FixedMemory m = estimate_fixed_memory(cfg, shards);
  const uint64_t budget = fixed_memory_budget(cfg);
  if (m.total > budget) {
    return std::unexpected(fmt::format(
        "{} shards need {} of fixed memory, more than the budget of {} ({}); use fewer shards, "
        "smaller line_bytes_max / buffer_bytes / max_bytes, or raise [pipeline] fixed_memory_bytes_max",
        shards, m.describe(), bytes_text(budget),
        cfg.fixed_memory_bytes_max != 0 ? "fixed_memory_bytes_max" : "half of this machine's memory"));
  }
  return m;
}

Engine::~Engine() {
  shards_.clear();
  for (const SourceResource& r : shared_.resources.sources) {
    if (r.fd >= 0) ::close(r.fd);
  }
  for (const SinkResource& r : shared_.resources.sinks) {
    if (r.owned && r.fd >= 0) ::close(r.fd);
  }
  if (shared_.resources.dead_letter_fd > 2) ::close(shared_.resources.dead_letter_fd);
  if (shared_.resources.signal_fd >= 0) ::close(shared_.resources.signal_fd);
  if (shared_.resources.metrics_fd >= 0) ::close(shared_.resources.metrics_fd);
}

bool Engine::handle_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return false;
  signal(SIGPIPE, SIG_IGN);  // a closed stdout shows up as EPIPE on the write
  signal(SIGXFSZ, SIG_IGN);  // a file size limit (ulimit -f) shows up as EFBIG on the write
  shared_.resources.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  return shared_.resources.signal_fd >= 0;
}

std::expected<void, std::string> Engine::prepare() {
  EngineShared& sh = shared_;
  const PipelineConfig& cfg = sh.config;
  std::vector<int> cpus = allowed_cpus();
  sh.shards = cfg.shards == 0 ? uint32_t(cpus.size()) : cfg.shards;
  auto fixed = check_fixed_memory(cfg, sh.shards);
  if (!fixed) return std::unexpected(fixed.error());
  sh.fixed_memory = *fixed;
  if (sh.shards > cpus.size()) {
    log_info("{} shards on {} CPUs: shards share CPUs", sh.shards, cpus.size());
  }
  for (uint32_t i = 0; i < sh.shards; ++i) sh.cpus.push_back(cpus[i % cpus.size()]);
  sh.layout = std::make_unique<AggLayout>(cfg.aggregates, cfg.schema);
  sh.resources.connection_buffers = std::make_unique<MemoryBudget>(cfg.connection_buffer_bytes_max);

  const uint32_t n = sh.shards;
  sh.exchange.data.resize(size_t(n) * n);
  for (uint32_t s = 0; s < n; ++s) {
    sh.exchange.pools.push_back(std::make_unique<ItemPool<EventBatch>>(kEventBatchesPerShard));
    for (uint32_t d = 0; d < n; ++d) {
      if (s == d) continue;
      sh.exchange.data[s * n + d] = std::make_unique<SpscChannel<EventBatch>>(sh.exchange.pools[s].get());
    }
  }
  sh.exchange.results.resize(n);
  for (uint32_t s = 1; s < n; ++s) {
    sh.exchange.results[s] = std::make_unique<SpscChannel<ResultChunk>>(
        kResultChunksPerShard, [](size_t) { return std::make_unique_for_overwrite<ResultChunk>(); });
  }
  for (uint32_t s = 0; s < n; ++s) {
    sh.exchange.accepted.push_back(std::make_unique<moodycamel::ReaderWriterQueue<uint64_t>>(4096));
  }

  for (uint32_t i = 0; i < n; ++i) {
    auto m = std::make_unique<ShardMetrics>();
    for (size_t s = 0; s < cfg.sources.size(); ++s) m->sources.push_back(std::make_unique<SourceMetrics>());
    for (size_t s = 0; s < cfg.sinks.size(); ++s) m->sinks.push_back(std::make_unique<SinkMetrics>());
    for (uint32_t d = 0; d < n; ++d) m->channel_depth.push_back(std::make_unique<Gauge>());
    sh.telemetry.metrics.push_back(std::move(m));
  }
  if (std::string error = register_metrics(sh); !error.empty()) return std::unexpected(error);
  if (cfg.metrics.enabled) {
    auto l = open_listener(cfg.metrics.host, cfg.metrics.port, 64);
    if (!l) return std::unexpected("[metrics]: " + l.error());
    sh.resources.metrics_fd = l->fd;
    sh.resources.metrics_address = l->address;
  }

  sh.resources.source_shard = place_sources(cfg, n);
  for (const SourceConfig& src : cfg.sources) {
    const SourceKind* kind = find_source_kind(src.type);
    SourceResource res;
    if (kind->prepare != nullptr) {
      auto prepared = kind->prepare(src);
      if (!prepared) return std::unexpected("source " + src.name + ": " + prepared.error());
      res = std::move(*prepared);
    }
    sh.resources.listen_addresses.push_back(res.address);
    sh.resources.sources.push_back(std::move(res));
  }
  for (const SinkConfig& sink : cfg.sinks) {
    auto res = find_sink_kind(sink.type)->open(sink);
    if (!res) return std::unexpected(res.error());
    sh.resources.sinks.push_back(*res);
  }
  if (!cfg.dead_letter.path.empty()) {
    // Every shard appends whole records to this one file; O_APPEND keeps them intact.
    auto fd = open_output_file(cfg.dead_letter.path, cfg.dead_letter.append, "dead_letter");
    if (!fd) return std::unexpected(fd.error());
    ::close(*fd);
    int afd = ::open(cfg.dead_letter.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (afd < 0) return std::unexpected("dead_letter: cannot open " + cfg.dead_letter.path + ": " + std::strerror(errno));
    sh.resources.dead_letter_fd = afd;
  } else {
    sh.resources.dead_letter_fd = STDERR_FILENO;
  }
  return {};
}

void Engine::request_stop() { sluice::request_stop(shared_); }

int Engine::run() {
  EngineShared& sh = shared_;
  const uint32_t n = sh.shards;
  for (uint32_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>(sh, i));
  for (auto& s : shards_) sh.shard_ptrs.push_back(s.get());
  sh.control.start_mono_ns = monotonic_ns();
  sh.control.start_wall_ns = wall_ns();

  std::vector<std::string> errors(n);
  std::latch ready(n);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      // Each ring is created on its own thread: IORING_SETUP_SINGLE_ISSUER
      // binds it to the thread that creates it.
      if (auto ok = shards_[i]->init(); !ok) {
        errors[i] = ok.error();
        failed.store(true);
      }
      ready.arrive_and_wait();
      if (!failed.load()) shards_[i]->run();
    });
  }
  for (auto& t : threads) t.join();
  for (uint32_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      log_error("shard {}: {}", i, errors[i]);
      return 1;
    }
  }
  totals_.seconds = double(monotonic_ns() - sh.control.start_mono_ns) / 1e9;
  HistogramSnapshot ingest, emit, fresh;
  for (auto& m : sh.telemetry.metrics) {
    m->ingest_latency.merge_into(ingest);
    m->emit_latency.merge_into(emit);
    m->freshness.merge_into(fresh);
  }
  auto summarize = [](const HistogramSnapshot& h) {
    LatencySummary l;
    l.count = h.count();
    if (l.count > 0) {
      l.p50_ms = double(h.value_at_percentile(50)) / 1e6;
      l.p99_ms = double(h.value_at_percentile(99)) / 1e6;
      l.p999_ms = double(h.value_at_percentile(99.9)) / 1e6;
      l.max_ms = double(h.max()) / 1e6;
    }
    return l;
  };
  totals_.ingest = summarize(ingest);
  totals_.emit = summarize(emit);
  totals_.freshness = summarize(fresh);
  for (auto& s : shards_) {
    for (std::string& f : s->failures()) totals_.failures.push_back(std::move(f));
    const ShardCounters c = snapshot(s->shard_metrics());
    totals_.per_shard.push_back(c);
    totals_.sum += c;
  }
  return sh.control.exit_code.load();
}

}  // namespace sluice
