#include "operators/framing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

// The framer is checked against a reference splitter written here from the
// header's contract:
//   - lines end at '\n'; one '\r' right before it is part of the terminator;
//   - empty lines are skipped but still counted by line_number();
//   - the limit applies to the bytes before the '\n' (the framer has to hold
//     them); a line over it is one too_long line whose text is the first
//     min(kTooLongPrefixBytes, line_bytes_max) bytes of the line and whose
//     total_bytes is its length;
//   - an unterminated last line is delivered by finish(true) or reported through
//     partial_bytes by finish(false).
// Then every way of cutting the input into chunks must deliver the same lines.

namespace sluice {
namespace {

struct Delivered {
  std::string text;
  bool too_long = false;
  uint64_t total_bytes = 0;
  uint64_t line_number = 0;
  bool operator==(const Delivered&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Delivered& d) {
  std::string shown = d.text.size() > 40 ? d.text.substr(0, 40) + "...(" + std::to_string(d.text.size()) + " bytes)"
                                         : d.text;
  return os << "{line " << d.line_number << ", \"" << shown << "\", too_long=" << d.too_long
            << ", total=" << d.total_bytes << "}";
}

struct RefLine {
  Delivered d;
  size_t start;  // offset of the line's first byte in the stream
};

struct Expected {
  std::vector<RefLine> lines;
  uint64_t partial_bytes = 0;
};

Expected reference_split(std::string_view in, uint32_t max, bool deliver_partial) {
  Expected out;
  size_t pos = 0;
  uint64_t line_no = 1;
  while (pos < in.size()) {
    size_t nl = in.find('\n', pos);
    bool terminated = nl != std::string_view::npos;
    std::string_view seg = in.substr(pos, (terminated ? nl : in.size()) - pos);
    std::string_view content = seg;
    if (!content.empty() && content.back() == '\r') content.remove_suffix(1);
    bool too_long = seg.size() > max;
    if (!terminated && !deliver_partial) {
      out.partial_bytes = seg.size();
    } else if (too_long) {
      size_t prefix = std::min<size_t>(kTooLongPrefixBytes, max);
      Delivered d{std::string(content.substr(0, prefix)), true, seg.size(), line_no};
      out.lines.push_back({d, pos});
    } else if (!content.empty()) {
      out.lines.push_back({Delivered{std::string(content), false, content.size(), line_no}, pos});
    }
    if (!terminated) break;
    pos = nl + 1;
    ++line_no;
  }
  return out;
}

// Bytes of a line: varied printable text (no '\n'), with a '\r' now and then
// in the middle (only a '\r' right before '\n' is special).
std::string filler(size_t n, int seed) {
  std::string s(n, ' ');
  for (size_t i = 0; i < n; ++i) s[i] = char('!' + (i * 7 + size_t(seed) * 13) % 90);
  if (n > 10) s[n / 2] = '\r';
  return s;
}

// Decides whether to refuse a line; called for every offer.
using Policy = std::function<bool(uint64_t offer_index, const Delivered& d)>;

struct Actual {
  std::vector<Delivered> lines;
  uint64_t partial_bytes = 0;
  std::string problem;  // first contract violation seen while driving the framer
};

// Feeds `in` cut at `cuts` (ascending positions inside the input). Each chunk
// is copied into a scratch buffer followed by kLinePadding bytes of '\n' (so
// reading past the chunk shows) and the buffer is scribbled over after the
// chunk is consumed (so holding on to chunk memory shows).
Actual drive(std::string_view in, const std::vector<size_t>& cuts, uint32_t max, bool deliver_partial,
             const Policy& refuse = nullptr, const Expected* expected = nullptr) {
  Actual out;
  LineFramer f(max);
  std::vector<char> buf(in.size() + kLinePadding);
  uint64_t offers = 0;
  std::string refusal;  // description of the refused line, if the last offer was refused
  bool refused = false;
  auto on_line = [&](const Line& l) {
    Delivered d{std::string(l.text), l.too_long, l.total_bytes, f.line_number()};
    if (refuse && refuse(offers++, d)) {
      refused = true;
      // A refused line must be the line that is due next.
      if (expected && out.problem.empty()) {
        size_t next = out.lines.size();
        if (next >= expected->lines.size() || !(expected->lines[next].d == d)) {
          std::ostringstream os;
          os << "refused offer " << d << " is not the next expected line";
          out.problem = os.str();
        }
      }
      return false;
    }
    refused = false;
    out.lines.push_back(std::move(d));
    return true;
  };
  size_t chunk_start = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(in.size());
  for (size_t end : ends) {
    size_t len = end - chunk_start;
    std::memcpy(buf.data(), in.data() + chunk_start, len);
    std::memset(buf.data() + len, '\n', kLinePadding);
    size_t off = 0;
    while (off < len || len == 0) {
      refused = false;
      size_t used = f.feed(buf.data() + off, len - off, on_line);
      if (used > len - off && out.problem.empty()) out.problem = "feed consumed more than it was given";
      if (used >= len - off) break;
      if (!refused && out.problem.empty()) {
        out.problem = "feed stopped early without a refusal at stream offset " +
                      std::to_string(chunk_start + off + used);
      }
      if (expected && out.problem.empty()) {
        // It stops at the start of the refused line, or at the start of this
        // call's data when the line began in an earlier chunk.
        size_t next = out.lines.size();
        size_t at = chunk_start + off + used;
        size_t want = next < expected->lines.size()
                          ? std::max(chunk_start + off, expected->lines[next].start)
                          : SIZE_MAX;
        if (at != want) {
          out.problem = "refusal consumed up to " + std::to_string(at) + ", expected " + std::to_string(want);
        }
      }
      off += used;
    }
    std::memset(buf.data(), 'X', len + kLinePadding);
    chunk_start = end;
  }
  for (int attempt = 0;; ++attempt) {
    refused = false;
    if (f.finish(deliver_partial, on_line, out.partial_bytes)) break;
    if (!refused && out.problem.empty()) out.problem = "finish returned false without a refusal";
    if (attempt > 100) {
      out.problem = "finish keeps failing";
      break;
    }
  }
  if (f.pending_bytes() != 0 && out.problem.empty()) out.problem = "bytes pending after finish";
  return out;
}

// "" when `got` matches `want`; otherwise the first difference.
std::string compare(const Expected& want, const Actual& got) {
  if (!got.problem.empty()) return got.problem;
  size_t n = std::min(want.lines.size(), got.lines.size());
  for (size_t i = 0; i < n; ++i) {
    if (!(want.lines[i].d == got.lines[i])) {
      std::ostringstream os;
      os << "line " << i << ": expected " << want.lines[i].d << ", got " << got.lines[i];
      return os.str();
    }
  }
  if (want.lines.size() != got.lines.size()) {
    return "expected " + std::to_string(want.lines.size()) + " lines, got " + std::to_string(got.lines.size());
  }
  if (want.partial_bytes != got.partial_bytes) {
    return "partial_bytes: expected " + std::to_string(want.partial_bytes) + ", got " +
           std::to_string(got.partial_bytes);
  }
  return "";
}

std::string show_cuts(const std::vector<size_t>& cuts) {
  std::string s = "cuts at {";
  for (size_t c : cuts) s += std::to_string(c) + " ";
  return s + "}";
}

// Inputs for limits of at least kTooLongPrefixBytes. No '\r\n' on over-long
// lines here (see CrlfTooLongLinesDoNotDependOnChunking).
std::vector<std::string> long_inputs(uint32_t max) {
  std::vector<std::string> v;
  v.push_back("first line\n\n\r\ncrlf line\r\n" + filler(max, 1) + "\n" + filler(max + 1, 2) + "\n" +
              filler(3 * max, 3) + "\n" + "mid\rcr\n" + filler(max - 1, 4) + "\r\n" + "x\n" +
              filler(max - 1, 5) + "\n" + "last without newline");
  v.push_back(filler(max + 1, 6) + "\n" + filler(2 * max + 7, 7) + "\n\n" + filler(max, 8) + "\n" +
              filler(kTooLongPrefixBytes + max, 9));  // ends in an unterminated over-long line
  v.push_back("\n\n\r\n" + filler(max, 10));           // unterminated line of exactly max bytes
  v.push_back("a\n" + filler(max + 1, 11));            // unterminated line one over
  v.push_back("ends with cr\r");
  v.push_back("two\nlines\n");
  return v;
}

void check_every_two_way_split(const std::string& in, uint32_t max, bool deliver_partial) {
  Expected want = reference_split(in, max, deliver_partial);
  // Unsplit first, then every cut position (0 and size give an empty chunk).
  ASSERT_EQ(compare(want, drive(in, {}, max, deliver_partial)), "") << "single chunk";
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    std::vector<size_t> cuts{cut};
    ASSERT_EQ(compare(want, drive(in, cuts, max, deliver_partial)), "") << show_cuts(cuts);
  }
}

TEST(LineFramer, SimpleLines) {
  Expected want = reference_split("a\nbb\r\n\nccc", 100, true);
  ASSERT_EQ(want.lines.size(), 3u);
  EXPECT_EQ(want.lines[2].d, (Delivered{"ccc", false, 3, 4}));  // hand check of the reference

  std::vector<Delivered> got;
  LineFramer f(100);
  std::string data = "a\nbb\r\n\nccc";
  data.resize(data.size() + kLinePadding);
  size_t used = f.feed(data.data(), 10, [&](const Line& l) {
    got.push_back({std::string(l.text), l.too_long, l.total_bytes, f.line_number()});
    return true;
  });
  EXPECT_EQ(used, 10u);
  EXPECT_EQ(got, (std::vector<Delivered>{{"a", false, 1, 1}, {"bb", false, 2, 2}}));
  EXPECT_EQ(f.pending_bytes(), 3u);
  EXPECT_EQ(f.pending_prefix(), "ccc");
  uint64_t partial = 99;
  EXPECT_TRUE(f.finish(true, [&](const Line& l) {
    got.push_back({std::string(l.text), l.too_long, l.total_bytes, f.line_number()});
    return true;
  }, partial));
  EXPECT_EQ(partial, 0u);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2], (Delivered{"ccc", false, 3, 4}));
  EXPECT_EQ(f.pending_bytes(), 0u);
}

