// "No per-event heap allocation on the data path" (DESIGN.md), counted: the
// operators a shard runs per event, wired as the shard wires them, must not
// call operator new once warmed up.
//
// The path: SalesGenerator text in 64 KiB chunks -> LineFramer -> Decoder ->
// WindowSet::apply, with every other event (odd key hash) sent the way a
// remote event goes instead: appended to an EventBatch, read back from it
// when the batch is full or the chunk ends, then applied. Optionally windows
// fire at chunk boundaries (as the shard does after a loop iteration): each
// fired window's entries are read, finalised with AggLayout::result, written
// as result rows into a ResultChunk, and the table released with
// WindowSet::pop_oldest().
//
// A warm-up pass grows every table, arena and buffer; the measured pass then
// runs 100k more events over the same keys and must allocate nothing.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "operators/aggregate.h"
#include "operators/decoder.h"
#include "operators/framing.h"
#include "operators/result_row.h"
#include "operators/window_kind.h"
#include "operators/window_table.h"
#include "tests/alloc/counting_new.h"
#include "dataflow/batch.h"
#include "io/sources/sales_generator.h"

namespace sluice {
namespace {

using alloc_test::allocations;

constexpr uint32_t kProducts = 200;      // the fixed key set
constexpr uint32_t kCustomers = 5000;
constexpr uint64_t kEvents = 100'000;    // per pass
constexpr int64_t kStepNs = kNsPerMs;    // 100k events span 100 s of event time...
constexpr int64_t kWindowNs = 10 * kNsPerS;  // ...which is 10 windows
constexpr uint64_t kWindowsPerPass = uint64_t(kEvents * kStepNs / kWindowNs);
// 2024-03-28T09:00:00Z: a multiple of the window size, so a pass covers whole windows.
constexpr int64_t kStartNs = 1'711'616'400 * kNsPerS;
constexpr size_t kChunkBytes = 64 * 1024;  // the engine's generator chunk
constexpr uint32_t kLineBytesMax = 1u << 20;
constexpr size_t kValues = 3;

SchemaConfig sales_schema() {
  SchemaConfig s;
  s.key = {"product_id"};
  s.time_field = "timestamp";
  s.time_format = TimeFormat::rfc3339;
  s.fields = {{"customer_id", FieldType::string},
              {"quantity", FieldType::int64},
              {"revenue", FieldType::float64}};  // sorted by name
  return s;
}

std::vector<AggregateConfig> sales_aggregates() {
  return {{"total_quantity", AggFn::sum, "quantity", 1},
          {"total_revenue", AggFn::sum, "revenue", 2},
          {"events", AggFn::count, "", -1}};
}

GeneratorSourceConfig generator_config(int64_t start_ns) {
  GeneratorSourceConfig g;
  g.count = kEvents;
  g.products = kProducts;
  g.customers = kCustomers;
  g.start_ns = start_ns;
  g.step_ns = kStepNs;
  g.jitter_ns = 0;  // in order: a window is complete once a later one starts
  g.seed = 7;
  return g;
}

// One shard's operators, built (and so allocated) up front.
class OperatorPath {
 public:
  OperatorPath()
      : schema_(sales_schema()),
        aggregates_(sales_aggregates()),
        layout_(aggregates_, schema_),
        decoder_(schema_, kLineBytesMax),
        windows_(layout_),
        tumbling_(kWindowNs),
        framer_(kLineBytesMax),
        batch_(std::make_unique<EventBatch>()),
        results_(std::make_unique<ResultChunk>()),
        chunk_(new char[kChunkBytes + kLinePadding]()) {}

  struct PassStats {
    uint64_t events = 0;      // decoded and applied
    uint64_t rejected = 0;    // anything not applied (must stay 0)
    uint64_t via_batch = 0;   // went through the EventBatch
    uint64_t windows_fired = 0;
    uint64_t rows = 0;
  };

  // Runs one generator to its end through the path. With `fire`, windows
  // whose end the input has passed fire at chunk boundaries, and all open
  // windows fire at the end.
  PassStats run(SalesGenerator& gen, bool fire) {
    stats_ = {};
    fire_ = fire;
    while (!gen.finished()) {
      uint64_t lines = 0;
      size_t len = gen.generate(chunk_.get(), kChunkBytes, UINT64_MAX, lines);
      size_t used = framer_.feed(chunk_.get(), len, [&](const Line& line) { return on_line(line); });
      EXPECT_EQ(used, len);
      drain_batch();
      if (fire_) fire_through(max_time_ns_);
    }
    uint64_t partial = 0;
    framer_.finish(true, [&](const Line& line) { return on_line(line); }, partial);
    drain_batch();
    if (fire_) fire_through(kTimeMax);
    return stats_;
  }

