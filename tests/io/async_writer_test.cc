// AsyncWriter on a real io_uring and real files, with the fault seam: short
// writes continue where they stopped, a failure at byte N leaves exactly the
// first N bytes and says so, and nothing is written after a failure.
#include "io/async_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace sluice {
namespace {

class TempFile {
 public:
  TempFile() {
    char tmpl[] = "/tmp/sluice-writer-XXXXXX";
    fd_ = mkstemp(tmpl);
    path_ = tmpl;
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  std::string content() const {
    std::ifstream in(path_, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  int fd_ = -1;
  std::string path_;
};

// Drives one writer on its own ring until nothing is in flight.
void run_until_idle(Ring& ring, AsyncWriter& w) {
  while (w.in_flight()) {
    ring.wait(1'000'000'000);
    ring.drain([&](const io_uring_cqe& cqe) { w.on_complete(ring, cqe.res); });
  }
}

std::string pattern(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = char('a' + rng() % 26);
  return s;
}

// Appends `text` through the writer in pieces of at most the buffer size,
// starting a write whenever the fill buffer is full.
void write_all(Ring& ring, AsyncWriter& w, std::string_view text) {
  while (!text.empty()) {
    size_t n = std::min(text.size(), w.fill().room());
    w.fill().append(text.substr(0, n));
    text.remove_prefix(n);
    run_until_idle(ring, w);
    w.start(ring);
    if (w.error() != 0) return;
  }
  run_until_idle(ring, w);
  w.start(ring);
  run_until_idle(ring, w);
}

TEST(AsyncWriterTest, ShortWritesContinueWhereTheyStopped) {
  Ring ring;
  ASSERT_TRUE(ring.init(8).has_value());
  TempFile f;
  AsyncWriter w(f.fd(), 4096, 1, AsyncWriter::offset_for(f.fd()));
  w.set_faults(WriteFaults{.write_bytes_max = 7});
  const std::string text = pattern(100'000, 1);
  write_all(ring, w, text);
  EXPECT_EQ(w.error(), 0);
  EXPECT_EQ(w.bytes_written(), text.size());
  EXPECT_EQ(f.content(), text);
  // 7 bytes a write: every buffer took many writes.
  EXPECT_GE(w.writes(), text.size() / 7);
}

TEST(AsyncWriterTest, FailureAtByteNLeavesExactlyTheFirstNBytes) {
  for (uint64_t n : {0ull, 1ull, 4095ull, 4096ull, 4097ull, 12345ull}) {
    Ring ring;
    ASSERT_TRUE(ring.init(8).has_value());
    TempFile f;
    AsyncWriter w(f.fd(), 4096, 1, AsyncWriter::offset_for(f.fd()));
    w.set_faults(WriteFaults{.write_bytes_max = 1000, .fail_at_byte = n, .fail_errno = ENOSPC});
    const std::string text = pattern(50'000, n);
    write_all(ring, w, text);
    EXPECT_EQ(w.error(), ENOSPC) << n;
    EXPECT_EQ(w.bytes_written(), n);
    EXPECT_EQ(f.content(), text.substr(0, n)) << n;
    // The failed buffer: what reached the file is its written prefix, the rest
    // is what did not; together they are one buffer of the text, in place.
    std::string_view done = w.failed_written(), lost = w.failed_unwritten();
    EXPECT_EQ(done.size() + lost.size(), 4096u) << n;
    EXPECT_EQ(text.substr(n - done.size(), done.size() + lost.size()),
              std::string(done) + std::string(lost))
        << n;
    // Nothing more is written after a failure.
    w.fill().clear();
    w.fill().append("more");
    EXPECT_FALSE(w.start(ring));
    EXPECT_EQ(f.content().size(), n);
  }
}

TEST(AsyncWriterTest, AppendingWritesAfterTheExistingBytes) {
  Ring ring;
  ASSERT_TRUE(ring.init(8).has_value());
  TempFile f;
  ASSERT_EQ(::write(f.fd(), "head\n", 5), 5);
  AsyncWriter w(f.fd(), 4096, 1, AsyncWriter::offset_for(f.fd()));
  w.set_faults(WriteFaults{.write_bytes_max = 3});
  write_all(ring, w, "tail\n");
  EXPECT_EQ(f.content(), "head\ntail\n");
}

TEST(AsyncWriterTest, OffsetForNonRegularFilesIsTheStreamPosition) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(AsyncWriter::offset_for(p[1]), -1);
  ::close(p[0]);
  ::close(p[1]);
  TempFile f;
  int afd = ::open(("/proc/self/fd/" + std::to_string(f.fd())).c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(afd, 0);
  EXPECT_EQ(AsyncWriter::offset_for(afd), -1);  // O_APPEND: the kernel appends
  ::close(afd);
}

}  // namespace
}  // namespace sluice
