#include "io/kafka/record_batch.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "core/assert.h"
#include "io/kafka/crc32c.h"

namespace sluice::kafka {
namespace {

// Field offsets within a batch (see the table in record_batch.h).
constexpr size_t kLengthAt = 8;
constexpr size_t kLeaderEpochAt = 12;
constexpr size_t kMagicAt = 16;
constexpr size_t kCrcAt = 17;
constexpr size_t kAttributesAt = 21;
constexpr size_t kLastOffsetDeltaAt = 23;
constexpr size_t kBaseTimestampAt = 27;
constexpr size_t kMaxTimestampAt = 35;
constexpr size_t kProducerIdAt = 43;
constexpr size_t kProducerEpochAt = 51;
constexpr size_t kBaseSequenceAt = 53;
constexpr size_t kRecordsCountAt = 57;
static_assert(kRecordsCountAt + 4 == kBatchHeaderBytes);

// Legacy messages (magic 0/1) have the magic at the same place, after offset, size and a
// 4-byte crc: their size field must cover at least crc, magic, attributes, (v1: timestamp),
// key length and value length.
constexpr int32_t kLegacyMessageBytesMin[2] = {4 + 1 + 1 + 4 + 4, 4 + 1 + 1 + 8 + 4 + 4};

// The smallest encoded record: a 1-byte length varint, then attributes, timestampDelta,
// offsetDelta, keyLength, valueLength and headerCount of one byte each. Lets open() refuse a
// recordsCount the bytes cannot hold before reading any record.
constexpr size_t kRecordBytesMin = 7;
// The smallest header: keyLength and valueLength of one byte each.
constexpr size_t kHeaderBytesMin = 2;

uint16_t load_be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
uint32_t load_be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}
uint64_t load_be64(const uint8_t* p) { return uint64_t(load_be32(p)) << 32 | load_be32(p + 4); }

// Zigzag varints (Kafka's ByteUtils.readVarint / readVarlong). They return false on truncation
// and on encodings longer than the type allows or carrying bits beyond it (Java silently drops
// those bits; no encoder writes them, so they are taken as damage). On success `p` advances.
bool read_varint(const uint8_t*& p, const uint8_t* end, int32_t& out) {
  uint32_t v = 0;
  const uint8_t* q = p;
  for (int shift = 0;; shift += 7) {
    if (q == end) return false;
    uint8_t b = *q++;
    if (shift == 28 && b > 0x0F) return false;  // a 6th byte, or bits past 32
    v |= uint32_t(b & 0x7F) << shift;
    if ((b & 0x80) == 0) break;
  }
  p = q;
  out = static_cast<int32_t>((v >> 1) ^ (0u - (v & 1)));
  return true;
}

bool read_varlong(const uint8_t*& p, const uint8_t* end, int64_t& out) {
  uint64_t v = 0;
  const uint8_t* q = p;
  for (int shift = 0;; shift += 7) {
    if (q == end) return false;
    uint8_t b = *q++;
    if (shift == 63 && b > 0x01) return false;  // an 11th byte, or bits past 64
    v |= uint64_t(b & 0x7F) << shift;
    if ((b & 0x80) == 0) break;
  }
  p = q;
  out = static_cast<int64_t>((v >> 1) ^ (0ull - (v & 1)));
  return true;
}

// A length-prefixed byte string: length -1 is null when `nullable`, otherwise it and any other
// negative length are malformed.
enum class Field : uint8_t { ok, null, bad };

Field read_bytes(const uint8_t*& p, const uint8_t* end, bool nullable, std::string_view& out) {
  int32_t len;
  if (!read_varint(p, end, len)) return Field::bad;
  if (len < 0) {
    out = {};
    return (len == -1 && nullable) ? Field::null : Field::bad;
  }
  if (static_cast<size_t>(len) > static_cast<size_t>(end - p)) return Field::bad;
  out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
  p += len;
  return Field::ok;
}

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  if (!__builtin_add_overflow(a, b, &r)) return r;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

}  // namespace

