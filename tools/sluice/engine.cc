#include "tools/sluice/engine.h"

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
#include "tools/sluice/shard.h"

namespace sluice {

Engine::Engine(PipelineConfig config) { shared_.config = std::move(config); }

Engine::~Engine() {
  shards_.clear();
  for (int fd : shared_.listen_fds) {
    if (fd >= 0) ::close(fd);
  }
  for (int fd : shared_.sink_fds) {
    if (fd > 2) ::close(fd);
  }
  if (shared_.dead_letter_fd > 2) ::close(shared_.dead_letter_fd);
  if (shared_.signal_fd >= 0) ::close(shared_.signal_fd);
}

namespace {

std::expected<int, std::string> open_output(const std::string& path, bool append, const char* what) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return std::unexpected(std::string(what) + ": cannot open " + path + ": " + std::strerror(errno));
  return fd;
}

}  // namespace

bool Engine::handle_signals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return false;
  signal(SIGPIPE, SIG_IGN);  // a closed stdout shows up as EPIPE on the write
  shared_.signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  return shared_.signal_fd >= 0;
}

std::expected<void, std::string> Engine::prepare() {
  EngineShared& sh = shared_;
  const PipelineConfig& cfg = sh.config;
  std::vector<int> cpus = allowed_cpus();
  sh.shards = cfg.shards == 0 ? uint32_t(cpus.size()) : cfg.shards;
  if (sh.shards > cpus.size()) {
    log_info("{} shards on {} CPUs: shards share CPUs", sh.shards, cpus.size());
  }
  for (uint32_t i = 0; i < sh.shards; ++i) sh.cpus.push_back(cpus[i % cpus.size()]);
  sh.layout = std::make_unique<AggLayout>(cfg.aggregates, cfg.schema);

  const uint32_t n = sh.shards;
  sh.data.resize(size_t(n) * n);
  for (uint32_t s = 0; s < n; ++s) {
    for (uint32_t d = 0; d < n; ++d) {
      if (s == d) continue;
      sh.data[s * n + d] = std::make_unique<SpscChannel<EventBatch>>(
          kEventBatchesPerChannel, [](size_t) { return std::make_unique<EventBatch>(); });
    }
  }
  sh.results.resize(n);
  for (uint32_t s = 1; s < n; ++s) {
    sh.results[s] = std::make_unique<SpscChannel<ResultChunk>>(
        kResultChunksPerShard, [](size_t) { return std::make_unique<ResultChunk>(); });
  }
  for (uint32_t s = 0; s < n; ++s) {
    sh.accepted.push_back(std::make_unique<moodycamel::ReaderWriterQueue<uint64_t>>(4096));
  }

  uint32_t next_shard = 0;
  for (const SourceConfig& src : cfg.sources) {
    sh.listen_fds.push_back(-1);
    sh.listen_addresses.emplace_back();
    sh.source_shard.push_back(0);
    if (src.type == SourceType::tcp) {
      auto l = open_listener(src.tcp.host, src.tcp.port, 1024);
      if (!l) return std::unexpected("source " + src.name + ": " + l.error());
      sh.listen_fds.back() = l->fd;
      sh.listen_addresses.back() = l->address;
    } else {
      // Finite sources are spread over shards so several files parse in parallel.
      sh.source_shard.back() = next_shard++ % n;
      if (src.type == SourceType::file) {
        for (const std::string& path : src.file.paths) {
          if (::access(path.c_str(), R_OK) != 0) {
            return std::unexpected("source " + src.name + ": cannot read " + path + ": " + std::strerror(errno));
          }
        }
      }
    }
  }
  for (const SinkConfig& sink : cfg.sinks) {
    if (sink.type == SinkType::stdout_sink) {
      sh.sink_fds.push_back(STDOUT_FILENO);
      continue;
    }
    auto fd = open_output(sink.path, sink.append, ("sink " + sink.name).c_str());
    if (!fd) return std::unexpected(fd.error());
    sh.sink_fds.push_back(*fd);
  }
  if (!cfg.dead_letter.path.empty()) {
    // Every shard appends whole records to this one file; O_APPEND keeps them intact.
    auto fd = open_output(cfg.dead_letter.path, cfg.dead_letter.append, "dead_letter");
    if (!fd) return std::unexpected(fd.error());
    ::close(*fd);
    int afd = ::open(cfg.dead_letter.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (afd < 0) return std::unexpected("dead_letter: cannot open " + cfg.dead_letter.path + ": " + std::strerror(errno));
    sh.dead_letter_fd = afd;
  } else {
    sh.dead_letter_fd = STDERR_FILENO;
  }
  return {};
}

void Engine::request_stop() { sluice::request_stop(shared_); }

int Engine::run() {
  EngineShared& sh = shared_;
  const uint32_t n = sh.shards;
  for (uint32_t i = 0; i < n; ++i) shards_.push_back(std::make_unique<Shard>(sh, i));
  for (auto& s : shards_) sh.shard_ptrs.push_back(s.get());
  sh.start_mono_ns = monotonic_ns();
  sh.start_wall_ns = wall_ns();

  std::vector<std::string> errors(n);
  std::latch ready(n);
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      // Each ring is created on its own thread: IORING_SETUP_SINGLE_ISSUER
      // binds it to the thread that creates it.
      errors[i] = shards_[i]->init();
      if (!errors[i].empty()) failed.store(true);
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
  totals_.seconds = double(monotonic_ns() - sh.start_mono_ns) / 1e9;
  for (auto& s : shards_) {
    const ShardCounters& c = s->counters();
    totals_.per_shard.push_back(c);
    ShardCounters& t = totals_.sum;
    t.events_in += c.events_in;
    t.lines_in += c.lines_in;
    t.bytes_in += c.bytes_in;
    for (size_t r = 0; r < kDeadLetterReasons; ++r) t.dead_letters[r] += c.dead_letters[r];
    t.partial_line_bytes += c.partial_line_bytes;
    t.connections += c.connections;
    t.connections_refused += c.connections_refused;
    t.windows_fired += c.windows_fired;
    t.rows_out += c.rows_out;
    t.batches_sent += c.batches_sent;
    t.backpressure_stalls += c.backpressure_stalls;
    t.ring_submissions += c.ring_submissions;
    t.ring_completions += c.ring_completions;
  }
  return sh.exit_code.load();
}

}  // namespace sluice
