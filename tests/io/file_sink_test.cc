// The file sink through the Sink interface, driven without the engine: rows
// of windows taken and written on a real io_uring into a real file; its
// position; recover() truncates to a checkpointed length and refuses a file
// shorter than it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/config_model.h"
#include "core/reactor.h"
#include "io/shard_metrics.h"
#include "io/sink.h"
#include "operators/result_row.h"

namespace sluice {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A SinkHost that records what the sink reports.
class RecordingHost final : public SinkHost {
 public:
  explicit RecordingHost(const PipelineConfig& cfg) : cfg_(cfg) { EXPECT_TRUE(reactor_.init(64).has_value()); }
  Reactor& reactor() override { return reactor_; }
  const PipelineConfig& config() const override { return cfg_; }
  void window_written(int64_t, int64_t window_end_ns) override { windows_written.push_back(window_end_ns); }
  void rows_written() override { ++rows_reports; }
  void sink_failed() override { ++failures; }

  // Dispatches completions until the sink is idle.
  void drain(Sink& sink) {
    for (int i = 0; i < 1000 && !sink.idle(); ++i) {
      reactor_.step(false, [] { return false; }, 10'000'000);
    }
  }

  std::vector<int64_t> windows_written;
  int rows_reports = 0;
  int failures = 0;

 private:
  const PipelineConfig& cfg_;
  Reactor reactor_;
};

struct Rows {
  std::vector<char> bytes;
  std::vector<uint32_t> offsets;
  void add(int64_t start, int64_t key, int64_t count) {
    char k[9] = {'i'};
    std::memcpy(k + 1, &key, 8);
    AggValue v;
    v.kind = AggValue::Kind::int64;
    v.v.i = count;
    offsets.push_back(uint32_t(bytes.size()));
    bytes.resize(bytes.size() + result_row_bytes(9, 1));
    write_result_row(start, std::string_view(k, 9), &v, 1, bytes.data() + offsets.back());
  }
  SinkWindow window(int64_t start, int64_t size) const {
    return SinkWindow{start, start + size, 0, bytes.data(), offsets.data(), offsets.size(), 1};
  }
};

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sluice_file_sink_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    cfg_.schema.key = {"k"};
    cfg_.window.size_ns = 60'000'000'000;
    cfg_.aggregates = {{"n", AggFn::count, "", -1}};
    sink_.name = "out";
    sink_.type = SinkType::file;
    sink_.path = (dir_ / "rows.ndjson").string();
    sink_.format = OutputFormat::ndjson;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Sink> make(RecordingHost& host, SinkResource& res) {
    const SinkKind* kind = find_sink_kind(SinkType::file);
    EXPECT_NE(kind, nullptr);
    auto opened = kind->open(sink_);
    EXPECT_TRUE(opened.has_value());
    res = *opened;
    auto s = kind->make(host, sink_, res, metrics_);
    EXPECT_TRUE(s.has_value());
    return s ? std::move(*s) : nullptr;
  }

  std::filesystem::path dir_;
  PipelineConfig cfg_;
  SinkConfig sink_;
  SinkMetrics metrics_;
};

TEST_F(FileSinkTest, WritesTakenWindowsAndReportsThemWritten) {
  RecordingHost host(cfg_);
  SinkResource res;
  auto sink = make(host, res);
  Rows rows;
  for (int k = 0; k < 3; ++k) rows.add(0, k, k + 1);
  const SinkWindow w = rows.window(0, cfg_.window.size_ns);
  EXPECT_EQ(sink->take(w, 0, 0), 3u);
  sink->window_taken(w);
  EXPECT_TRUE(sink->flush(0, false, true));
  host.drain(*sink);
  EXPECT_EQ(sink->rows_written(), 3u);
  EXPECT_EQ(host.windows_written, std::vector<int64_t>{cfg_.window.size_ns});
  const std::string text = read_all(sink_.path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_NE(text.find("\"k\":2,\"n\":3}"), std::string::npos) << text;
  EXPECT_EQ(sink->position(), text.size());
  EXPECT_TRUE(sink->pre_commit(1).has_value());
  ::close(res.fd);
}

TEST_F(FileSinkTest, RecoverTruncatesToThePositionAndWritesAfterIt) {
  RecordingHost host(cfg_);
  SinkResource res;
  auto sink = make(host, res);
  Rows first, second;
  first.add(0, 1, 10);
  second.add(cfg_.window.size_ns, 2, 20);
  const SinkWindow w1 = first.window(0, cfg_.window.size_ns);
  sink->take(w1, 0, 0);
  sink->window_taken(w1);
  sink->flush(0, false, true);
  host.drain(*sink);
  const uint64_t checkpoint = sink->position();
  const SinkWindow w2 = second.window(cfg_.window.size_ns, cfg_.window.size_ns);
  sink->take(w2, 0, 0);
  sink->window_taken(w2);
  sink->flush(0, false, true);
  host.drain(*sink);
  const std::string both = read_all(sink_.path);
  ASSERT_GT(both.size(), checkpoint);

  // A restart from the checkpoint: the second window's bytes go, new ones follow.
  ASSERT_TRUE(sink->recover(checkpoint).has_value());
  EXPECT_EQ(read_all(sink_.path), both.substr(0, checkpoint));
  sink->take(w2, 0, 0);
  sink->window_taken(w2);
  sink->flush(0, false, true);
  host.drain(*sink);
  EXPECT_EQ(read_all(sink_.path), both);

  // A file shorter than the checkpointed length is an error, never filled.
  ASSERT_EQ(::ftruncate(res.fd, 5), 0);
  auto r = sink->recover(both.size());
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("fewer than the"), std::string::npos) << r.error();
  EXPECT_EQ(read_all(sink_.path).size(), 5u);
  ::close(res.fd);
}

}  // namespace
}  // namespace sluice