const char* to_string(BatchStatus s) {
  switch (s) {
    case BatchStatus::ok: return "ok";
    case BatchStatus::end: return "end";
    case BatchStatus::partial: return "partial";
    case BatchStatus::corrupt: return "corrupt";
    case BatchStatus::crc_mismatch: return "crc_mismatch";
    case BatchStatus::unsupported_magic: return "unsupported_magic";
    case BatchStatus::unsupported_codec: return "unsupported_codec";
    case BatchStatus::too_large: return "too_large";
  }
  return "?";
}

BatchStatus BatchIterator::next(Batch& out) {
  out = Batch{};
  skip_bytes_ = 0;
  detail_ = "";
  const size_t left = size_ - pos_;
  const uint8_t* p = data_ + pos_;
  if (left == 0) return BatchStatus::end;
  if (left < kLengthAt) {
    return fail(BatchStatus::partial, "record set ends inside a base offset", 0);
  }
  out.base_offset = static_cast<int64_t>(load_be64(p));
  if (left < kLogOverheadBytes) {
    return fail(BatchStatus::partial, "record set ends inside a batch length", 0);
  }
  const int32_t length = static_cast<int32_t>(load_be32(p + kLengthAt));
  out.batch_length = length;
  if (length < 0) return fail(BatchStatus::corrupt, "negative batch length", 0);
  const size_t total = kLogOverheadBytes + static_cast<size_t>(length);
  if (total > options_.batch_bytes_max) {
    return fail(BatchStatus::corrupt, "batch length above batch_bytes_max", 0);
  }
  // Whether the claimed batch lies inside the record set: only then can skip() step over it.
  const size_t skippable = total <= left ? total : 0;

  if (left <= kMagicAt) {
    if (length < kLegacyMessageBytesMin[0]) {
      return fail(BatchStatus::corrupt, "batch length below any header size", 0);
    }
    return fail(BatchStatus::partial, "record set ends inside a batch header", 0);
  }
  out.magic = static_cast<int8_t>(p[kMagicAt]);
  if (out.magic == 0 || out.magic == 1) {
    if (length < kLegacyMessageBytesMin[out.magic]) {
      return fail(BatchStatus::corrupt, "legacy message length below its header size", 0);
    }
    if (total > left) return fail(BatchStatus::partial, "record set ends inside a message", 0);
    pos_ += total;
    detail_ = "magic 0/1 message set skipped";
    return BatchStatus::unsupported_magic;
  }
  if (out.magic != 2) return fail(BatchStatus::corrupt, "unknown magic", skippable);
  if (length < kBatchLengthMin) {
    return fail(BatchStatus::corrupt, "batch length below the v2 header size", 0);
  }
  if (total > left) return fail(BatchStatus::partial, "record set ends inside a batch", 0);

  out.partition_leader_epoch = static_cast<int32_t>(load_be32(p + kLeaderEpochAt));
  out.crc = load_be32(p + kCrcAt);
  out.attributes = load_be16(p + kAttributesAt);
  out.last_offset_delta = static_cast<int32_t>(load_be32(p + kLastOffsetDeltaAt));
  out.base_timestamp_ms = static_cast<int64_t>(load_be64(p + kBaseTimestampAt));
  out.max_timestamp_ms = static_cast<int64_t>(load_be64(p + kMaxTimestampAt));
  out.producer_id = static_cast<int64_t>(load_be64(p + kProducerIdAt));
  out.producer_epoch = static_cast<int16_t>(load_be16(p + kProducerEpochAt));
  out.base_sequence = static_cast<int32_t>(load_be32(p + kBaseSequenceAt));
  out.records_count = static_cast<int32_t>(load_be32(p + kRecordsCountAt));
  out.records = std::span<const uint8_t>(p + kBatchHeaderBytes, total - kBatchHeaderBytes);
  out.last_offset = saturating_add(out.base_offset, out.last_offset_delta);

  if (options_.verify_crc &&
      crc32c(0, p + kAttributesAt, total - kAttributesAt) != out.crc) {
    return fail(BatchStatus::crc_mismatch, "batch CRC-32C mismatch", total);
  }
  // Fields the CRC cannot vouch for (baseOffset is outside it) or that no broker writes.
  if (out.base_offset < 0) return fail(BatchStatus::corrupt, "negative base offset", total);
  if (out.last_offset_delta < 0) {
    return fail(BatchStatus::corrupt, "negative last offset delta", total);
  }
  int64_t last;
  if (__builtin_add_overflow(out.base_offset, out.last_offset_delta, &last)) {
    return fail(BatchStatus::corrupt, "last offset overflows", total);
  }
  if (out.records_count < 0) return fail(BatchStatus::corrupt, "negative records count", total);
  pos_ += total;
  return BatchStatus::ok;
}

