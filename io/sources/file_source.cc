// The file source: NDJSON files, read in order as one stream, with two
// buffers (one being read by io_uring while the other is framed).
//
// split = true: every shard reads the lines that START in its own byte range
// of each file (range `shard` of `shards`), as a stream of its own, so parsing
// runs on every core. Bytes before the first line start are skipped; the line
// holding byte range_end - 1 is read to its end.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "core/log.h"
#include "io/source.h"
#include "operators/json_text.h"

namespace sluice {

namespace {

class FileSource;

struct FileStream : FramedStream {
  FileStream(Source& owner, uint32_t src, const SourceConfig& sc, int64_t delay)
      : FramedStream(owner, src, sc.line_bytes_max, delay, kTimeMin) {}

  // path:line; a range that does not start the file counts lines from its
  // first byte: path@byte:line.
  std::string_view origin(char* out, size_t cap) const override {
    const std::string& path = (*paths)[path_index];
    int n = range_begin == 0
                ? std::snprintf(out, cap, "%s:%llu", path.c_str(),
                                static_cast<unsigned long long>(framer.line_number()))
                : std::snprintf(out, cap, "%s@%llu:%llu", path.c_str(),
                                static_cast<unsigned long long>(range_begin),
                                static_cast<unsigned long long>(framer.line_number()));
    std::string_view v(out, size_t(std::min<int>(std::max(n, 0), int(cap) - 1)));
    return is_valid_utf8(v) ? v : std::string_view();
  }

  struct Buf {
    std::unique_ptr<char[]> data;
    uint32_t len = 0;
    uint32_t off = 0;
    uint64_t file_off = 0;  // where in the file data[0] came from
    int64_t recv_ns = 0;    // when the read completed
    enum class State : uint8_t { free, reading, ready } state = State::free;
    IndexedCompletion<FileSource> read_done;  // index: buffer
  };
  const std::vector<std::string>* paths = nullptr;
  size_t path_index = 0;
  int fd = -1;
  uint64_t offset = 0;
  uint32_t read_bytes = 0;
  Buf bufs[2];
  int read_next = 0;     // buffer the next read goes into
  int process_next = 0;  // buffer to process next (reads complete in order)
  bool path_eof = false;
  bool failed = false;
  uint32_t range = 0;
  uint32_t ranges = 1;
  uint64_t range_begin = 0;
  uint64_t range_end = UINT64_MAX;
  bool skipping = false;    // still before the first line of the range
  bool range_done = false;  // the last line of the range has been read
  bool open_path(size_t index, std::string& error);
};

// Opens paths[index] and positions the stream at its range.
bool FileStream::open_path(size_t i, std::string& error) {
  if (fd >= 0) ::close(fd);
  path_index = i;
  fd = ::open((*paths)[i].c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open " + (*paths)[i] + ": " + std::strerror(errno);
    return false;
  }
  path_eof = false;
  range_done = false;
  offset = 0;
  skipping = false;
  range_begin = 0;
  range_end = UINT64_MAX;
  if (ranges > 1) {
    struct stat st {};
    if (fstat(fd, &st) != 0) {
      error = "cannot stat " + (*paths)[i] + ": " + std::strerror(errno);
      return false;
    }
    uint64_t size = uint64_t(st.st_size);
    range_begin = size * range / ranges;
    range_end = size * (range + 1) / ranges;
    if (range_begin >= range_end) {
      path_eof = true;  // nothing starts in an empty range
    } else if (range_begin > 0) {
      // The line holding byte range_begin - 1 belongs to the previous range;
      // ours start after its newline (at range_begin itself if that byte is one).
      offset = range_begin - 1;
      skipping = true;
    }
  }
  return true;
}

class FileSource final : public Source {
 public:
  FileSource(SourceHost& host, uint32_t index) : host_(host), cfg_(host.config().sources[index]) {
    stream_ = std::make_unique<FileStream>(*this, index, cfg_, host.config().window.watermark_delay_ns);
  }
  ~FileSource() override {
    if (stream_->fd >= 0) ::close(stream_->fd);
  }

  // Allocates the read buffers and opens the first file.
  std::expected<void, std::string> init() {
    FileStream& f = *stream_;
    f.paths = &cfg_.file.paths;
    f.read_bytes = cfg_.file.read_bytes;
    if (cfg_.file.split) {
      f.range = host_.shard_id();
      f.ranges = host_.shards();
    }
    for (uint32_t bi = 0; bi < 2; ++bi) {
      auto& b = f.bufs[bi];
      b.read_done.bind<&FileSource::on_read_done>(this, bi);
      b.data.reset(new char[size_t(f.read_bytes) + kLinePadding]);
      std::memset(b.data.get() + f.read_bytes, 0, kLinePadding);
    }
    if (std::string error; !f.open_path(0, error)) return std::unexpected("source " + cfg_.name + ": " + error);
    return {};
  }

