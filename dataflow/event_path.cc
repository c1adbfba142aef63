// The shard's event path: a line or record of a stream through decoding,
// window assignment, lateness and routing to the shard that owns its key;
// the dead letters on the way. (Shard's SourceHost side: feed, finish,
// on_record, dead_letter.) Per event: no allocation, no lock, no exception.
#include "dataflow/shard.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "core/assert.h"
#include "core/log.h"
#include "core/timestamp.h"
#include "operators/json_text.h"

namespace sluice {

namespace {
// A late event from another shard is rebuilt as JSON for its dead letter
// (its raw line stayed on the reading shard): key, time and numeric fields,
// pieces that do not fit left out (operators/dead_letter.h).
constexpr size_t kRebuiltEventBytes = 4096;
static_assert(kRebuiltEventBytes >= kRebuiltEventBytesMin);
}  // namespace

// ---------------------------------------------------------------------------
// The per-line path

size_t Shard::feed(FramedStream& s, const char* data, size_t len, int64_t recv_ns) {
  begin_chunk(recv_ns);
  const size_t used = s.framer.feed(data, len, [&](const Line& line) { return on_line(s, line); });
  end_chunk();
  return used;
}

bool Shard::finish(FramedStream& s, bool deliver_partial) {
  uint64_t partial = 0;
  if (!s.framer.finish(deliver_partial, [&](const Line& l) { return on_line(s, l); }, partial)) return false;
  m_.partial_line_bytes.add(partial);
  return true;
}

bool Shard::on_record(Stream& s, std::string_view value, const RecordMeta* meta) {
  return on_event(s, value, meta);
}

bool Shard::on_line(FramedStream& s, const Line& line) {
  if (line.too_long) {
    char detail[128];
    std::snprintf(detail, sizeof detail, "line of %llu bytes exceeds line_bytes_max (%u)",
                  static_cast<unsigned long long>(line.total_bytes), cfg_.sources[s.source].line_bytes_max);
    if (!dead_letter(&s, DeadLetterReason::line_too_long, detail, line.text, true, line.total_bytes)) {
      return false;
    }
    count_line(s);
    return true;
  }
  return on_event(s, line.text, nullptr);
}

bool Shard::on_event(Stream& s, std::string_view text, const RecordMeta* meta) {
  if (sh_.control.consume_only) {
    touch(s);
    count_line(s);
    m_.events_in.add();
    return true;
  }
  Event e;
  DecodeStatus st = decoder_->decode(text, e, meta);
  if (st == DecodeStatus::ok && future_limit_ns_ > 0 && e.time_ns > wall_now_ns_ &&
      e.time_ns - wall_now_ns_ > future_limit_ns_) {
    // Not an event of this pipeline's present: it neither counts nor moves the watermark.
    if (!future_dead_letter(s, e, text)) return false;
    count_line(s);
    return true;
  }
  if (st == DecodeStatus::ok) touch(s);  // an event: the stream is active (and back from idle)
  if (st != DecodeStatus::ok) {
    DeadLetterReason r =
        st == DecodeStatus::parse_error ? DeadLetterReason::parse_error : DeadLetterReason::schema_error;
    if (!dead_letter(&s, r, decoder_->detail(), text)) return false;
    count_line(s);
    return true;
  }
  int64_t starts[kWindowsPerEventMax];
  const size_t n = window_kind_.of(e.time_ns, starts);
  if (n == 0) {
    if (!dead_letter(&s, DeadLetterReason::schema_error,
                     "event time too close to the int64 nanosecond range for its window", text)) {
      return false;
    }
    count_line(s);
    return true;
  }
  // Late: every window it belongs to ended at or before its source's watermark.
  if (s.wm.is_late(window_kind_.end_of(starts[n - 1]))) {
    if (!late_dead_letter(&s, e, starts[n - 1], s.wm.watermark(), text, false)) return false;
    count_line(s);
    return true;
  }
  if (!route(s, e, starts, n, text)) return false;
  s.wm.observe(e.time_ns);
  count_line(s);
  return true;
}

// Applies e to those of its windows not yet fired (the pipelined apply is
// flushed by end_chunk() or after each inbound batch). False: every one of
// them has fired; nothing was applied.
[[gnu::always_inline]] inline bool Shard::apply_local(const Event& e, const int64_t* starts, size_t n) {
  bool applied = false;
  for (size_t i = 0; i < n; ++i) {
    if (window_kind_.end_of(starts[i]) <= target_) continue;
    windows_->apply_pipelined(starts[i], e);
    applied = true;
  }
  if (applied) m_.events_in.add();
  return applied;
}

// `raw` by reference: with the window starts, a string_view by value would be
// the seventh and eighth words of the call and go through the stack, and its
// 16-byte reload after two 8-byte stores stalls store forwarding (profiled:
// most of route()'s time); it is read only for a dead letter.
bool Shard::route(Stream& s, const Event& e, const int64_t* starts, size_t n, const std::string_view& raw) {
  // Lemire's multiply-shift: the high bits of the hash pick the shard.
  uint32_t owner = uint32_t((static_cast<unsigned __int128>(e.key_hash) * n_) >> 64);
  if (owner == id_) {
    if (!apply_local(e, starts, n)) {
      // Its windows have already been (or are being) written out.
      return late_dead_letter(&s, e, starts[n - 1], target_, raw, true);
    }
    ++chunk_applied_;
    return true;
  }
  EventBatch*& b = out_[owner];
  if (b != nullptr && !b->fits(e, nvals_)) push_batch(owner);
  if (b == nullptr) {
    b = acquire_batch(owner);
    if (b == nullptr) return false;  // every batch to that shard is in flight: back-pressure
    b->reset();
  }
  b->append(e, nvals_);
  b->recv_ns = std::min(b->recv_ns, chunk_recv_ns_);
  return true;
}

bool Shard::dead_letter(Stream* s, DeadLetterReason reason, std::string_view detail,
                        std::string_view raw, bool truncated, uint64_t raw_bytes) {
  char origin[512];
  std::string_view origin_view;
  std::string_view source_name = "";
  if (s != nullptr) {
    source_name = cfg_.sources[s->source].name;
    origin_view = s->origin(origin, sizeof origin);
  }
  if (dl_failed_) {
    // Nowhere left to put it: counted, and the pipeline is already stopping.
    m_.dead_letters[size_t(reason)].add();
    m_.dead_letters_lost.add();
    return true;
  }
  DeadLetter d{reason, detail, source_name, origin_view, raw, truncated, raw_bytes};
  size_t need = dead_letter_bytes_max(d);
  if (dl_->fill().room() < need) {
    dl_->start(ring_);
    if (dl_->fill().room() < need) return false;  // both buffers busy: back-pressure
  }
  dl_->fill().commit(encode_dead_letter(d, dl_->fill().tail()));
  m_.dead_letters[size_t(reason)].add();
  return true;
}

// The dead-letter output failed (a full disk, an I/O error): bad lines have
// nowhere to go, so the pipeline stops (exit 1) rather than run on losing
// them; result rows are still written. The records that did not reach the
// output are counted, and so is every dead letter from now on.
void Shard::dead_letter_output_failed() {
  dl_failed_ = true;
  auto records = [](std::string_view text) {
    return uint64_t(std::count(text.begin(), text.end(), '\n'));
  };
  m_.dead_letters_lost.add(records(dl_->failed_unwritten()) + records(dl_->fill().view()));
  dl_->fill().clear();
  log_error("dead-letter output: write failed: {} (after {} bytes); later dead letters are counted, "
            "not written; the pipeline stops and exits with status 1",
            std::strerror(dl_->error()), dl_->bytes_written());
  sh_.control.exit_code.store(1);
  sluice::request_stop(sh_);
}

bool Shard::future_dead_letter(Stream& s, const Event& e, std::string_view raw) {
  char t[kRfc3339BytesMax + 1], w[kRfc3339BytesMax + 1];
  t[format_rfc3339(e.time_ns, t)] = 0;
  w[format_rfc3339(wall_now_ns_, w)] = 0;
  char detail[200];
  std::snprintf(detail, sizeof detail,
                "event time %s is more than future_limit (%lld s) ahead of the wall clock (%s)", t,
                static_cast<long long>(future_limit_ns_ / kNsPerS), w);
  return dead_letter(&s, DeadLetterReason::future, detail, raw);
}

bool Shard::late_dead_letter(Stream* s, const Event& e, int64_t start, int64_t watermark,
                             std::string_view raw, bool already_written) {
  char ws[kRfc3339BytesMax + 1], we[kRfc3339BytesMax + 1], wm[kRfc3339BytesMax + 1];
  ws[format_rfc3339(start, ws)] = 0;
  we[format_rfc3339(window_kind_.end_of(start), we)] = 0;
  wm[format_rfc3339(watermark, wm)] = 0;
  char detail[256];
  if (already_written) {
    std::snprintf(detail, sizeof detail,
                  "window %s/%s was already written when the event arrived (pipeline watermark %s)", ws,
                  we, wm);
  } else {
    std::snprintf(detail, sizeof detail, "window %s/%s ended at or before the source watermark %s", ws,
                  we, wm);
  }
  (void)e;
  return dead_letter(s, DeadLetterReason::late, detail, raw);
}

// An event from another shard. When its windows fired before it arrived (a
// source that joined or woke up while they were being fired), it is a late
// dead letter; the raw line stayed on the reading shard, so the record is
// rebuilt from the decoded fields.
bool Shard::apply_remote(const Event& e) {
  int64_t starts[kWindowsPerEventMax];
  const size_t n = window_kind_.of(e.time_ns, starts);
  SLUICE_ASSERT(n > 0);  // the reading shard checked it
  if (apply_local(e, starts, n)) return true;
  const int64_t start = starts[n - 1];
  char raw[kRebuiltEventBytes];
  const size_t len = rebuild_event_json(cfg_.schema, e, raw, sizeof raw);
  // Refused when the dead-letter buffers are both busy: the caller stops
  // draining this batch and comes back to this record once a write completes.
  return late_dead_letter(nullptr, e, start, target_, std::string_view(raw, len), true);
}

}  // namespace sluice