TEST(LineFramer, EveryTwoWaySplitMatchesReference) {
  for (uint32_t max : {uint32_t(kTooLongPrefixBytes), uint32_t(1500)}) {
    for (const std::string& in : long_inputs(max)) {
      SCOPED_TRACE("max " + std::to_string(max) + ", input of " + std::to_string(in.size()) + " bytes");
      check_every_two_way_split(in, max, true);
    }
  }
}

TEST(LineFramer, EveryTwoWaySplitWithoutPartialDelivery) {
  for (const std::string& in : long_inputs(kTooLongPrefixBytes)) {
    SCOPED_TRACE("input of " + std::to_string(in.size()) + " bytes");
    check_every_two_way_split(in, kTooLongPrefixBytes, false);
  }
}

TEST(LineFramer, RandomChunkingsMatchReference) {
  std::mt19937 rng(2024);
  for (uint32_t max : {uint32_t(kTooLongPrefixBytes), uint32_t(1500), uint32_t(4096)}) {
    for (const std::string& in : long_inputs(max)) {
      for (bool deliver : {true, false}) {
        Expected want = reference_split(in, max, deliver);
        for (int iter = 0; iter < 60; ++iter) {
          size_t chunk_max = iter % 3 == 0 ? 8 : iter % 3 == 1 ? 200 : 3000;
          std::vector<size_t> cuts;
          for (size_t p = 1 + rng() % chunk_max; p < in.size(); p += 1 + rng() % chunk_max) cuts.push_back(p);
          ASSERT_EQ(compare(want, drive(in, cuts, max, deliver)), "")
              << "max " << max << ", " << show_cuts(cuts);
        }
        // One byte at a time.
        std::vector<size_t> all;
        for (size_t p = 1; p < in.size(); ++p) all.push_back(p);
        ASSERT_EQ(compare(want, drive(in, all, max, deliver)), "") << "byte at a time, max " << max;
      }
    }
  }
}