  void start() override {
    stream_->last_active_ns = host_.now();
    issue_read();
    host_.mark_ready(*stream_);  // an empty range issues no read: it must still be seen to finish
  }
  bool process(Stream&) override {
    const bool progress = process_file();
    if (stream_->stalled) host_.mark_ready(*stream_);
    return progress;
  }
  void stop() override { host_.mark_ready(*stream_); }
  bool done() const override { return stream_->done; }
  void for_each_stream(FunctionRef<void(Stream&, bool)> f) override { f(*stream_, false); }
  void positions(FunctionRef<void(const StreamPosition&)> f) const override {
    const FileStream& s = *stream_;
    // The next line not yet delivered: the file offset of what is still
    // buffered unread is behind the read offset.
    uint64_t unread = 0;
    for (const auto& b : s.bufs) {
      if (b.state == FileStream::Buf::State::ready) unread += b.len - b.off;
    }
    f(StreamPosition{(*s.paths)[s.path_index], s.offset - unread - s.framer.pending_bytes(),
                     s.framer.line_number(), s.wm.watermark()});
  }

 private:
  void issue_read();
  void on_read_done(uint32_t buf, const io_uring_cqe& cqe) { on_read(int(buf), cqe.res); }
  void on_read(int buf, int res);
  bool process_file();

