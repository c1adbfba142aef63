// Kafka record batches v2 (magic 2): what a Fetch response carries for one partition, and
// what a Produce request sends.
//
//   BatchBuilder   builds one batch for a producer: records appended, then compressed, framed
//                  and checksummed.
//   BatchIterator  splits a partition's record-set bytes into batches: length checks, the
//                  CRC-32C, header fields, a view of the (possibly compressed) record bytes.
//   RecordReader   iterates the records of one batch, decompressing first when the batch is
//                  compressed, into a caller-owned scratch buffer.
//
// Layout (big-endian), after Kafka's DefaultRecordBatch / DefaultRecord:
//
//   offset  field                     offset  field
//        0  baseOffset        int64       23  lastOffsetDelta  int32
//        8  batchLength       int32       27  baseTimestamp    int64
//       12  partitionLeaderEpoch int32    35  maxTimestamp     int64
//       16  magic             int8        43  producerId       int64
//       17  crc               uint32      51  producerEpoch    int16
//       21  attributes        int16       53  baseSequence     int32
//                                         57  recordsCount     int32
//                                         61  records (compressed as a whole per attributes)
//
//   batchLength counts the bytes after itself; the CRC-32C covers attributes to the batch end.
//   record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
//           keyLength varint (-1 = null), key, valueLength varint (-1 = null), value,
//           headerCount varint, headers: keyLength varint, key, valueLength varint, value.
//   varints are zigzag-encoded (protobuf sint32/sint64).
//
// A partial batch is what a fetch's max_bytes leaves at the end of a response: the caller
// stops there and fetches again from that batch's base offset.
//
// Nothing here allocates: a Batch and a Record are views into the record-set bytes (or, for a
// compressed batch, the scratch buffer). Those bytes must outlive the views.
// Thread/shard: plain values, used by the one shard that owns the fetch buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "io/kafka/compression.h"

namespace sluice::kafka {

enum class BatchStatus : uint8_t {
  ok = 0,             ///< a batch is ready (BatchIterator); its records are (RecordReader::open)
  end,                ///< no more bytes (BatchIterator); every record was read (RecordReader)
  partial,            ///< the record set ends inside this batch: stop here, not an error
  corrupt,            ///< impossible length/field, bad compressed data, bad record; see detail()
  crc_mismatch,       ///< the batch's CRC-32C does not match its bytes
  unsupported_magic,  ///< a magic 0/1 message set (pre-0.11 format), already stepped over
  unsupported_codec,  ///< attributes name a compression codec Kafka does not define (5-7)
  too_large,          ///< the decompressed records would exceed the scratch buffer
};

const char* to_string(BatchStatus s);

// Fixed sizes of the format (Kafka's Records.LOG_OVERHEAD, RECORD_BATCH_OVERHEAD).
constexpr size_t kLogOverheadBytes = 12;   // baseOffset + batchLength
constexpr size_t kBatchHeaderBytes = 61;   // everything before the records
constexpr int32_t kBatchLengthMin = int32_t(kBatchHeaderBytes - kLogOverheadBytes);  // 49

// A batch claiming more than this (header included) is corrupt rather than "still arriving".
// Without a bound, any garbage length on the last batch of a response would look like a
// partial batch and be fetched again forever. Kafka's own limit (message.max.bytes) defaults
// to 1 MiB and is raised to tens of MiB at most in practice; 64 MiB leaves room for that while
// refusing lengths no broker would send. Callers may tie it to their fetch max_bytes.
constexpr size_t kBatchBytesMaxDefault = size_t{64} << 20;

// Suggested size of the scratch buffer a compressed batch decompresses into: 16x the broker's
// default message.max.bytes, i.e. a full-size batch compressed 16:1 (JSON with zstd reaches
// ~10:1). A batch that expands further is reported too_large, which bounds a decompression
// bomb's memory and time. One per shard, allocated at start-up.
constexpr size_t kRecordsScratchBytesDefault = size_t{16} << 20;

struct Batch {
  // Batch attributes (int16), the bits Kafka defines.
  static constexpr uint16_t kCodecMask = 0x07;
  static constexpr uint16_t kTimestampTypeBit = 0x08;  // 1 = LogAppendTime
  static constexpr uint16_t kTransactionalBit = 0x10;
  static constexpr uint16_t kControlBit = 0x20;        // transaction markers, not user data
  static constexpr uint16_t kDeleteHorizonBit = 0x40;  // baseTimestamp is a compaction horizon