// Short inputs with a small limit, cut at every pair of positions.
TEST(LineFramer, EveryThreeWaySplitOfShortInputs) {
  const uint32_t max = 8;
  const std::vector<std::string> inputs = {
      "ab\r\n\ncd\n12345678\nxy\r\n\r\nend",
      "1234567\r\n\r\n\r\n12345678",
      "\n\n\n",
      "a\rb\n\r\r\n",
      "x",
      "123456789\nok\n0123456789abcdefghij\n\n",  // one over, far over
      "short\n0123456789abcdef\nxy\r\nABCDEFGHIJ\r\n123456789",
      "abcdefghijklmnopq",                         // unterminated and over the limit
  };
  for (const std::string& in : inputs) {
    for (bool deliver : {true, false}) {
      Expected want = reference_split(in, max, deliver);
      for (size_t i = 0; i <= in.size(); ++i) {
        for (size_t j = i; j <= in.size(); ++j) {
          std::vector<size_t> cuts{i, j};
          ASSERT_EQ(compare(want, drive(in, cuts, max, deliver)), "") << "\"" << in << "\" " << show_cuts(cuts);
          bool pending = false;
          Policy once = [&](uint64_t, const Delivered&) { return pending = !pending; };
          ASSERT_EQ(compare(want, drive(in, cuts, max, deliver, once, &want)), "")
              << "refusing each line once, \"" << in << "\" " << show_cuts(cuts);
        }
      }
    }
  }
}