  SourceHost& host_;
  const SourceConfig& cfg_;
  std::unique_ptr<FileStream> stream_;
};

void FileSource::issue_read() {
  FileStream& f = *stream_;
  if (f.path_eof || f.range_done || f.failed || host_.stopping()) return;
  FileStream::Buf& b = f.bufs[f.read_next];
  if (b.state != FileStream::Buf::State::free) return;
  // One read in flight per file keeps completions in order.
  if (f.bufs[f.read_next ^ 1].state == FileStream::Buf::State::reading) return;
  io_uring_sqe* sqe = host_.reactor().sqe();
  io_uring_prep_read(sqe, f.fd, b.data.get(), f.read_bytes, f.offset);
  io_uring_sqe_set_data64(sqe, b.read_done.user_data());
  b.state = FileStream::Buf::State::reading;
  b.file_off = f.offset;
}

void FileSource::on_read(int buf, int res) {
  FileStream& f = *stream_;
  FileStream::Buf& b = f.bufs[buf];
  b.state = FileStream::Buf::State::free;
  if (f.range_done) {
    host_.mark_ready(f);  // a read issued before the range's end was found: not ours
    return;
  }
  if (res == -EINTR || res == -EAGAIN) {
    issue_read();
    return;
  }
  if (res < 0) {
    log_error("source {}: read {}: {}", cfg_.name, (*f.paths)[f.path_index], std::strerror(-res));
    host_.fail();
    f.failed = true;
    host_.mark_ready(f);
    return;
  }
  if (res == 0) {
    f.path_eof = true;
    host_.mark_ready(f);
    return;
  }
  b.len = uint32_t(res);
  b.off = 0;
  f.offset += uint64_t(res);
  if (f.skipping) {
    const char* nl = static_cast<const char*>(std::memchr(b.data.get(), '\n', b.len));
    if (nl == nullptr) {
      issue_read();  // the previous range's line goes on
      return;
    }
    b.off = uint32_t(nl - b.data.get()) + 1;
    f.skipping = false;
    if (b.file_off + b.off >= f.range_end) {
      // The range lies inside one long line: no line starts in it.
      b.len = b.off;
      f.range_done = true;
    }
  }
  if (f.ranges > 1 && b.file_off + b.len >= f.range_end) {
    // This buffer reaches our end: the range stops after the newline that
    // ends the line holding byte range_end - 1.
    uint64_t from = f.range_end - 1 > b.file_off ? f.range_end - 1 - b.file_off : 0;
    from = std::max<uint64_t>(from, b.off);
    const char* nl = static_cast<const char*>(std::memchr(b.data.get() + from, '\n', b.len - from));
    if (nl != nullptr) {
      b.len = uint32_t(nl - b.data.get()) + 1;
      f.range_done = true;
    }
  }
  b.state = FileStream::Buf::State::ready;
  b.recv_ns = host_.now();
  host_.count_bytes(f, uint64_t(b.len - b.off));
  f.read_next ^= 1;
  host_.mark_ready(f);
  issue_read();
}

bool FileSource::process_file() {
  using State = FileStream::Buf::State;
  FileStream& f = *stream_;
  bool progress = false;
  for (;;) {
    FileStream::Buf& b = f.bufs[f.process_next];
    if (b.state != State::ready) break;
    size_t used = host_.feed(f, b.data.get() + b.off, b.len - b.off, b.recv_ns);
    if (used > 0) progress = true;
    if (used < b.len - b.off) {
      b.off += uint32_t(used);
      f.stalled = true;
      return progress;
    }
    b.state = State::free;
    f.process_next ^= 1;
    issue_read();
  }
  f.stalled = false;
  bool reading = f.bufs[0].state == State::reading || f.bufs[1].state == State::reading;
  if (reading) return progress;
  const bool stopping = host_.stopping();
  if (f.path_eof || f.range_done || f.failed || stopping) {
    // A file's last line needs no newline; on stop or failure a partial line is dropped.
    bool deliver = (f.path_eof || f.range_done) && !f.failed;
    if (!host_.finish(f, deliver)) {
      f.stalled = true;
      return progress;
    }
    if ((f.path_eof || f.range_done) && !f.failed && !stopping && f.path_index + 1 < f.paths->size()) {
      std::string error;
      if (!f.open_path(f.path_index + 1, error)) {
        log_error("source {}: {}", cfg_.name, error);
        host_.fail();
        f.failed = true;
      }
      f.framer.restart();
      issue_read();
      host_.mark_ready(f);
      return true;
    }
    f.done = true;
    return true;
  }
  return progress;
}

std::expected<std::unique_ptr<Source>, std::string> make_file_source(SourceHost& host, uint32_t index) {
  const SourceConfig& sc = host.config().sources[index];
  // One shard reads the file, or every shard its range of it.
  if (!sc.file.split && host.placed_shard(index) != host.shard_id()) return nullptr;
  auto s = std::make_unique<FileSource>(host, index);
  if (auto ok = s->init(); !ok) return std::unexpected(ok.error());
  return s;
}

constexpr std::string_view kFileKeys[] = {"path", "paths", "read_bytes", "split"};

void parse_file(TableReader& r, SourceConfig& source, ConfigContext& ctx) {
  const toml::node* path = r.find("path");
  const toml::node* paths = r.find("paths");
  if (path != nullptr && paths != nullptr) {
    r.error("paths", "give either \"path\" or \"paths\", not both");
  } else if (path == nullptr && paths == nullptr) {
    r.missing("path", "a file source needs \"path\" or \"paths\"");
  } else if (path != nullptr) {
    std::string one;
    if (r.string("path", one)) source.file.paths = {std::move(one)};
  } else {
    r.string_list("paths", source.file.paths, Need::required, /*single_string_ok=*/false);
  }
  for (const auto& p : source.file.paths) {
    ctx.input_path(p, fmt::format("source \"{}\"", source.name));
  }
  r.integer("read_bytes", source.file.read_bytes, limits::read_bytes_min, limits::read_bytes_max);
  r.boolean("split", source.file.split);
}

std::expected<SourceResource, std::string> check_readable(const SourceConfig& sc) {
  for (const std::string& path : sc.file.paths) {
    if (::access(path.c_str(), R_OK) != 0) return std::unexpected("cannot read " + path + ": " + std::strerror(errno));
  }
  return SourceResource{};
}

uint64_t file_fixed_bytes(const SourceConfig& sc, uint32_t shard, uint32_t, uint32_t placed) {
  if (!sc.file.split && shard != placed) return 0;
  return 2 * (uint64_t(sc.file.read_bytes) + kLinePadding);
}

}  // namespace

extern const SourceKind kFileSourceKind = {
    .config = {.name = "file", .keys = kFileKeys, .parse = parse_file, .record_metadata = false, .connection_buffers = false},
    .prepare = check_readable,
    .make = make_file_source,
    .fixed_bytes = file_fixed_bytes,
    .describe =
        [](const SourceConfig& s) {
          return s.file.paths[0] +
                 (s.file.paths.size() > 1 ? " +" + std::to_string(s.file.paths.size() - 1) + " more" : "");
        },
    .finite = [](const SourceConfig&) { return true; },
    .placed = true,
};

}  // namespace sluice