  const WindowSet& windows() const { return windows_; }

 private:
  bool on_line(const Line& line) {
    Event e;
    if (line.too_long || decoder_.decode(line.text, e) != DecodeStatus::ok ||
        !tumbling_.window_fits(e.time_ns)) {
      ++stats_.rejected;
      return true;
    }
    if (e.time_ns > max_time_ns_) max_time_ns_ = e.time_ns;
    if (e.key_hash & 1) {
      // The remote route: into a batch, applied when the batch is drained.
      if (!batch_->fits(e, kValues)) drain_batch();
      batch_->append(e, kValues);
      ++stats_.via_batch;
      return true;
    }
    apply(e);
    return true;
  }

  void apply(const Event& e) {
    windows_.apply(tumbling_.window_start(e.time_ns), e);
    ++stats_.events;
  }

  void drain_batch() {
    Event e;
    size_t off = 0;
    for (uint32_t r = 0; r < batch_->records; ++r) {
      off = batch_->read(off, e, kValues);
      apply(e);
    }
    batch_->reset();
  }

  // Fires every window ending at or before `watermark`.
  void fire_through(int64_t watermark) {
    AggValue vals[8];
    const size_t naggs = aggregates_.size();
    while (!windows_.empty() && (watermark == kTimeMax || windows_.oldest_start() + kWindowNs <= watermark)) {
      const int64_t start = windows_.oldest_start();
      const KeyTable& t = windows_.oldest();
      for (size_t i = 0; i < t.size(); ++i) {
        for (size_t a = 0; a < naggs; ++a) vals[a] = layout_.result(t.acc(i), a);
        std::string_view key = t.key(i);
        if (results_->used + result_row_bytes(key.size(), naggs) > kResultChunkBytes) results_->reset();
        results_->used += uint32_t(write_result_row(start, key, vals, naggs, results_->data + results_->used));
        ++results_->rows;
        ++stats_.rows;
      }
      windows_.pop_oldest();
      ++stats_.windows_fired;
    }
  }

