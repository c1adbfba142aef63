// The shard's side of the cross-shard exchange: draining inbound event
// batches (and, on shard 0, result chunks for the gatherer), this shard's
// watermark marker, outbound batches, and firing the windows the pipeline
// watermark has passed (dataflow/progress.h holds the rules).
#include "dataflow/shard.h"

#include <algorithm>

#include "core/assert.h"
#include "dataflow/gatherer.h"
#include "dataflow/progress.h"
#include "operators/result_row.h"

namespace sluice {

// ---------------------------------------------------------------------------
// Cross-shard

bool Shard::drain_inbound() {
  bool any = false;
  Event e;
  for (uint32_t src = 0; src < n_; ++src) {
    if (src == id_) continue;
    SpscChannel<EventBatch>* ch = sh_.exchange.data[src * n_ + id_].get();
    bool released = false;
    for (;;) {
      // A batch interrupted by a full dead-letter output is resumed first.
      Inbound& in = inbound_[src];
      if (in.batch == nullptr) {
        in.batch = ch->try_pop();
        if (in.batch == nullptr) break;
        in.offset = 0;
        in.record = 0;
      }
      EventBatch* b = in.batch;
      bool stalled = false;
      const uint32_t first = in.record;
      for (; in.record < b->records; ++in.record) {
        size_t next = b->read(in.offset, e, nvals_);
        if (!apply_remote(e)) {
          stalled = true;
          break;
        }
        in.offset = next;
        any = true;
      }
      windows_->flush();
      if (in.record > first && b->recv_ns != kTimeMax) {
        // One clock read per batch; its events share the oldest receive time.
        uint64_t latency = uint64_t(std::max<int64_t>(monotonic_ns() - b->recv_ns, 0));
        m_.ingest_latency.record(latency, in.record - first);
      }
      if (stalled) break;
      in_marker_[src] = b->marker;
      ch->release(b);
      in.batch = nullptr;
      released = true;
    }
    if (released) {
      notify(src);
      any = true;
    }
  }
  // While the sinks are behind, the gatherer takes no more rows: the other
  // shards' result chunks run out and their firing pauses too.
  if (gatherer_ && !gatherer_->backlogged()) {
    for (uint32_t src = 1; src < n_; ++src) {
      SpscChannel<ResultChunk>* ch = sh_.exchange.results[src].get();
      bool released = false;
      while (ResultChunk* c = ch->try_pop()) {
        gatherer_->add_chunk(src, *c);
        ch->release(c);
        released = true;
      }
      if (released) {
        notify(src);
        any = true;
      }
    }
  }
  return any;
}

Marker Shard::local_marker() {
  MarkerRule rule(now(), cfg_.window.idle_timeout_ns, paused_, retired_);
  for (auto& src : sources_) {
    src->for_each_stream([&](Stream& s, bool backlogged) { rule.consider(s, backlogged); });
    if (src->holds_back()) rule.hold_back();
  }
  bool final = inputs_done_ && ready_.empty();
  for (EventBatch* b : out_) final &= b == nullptr || b->records == 0;
  const Marker m = rule.finish(final);
  retired_ = m.retired;
  return m;
}

// A batch for dst: one dst gave back, a new one from this shard's pool, or
// one another destination gave back. Null when dst already has
// kEventBatchesPerChannel queued (a slow receiver cannot take the whole
// pool) or every batch of the pool is in flight.
EventBatch* Shard::acquire_batch(uint32_t dst) {
  SpscChannel<EventBatch>* ch = sh_.exchange.data[id_ * n_ + dst].get();
  if (ch->depth() >= kEventBatchesPerChannel) return nullptr;
  if (EventBatch* b = ch->try_acquire()) return b;
  for (uint32_t i = 1; i < n_; ++i) {
    uint32_t other = (dst + i) % n_;
    if (other == id_) continue;
    if (EventBatch* b = sh_.exchange.data[id_ * n_ + other]->steal()) return b;
  }
  return nullptr;
}

bool Shard::push_batch(uint32_t dst) {
  EventBatch* b = out_[dst];
  b->marker = marker_;
  sh_.exchange.data[id_ * n_ + dst]->push(b);
  out_[dst] = nullptr;
  sent_marker_[dst] = marker_;
  m_.batches_sent.add();
  notify(dst);
  return true;
}

bool Shard::flush_outbound() {
  bool any = false;
  marker_ = local_marker();
  for (uint32_t dst = 0; dst < n_; ++dst) {
    if (dst == id_) continue;
    if (out_[dst] != nullptr && out_[dst]->records > 0) {
      any |= push_batch(dst);
      continue;
    }
    if (!same_marker(marker_, sent_marker_[dst])) {
      if (out_[dst] == nullptr) {
        out_[dst] = acquire_batch(dst);
        if (out_[dst] == nullptr) continue;  // retried next iteration
        out_[dst]->reset();
      }
      any |= push_batch(dst);
    }
  }
  return any;
}

bool Shard::fire_windows() {
  // The pipeline watermark, as this shard knows it (dataflow/progress.h).
  target_ = advance_watermark(target_, marker_, in_marker_, id_);
  // Publish before firing: sources that join from now on start at this floor.
  int64_t seen = sh_.control.fired_max.load(std::memory_order_relaxed);
  while (target_ > seen && !sh_.control.fired_max.compare_exchange_weak(seen, target_)) {
  }

  bool any = false;
  const size_t naggs = cfg_.aggregates.size();
  AggValue vals[limits::aggregates_max];  // the config loader refuses more
  SLUICE_ASSERT(naggs <= limits::aggregates_max);
  SpscChannel<ResultChunk>* ch = id_ == 0 ? nullptr : sh_.exchange.results[id_].get();
  windows_->flush();
  while (!windows_->empty() && window_kind_.end_of(windows_->oldest_start()) <= target_) {
    if (gatherer_ && gatherer_->backlogged()) return any;  // the sinks are behind: fire later
    int64_t start = windows_->oldest_start();
    const KeyTable& t = windows_->oldest();
    for (; fire_entry_ < t.size(); ++fire_entry_) {
      const Value* acc = t.acc(fire_entry_);
      for (size_t a = 0; a < naggs; ++a) vals[a] = sh_.layout->result(acc, a);
      std::string_view key = t.key(fire_entry_);
      // The states some sink writes itself (exported_states: usually none).
      std::string_view states[limits::aggregates_max];
      size_t states_bytes = 0;
      for (size_t j = 0; j < exported_.size(); ++j) {
        char* at = state_scratch_.data() + states_bytes;
        const size_t n = sh_.layout->serialize_state(acc, exported_[j], at);
        states[j] = {at, n};
        states_bytes += n;
      }
      if (gatherer_) {
        gatherer_->add_row(start, key, vals, now(), states);
        continue;
      }
      size_t bytes = result_row_bytes(key.size(), naggs, exported_.size(), states_bytes);
      // The config bounds exported states so that a row fits a chunk.
      SLUICE_ASSERT(bytes <= kResultChunkBytes);
      if (chunk_ != nullptr && chunk_->used + bytes > kResultChunkBytes) {
        chunk_->fired_through = reported_;  // rows of this window are still coming
        ch->push(chunk_);
        chunk_ = nullptr;
        notify(0);
      }
      if (chunk_ == nullptr) {
        chunk_ = ch->try_acquire();
        if (chunk_ == nullptr) return any;  // gatherer behind: resume this window later
        chunk_->reset();
      }
      if (chunk_->rows == 0) chunk_->fire_ns = now();
      chunk_->used += uint32_t(
          write_result_row(start, key, vals, naggs, chunk_->data + chunk_->used, states, exported_.size()));
      ++chunk_->rows;
    }
    windows_->pop_oldest();
    fire_entry_ = 0;
    m_.windows_fired.add();
    any = true;
  }
  bool final = target_ == kTimeMax && windows_->empty();
  bool caught_up = windows_->empty() || window_kind_.end_of(windows_->oldest_start()) > target_;
  if (caught_up && (target_ != reported_ || (final && !reported_final_))) {
    if (gatherer_) {
      gatherer_->set_progress(0, target_, final);
    } else {
      if (chunk_ == nullptr) {
        chunk_ = ch->try_acquire();
        if (chunk_ == nullptr) return any;
        chunk_->reset();
      }
      chunk_->fired_through = target_;
      chunk_->final = final;
      ch->push(chunk_);
      chunk_ = nullptr;
      notify(0);
    }
    reported_ = target_;
    reported_final_ = final;
    any = true;
  }
  return any;
}

}  // namespace sluice