  int64_t base_offset = -1;  // -1 when the record set ends before the field
  // base_offset + last_offset_delta: exact for an ok batch; for crc_mismatch / corrupt the
  // header's claim (saturated, the fields may be damaged); -1 when the header was not read.
  int64_t last_offset = -1;
  int32_t batch_length = 0;  // bytes after this field (batch size = 12 + batch_length)
  int32_t partition_leader_epoch = -1;
  int8_t magic = -1;
  uint32_t crc = 0;
  uint16_t attributes = 0;
  int32_t last_offset_delta = 0;
  int64_t base_timestamp_ms = 0;  // the delete horizon when has_delete_horizon()
  int64_t max_timestamp_ms = 0;
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t records_count = 0;
  std::span<const uint8_t> records;  // after the header, compressed as codec() says

  Codec codec() const { return static_cast<Codec>(attributes & kCodecMask); }
  bool log_append_time() const { return (attributes & kTimestampTypeBit) != 0; }
  bool transactional() const { return (attributes & kTransactionalBit) != 0; }
  bool control() const { return (attributes & kControlBit) != 0; }
  bool has_delete_horizon() const { return (attributes & kDeleteHorizonBit) != 0; }
  size_t size_bytes() const { return kLogOverheadBytes + static_cast<uint32_t>(batch_length); }
};

struct BatchIteratorOptions {
  size_t batch_bytes_max = kBatchBytesMaxDefault;
  // Kafka's check.crcs: off only where the bytes are known good (or, in the fuzz target, to
  // reach the record decoder with arbitrary bytes).
  bool verify_crc = true;
};

// Iterates the batches of one partition's record set.
//
// next() steps past each batch it returns ok (and each legacy message set it reports as
// unsupported_magic). On partial, corrupt and crc_mismatch it stays where it is, so calling
// next() again repeats the answer; the caller either stops or, after corrupt / crc_mismatch,
// calls skip() to step over the bad batch by its length field, which works when that field is
// plausible (the whole claimed batch is inside the record set). Whether to skip (losing the
// batch's offsets, reported in the Batch) or to stop is the caller's policy.
//
// A partial batch first in a record set means the batch is larger than the fetch allowed
// (brokers since KIP-74 always return the first batch whole) or its length is damaged.
class BatchIterator {
 public:
  BatchIterator() = default;
  BatchIterator(std::span<const uint8_t> record_set, BatchIteratorOptions options = {})
      : data_(record_set.data()), size_(record_set.size()), options_(options) {}

  [[nodiscard]] BatchStatus next(Batch& out);

  // After corrupt or crc_mismatch: steps over the batch just reported. Returns false (and
  // stays) when its length field does not describe bytes inside the record set.
  bool skip();

  // Bytes of the record set consumed so far (batches returned or skipped).
  size_t position() const { return pos_; }
  // What the last non-ok status was about; a static string.
  const char* detail() const { return detail_; }

 private:
  BatchStatus fail(BatchStatus s, const char* detail, size_t skip_bytes) {
    detail_ = detail;
    skip_bytes_ = skip_bytes;
    return s;
  }

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t pos_ = 0;
  size_t skip_bytes_ = 0;  // what skip() steps over; 0 when it cannot
  BatchIteratorOptions options_;
  const char* detail_ = "";
};

struct Header {
  std::string_view key;
  std::string_view value;
  bool value_null = false;
};

// Iterates a record's headers. The bytes were validated by RecordReader::next, so this only
// re-reads them (still bounds-checked: it stops rather than trusting the validation).
class HeaderIterator {
 public:
  HeaderIterator() = default;
  HeaderIterator(std::span<const uint8_t> bytes, uint32_t count)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()), left_(count) {}
  bool next(Header& out);

 private:
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  uint32_t left_ = 0;
};

struct Record;

// The last value of each of `names` among a record's headers, as Kafka's
// Headers.lastHeader(name) gives it (a header may appear more than once):
// bit i of `found` set: values[i] is header names[i]'s value, a view into the
// record's bytes; bit i of `null` set too: that value is null. One pass over
// the headers, no allocation. REQUIRES: names.size() <= 32.
struct LastHeaders {
  uint32_t found = 0;
  uint32_t null = 0;
};
LastHeaders last_headers(const Record& record, std::span<const std::string_view> names,
                         std::string_view* values);

struct Record {
  int64_t offset = 0;  // baseOffset + offsetDelta
  // CreateTime: baseTimestamp + timestampDelta; LogAppendTime: the batch's maxTimestamp.
  int64_t timestamp_ms = 0;
  std::string_view key;      // empty when key_null
  std::string_view value;    // empty when value_null
  bool key_null = true;
  bool value_null = true;
  int8_t attributes = 0;     // unused by Kafka so far
  uint32_t header_count = 0;
  std::span<const uint8_t> header_bytes;