bool BatchIterator::skip() {
  if (skip_bytes_ == 0) return false;
  SLUICE_ASSERT(skip_bytes_ <= size_ - pos_);
  pos_ += skip_bytes_;
  skip_bytes_ = 0;
  return true;
}

bool HeaderIterator::next(Header& out) {
  if (left_ == 0) return false;
  std::string_view key;
  if (read_bytes(p_, end_, false, key) != Field::ok) {
    left_ = 0;
    return false;
  }
  Field value = read_bytes(p_, end_, true, out.value);
  if (value == Field::bad) {
    left_ = 0;
    return false;
  }
  out.key = key;
  out.value_null = value == Field::null;
  --left_;
  return true;
}

LastHeaders last_headers(const Record& record, std::span<const std::string_view> names,
                         std::string_view* values) {
  SLUICE_ASSERT(names.size() <= 32);
  LastHeaders out;
  HeaderIterator it = record.headers();
  Header h;
  while (it.next(h)) {
    for (size_t i = 0; i < names.size(); ++i) {
      if (h.key != names[i]) continue;
      const uint32_t bit = uint32_t(1) << i;
      out.found |= bit;
      if (h.value_null) {
        out.null |= bit;
        values[i] = {};
      } else {
        out.null &= ~bit;
        values[i] = h.value;
      }
    }
  }
  return out;
}

BatchStatus RecordReader::open(const Batch& batch, Decompressor& decompressor, uint8_t* scratch,
                               size_t scratch_cap) {
  SLUICE_ASSERT(scratch != nullptr || scratch_cap == 0);
  begin_ = p_ = end_ = nullptr;
  records_left_ = 0;
  status_ = BatchStatus::corrupt;
  base_offset_ = batch.base_offset;
  base_timestamp_ms_ = batch.base_timestamp_ms;
  max_timestamp_ms_ = batch.max_timestamp_ms;
  log_append_time_ = batch.log_append_time();
  if (batch.records_count < 0) {
    detail_ = "negative records count";
    return status_;
  }
  const uint8_t* begin = batch.records.data();
  size_t bytes = batch.records.size();
  // Kafka does not decompress an empty batch (compaction can leave a header with no records).
  if (batch.codec() != Codec::none && batch.records_count > 0) {
    size_t out_len = 0;
    DecompressStatus s = decompressor.decompress(batch.codec(), batch.records.data(),
                                                 batch.records.size(), scratch, scratch_cap,
                                                 out_len);
    switch (s) {
      case DecompressStatus::ok: break;
      case DecompressStatus::too_large:
        detail_ = "decompressed records exceed the scratch buffer";
        status_ = BatchStatus::too_large;
        return status_;
      case DecompressStatus::unsupported:
        detail_ = "unknown compression codec";
        status_ = BatchStatus::unsupported_codec;
        return status_;
      case DecompressStatus::corrupt:
        detail_ = "compressed records do not decompress";
        return status_;
    }
    begin = scratch;
    bytes = out_len;
  }
  if (static_cast<size_t>(batch.records_count) > bytes / kRecordBytesMin) {
    detail_ = "records count larger than the records bytes can hold";
    return status_;
  }
  begin_ = p_ = begin;
  end_ = begin + bytes;
  records_left_ = batch.records_count;
  status_ = BatchStatus::ok;
  detail_ = "";
  return status_;
}

