#include "dataflow/gatherer.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"
#include "dataflow/progress.h"
#include "operators/result_row.h"
#include "dataflow/shard.h"

namespace sluice {

namespace {
// Written windows whose buffers are kept for reuse: enough for the few
// windows that complete together, without pinning memory of a burst forever.
constexpr size_t kSpareWindows = 8;
}  // namespace

Gatherer::Gatherer(EngineShared& sh, Reactor& reactor)
    : sh_(sh),
      reactor_(reactor),
      aggregates_(sh.config.aggregates.size()),
      states_(exported_states(sh.config).size()),
      window_kind_(sh.config.window),
      progress_(sh.shards, kTimeMin),
      final_(sh.shards, false),
      metrics_(*sh.telemetry.metrics[0]) {
  sinks_.reserve(sh.config.sinks.size());
}

std::expected<std::unique_ptr<Gatherer>, std::string> Gatherer::make(EngineShared& sh, Reactor& reactor) {
  std::unique_ptr<Gatherer> g(new Gatherer(sh, reactor));
  for (size_t i = 0; i < sh.config.sinks.size(); ++i) {
    const SinkConfig& sc = sh.config.sinks[i];
    const SinkKind* kind = find_sink_kind(sc.type);
    SLUICE_ASSERT(kind != nullptr);  // the config loader accepts registered types only
    auto sink = kind->make(*g, sc, sh.resources.sinks[i], *g->metrics_.sinks[i]);
    if (!sink) return std::unexpected(sink.error());
    if ((*sink)->wants_key_order()) g->sort_by_key_ = true;
    g->sinks_.push_back(Slot{&sc, std::move(*sink), 0, 0, 0, g->metrics_.sinks[i].get()});
  }
  return g;
}

Gatherer::~Gatherer() = default;

Gatherer::Window& Gatherer::window(int64_t start, int64_t fire_ns) {
  auto it = std::lower_bound(pending_.begin(), pending_.end(), start,
                             [](const Window& w, int64_t s) { return w.start < s; });
  if (it != pending_.end() && it->start == start) {
    it->fire_ns = std::min(it->fire_ns, fire_ns);
    return *it;
  }
  Window w;
  if (!spare_.empty()) {
    w = std::move(spare_.back());
    spare_.pop_back();
  }
  w.start = start;
  w.fire_ns = fire_ns;
  return *pending_.insert(it, std::move(w));
}

void Gatherer::add_row(int64_t window_start, std::string_view key, const AggValue* values,
                       int64_t fire_ns, const std::string_view* states) {
  Window& w = window(window_start, fire_ns);
  size_t off = w.rows.size();
  size_t states_bytes = 0;
  for (size_t i = 0; i < states_; ++i) states_bytes += states[i].size();
  w.rows.resize(off + result_row_bytes(key.size(), aggregates_, states_, states_bytes));
  write_result_row(window_start, key, values, aggregates_, w.rows.data() + off, states, states_);
  w.offsets.push_back(uint32_t(off));
}

void Gatherer::add_chunk(uint32_t from, const ResultChunk& chunk) {
  size_t off = 0;
  Window* w = nullptr;
  for (uint32_t r = 0; r < chunk.rows; ++r) {
    ResultRowView row = ResultRowView::parse(chunk.data + off, aggregates_, states_);
    if (w == nullptr || w->start != row.window_start) w = &window(row.window_start, chunk.fire_ns);
    size_t at = w->rows.size();
    w->rows.insert(w->rows.end(), chunk.data + off, chunk.data + off + row.bytes);
    w->offsets.push_back(uint32_t(at));
    off += row.bytes;
  }
  set_progress(from, chunk.fired_through, chunk.final);
}

void Gatherer::set_progress(uint32_t shard, int64_t fired_through, bool final) {
  if (fired_through > progress_[shard]) progress_[shard] = fired_through;
  if (final) final_[shard] = true;
}

bool Gatherer::complete_windows() {
  const int64_t through = complete_through(progress_, final_);
  bool any = false;
  while (!pending_.empty()) {
    if (window_kind_.end_of(pending_.front().start) > through) break;
    Window w = std::move(pending_.front());
    pending_.erase(pending_.begin());
    if (sort_by_key_) {
      const char* base = w.rows.data();
      std::sort(w.offsets.begin(), w.offsets.end(), [base](uint32_t a, uint32_t b) {
        ResultRowView ra = ResultRowView::parse(base + a, 0);
        ResultRowView rb = ResultRowView::parse(base + b, 0);
        return compare_keys(ra.key, rb.key) < 0;
      });
    }
    complete_bytes_ += w.rows.size();
    complete_.push_back(std::move(w));
    any = true;
  }
  return any;
}

uint64_t Gatherer::waiting_bytes(const Slot& s) const {
  return complete_bytes_ - s.consumed_bytes + s.sink->unwritten_bytes();
}

bool Gatherer::update_backlog() {
  bool over = false, under_half = true;
  for (const Slot& s : sinks_) {
    if (s.sink->failed()) continue;
    const uint64_t w = waiting_bytes(s);
    over |= w > s.cfg->pending_bytes_max;
    under_half &= w <= s.cfg->pending_bytes_max / 2;
  }
  if (!backlogged_ && over) {
    backlogged_ = true;
    ++backlog_episodes_;
  } else if (backlogged_ && under_half) {
    backlogged_ = false;
  }
  return backlogged_;
}

SinkWindow Gatherer::view(const Window& w) const {
  return SinkWindow{w.start, window_kind_.end_of(w.start), w.fire_ns, w.rows.data(), w.offsets.data(),
                    w.offsets.size(), aggregates_, states_};
}

bool Gatherer::feed(Slot& s, int64_t now) {
  bool any = false;
  while (s.window_seq < complete_base_ + complete_.size()) {
    const Window& w = complete_[size_t(s.window_seq - complete_base_)];
    const SinkWindow v = view(w);
    if (s.row < v.count) {
      const size_t took = s.sink->take(v, s.row, now);
      if (took > 0) any = true;
      s.row += took;
      if (s.row < v.count) return any;  // its buffers are full
    }
    s.sink->window_taken(v);
    s.consumed_bytes += w.rows.size();
    ++s.window_seq;
    s.row = 0;
  }
  return any;
}

bool Gatherer::step(int64_t now) {
  bool any = complete_windows();
  const bool all_final = std::all_of(final_.begin(), final_.end(), [](bool f) { return f; });
  for (Slot& s : sinks_) {
    for (int round = 0; round < 2; ++round) {
      const uint64_t before_seq = s.window_seq;
      const size_t before_row = s.row;
      if (feed(s, now)) any = true;
      const bool stuck = s.window_seq < complete_base_ + complete_.size();  // its buffers are full
      if (s.sink->flush(now, stuck, all_final && pending_.empty())) any = true;
      if (!stuck || (s.window_seq == before_seq && s.row == before_row && round > 0)) break;
    }
  }
  // Drop windows every sink has encoded.
  uint64_t min_seq = complete_base_ + complete_.size();
  for (const Slot& s : sinks_) min_seq = std::min(min_seq, s.window_seq);
  while (complete_base_ < min_seq) {
    Window& w = complete_.front();
    if (spare_.size() < kSpareWindows) {
      w.rows.clear();
      w.offsets.clear();
      spare_.push_back(std::move(w));
    }
    complete_.pop_front();
    ++complete_base_;
  }
  return any;
}

int64_t Gatherer::next_deadline() const {
  int64_t t = kTimeMax;
  for (const Slot& s : sinks_) t = std::min(t, s.sink->next_deadline());
  return t;
}

// Rows out = rows whose write completed on every sink.
void Gatherer::rows_written() {
  uint64_t all = UINT64_MAX;
  for (const Slot& s : sinks_) all = std::min(all, s.sink->rows_written());
  if (sinks_.empty()) all = 0;
  if (all > rows_out_) {
    metrics_.rows_out.add(all - rows_out_);
    rows_out_ = all;
  }
}

void Gatherer::window_written(int64_t fire_ns, int64_t window_end_ns) {
  if (fire_ns != kTimeMax) metrics_.emit_latency.record_interval_ns(fire_ns, monotonic_ns());
  metrics_.freshness.record_interval_ns(window_end_ns + sh_.config.window.watermark_delay_ns, wall_ns());
}

void Gatherer::sink_failed() {
  sh_.control.exit_code.store(1);
  request_stop(sh_);
}

std::vector<std::string> Gatherer::failures() const {
  std::vector<std::string> out;
  for (const Slot& s : sinks_) {
    if (s.sink->failed()) out.push_back(s.sink->failure());
  }
  return out;
}

std::string Gatherer::describe_pending() const {
  uint32_t not_final = 0;
  for (bool f : final_) not_final += !f;
  std::string out = fmt::format("{} shard(s) still firing, {} window(s) incomplete, {} complete but "
                                "not yet written",
                                not_final, pending_.size(), complete_.size());
  for (const Slot& s : sinks_) {
    const std::string pending = s.sink->describe_pending();
    if (!pending.empty()) out += "; " + pending;
  }
  return out;
}

bool Gatherer::done() const {
  if (!std::all_of(final_.begin(), final_.end(), [](bool f) { return f; })) return false;
  if (!pending_.empty() || !complete_.empty()) return false;
  for (const Slot& s : sinks_) {
    if (!s.sink->failed() && !s.sink->idle()) return false;
  }
  return true;
}

void Gatherer::visit_sinks(StateVisitor& v) const {
  for (size_t i = 0; i < sinks_.size(); ++i) v.sink(uint32_t(i), sinks_[i].sink->position());
}

void Gatherer::refresh_gauges() {
  for (Slot& s : sinks_) {
    s.sink->refresh_gauges();
    s.metrics->pending_bytes.set(int64_t(waiting_bytes(s)));
  }
}

}  // namespace sluice