  SchemaConfig schema_;
  std::vector<AggregateConfig> aggregates_;
  AggLayout layout_;
  Decoder decoder_;
  WindowSet windows_;
  TumblingWindows tumbling_;
  LineFramer framer_;
  std::unique_ptr<EventBatch> batch_;
  std::unique_ptr<ResultChunk> results_;
  std::unique_ptr<char[]> chunk_;  // kChunkBytes + kLinePadding: the framer's slack
  PassStats stats_;
  bool fire_ = false;
  int64_t max_time_ns_ = kTimeMin;
};

// Open windows stay open: the second pass updates the same (window, key)
// entries the first one created.
TEST(OperatorsAlloc, SteadyStateOverSameKeysAndWindowsAllocatesNothing) {
  OperatorPath path;
  SalesGenerator warm(generator_config(kStartNs), TimeFormat::rfc3339, kStartNs);
  SalesGenerator measured(generator_config(kStartNs), TimeFormat::rfc3339, kStartNs);

  OperatorPath::PassStats w = path.run(warm, /*fire=*/false);
  ASSERT_EQ(w.events + w.rejected, kEvents);
  ASSERT_EQ(w.rejected, 0u);
  ASSERT_EQ(path.windows().open_windows(), kWindowsPerPass);
  ASSERT_EQ(path.windows().entries(), kWindowsPerPass * kProducts);

  uint64_t before = allocations();
  OperatorPath::PassStats m;
  {
    alloc_test::AllocTraceScope trace;
    m = path.run(measured, /*fire=*/false);
  }
  uint64_t allocated = allocations() - before;

  EXPECT_EQ(m.events, kEvents);
  EXPECT_EQ(m.rejected, 0u);
  EXPECT_GT(m.via_batch, kEvents / 4);  // both routes were exercised
  EXPECT_LT(m.via_batch, kEvents * 3 / 4);
  EXPECT_EQ(path.windows().open_windows(), kWindowsPerPass);
  EXPECT_EQ(path.windows().entries(), kWindowsPerPass * kProducts);
  EXPECT_EQ(allocated, 0u) << "operator new calls during " << kEvents
                           << " events after warm-up (rerun with SLUICE_ALLOC_TRACE=20 to see where)";
}

// Windows fire as the input passes them, and the measured pass opens ten new
// windows over the same key set: each must reuse a fired window's cleared
// table (window_table.h: "a fired window's table is cleared and kept").
TEST(OperatorsAlloc, FiredWindowTablesAreRecycledWithoutAllocation) {
  OperatorPath path;
  const int64_t second_start = kStartNs + int64_t(kEvents) * kStepNs;  // the next ten windows
  SalesGenerator warm(generator_config(kStartNs), TimeFormat::rfc3339, kStartNs);
  SalesGenerator measured(generator_config(second_start), TimeFormat::rfc3339, second_start);

  OperatorPath::PassStats w = path.run(warm, /*fire=*/true);
  ASSERT_EQ(w.events, kEvents);
  ASSERT_EQ(w.windows_fired, kWindowsPerPass);
  ASSERT_EQ(w.rows, kWindowsPerPass * kProducts);
  ASSERT_TRUE(path.windows().empty());

  uint64_t before = allocations();
  OperatorPath::PassStats m;
  {
    alloc_test::AllocTraceScope trace;
    m = path.run(measured, /*fire=*/true);
  }
  uint64_t allocated = allocations() - before;

  EXPECT_EQ(m.events, kEvents);
  EXPECT_EQ(m.rejected, 0u);
  EXPECT_EQ(m.windows_fired, kWindowsPerPass);  // new windows, opened and fired in this pass
  EXPECT_EQ(m.rows, kWindowsPerPass * kProducts);
  EXPECT_EQ(allocated, 0u) << "operator new calls while " << kWindowsPerPass
                           << " new windows opened, filled and fired after warm-up "
                              "(rerun with SLUICE_ALLOC_TRACE=20 to see where)";
}

// Optional fields and record headers: events that lack an optional field
// (absent or null), take a default (a string carried for a distinct count),
// or carry it in a header, decode and aggregate without allocating once the
// entries and their sketches exist.
TEST(OperatorsAlloc, OptionalFieldsAndHeadersAllocateNothing) {
  SchemaConfig schema;
  schema.key = {"product_id", "@kafka.header.source"};
  schema.time_field = "ts";
  schema.time_format = TimeFormat::epoch_ms;
  schema.fields = {{"@kafka.header.version", FieldType::string, FieldPresence::optional},
                   {"customer_id", FieldType::string, FieldPresence::defaulted, 0, 0, "anonymous"},
                   {"quantity", FieldType::int64},
                   {"revenue", FieldType::float64, FieldPresence::optional}};
  const std::vector<AggregateConfig> aggregates = {{"revenue", AggFn::sum, "revenue", 3},
                                                   {"avg_revenue", AggFn::avg, "revenue", 3},
                                                   {"with_version", AggFn::count, "@kafka.header.version", 0},
                                                   {"customers", AggFn{"approx_count_distinct"}, "customer_id", 1},
                                                   {"versions", AggFn{"approx_count_distinct"}, "@kafka.header.version", 0}};
  const AggLayout layout(aggregates, schema);
  Decoder decoder(schema, kLineBytesMax, layout.strings_read());
  WindowSet windows(layout);
  auto batch = std::make_unique<EventBatch>();
  std::vector<std::string> lines;
  for (int i = 0; i < 2000; ++i) {
    std::string l = "{\"product_id\":" + std::to_string(i % 50) + ",\"ts\":" + std::to_string(1000 + i) +
                    ",\"quantity\":2";
    if (i % 3 == 0) l += ",\"revenue\":1.5";
    if (i % 3 == 1) l += ",\"revenue\":null";
    if (i % 4 == 0) l += ",\"customer_id\":\"c" + std::to_string(i % 7) + "\"";
    l += "}";
    l.append(kLinePadding, ' ');
    lines.push_back(std::move(l));
  }
  uint64_t applied = 0;
  auto pass = [&] {
    for (size_t i = 0; i < lines.size(); ++i) {
      RecordMeta meta{int64_t(i), "", true};
      meta.headers_found = 0b01 | (i % 2 == 0 ? 0b10 : 0);  // source always, version every other record
      meta.headers[0] = i % 3 == 2 ? "web" : "pos-system";
      meta.headers[1] = "1.0";
      Event e;
      const std::string_view line(lines[i].data(), lines[i].size() - kLinePadding);
      ASSERT_EQ(decoder.decode(line, e, &meta), DecodeStatus::ok) << decoder.detail();
      // Through a batch, as a remote event goes.
      if (!batch->fits(e, kValues + 1)) FAIL() << "batch full";
      batch->reset();
      batch->append(e, kValues + 1);
      Event r;
      batch->read(0, r, kValues + 1);
      windows.apply_pipelined(0, r);
      ++applied;
    }
    windows.flush();
  };
  pass();
  const uint64_t before = allocations();
  {
    alloc_test::AllocTraceScope trace;
    pass();
  }
  EXPECT_EQ(allocations() - before, 0u) << "rerun with SLUICE_ALLOC_TRACE=20 to see where";
  EXPECT_EQ(applied, 2 * lines.size());
  EXPECT_EQ(windows.entries(), 100u);  // 50 products x 2 sources
}

}  // namespace
}  // namespace sluice
