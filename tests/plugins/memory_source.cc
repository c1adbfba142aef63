// A test-only source: NDJSON lines a test puts in memory (set_memory_lines),
// read by one shard in chunks. It proves the source seam: one file,
// registered with one line (register_source_kind(&kTestMemorySourceKind)),
// driven by the shard like any source (readiness, framing, back-pressure,
// watermark, "inputs done").
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "io/source.h"
#include "tests/plugins/plugins.h"

namespace sluice::test_plugins {

namespace {

std::vector<char>& memory_bytes() {
  static std::vector<char> bytes;
  return bytes;
}

// Its own config keys, read by its own parser into its own options: the
// config seam (the loader knows nothing of them).
struct MemoryOptions {
  uint32_t chunk_bytes = 4096;  // small chunks, so a run takes many loop iterations
};
constexpr std::string_view kMemoryKeys[] = {"chunk_bytes"};

void parse_memory(TableReader& r, SourceConfig& source, ConfigContext&) {
  MemoryOptions o;
  r.integer("chunk_bytes", o.chunk_bytes, 64, 1 << 20);
  source.options = o;
}

uint32_t chunk_bytes_of(const SourceConfig& sc) {
  const auto* o = std::any_cast<MemoryOptions>(&sc.options);
  return o != nullptr ? o->chunk_bytes : MemoryOptions{}.chunk_bytes;
}

class MemorySource final : public Source {
 public:
  MemorySource(SourceHost& host, uint32_t index)
      : host_(host),
        chunk_bytes_(chunk_bytes_of(host.config().sources[index])),
        stream_(*this, index, host.config().sources[index].line_bytes_max, host.config().window.watermark_delay_ns,
                kTimeMin),
        bytes_(memory_bytes()) {
    bytes_.resize(bytes_.size() + kLinePadding, '\0');  // the framer reads past the end
  }
  void start() override {
    stream_.last_active_ns = host_.now();
    host_.mark_ready(stream_);
  }
  bool process(Stream&) override {
    const size_t end = bytes_.size() - kLinePadding;
    bool progress = false;
    while (off_ < end) {
      const size_t len = std::min<size_t>(chunk_bytes_, end - off_);
      const size_t used = host_.feed(stream_, bytes_.data() + off_, len, host_.now());
      off_ += used;
      progress |= used > 0;
      if (used < len) {
        stream_.stalled = true;
        host_.mark_ready(stream_);
        return progress;
      }
      if (off_ % (16 * chunk_bytes_) == 0) break;  // give the loop a turn now and then
    }
    stream_.stalled = false;
    if (off_ < end) {
      host_.mark_ready(stream_);
      return progress;
    }
    if (!host_.finish(stream_, true)) {
      stream_.stalled = true;
      host_.mark_ready(stream_);
      return progress;
    }
    stream_.done = true;
    return true;
  }
  void stop() override { host_.mark_ready(stream_); }
  bool done() const override { return stream_.done; }
  void for_each_stream(FunctionRef<void(Stream&, bool)> f) override { f(stream_, false); }
  void positions(FunctionRef<void(const StreamPosition&)> f) const override {
    f(StreamPosition{"memory", off_, stream_.framer.line_number(), stream_.wm.watermark()});
  }

 private:
  SourceHost& host_;
  uint32_t chunk_bytes_;
  FramedStream stream_;
  std::vector<char> bytes_;
  size_t off_ = 0;
};

}  // namespace

void set_memory_lines(const std::vector<std::string>& lines) {
  std::vector<char>& b = memory_bytes();
  b.clear();
  for (const std::string& l : lines) {
    b.insert(b.end(), l.begin(), l.end());
    b.push_back('\n');
  }
}

extern const SourceKind kTestMemorySourceKind = {
    .config = {.name = "test_memory", .keys = kMemoryKeys, .parse = parse_memory, .record_metadata = false,
               .connection_buffers = false},
    .prepare = nullptr,
    .make = [](SourceHost& host, uint32_t index) -> std::expected<std::unique_ptr<Source>, std::string> {
      if (host.placed_shard(index) != host.shard_id()) return nullptr;
      return std::make_unique<MemorySource>(host, index);
    },
    .fixed_bytes = [](const SourceConfig&, uint32_t, uint32_t, uint32_t) -> uint64_t { return 0; },
    .describe = [](const SourceConfig&) { return std::string("memory"); },
    .finite = [](const SourceConfig&) { return true; },
    .placed = true,
};

}  // namespace sluice::test_plugins