bool RecordReader::fail(const char* detail) {
  status_ = BatchStatus::corrupt;
  detail_ = detail;
  records_left_ = 0;
  p_ = end_;
  return false;
}

bool RecordReader::next(Record& out) {
  if (status_ != BatchStatus::ok) return false;
  if (records_left_ == 0) {
    if (p_ != end_) return fail("bytes left after the last record (records count too small)");
    status_ = BatchStatus::end;
    return false;
  }
  const uint8_t* p = p_;
  int32_t length;
  if (!read_varint(p, end_, length)) {
    return fail("records end before the records count (or a bad record length varint)");
  }
  if (length < 0) return fail("negative record length");
  if (static_cast<size_t>(length) > static_cast<size_t>(end_ - p)) {
    return fail("record length beyond the batch");
  }
  const uint8_t* end = p + length;
  if (p == end) return fail("record ends before its attributes");
  out.attributes = static_cast<int8_t>(*p++);
  int64_t timestamp_delta;
  if (!read_varlong(p, end, timestamp_delta)) return fail("bad timestamp delta");
  int32_t offset_delta;
  if (!read_varint(p, end, offset_delta)) return fail("bad offset delta");
  Field key = read_bytes(p, end, true, out.key);
  if (key == Field::bad) return fail("bad key length");
  Field value = read_bytes(p, end, true, out.value);
  if (value == Field::bad) return fail("bad value length");
  int32_t header_count;
  if (!read_varint(p, end, header_count)) return fail("bad header count");
  if (header_count < 0) return fail("negative header count");
  if (static_cast<size_t>(header_count) > static_cast<size_t>(end - p) / kHeaderBytesMin) {
    return fail("header count larger than the record can hold");
  }
  const uint8_t* headers = p;
  for (int32_t i = 0; i < header_count; ++i) {
    std::string_view ignored;
    if (read_bytes(p, end, false, ignored) != Field::ok) return fail("bad header key length");
    if (read_bytes(p, end, true, ignored) == Field::bad) return fail("bad header value length");
  }
  if (p != end) return fail("record fields do not fill its length");
  if (__builtin_add_overflow(base_offset_, int64_t{offset_delta}, &out.offset)) {
    return fail("record offset overflows");
  }
  if (log_append_time_) {
    out.timestamp_ms = max_timestamp_ms_;
  } else if (__builtin_add_overflow(base_timestamp_ms_, timestamp_delta, &out.timestamp_ms)) {
    return fail("record timestamp overflows");
  }
  out.key_null = key == Field::null;
  out.value_null = value == Field::null;
  out.header_count = static_cast<uint32_t>(header_count);
  out.header_bytes = std::span<const uint8_t>(headers, end);
  p_ = end;
  --records_left_;
  return true;
}

ControlType control_type(const Record& r) {
  if (r.key_null || r.key.size() < 4) return ControlType::malformed;
  const uint8_t* k = reinterpret_cast<const uint8_t*>(r.key.data());
  switch (static_cast<int16_t>(load_be16(k + 2))) {
    case 0: return ControlType::abort;
    case 1: return ControlType::commit;
    default: return ControlType::other;
  }
}

// ---- Producing ------------------------------------------------------------------------------

namespace {

size_t uvarint_bytes(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}
size_t varint_bytes(int64_t v) { return uvarint_bytes((uint64_t(v) << 1) ^ uint64_t(v >> 63)); }

uint8_t* put_uvarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = uint8_t(v | 0x80);
    v >>= 7;
  }
  *p++ = uint8_t(v);
  return p;
}
uint8_t* put_varint(uint8_t* p, int64_t v) { return put_uvarint(p, (uint64_t(v) << 1) ^ uint64_t(v >> 63)); }
uint8_t* put_bytes(uint8_t* p, std::string_view s) {
  p = put_varint(p, int64_t(s.size()));
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

size_t body_bytes(int64_t timestamp_delta, int32_t offset_delta, const std::string_view* key,
                  std::string_view value, std::span<const OutHeader> headers) {
  size_t n = 1 + varint_bytes(timestamp_delta) + varint_bytes(offset_delta);
  n += key != nullptr ? varint_bytes(int64_t(key->size())) + key->size() : 1;
  n += varint_bytes(int64_t(value.size())) + value.size();
  n += varint_bytes(int64_t(headers.size()));
  for (const OutHeader& h : headers) {
    n += varint_bytes(int64_t(h.key.size())) + h.key.size() + varint_bytes(int64_t(h.value.size())) + h.value.size();
  }
  return n;
}

void store_be(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = uint8_t(v);
    v >>= 8;
  }
}

}  // namespace

