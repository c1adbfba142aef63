// The generator source: synthetic sales events (io/sources/sales_generator.h)
// made in 64 KiB chunks on the shard that reads them, as fast as possible or
// on an open-loop schedule of `rate` events per second.
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "core/timestamp.h"
#include "io/source.h"
#include "io/sources/sales_generator.h"

namespace sluice {

namespace {

// Generator lines produced per loop iteration when the rate is unlimited.
constexpr size_t kGeneratorChunkBytes = 64 * 1024;

struct GenStream : FramedStream {
  GenStream(Source& owner, uint32_t src, const SourceConfig& sc, int64_t delay, TimeFormat tf, int64_t start)
      : FramedStream(owner, src, sc.line_bytes_max, delay, kTimeMin), gen(sc.generator, tf, start) {}
  SalesGenerator gen;
  std::unique_ptr<char[]> buf;
  size_t len = 0;
  size_t off = 0;
  int64_t made_ns = 0;  // when buf was generated (its "receive" time)
  int64_t start_mono = 0;
  uint64_t rate = 0;
};

class GeneratorSource final : public Source {
 public:
  GeneratorSource(SourceHost& host, uint32_t index) : host_(host) {
    const SourceConfig& sc = host.config().sources[index];
    const int64_t start = sc.generator.start_now ? host.start_wall_ns() : sc.generator.start_ns;
    g_ = std::make_unique<GenStream>(*this, index, sc, host.config().window.watermark_delay_ns,
                                     host.config().schema.time_format, start);
    g_->buf.reset(new char[kGeneratorChunkBytes + kLinePadding]);
    std::memset(g_->buf.get(), 0, kGeneratorChunkBytes + kLinePadding);
    g_->rate = sc.generator.rate;
  }

  void start() override {
    g_->last_active_ns = host_.now();
    g_->start_mono = host_.now();
    host_.mark_ready(*g_);
  }
  bool process(Stream&) override {
    const bool progress = process_generator();
    // Stalled, or unlimited and not done: go on next iteration.
    if (g_->stalled || (!g_->done && !g_->in_ready && g_->rate == 0)) host_.mark_ready(*g_);
    return progress;
  }
  void stop() override { host_.mark_ready(*g_); }
  bool done() const override { return g_->done; }
  void for_each_stream(FunctionRef<void(Stream&, bool)> f) override { f(*g_, false); }
  void positions(FunctionRef<void(const StreamPosition&)> f) const override {
    f(StreamPosition{"generator", g_->gen.produced(), 0, g_->wm.watermark()});
  }

 private:
  bool process_generator();

  SourceHost& host_;
  std::unique_ptr<GenStream> g_;
};

bool GeneratorSource::process_generator() {
  GenStream& g = *g_;
  bool progress = false;
  if (g.off < g.len) {
    size_t used = host_.feed(g, g.buf.get() + g.off, g.len - g.off, g.made_ns);
    g.off += used;
    progress = used > 0;
    if (g.off < g.len) {
      g.stalled = true;
      return progress;
    }
  }
  g.stalled = false;
  if (g.gen.finished() || host_.stopping()) {
    g.done = true;
    return true;
  }
  const int64_t now = host_.now();
  uint64_t allowed = UINT64_MAX;
  if (g.rate > 0) {
    // Open loop: the schedule says how many events are due by now.
    __int128 due = __int128(now - g.start_mono) * g.rate / kNsPerS;
    if (uint64_t(due) <= g.gen.produced()) {
      int64_t next = g.start_mono + int64_t(__int128(g.gen.produced() + 1) * kNsPerS / g.rate);
      host_.reactor().wake_at(next);
      host_.mark_ready(g);  // look again on the next iteration (after the timer)
      return progress;
    }
    allowed = uint64_t(due) - g.gen.produced();
  }
  uint64_t events;
  g.len = g.gen.generate(g.buf.get(), kGeneratorChunkBytes, allowed, events);
  g.off = 0;
  g.made_ns = now;
  host_.count_bytes(g, g.len);
  host_.mark_ready(g);
  return true;
}

// 2024-01-01T00:00:00Z: a fixed default keeps generated data (and tests) reproducible.
constexpr int64_t kGeneratorStartDefaultNs = 1'704'067'200 * kNsPerS;

constexpr std::string_view kGeneratorKeys[] = {"count", "rate", "products", "customers",
                                               "start", "step", "jitter",   "seed"};

void parse_generator(TableReader& r, SourceConfig& source, ConfigContext&) {
  GeneratorSourceConfig& generator = source.generator;
  generator.start_ns = kGeneratorStartDefaultNs;
  r.integer("count", generator.count, 0);
  r.integer("rate", generator.rate, 0);
  r.integer("products", generator.products, 1);
  r.integer("customers", generator.customers, 1);
  if (const toml::node* start = r.find("start")) {
    const auto* text = start->as_string();
    int64_t ns = 0;
    if (text == nullptr) {
      // An unquoted TOML date-time is the likely slip here; the fix is to quote it.
      r.error("start",
              fmt::format("expected a string like \"2024-01-01T00:00:00Z\" or \"now\", "
                          "got {}{}",
                          type_name(*start), start->is_date_time() ? " (quote it)" : ""));
    } else if (text->get() == "now") {
      generator.start_now = true;
    } else if (auto e = parse_rfc3339(text->get(), ns); e != TimestampError::ok) {
      r.error("start", fmt::format("bad time \"{}\": {}; expected RFC 3339 like "
                                   "\"2024-01-01T00:00:00Z\" or \"now\"",
                                   text->get(), to_string(e)));
    } else {
      generator.start_ns = ns;
    }
  }
  r.duration("step", generator.step_ns, Zero::rejected);
  r.duration("jitter", generator.jitter_ns, Zero::allowed);
  r.integer("seed", generator.seed, 0);
}

std::expected<std::unique_ptr<Source>, std::string> make_generator_source(SourceHost& host, uint32_t index) {
  if (host.placed_shard(index) != host.shard_id()) return nullptr;
  return std::make_unique<GeneratorSource>(host, index);
}

}  // namespace

extern const SourceKind kGeneratorSourceKind = {
    .config = {.name = "generator", .keys = kGeneratorKeys, .parse = parse_generator, .record_metadata = false,
               .connection_buffers = false},
    .prepare = nullptr,
    .make = make_generator_source,
    .fixed_bytes = [](const SourceConfig&, uint32_t shard, uint32_t, uint32_t placed) -> uint64_t {
      return shard == placed ? kGeneratorChunkBytes + kLinePadding : 0;
    },
    .describe =
        [](const SourceConfig& s) {
          return (s.generator.count == 0 ? std::string("unlimited") : std::to_string(s.generator.count)) +
                 " events";
        },
    .finite = [](const SourceConfig& s) { return s.generator.count > 0; },  // count = 0: unlimited
    .placed = true,
};

}  // namespace sluice
