#include "io/kafka/wire.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

// Expected encodings are written out byte by byte from the Kafka protocol guide (big-endian
// ints, int16-length strings, int32-length bytes, LEB128 varints with zig-zag for signed
// ones), never produced by the Writer under test.

namespace sluice::kafka {
namespace {

using Bytes = std::vector<uint8_t>;

// A copy of `b`'s first n bytes in an allocation of exactly n bytes, so that AddressSanitizer
// catches a read of even one byte past the end.
struct Exact {
  explicit Exact(const Bytes& b, size_t n) : data(new uint8_t[n == 0 ? 1 : n]), size(n) {
    std::copy(b.begin(), b.begin() + ptrdiff_t(n), data.get());
  }
  Reader reader() const { return Reader(data.get(), size); }
  std::unique_ptr<uint8_t[]> data;
  size_t size;
};

Bytes encode(auto&& write) {
  Bytes out;
  Writer w(out);
  write(w);
  EXPECT_TRUE(w.ok());
  return out;
}

TEST(KafkaWire, FixedWidthIntsAreBigEndian) {
  EXPECT_EQ(encode([](Writer& w) { w.int8(-2); }), (Bytes{0xFE}));
  EXPECT_EQ(encode([](Writer& w) { w.int16(0x0102); }), (Bytes{0x01, 0x02}));
  EXPECT_EQ(encode([](Writer& w) { w.int16(-1); }), (Bytes{0xFF, 0xFF}));
  EXPECT_EQ(encode([](Writer& w) { w.int32(0x01020304); }), (Bytes{1, 2, 3, 4}));
  EXPECT_EQ(encode([](Writer& w) { w.int32(std::numeric_limits<int32_t>::min()); }),
            (Bytes{0x80, 0, 0, 0}));
  EXPECT_EQ(encode([](Writer& w) { w.uint32(0xFEDCBA98u); }), (Bytes{0xFE, 0xDC, 0xBA, 0x98}));
  EXPECT_EQ(encode([](Writer& w) { w.int64(0x0102030405060708); }),
            (Bytes{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(encode([](Writer& w) { w.int64(-2); }),
            (Bytes{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE}));
  EXPECT_EQ(encode([](Writer& w) {
              w.boolean(true);
              w.boolean(false);
            }),
            (Bytes{1, 0}));
}

TEST(KafkaWire, FixedWidthRoundTrips) {
  const int64_t values[] = {0,
                            1,
                            -1,
                            127,
                            -128,
                            255,
                            32767,
                            -32768,
                            65535,
                            std::numeric_limits<int32_t>::max(),
                            std::numeric_limits<int32_t>::min(),
                            std::numeric_limits<int64_t>::max(),
                            std::numeric_limits<int64_t>::min()};
  for (int64_t v : values) {
    Bytes b = encode([&](Writer& w) {
      w.int8(int8_t(v));
      w.int16(int16_t(v));
      w.int32(int32_t(v));
      w.uint32(uint32_t(v));
      w.int64(v);
    });
    ASSERT_EQ(b.size(), 1u + 2 + 4 + 4 + 8);
    Reader r(b.data(), b.size());
    EXPECT_EQ(r.int8(), int8_t(v));
    EXPECT_EQ(r.int16(), int16_t(v));
    EXPECT_EQ(r.int32(), int32_t(v));
    EXPECT_EQ(r.uint32(), uint32_t(v));
    EXPECT_EQ(r.int64(), v);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
  }
}

TEST(KafkaWire, BooleanReadsAnyNonZeroAsTrue) {
  Bytes b{0, 1, 2, 0xFF};
  Reader r(b.data(), b.size());
  EXPECT_FALSE(r.boolean());
  EXPECT_TRUE(r.boolean());
  EXPECT_TRUE(r.boolean());
  EXPECT_TRUE(r.boolean());
  EXPECT_TRUE(r.ok());
}

TEST(KafkaWire, UnsignedVarintEncodings) {
  struct Case {
    uint32_t value;
    Bytes bytes;
  };
  const Case cases[] = {
      {0, {0x00}},
      {1, {0x01}},
      {127, {0x7F}},          // largest 1-byte value
      {128, {0x80, 0x01}},    // smallest 2-byte value
      {300, {0xAC, 0x02}},    // 300 = 0b10_0101100
      {16383, {0xFF, 0x7F}},  // largest 2-byte value
      {16384, {0x80, 0x80, 0x01}},
      {0x0FFFFFFF, {0xFF, 0xFF, 0xFF, 0x7F}},        // largest 4-byte value
      {0x10000000, {0x80, 0x80, 0x80, 0x80, 0x01}},  // smallest 5-byte value
      {0xFFFFFFFF, {0xFF, 0xFF, 0xFF, 0xFF, 0x0F}},  // 5-byte maximum
  };
  for (const Case& c : cases) {
    EXPECT_EQ(encode([&](Writer& w) { w.unsigned_varint(c.value); }), c.bytes) << c.value;
    Reader r(c.bytes.data(), c.bytes.size());
    EXPECT_EQ(r.unsigned_varint(), c.value);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
  }
}

TEST(KafkaWire, SignedVarintEncodingsAreZigZag) {
  struct Case {
    int32_t value;
    Bytes bytes;
  };
  const Case cases[] = {
      {0, {0x00}},
      {-1, {0x01}},
      {1, {0x02}},
      {-2, {0x03}},
      {-64, {0x7F}},                                                          // zig-zag 127
      {64, {0x80, 0x01}},                                                     // zig-zag 128
      {std::numeric_limits<int32_t>::max(), {0xFE, 0xFF, 0xFF, 0xFF, 0x0F}},  // zig-zag 2^32-2
      {std::numeric_limits<int32_t>::min(), {0xFF, 0xFF, 0xFF, 0xFF, 0x0F}},  // zig-zag 2^32-1
  };
  for (const Case& c : cases) {
    EXPECT_EQ(encode([&](Writer& w) { w.varint(c.value); }), c.bytes) << c.value;
    Reader r(c.bytes.data(), c.bytes.size());
    EXPECT_EQ(r.varint(), c.value);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
  }
}

TEST(KafkaWire, VarlongEncodings) {
  const Bytes max_unsigned{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
  EXPECT_EQ(encode([](Writer& w) { w.unsigned_varlong(~uint64_t(0)); }), max_unsigned);
  Reader r(max_unsigned.data(), max_unsigned.size());
  EXPECT_EQ(r.unsigned_varlong(), ~uint64_t(0));
  EXPECT_TRUE(r.ok());

  struct Case {
    int64_t value;
    Bytes bytes;
  };
  const Case cases[] = {
      {0, {0x00}},
      {-1, {0x01}},
      {1, {0x02}},
      {std::numeric_limits<int32_t>::max(), {0xFE, 0xFF, 0xFF, 0xFF, 0x0F}},
      {std::numeric_limits<int32_t>::min(), {0xFF, 0xFF, 0xFF, 0xFF, 0x0F}},
      {int64_t(1) << 32, {0x80, 0x80, 0x80, 0x80, 0x20}},  // zig-zag 2^33
      {std::numeric_limits<int64_t>::max(),
       {0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
      {std::numeric_limits<int64_t>::min(),
       {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(encode([&](Writer& w) { w.varlong(c.value); }), c.bytes) << c.value;
    Reader rr(c.bytes.data(), c.bytes.size());
    EXPECT_EQ(rr.varlong(), c.value);
    EXPECT_TRUE(rr.ok());
    EXPECT_EQ(rr.remaining(), 0u);
  }
}

TEST(KafkaWire, VarintsRoundTripAcrossTheRange) {
  std::vector<int64_t> values;
  for (int shift = 0; shift < 63; ++shift) {
    int64_t p = int64_t(1) << shift;
    for (int64_t v : {p - 1, p, p + 1, -p - 1, -p, -p + 1}) values.push_back(v);
  }
  for (int64_t v : values) {
    Bytes b = encode([&](Writer& w) {
      w.varlong(v);
      w.varint(int32_t(v));
    });
    Reader r(b.data(), b.size());
    EXPECT_EQ(r.varlong(), v);
    EXPECT_EQ(r.varint(), int32_t(v));
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.remaining(), 0u);
  }
}

TEST(KafkaWire, VarintLongerThanItsTypeFails) {
  // A continuation bit on the 5th byte of a 32-bit varint.
  Bytes six{0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
  Reader a(six.data(), six.size());
  EXPECT_EQ(a.unsigned_varint(), 0u);
  EXPECT_FALSE(a.ok());
  // A 5th byte carrying bits above 32.
  Bytes big{0xFF, 0xFF, 0xFF, 0xFF, 0x10};
  Reader b(big.data(), big.size());
  EXPECT_EQ(b.varint(), 0);
  EXPECT_FALSE(b.ok());
  // 11 bytes for a 64-bit varint, and a 10th byte above 1.
  Bytes eleven(10, 0x80);
  eleven.push_back(0x00);
  Reader c(eleven.data(), eleven.size());
  EXPECT_EQ(c.varlong(), 0);
  EXPECT_FALSE(c.ok());
  Bytes over{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02};
  Reader d(over.data(), over.size());
  EXPECT_EQ(d.unsigned_varlong(), 0u);
  EXPECT_FALSE(d.ok());
}

TEST(KafkaWire, StringsAndBytesRoundTripAsViews) {
  Bytes b = encode([](Writer& w) {
    w.string("topic");
    w.string("");
    w.nullable_string(std::nullopt);
    w.nullable_string(std::string_view("rack"));
    w.nullable_string(std::string_view(""));
    const uint8_t payload[] = {9, 8, 7};
    w.bytes(payload);
    w.nullable_bytes(std::nullopt);
    w.nullable_bytes(std::span<const uint8_t>());
  });
  const Bytes expected{
      0x00, 0x05, 't',  'o',  'p', 'i', 'c',  // string "topic"
      0x00, 0x00,                             // string ""
      0xFF, 0xFF,                             // nullable string: null
      0x00, 0x04, 'r',  'a',  'c', 'k',       // nullable string "rack"
      0x00, 0x00,                             // nullable string ""
      0x00, 0x00, 0x00, 0x03, 9,   8,   7,    // bytes {9, 8, 7}
      0xFF, 0xFF, 0xFF, 0xFF,                 // nullable bytes: null
      0x00, 0x00, 0x00, 0x00,                 // nullable bytes: empty
  };
  ASSERT_EQ(b, expected);

  Reader r(b.data(), b.size());
  std::string_view topic = r.string();
  EXPECT_EQ(topic, "topic");
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(topic.data()), b.data() + 2);  // a view, no copy
  EXPECT_EQ(r.string(), "");
  EXPECT_EQ(r.nullable_string(), std::nullopt);
  std::optional<std::string_view> rack = r.nullable_string();
  ASSERT_TRUE(rack.has_value());
  EXPECT_EQ(*rack, "rack");
  std::optional<std::string_view> empty = r.nullable_string();
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(*empty, "");
  std::span<const uint8_t> payload = r.bytes();
  ASSERT_EQ(payload.size(), 3u);
  EXPECT_EQ(payload.data(), b.data() + 23);
  EXPECT_EQ(payload[0], 9);
  EXPECT_EQ(payload[2], 7);
  EXPECT_FALSE(r.nullable_bytes().has_value());
  std::optional<std::span<const uint8_t>> empty_bytes = r.nullable_bytes();
  ASSERT_TRUE(empty_bytes.has_value());
  EXPECT_TRUE(empty_bytes->empty());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(KafkaWire, ArrayLengths) {
  Bytes b = encode([](Writer& w) {
    w.array_length(size_t(2));
    w.int32(7);
    w.int32(8);
    w.null_array();
  });
  EXPECT_EQ(b, (Bytes{0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 8, 0xFF, 0xFF, 0xFF, 0xFF}));
  Reader r(b.data(), b.size());
  EXPECT_EQ(r.array_length(4), 2);
  EXPECT_EQ(r.int32(), 7);
  EXPECT_EQ(r.int32(), 8);
  EXPECT_EQ(r.nullable_array_length(4), -1);
  EXPECT_TRUE(r.ok());
}

TEST(KafkaWire, ArrayCountMustFitTheBytesLeft) {
  // Count 3 of 4-byte entries needs 12 bytes; 8 are there.
  Bytes b{0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2};
  Reader r(b.data(), b.size());
  EXPECT_EQ(r.array_length(4), 0);
  EXPECT_FALSE(r.ok());
  // Exactly enough passes.
  Reader ok(b.data(), b.size());
  EXPECT_EQ(ok.array_length(2), 3);  // 3 x 2 bytes <= 8
  EXPECT_TRUE(ok.ok());
  // The largest int32 count fails without anything being allocated for it.
  Bytes huge{0x7F, 0xFF, 0xFF, 0xFF};
  Reader h(huge.data(), huge.size());
  EXPECT_EQ(h.nullable_array_length(1), 0);
  EXPECT_FALSE(h.ok());
}

TEST(KafkaWire, NegativeLengthsOtherThanNullFail) {
  const Bytes minus_one16{0xFF, 0xFF, 'x'};
  const Bytes minus_two16{0xFF, 0xFE, 'x'};
  const Bytes min16{0x80, 0x00, 'x'};
  const Bytes minus_one32{0xFF, 0xFF, 0xFF, 0xFF, 'x'};
  const Bytes minus_two32{0xFF, 0xFF, 0xFF, 0xFE, 'x'};
  const Bytes min32{0x80, 0x00, 0x00, 0x00, 'x'};
  {
    Reader r(minus_one16.data(), minus_one16.size());
    EXPECT_EQ(r.string(), "");  // null where the field is not nullable
    EXPECT_FALSE(r.ok());
  }
  for (const Bytes* b : {&minus_two16, &min16}) {
    Reader r1(b->data(), b->size());
    EXPECT_EQ(r1.string(), "");
    EXPECT_FALSE(r1.ok());
    Reader r2(b->data(), b->size());
    EXPECT_EQ(r2.nullable_string(), std::nullopt);
    EXPECT_FALSE(r2.ok());
  }
  {
    Reader r(minus_one32.data(), minus_one32.size());
    EXPECT_TRUE(r.bytes().empty());
    EXPECT_FALSE(r.ok());
    Reader a(minus_one32.data(), minus_one32.size());
    EXPECT_EQ(a.array_length(1), 0);
    EXPECT_FALSE(a.ok());
  }
  for (const Bytes* b : {&minus_two32, &min32}) {
    Reader r1(b->data(), b->size());
    EXPECT_TRUE(r1.bytes().empty());
    EXPECT_FALSE(r1.ok());
    Reader r2(b->data(), b->size());
    EXPECT_FALSE(r2.nullable_bytes().has_value());
    EXPECT_FALSE(r2.ok());
    Reader r3(b->data(), b->size());
    EXPECT_EQ(r3.nullable_array_length(1), 0);
    EXPECT_FALSE(r3.ok());
  }
}

TEST(KafkaWire, LengthsLongerThanTheBufferFail) {
  const Bytes s{0x00, 0x05, 'a', 'b', 'c', 'd'};  // says 5, has 4
  Reader r1(s.data(), s.size());
  EXPECT_EQ(r1.string(), "");
  EXPECT_FALSE(r1.ok());
  Reader r2(s.data(), s.size());
  EXPECT_EQ(r2.nullable_string(), std::nullopt);
  EXPECT_FALSE(r2.ok());
  const Bytes b{0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3};  // says 2^31-1
  Reader r3(b.data(), b.size());
  EXPECT_TRUE(r3.bytes().empty());
  EXPECT_FALSE(r3.ok());
  Reader r4(b.data(), b.size());
  EXPECT_FALSE(r4.nullable_bytes().has_value());
  EXPECT_FALSE(r4.ok());
}

// Every cut of every primitive's encoding fails, returns zero/empty, reads nothing past the
// cut, and leaves the reader failed for whatever follows.
TEST(KafkaWire, EveryTruncationFails) {
  struct Case {
    const char* name;
    Bytes bytes;
    void (*read)(Reader&);
  };
  const Case cases[] = {
      {"int8", {0x12}, [](Reader& r) { EXPECT_EQ(r.int8(), 0); }},
      {"int16", {0x12, 0x34}, [](Reader& r) { EXPECT_EQ(r.int16(), 0); }},
      {"int32", {1, 2, 3, 4}, [](Reader& r) { EXPECT_EQ(r.int32(), 0); }},
      {"uint32", {1, 2, 3, 4}, [](Reader& r) { EXPECT_EQ(r.uint32(), 0u); }},
      {"int64", {1, 2, 3, 4, 5, 6, 7, 8}, [](Reader& r) { EXPECT_EQ(r.int64(), 0); }},
      {"boolean", {1}, [](Reader& r) { EXPECT_FALSE(r.boolean()); }},
      {"unsigned_varint",
       {0xFF, 0xFF, 0xFF, 0xFF, 0x0F},
       [](Reader& r) { EXPECT_EQ(r.unsigned_varint(), 0u); }},
      {"varint", {0xFE, 0xFF, 0xFF, 0xFF, 0x0F}, [](Reader& r) { EXPECT_EQ(r.varint(), 0); }},
      {"unsigned_varlong",
       {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
       [](Reader& r) { EXPECT_EQ(r.unsigned_varlong(), 0u); }},
      {"varlong",
       {0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
       [](Reader& r) { EXPECT_EQ(r.varlong(), 0); }},
      {"string", {0, 3, 'a', 'b', 'c'}, [](Reader& r) { EXPECT_EQ(r.string(), ""); }},
      {"nullable_string",
       {0, 3, 'a', 'b', 'c'},
       [](Reader& r) { EXPECT_EQ(r.nullable_string(), std::nullopt); }},
      {"nullable_string null",
       {0xFF, 0xFF},
       [](Reader& r) { EXPECT_EQ(r.nullable_string(), std::nullopt); }},
      {"bytes", {0, 0, 0, 2, 7, 8}, [](Reader& r) { EXPECT_TRUE(r.bytes().empty()); }},
      {"nullable_bytes",
       {0, 0, 0, 2, 7, 8},
       [](Reader& r) { EXPECT_FALSE(r.nullable_bytes().has_value()); }},
      {"nullable_bytes null",
       {0xFF, 0xFF, 0xFF, 0xFF},
       [](Reader& r) { EXPECT_FALSE(r.nullable_bytes().has_value()); }},
      {"array_length", {0, 0, 0, 1, 9}, [](Reader& r) { EXPECT_EQ(r.array_length(1), 0); }},
      {"nullable_array_length null",
       {0xFF, 0xFF, 0xFF, 0xFF},
       [](Reader& r) { EXPECT_EQ(r.nullable_array_length(1), 0); }},
      {"skip", {1, 2, 3}, [](Reader& r) { r.skip(3); }},
      {"sub",
       {1, 2, 3},
       [](Reader& r) {
         Reader s = r.sub(3);
         EXPECT_FALSE(s.ok());
         EXPECT_EQ(s.remaining(), 0u);
       }},
  };
  for (const Case& c : cases) {
    for (size_t cut = 0; cut < c.bytes.size(); ++cut) {
      Exact part(c.bytes, cut);
      Reader r = part.reader();
      c.read(r);
      EXPECT_FALSE(r.ok()) << c.name << " cut at " << cut;
      EXPECT_EQ(r.remaining(), 0u) << c.name << " cut at " << cut;
      // Sticky: later reads fail too, even ones that need no bytes.
      EXPECT_EQ(r.int8(), 0);
      r.skip(0);
      EXPECT_FALSE(r.ok());
    }
  }
}

TEST(KafkaWire, FullValuesOfEachPrimitiveRead) {
  // The same encodings as EveryTruncationFails, whole: the values come back.
  Bytes b{0x12,                             // int8
          0x12, 0x34,                       // int16
          1,    2,    3,    4,              // int32
          0xFE, 0xFF, 0xFF, 0xFF, 0x0F,     // varint INT32_MAX
          0,    3,    'a',  'b',  'c',      // string
          0,    0,    0,    2,    7,    8,  // bytes
          0,    0,    0,    1,    9};       // array of one 1-byte entry
  Reader r(b.data(), b.size());
  EXPECT_EQ(r.int8(), 0x12);
  EXPECT_EQ(r.int16(), 0x1234);
  EXPECT_EQ(r.int32(), 0x01020304);
  EXPECT_EQ(r.varint(), std::numeric_limits<int32_t>::max());
  EXPECT_EQ(r.string(), "abc");
  EXPECT_EQ(r.bytes().size(), 2u);
  EXPECT_EQ(r.array_length(1), 1);
  EXPECT_EQ(r.int8(), 9);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(KafkaWire, SubReaderCoversTheNextBytesAndAdvances) {
  Bytes b{1, 2, 3, 4, 5};
  Reader r(b.data(), b.size());
  Reader s = r.sub(3);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.remaining(), 3u);
  EXPECT_EQ(r.remaining(), 2u);
  EXPECT_EQ(s.int16(), 0x0102);
  EXPECT_EQ(s.int16(), 0);  // only one byte left in the sub-reader
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(r.ok());  // the parent is unaffected
  EXPECT_EQ(r.int16(), 0x0405);
  r.skip(0);
  EXPECT_TRUE(r.ok());
}

TEST(KafkaWire, EmptyAndDefaultReaders) {
  Reader d;
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_EQ(d.int32(), 0);
  EXPECT_FALSE(d.ok());
  Reader n(nullptr, 0);
  n.skip(0);
  EXPECT_TRUE(n.ok());
  EXPECT_EQ(n.string(), "");
  EXPECT_FALSE(n.ok());
}

TEST(KafkaWire, SizePrefixIsBackPatchedAndNests) {
  Bytes out{0xAA};  // existing content stays before the frame
  Writer w(out);
  size_t outer = w.begin_size();
  w.int16(7);
  size_t inner = w.begin_size();
  w.int8(1);
  w.int8(2);
  w.end_size(inner);
  w.end_size(outer);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(outer, 1u);
  EXPECT_EQ(out, (Bytes{0xAA, 0, 0, 0, 8,  // outer size: int16 + inner prefix + 2 bytes
                        0, 7,              // int16 7
                        0, 0, 0, 2,        // inner size
                        1, 2}));
}

TEST(KafkaWire, FixedRegionFailsWhenFull) {
  uint8_t region[6] = {};
  Writer w(region, sizeof region);
  w.int32(0x01020304);
  EXPECT_TRUE(w.ok());
  w.int32(5);  // 4 more bytes do not fit in the 2 left
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.error(), WriteError::no_room);
  EXPECT_EQ(w.size(), 4u);  // nothing of the failed write
  w.int8(1);                // sticky: even what would fit is refused
  EXPECT_EQ(w.size(), 4u);
  EXPECT_EQ(region[0], 1);
  EXPECT_EQ(region[3], 4);
  EXPECT_EQ(region[4], 0);
  w.truncate(0);
  EXPECT_EQ(w.size(), 0u);
}

TEST(KafkaWire, FixedRegionExactFit) {
  uint8_t region[7] = {};
  Writer w(region, sizeof region);
  size_t mark = w.begin_size();
  w.string("a");  // 4 + 2 + 1 = 7 bytes: the region is exactly full
  w.end_size(mark);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.size(), 7u);
  const uint8_t expected[] = {0, 0, 0, 3, 0, 1, 'a'};
  EXPECT_EQ(std::vector<uint8_t>(region, region + 7), std::vector<uint8_t>(expected, expected + 7));
}

TEST(KafkaWire, StringLongerThanInt16Fails) {
  Bytes out;
  Writer w(out);
  std::string max(32767, 'x');
  w.string(max);
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(out.size(), 2u + 32767);
  EXPECT_EQ(out[0], 0x7F);
  EXPECT_EQ(out[1], 0xFF);
  std::string too_long(32768, 'x');
  w.string(too_long);
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(w.error(), WriteError::too_long);
  EXPECT_EQ(out.size(), 2u + 32767);  // nothing of it written
}

TEST(KafkaWire, TruncateDropsBytes) {
  Bytes out;
  Writer w(out);
  w.int32(1);
  size_t mark = w.size();
  w.int64(2);
  w.truncate(mark);
  EXPECT_EQ(out, (Bytes{0, 0, 0, 1}));
}

}  // namespace
}  // namespace sluice::kafka
