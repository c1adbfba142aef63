// Event-time progress across shards, as pure functions: what a shard says
// about its sources (its marker), what it concludes from every shard's
// latest marker (the pipeline watermark it fires windows up to), and when
// the gatherer holds a window complete. No threads, sockets or clocks here:
// the shard and the gatherer feed them, tests drive them directly (every
// order of markers and idle transitions).
//
// The protocol (ARCHITECTURE.md "Watermarks across shards"): each shard
// sends its marker in-band after the events it sends; an owner fires a
// window once the pipeline watermark it computes has passed the window's
// end; the gatherer writes a window once every shard has fired through it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "core/clock.h"
#include "dataflow/batch.h"
#include "io/source.h"

namespace sluice {

inline bool same_marker(const Marker& a, const Marker& b) {
  return a.opinion == b.opinion && a.final == b.final && a.retired == b.retired &&
         (!a.opinion || a.watermark == b.watermark);
}

// Builds one shard's marker from its streams, once per loop iteration.
class MarkerRule {
 public:
  // retired: the largest watermark an idle or finished stream of this shard
  // has reached so far (never decreases; finish() returns it updated).
  MarkerRule(int64_t now_ns, int64_t idle_timeout_ns, bool paused, int64_t retired)
      : now_(now_ns), idle_ns_(idle_timeout_ns), paused_(paused) {
    m_.retired = retired;
  }

  // Stream s's say. An active stream holds the marker back to its
  // watermark. A stream silent for idle_timeout (no event; input that waits
  // for room, a stall, or a pause for the sinks is not silence) becomes
  // idle; idle and finished streams only raise `retired`.
  void consider(Stream& s, bool backlogged) {
    if (backlogged || s.stalled || paused_) s.last_active_ns = now_;
    if (!s.done && idle_ns_ > 0 && !s.idle && now_ - s.last_active_ns >= idle_ns_) s.idle = true;
    const int64_t w = s.wm.watermark();
    if (s.done || s.idle) {
      m_.retired = std::max(m_.retired, w);
      return;
    }
    if (!m_.opinion || w < m_.watermark) m_.watermark = w;
    m_.opinion = true;
  }
  // A source that cannot vouch for its streams yet (they may hold old events).
  void hold_back() {
    m_.opinion = true;
    m_.watermark = kTimeMin;
  }
  // final: every input of the shard is done and everything it read has been
  // sent; the shard will send no more events, ever.
  Marker finish(bool final) {
    if (final) {
      m_.final = true;
      m_.opinion = false;
    }
    return m_;
  }

 private:
  int64_t now_;
  int64_t idle_ns_;
  bool paused_;
  Marker m_;
};

// The pipeline watermark as shard `self` knows it, from its own marker and
// the latest marker from every other shard (`in[self]` is not read): the
// minimum over shards that have an active source; with none anywhere, the
// largest watermark an idle or finished source reached (whichever order
// sources went idle in, and their markers arrived in, the result is the
// same); +infinity once every shard is final. Never moves backwards from
// `current`.
inline int64_t advance_watermark(int64_t current, const Marker& own, std::span<const Marker> in, size_t self) {
  bool all_final = own.final;
  bool any_opinion = own.opinion;
  int64_t low = own.opinion ? own.watermark : kTimeMax;
  int64_t retired = own.retired;
  for (size_t s = 0; s < in.size(); ++s) {
    if (s == self) continue;
    const Marker& m = in[s];
    all_final &= m.final;
    retired = std::max(retired, m.retired);
    if (m.opinion) {
      any_opinion = true;
      low = std::min(low, m.watermark);
    }
  }
  if (all_final) return kTimeMax;
  return std::max(current, any_opinion ? low : retired);
}

// The gatherer's rule: every window ending at or before the returned time
// is complete (every shard has fired through it); kTimeMax once every shard
// is final.
inline int64_t complete_through(std::span<const int64_t> fired_through, const std::vector<bool>& final) {
  if (std::all_of(final.begin(), final.end(), [](bool f) { return f; })) return kTimeMax;
  return *std::min_element(fired_through.begin(), fired_through.end());
}

}  // namespace sluice
