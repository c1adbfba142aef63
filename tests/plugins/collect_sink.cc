// A test-only sink: keeps every row it is given in memory (collected_rows),
// as window bounds, key bytes and aggregate values. It proves the sink seam:
// one file, registered with one line (register_sink_kind(&kTestCollectSinkKind)),
// fed by the gatherer in window order like any sink.
#include <memory>
#include <string>
#include <vector>

#include "io/sink.h"
#include "tests/plugins/plugins.h"

namespace sluice::test_plugins {

namespace {

std::vector<CollectedRow>& rows() {
  static std::vector<CollectedRow> r;
  return r;
}

class CollectSink final : public Sink {
 public:
  explicit CollectSink(SinkHost& host) : host_(host) {}
  size_t take(const SinkWindow& w, size_t from, int64_t) override {
    for (size_t i = from; i < w.count; ++i) {
      const ResultRowView v = w.row(i);
      CollectedRow r{w.start, w.end, std::string(v.key), {}};
      for (size_t a = 0; a < w.aggregates; ++a) r.values.push_back(v.agg(a));
      rows().push_back(std::move(r));
    }
    taken_ += w.count - from;
    return w.count - from;
  }
  void window_taken(const SinkWindow& w) override {
    host_.window_written(w.fire_ns, w.end);
    written_ = taken_;
    host_.rows_written();
  }
  bool flush(int64_t, bool, bool) override { return false; }
  uint64_t unwritten_bytes() const override { return 0; }
  bool idle() const override { return true; }
  bool failed() const override { return false; }
  uint64_t rows_written() const override { return written_; }
  std::string failure() const override { return {}; }
  std::string describe_pending() const override { return {}; }
  uint64_t position() const override { return written_; }
  std::expected<void, std::string> pre_commit(uint64_t) override { return {}; }
  std::expected<void, std::string> recover(uint64_t position) override {
    rows().resize(std::min<size_t>(rows().size(), position));
    return {};
  }

 private:
  SinkHost& host_;
  uint64_t taken_ = 0;
  uint64_t written_ = 0;
};

}  // namespace

std::vector<CollectedRow> collected_rows() { return rows(); }
void clear_collected_rows() { rows().clear(); }

extern const SinkKind kTestCollectSinkKind = {
    .config = {.name = "test_collect", .keys = {}, .parse = [](TableReader&, SinkConfig&, ConfigContext&) {}},
    .open = [](const SinkConfig&) -> std::expected<SinkResource, std::string> { return SinkResource{}; },
    .make = [](SinkHost& host, const SinkConfig&, SinkResource,
               SinkMetrics&) -> std::expected<std::unique_ptr<Sink>, std::string> {
      return std::make_unique<CollectSink>(host);
    },
    .fixed_bytes = [](const SinkConfig&) -> uint64_t { return 0; },
    .describe = [](const SinkConfig&) { return std::string("memory"); },
};

}  // namespace sluice::test_plugins