void BatchBuilder::reset() {
  records_.clear();
  count_ = 0;
  base_timestamp_ms_ = max_timestamp_ms_ = 0;
}

size_t BatchBuilder::record_bytes(int64_t timestamp_delta, int32_t offset_delta, const std::string_view* key,
                                  std::string_view value, std::span<const OutHeader> headers) {
  const size_t body = body_bytes(timestamp_delta, offset_delta, key, value, headers);
  return varint_bytes(int64_t(body)) + body;
}

void BatchBuilder::append(int64_t timestamp_ms, const std::string_view* key, std::string_view value,
                          std::span<const OutHeader> headers) {
  if (count_ == 0) base_timestamp_ms_ = max_timestamp_ms_ = timestamp_ms;
  max_timestamp_ms_ = std::max(max_timestamp_ms_, timestamp_ms);
  const int64_t ts_delta = timestamp_ms - base_timestamp_ms_;
  const size_t body = body_bytes(ts_delta, count_, key, value, headers);
  const size_t at = records_.size();
  records_.resize(at + varint_bytes(int64_t(body)) + body);
  uint8_t* p = records_.data() + at;
  p = put_varint(p, int64_t(body));
  *p++ = 0;  // attributes
  p = put_varint(p, ts_delta);
  p = put_varint(p, count_);
  if (key != nullptr) {
    p = put_bytes(p, *key);
  } else {
    p = put_varint(p, -1);
  }
  p = put_bytes(p, value);
  p = put_varint(p, int64_t(headers.size()));
  for (const OutHeader& h : headers) {
    p = put_bytes(p, h.key);
    p = put_bytes(p, h.value);
  }
  SLUICE_ASSERT(p == records_.data() + records_.size());
  ++count_;
}

bool BatchBuilder::finish(Codec codec, Compressor& compressor, int64_t producer_id, int16_t producer_epoch,
                          int32_t base_sequence, std::vector<uint8_t>& out) {
  SLUICE_ASSERT(count_ > 0);
  out.resize(kBatchHeaderBytes);
  if (codec == Codec::none) {
    out.insert(out.end(), records_.begin(), records_.end());
  } else if (!compressor.compress(codec, records_.data(), records_.size(), out)) {
    return false;
  }
  uint8_t* h = out.data();
  store_be(h + 0, 0, 8);                                     // baseOffset: the broker's
  store_be(h + 8, uint64_t(out.size() - kLogOverheadBytes), 4);  // batchLength
  store_be(h + 12, uint64_t(uint32_t(-1)), 4);               // partitionLeaderEpoch
  h[16] = 2;                                                 // magic
  store_be(h + 21, uint16_t(codec), 2);                      // attributes: codec, CreateTime
  store_be(h + 23, uint64_t(uint32_t(count_ - 1)), 4);       // lastOffsetDelta
  store_be(h + 27, uint64_t(base_timestamp_ms_), 8);
  store_be(h + 35, uint64_t(max_timestamp_ms_), 8);
  store_be(h + 43, uint64_t(producer_id), 8);
  store_be(h + 51, uint64_t(uint16_t(producer_epoch)), 2);
  store_be(h + 53, uint64_t(uint32_t(base_sequence)), 4);
  store_be(h + 57, uint64_t(uint32_t(count_)), 4);
  store_be(h + 17, crc32c(0, h + 21, out.size() - 21), 4);   // CRC-32C of attributes..end
  return true;
}

}  // namespace sluice::kafka