  HeaderIterator headers() const { return HeaderIterator(header_bytes, header_count); }
};

// Reads the records of one batch.
//
// open() decompresses a compressed batch into scratch (bounded by scratch_cap); the views of
// the records then point into scratch, otherwise into the batch's own bytes. next() returns
// records until it returns false; status() then says end (exactly recordsCount records, no
// bytes left over) or corrupt (detail() says what). A malformed record ends the batch: the
// records before it were good, nothing after it can be framed.
//
// Checks, as Kafka's DefaultRecord does (and a few it leaves out): every length within the
// record and the record within the batch; varints of at most 5 (varint) / 10 (varlong) bytes
// that fit their type; key and value lengths >= -1, header keys not null, header count >= 0;
// a record's fields fill its length exactly; offset and timestamp sums that do not overflow.
class RecordReader {
 public:
  // REQUIRES: batch came from BatchIterator::next with status ok; scratch != nullptr ||
  // scratch_cap == 0. The batch's bytes and scratch must outlive the records read.
  [[nodiscard]] BatchStatus open(const Batch& batch, Decompressor& decompressor, uint8_t* scratch,
                                 size_t scratch_cap);
  // False at the end of the batch or at a malformed record: see status().
  [[nodiscard]] bool next(Record& out);

  BatchStatus status() const { return status_; }
  const char* detail() const { return detail_; }
  // The records bytes being read: the batch's own or the decompressed ones in scratch.
  std::span<const uint8_t> records_bytes() const { return {begin_, end_}; }

 private:
  bool fail(const char* detail);

  const uint8_t* begin_ = nullptr;
  const uint8_t* p_ = nullptr;
  const uint8_t* end_ = nullptr;
  int64_t base_offset_ = 0;
  int64_t base_timestamp_ms_ = 0;
  int64_t max_timestamp_ms_ = 0;
  bool log_append_time_ = false;
  int32_t records_left_ = 0;
  BatchStatus status_ = BatchStatus::end;
  const char* detail_ = "";
};

// Control records (in control() batches) mark transaction outcomes: key = int16 version (0),
// int16 type. A consumer skips control batches; one reading only committed data uses the
// abort markers with the Fetch response's aborted-transactions list.
enum class ControlType : uint8_t {
  abort = 0,  ///< the producer's transaction was aborted
  commit,     ///< the producer's transaction was committed
  other,      ///< a type Kafka uses internally (leader change, KRaft snapshot markers)
  malformed,  ///< the key is null or shorter than 4 bytes
};

ControlType control_type(const Record& control_record);

// ---- Producing ------------------------------------------------------------------------------

struct OutHeader {
  std::string_view key;
  std::string_view value;
};

// Builds one record batch v2. Records are encoded as they are appended into a buffer the
// builder keeps (its capacity survives reset(), so a producer in steady state does not
// allocate); finish() compresses them as a whole, writes the 61-byte header (baseOffset 0,
// which the broker assigns; partitionLeaderEpoch -1; CreateTime) and the CRC-32C.
class BatchBuilder {
 public:
  // Starts an empty batch; timestamps of its records are relative to the first one's.
  void reset();
  // Bytes a record takes in the batch before compression.
  static size_t record_bytes(int64_t timestamp_delta, int32_t offset_delta, const std::string_view* key,
                             std::string_view value, std::span<const OutHeader> headers);
  // Appends a record (key nullptr: a null key).
  void append(int64_t timestamp_ms, const std::string_view* key, std::string_view value,
              std::span<const OutHeader> headers);
  int32_t records() const { return count_; }
  // Bytes the batch would take uncompressed, header included.
  size_t bytes() const { return kBatchHeaderBytes + records_.size(); }
  bool empty() const { return count_ == 0; }
  int64_t first_timestamp_ms() const { return base_timestamp_ms_; }

  // Writes the whole batch into `out` (replacing what it held). producer_id -1 / epoch -1 /
  // base_sequence -1: not idempotent. False when the codec library fails.
  [[nodiscard]] bool finish(Codec codec, Compressor& compressor, int64_t producer_id,
                            int16_t producer_epoch, int32_t base_sequence,
                            std::vector<uint8_t>& out);

 private:
  std::vector<uint8_t> records_;
  int32_t count_ = 0;
  int64_t base_timestamp_ms_ = 0;
  int64_t max_timestamp_ms_ = 0;
};

}  // namespace sluice::kafka