TEST(LineFramer, ExactlyMaxIsNotTooLongAndOneMoreIs) {
  const uint32_t max = 2000;
  std::string exact = filler(max, 1), over = filler(max + 1, 2);
  Expected want = reference_split(exact + "\n" + over + "\n", max, true);
  ASSERT_EQ(want.lines.size(), 2u);
  EXPECT_FALSE(want.lines[0].d.too_long);
  EXPECT_EQ(want.lines[0].d.text, exact);
  EXPECT_TRUE(want.lines[1].d.too_long);
  EXPECT_EQ(want.lines[1].d.total_bytes, max + 1);
  EXPECT_EQ(want.lines[1].d.text, over.substr(0, kTooLongPrefixBytes));
  EXPECT_EQ(compare(want, drive(exact + "\n" + over + "\n", {}, max, true)), "");
  EXPECT_EQ(compare(want, drive(exact + "\n" + over + "\n", {1000, 2500}, max, true)), "");
}

TEST(LineFramer, VeryLongLineIsOneTooLongLine) {
  const uint32_t max = 1024;
  std::string huge = filler(200'000, 3);
  std::string in = "before\n" + huge + "\nafter\n";
  Expected want = reference_split(in, max, true);
  ASSERT_EQ(want.lines.size(), 3u);
  std::vector<size_t> cuts;
  for (size_t p = 4096; p < in.size(); p += 4096) cuts.push_back(p);
  EXPECT_EQ(compare(want, drive(in, cuts, max, true)), "");
  EXPECT_EQ(compare(want, drive(in, {}, max, true)), "");
}

// Lines over the limit that end in "\r\n": whatever total_bytes counts for
// the '\r', it must not depend on where the chunks were cut.
TEST(LineFramer, CrlfTooLongLinesDoNotDependOnChunking) {
  const uint32_t max = 1024;
  std::string in = "a\r\n" + filler(max, 1) + "\r\n" + filler(max + 5, 2) + "\r\n" + filler(3000, 3) +
                   "\r\nb\r\n" + filler(max + 1, 4) + "\r";
  Actual whole = drive(in, {}, max, true);
  ASSERT_EQ(whole.problem, "");
  ASSERT_EQ(whole.lines.size(), 6u);
  for (size_t i : {2, 3, 5}) {
    EXPECT_TRUE(whole.lines[i].too_long) << i;
    EXPECT_EQ(whole.lines[i].text.size(), kTooLongPrefixBytes) << i;
  }
  EXPECT_EQ(whole.lines[2].total_bytes == max + 5 || whole.lines[2].total_bytes == max + 6, true);
  for (size_t cut = 0; cut <= in.size(); ++cut) {
    Actual part = drive(in, {cut}, max, true);
    ASSERT_EQ(part.problem, "");
    ASSERT_EQ(part.lines, whole.lines) << "cut at " << cut;
  }
}

// ---------------------------------------------------------------------------
// Back-pressure

void check_refusals(const std::string& in, uint32_t max, bool deliver, const std::vector<size_t>& cuts,
                    const Policy& policy, const std::string& what) {
  Expected want = reference_split(in, max, deliver);
  Actual got = drive(in, cuts, max, deliver, policy, &want);
  ASSERT_EQ(compare(want, got), "") << what << ", " << show_cuts(cuts);
}

TEST(LineFramerBackPressure, RefusingEveryLineOnceChangesNothing) {
  // Each line is refused on its first offer and accepted on the second.
  for (uint32_t max : {uint32_t(kTooLongPrefixBytes), uint32_t(1500)}) {
    for (const std::string& in : long_inputs(max)) {
      for (size_t cut = 0; cut <= in.size(); ++cut) {
        bool pending = false;
        Policy once = [&](uint64_t, const Delivered&) {
          pending = !pending;
          return pending;
        };
        check_refusals(in, max, true, {cut}, once, "refuse each once, max " + std::to_string(max));
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(LineFramerBackPressure, RefusingEveryNthOffer) {
  std::mt19937 rng(5);
  for (const std::string& in : long_inputs(kTooLongPrefixBytes)) {
    for (uint64_t n : {2, 3, 5}) {
      for (int iter = 0; iter < 40; ++iter) {
        std::vector<size_t> cuts;
        size_t chunk_max = iter % 2 ? 16 : 1500;
        for (size_t p = 1 + rng() % chunk_max; p < in.size(); p += 1 + rng() % chunk_max) cuts.push_back(p);
        Policy nth = [n](uint64_t offer, const Delivered&) { return offer % n == n - 1; };
        check_refusals(in, kTooLongPrefixBytes, iter % 4 < 2, cuts, nth, "every " + std::to_string(n));
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(LineFramerBackPressure, RefusingOneLineSeveralTimes) {
  // Line k is refused three times in a row; every other line goes through.
  const std::string in = long_inputs(kTooLongPrefixBytes)[0];
  Expected ref = reference_split(in, kTooLongPrefixBytes, true);
  for (size_t k = 0; k < ref.lines.size(); ++k) {
    for (size_t cut : {size_t(0), size_t(5), in.size() / 3, in.size() / 2, in.size() - 3}) {
      size_t accepted = 0;
      int refusals = 0;
      Policy policy = [&](uint64_t, const Delivered&) {
        if (accepted == k && refusals < 3) {
          ++refusals;
          return true;
        }
        ++accepted;
        return false;
      };
      check_refusals(in, kTooLongPrefixBytes, true, {cut}, policy, "line " + std::to_string(k));
      EXPECT_EQ(refusals, 3) << "line " << k;
    }
  }
}

TEST(LineFramerBackPressure, RefusedLineSplitAcrossChunks) {
  // "hello world" is split over three chunks; it is refused when it completes.
  std::string data = "hello world\nnext\n";
  std::vector<char> buf(data.begin(), data.end());
  buf.resize(buf.size() + kLinePadding, '\n');
  LineFramer f(64);
  std::vector<std::string> got;
  bool refuse = true;
  auto on_line = [&](const Line& l) {
    if (refuse) {
      refuse = false;
      EXPECT_EQ(l.text, "hello world");
      return false;
    }
    got.emplace_back(l.text);
    return true;
  };
  EXPECT_EQ(f.feed(buf.data(), 3, on_line), 3u);          // "hel"
  EXPECT_EQ(f.feed(buf.data() + 3, 4, on_line), 4u);      // "lo w"
  EXPECT_EQ(f.feed(buf.data() + 7, 7, on_line), 0u);      // "orld\nne": refused, nothing consumed
  EXPECT_EQ(f.pending_bytes(), 7u);                       // the carried "hello w" is kept
  EXPECT_EQ(f.feed(buf.data() + 7, 7, on_line), 7u);      // again: accepted
  EXPECT_EQ(f.feed(buf.data() + 14, 3, on_line), 3u);     // "xt\n"
  EXPECT_EQ(got, (std::vector<std::string>{"hello world", "next"}));
}

TEST(LineFramerBackPressure, RefusedTooLongLine) {
  const uint32_t max = 1024;
  std::string line = filler(2500, 1);
  std::string data = "ok\n" + line + "\nafter\n";
  std::vector<char> buf(data.begin(), data.end());
  buf.resize(buf.size() + kLinePadding, '\n');
  for (size_t split : {size_t(0), size_t(500), size_t(1100), size_t(2000), size_t(2503)}) {
    LineFramer f(max);
    std::vector<Delivered> got;
    int refusals = 0;
    auto on_line = [&](const Line& l) {
      if (l.too_long && refusals < 2) {
        ++refusals;
        EXPECT_EQ(l.total_bytes, line.size());
        EXPECT_EQ(l.text, line.substr(0, kTooLongPrefixBytes));
        return false;
      }
      got.push_back({std::string(l.text), l.too_long, l.total_bytes, f.line_number()});
      return true;
    };
    size_t pos = 0;
    for (size_t end : {3 + split, data.size()}) {
      while (pos < end) {
        size_t used = f.feed(buf.data() + pos, end - pos, on_line);
        pos += used;
        if (used == 0 && pos < end) continue;  // refused at the start: feed again
      }
    }
    EXPECT_EQ(refusals, 2) << split;
    std::vector<Delivered> want = {{"ok", false, 2, 1},
                                   {line.substr(0, kTooLongPrefixBytes), true, line.size(), 2},
                                   {"after", false, 5, 3}};
    EXPECT_EQ(got, want) << split;
  }
}

TEST(LineFramerBackPressure, RefusedPartialLineAtFinish) {
  std::string data = "a\nlast";
  std::vector<char> buf(data.begin(), data.end());
  buf.resize(buf.size() + kLinePadding, '\n');
  LineFramer f(64);
  std::vector<std::string> got;
  int offers = 0;
  auto on_line = [&](const Line& l) {
    if (l.text == "last" && offers++ == 0) return false;
    got.emplace_back(l.text);
    return true;
  };
  EXPECT_EQ(f.feed(buf.data(), data.size(), on_line), data.size());
  uint64_t partial = 7;
  EXPECT_FALSE(f.finish(true, on_line, partial));
  EXPECT_EQ(f.pending_bytes(), 4u) << "a refused final line stays pending";
  EXPECT_TRUE(f.finish(true, on_line, partial));
  EXPECT_EQ(partial, 0u);
  EXPECT_EQ(got, (std::vector<std::string>{"a", "last"}));
}

// ---------------------------------------------------------------------------
// finish / restart

TEST(LineFramerFinish, DeliversOrReportsThePartialLine) {
  for (bool deliver : {true, false}) {
    std::string data = "one\ntwo\r\nthree";
    std::vector<char> buf(data.begin(), data.end());
    buf.resize(buf.size() + kLinePadding, '\n');
    LineFramer f(64);
    std::vector<Delivered> got;
    auto on_line = [&](const Line& l) {
      got.push_back({std::string(l.text), l.too_long, l.total_bytes, f.line_number()});
      return true;
    };
    f.feed(buf.data(), 6, on_line);                // "one\ntw"
    f.feed(buf.data() + 6, data.size() - 6, on_line);
    EXPECT_EQ(f.pending_bytes(), 5u);
    EXPECT_EQ(f.pending_prefix(), "three");
    uint64_t partial = 123;
    EXPECT_TRUE(f.finish(deliver, on_line, partial));
    std::vector<Delivered> want = {{"one", false, 3, 1}, {"two", false, 3, 2}};
    if (deliver) {
      want.push_back({"three", false, 5, 3});
      EXPECT_EQ(partial, 0u);
    } else {
      EXPECT_EQ(partial, 5u);
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(f.pending_bytes(), 0u);
  }
}

TEST(LineFramerFinish, PartialTooLongLine) {
  const uint32_t max = 1024;
  std::string line = filler(5000, 2);
  std::vector<char> buf(line.begin(), line.end());
  buf.resize(buf.size() + kLinePadding, '\n');
  for (bool deliver : {true, false}) {
    LineFramer f(max);
    std::vector<Delivered> got;
    auto on_line = [&](const Line& l) {
      got.push_back({std::string(l.text), l.too_long, l.total_bytes, f.line_number()});
      return true;
    };
    f.feed(buf.data(), 700, on_line);
    f.feed(buf.data() + 700, line.size() - 700, on_line);
    EXPECT_TRUE(got.empty());
    EXPECT_EQ(f.pending_bytes(), line.size());
    EXPECT_EQ(f.pending_prefix(), line.substr(0, kTooLongPrefixBytes));
    uint64_t partial = 0;
    EXPECT_TRUE(f.finish(deliver, on_line, partial));
    if (deliver) {
      EXPECT_EQ(got, (std::vector<Delivered>{{line.substr(0, kTooLongPrefixBytes), true, line.size(), 1}}));
      EXPECT_EQ(partial, 0u);
    } else {
      EXPECT_TRUE(got.empty());
      EXPECT_EQ(partial, line.size());
    }
  }
}

TEST(LineFramerFinish, NothingPending) {
  LineFramer f(64);
  uint64_t partial = 5;
  int calls = 0;
  EXPECT_TRUE(f.finish(true, [&](const Line&) { return ++calls, true; }, partial));
  EXPECT_EQ(partial, 0u);
  EXPECT_EQ(calls, 0);
  std::string data = "x\n";
  data.resize(data.size() + kLinePadding);
  f.feed(data.data(), 2, [&](const Line&) { return ++calls, true; });
  EXPECT_TRUE(f.finish(false, [&](const Line&) { return ++calls, true; }, partial));
  EXPECT_EQ(partial, 0u);
  EXPECT_EQ(calls, 1);
}

TEST(LineFramerFinish, RestartForgetsCarryAndLineCount) {
  LineFramer f(64);
  std::vector<Delivered> got;
  auto on_line = [&](const Line& l) {
    got.push_back({std::string(l.text), l.too_long, l.total_bytes, f.line_number()});
    return true;
  };
  std::string data = "a\nb\npartial";
  data.resize(data.size() + kLinePadding);
  f.feed(data.data(), 11, on_line);
  EXPECT_EQ(f.line_number(), 3u);
  f.restart();
  EXPECT_EQ(f.pending_bytes(), 0u);
  EXPECT_EQ(f.line_number(), 1u);
  std::string next = "new\n";
  next.resize(next.size() + kLinePadding);
  f.feed(next.data(), 4, on_line);
  EXPECT_EQ(got, (std::vector<Delivered>{{"a", false, 1, 1}, {"b", false, 1, 2}, {"new", false, 3, 1}}));
}

// ---------------------------------------------------------------------------
// Limits below kTooLongPrefixBytes (the config allows line_bytes_max >= 64).

// Regression: with line_bytes_max < kTooLongPrefixBytes, a line that goes over
// the limit while it is being carried copies up to kTooLongPrefixBytes bytes
// into the carry buffer, which holds only line_bytes_max + kLinePadding.
TEST(LineFramerSmallLimit, SplitTooLongLineNeverBuffersMoreThanTheLimit) {
  const uint32_t max = 64;  // limits::line_bytes_max_min
  std::string a(60, 'a'), b(70, 'b');
  std::string data = a + b + "\n";
  std::vector<char> buf(data.begin(), data.end());
  buf.resize(buf.size() + kLinePadding, '\n');
  LineFramer f(max);
  std::vector<Delivered> got;
  auto on_line = [&](const Line& l) {
    got.push_back({std::string(l.text), l.too_long, l.total_bytes, f.line_number()});
    return true;
  };
  EXPECT_EQ(f.feed(buf.data(), 60, on_line), 60u);
  EXPECT_EQ(f.feed(buf.data() + 60, 70, on_line), 70u);
  EXPECT_EQ(f.pending_bytes(), 130u);
  EXPECT_LE(f.pending_prefix().size(), max) << "the framer holds more than line_bytes_max bytes";
  EXPECT_EQ(f.feed(buf.data() + 130, 1, on_line), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].too_long);
  EXPECT_EQ(got[0].total_bytes, 130u);
  EXPECT_TRUE(data.starts_with(got[0].text));
}

// Regression: with line_bytes_max < kTooLongPrefixBytes, the prefix carried
// by a too_long line depends on where the chunks were cut (the whole line when
// it arrives in one chunk; only the bytes seen up to the chunk that crossed
// the limit, '\r' included, when it was split).
TEST(LineFramerSmallLimit, TooLongPrefixDoesNotDependOnChunking) {
  const uint32_t max = 8;
  const std::string in = "short\n0123456789abcdef\nxy\r\nABCDEFGHIJ\r\n123456789";
  Actual whole = drive(in, {}, max, true);
  ASSERT_EQ(whole.problem, "");
  // Flags, lengths and line numbers follow the reference in any case.
  Expected ref = reference_split(in, max, true);
  ASSERT_EQ(whole.lines.size(), ref.lines.size());
  for (size_t i = 0; i < ref.lines.size(); ++i) {
    EXPECT_EQ(whole.lines[i].too_long, ref.lines[i].d.too_long) << i;
    EXPECT_EQ(whole.lines[i].total_bytes, ref.lines[i].d.total_bytes) << i;
    EXPECT_EQ(whole.lines[i].line_number, ref.lines[i].d.line_number) << i;
    EXPECT_TRUE(ref.lines[i].d.text.starts_with(whole.lines[i].text)) << i;
  }
  int mismatches = 0;
  std::string first;
  for (size_t i = 0; i <= in.size(); ++i) {
    for (size_t j = i; j <= in.size(); ++j) {
      Actual part = drive(in, {i, j}, max, true);
      ASSERT_EQ(part.problem, "");
      if (part.lines != whole.lines) {
        if (mismatches++ == 0) {
          std::ostringstream os;
          os << show_cuts({i, j}) << ":";
          for (size_t k = 0; k < part.lines.size(); ++k) {
            if (k >= whole.lines.size() || !(part.lines[k] == whole.lines[k])) {
              os << " got " << part.lines[k];
              if (k < whole.lines.size()) os << ", unsplit gives " << whole.lines[k];
              break;
            }
          }
          first = os.str();
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "first: " << first;
}

}  // namespace
}  // namespace sluice

// ---------------------------------------------------------------------------
// The carry buffer: only while a line spans chunks, under a shared budget.

namespace sluice {
namespace {

// Feeds `text` as one chunk (with the padding simdjson needs); collects lines.
size_t feed_one(LineFramer& f, std::string_view text, std::vector<std::string>& lines) {
  std::vector<char> buf(text.size() + kLinePadding, '\0');
  std::memcpy(buf.data(), text.data(), text.size());
  return f.feed(buf.data(), text.size(), [&](const Line& l) {
    lines.emplace_back(l.text);
    return true;
  });
}

TEST(LineFramerCarry, WholeLinesInAChunkNeedNoCarry) {
  MemoryBudget budget(1 << 20);
  LineFramer f(1 << 20, &budget);
  std::vector<std::string> lines;
  EXPECT_EQ(feed_one(f, "a\nbb\nccc\n", lines), 9u);
  EXPECT_EQ(lines, (std::vector<std::string>{"a", "bb", "ccc"}));
  EXPECT_EQ(f.carry_capacity(), 0u);
  EXPECT_EQ(budget.used(), 0u);
}

TEST(LineFramerCarry, ALongSplitLineGrowsTheCarryAndReleasesItWhenDone) {
  MemoryBudget budget(4 << 20);
  LineFramer f(2 << 20, &budget);
  std::vector<std::string> lines;
  const std::string line(1 << 20, 'x');
  for (size_t off = 0; off < line.size(); off += 64 * 1024) {
    ASSERT_EQ(feed_one(f, std::string_view(line).substr(off, 64 * 1024), lines), 64u * 1024);
  }
  EXPECT_GE(f.carry_capacity(), line.size());
  EXPECT_EQ(budget.used(), f.carry_capacity());
  ASSERT_EQ(feed_one(f, "\n", lines), 1u);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], line);
  // Larger than kCarryKeepBytes: given back once its line is done.
  EXPECT_EQ(f.carry_capacity(), 0u);
  EXPECT_EQ(budget.used(), 0u);
}

TEST(LineFramerCarry, BudgetRefusalStopsBeforeTheLineAndSaysSo) {
  MemoryBudget budget(8192);
  LineFramer a(1 << 20, &budget), b(1 << 20, &budget);
  std::vector<std::string> lines;
  // a takes the whole budget with a line that spans chunks.
  ASSERT_EQ(feed_one(a, std::string(8000, 'a'), lines), 8000u);
  EXPECT_FALSE(a.out_of_budget());
  // b: a whole line first (free), then a split line the budget cannot hold.
  EXPECT_EQ(feed_one(b, "ok\n" + std::string(300, 'b'), lines), 3u);
  EXPECT_TRUE(b.out_of_budget());
  EXPECT_EQ(lines, (std::vector<std::string>{"ok"}));
  EXPECT_EQ(b.pending_bytes(), 0u);
  // a's line completes; its small carry is kept for the next one.
  ASSERT_EQ(feed_one(a, "a\n", lines), 2u);
  EXPECT_EQ(lines.back(), std::string(8001, 'a'));
  EXPECT_LE(budget.used(), 8192u);
}

TEST(LineFramerCarry, DestroyingAFramerReturnsItsCarryToTheBudget) {
  MemoryBudget budget(1 << 20);
  {
    LineFramer f(1 << 20, &budget);
    std::vector<std::string> lines;
    ASSERT_EQ(feed_one(f, "no newline yet", lines), 14u);
    EXPECT_GT(budget.used(), 0u);
  }
  EXPECT_EQ(budget.used(), 0u);
}

}  // namespace
}  // namespace sluice
