// Kafka response decoders on arbitrary bytes. Input: byte 0 picks the API (0-5: ApiVersions,
// Metadata, ListOffsets, Fetch, InitProducerId, Produce; 6+: all six in turn), byte 1 the version within each API's
// range; the rest is a response after its size prefix (header v0, then the body).
// Properties: no crash or UB; on ok, every string and record view lies inside the input, every
// topic's slice of partitions and every partition's slice of aborted transactions lies inside
// the flat vectors, counts stay within the limits, and nothing is left unread; on failure the
// vectors are empty and the reason is set.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "io/kafka/protocol.h"
#include "tests/fuzz/fuzz_check.h"

using namespace sluice::kafka;

namespace {

struct Input {
  const uint8_t* begin;
  const uint8_t* end;

  bool holds(const void* data, size_t size) const {
    auto* p = static_cast<const uint8_t*>(data);
    return p >= begin && p <= end && size <= size_t(end - p);
  }
  bool holds(std::string_view s) const { return holds(s.data(), s.size()); }
  bool holds(std::span<const uint8_t> s) const {
    if (s.empty() && s.data() == nullptr) return true;  // a null record set
    return holds(s.data(), s.size());
  }
  bool holds(const std::optional<std::string_view>& s) const { return !s || holds(*s); }
};

int16_t pick(const ApiVersionRange& range, uint8_t selector) {
  return int16_t(range.min + selector % (range.max - range.min + 1));
}

void check_result(const DecodeResult& res, const Reader& r) {
  if (res.ok()) {
    FUZZ_CHECK(r.ok());
    FUZZ_CHECK(r.remaining() == 0);
  } else {
    FUZZ_CHECK(res.status != ResponseStatus::unsupported_version);  // versions are in range
    FUZZ_CHECK(res.reason != nullptr && res.reason[0] != '\0');
  }
}

void api_versions(Reader r, int16_t v) {
  static ApiVersionsResponse out;  // reused across inputs, as a connection reuses its own
  DecodeResult res = decode_api_versions_response(r, v, out);
  check_result(res, r);
  if (!res.ok()) {
    FUZZ_CHECK(out.apis.empty());
    return;
  }
  FUZZ_CHECK(out.apis.size() <= size_t(kApiVersionsEntriesMax));
  NegotiatedVersions negotiated;
  VersionMismatch mismatch;
  if (negotiate_versions(out.apis, negotiated, mismatch)) {
    for (const ApiVersionRange& ours : kConsumerVersions) {
      int16_t picked = pick_version(ours, out.apis);
      FUZZ_CHECK(picked >= ours.min && picked <= ours.max);
    }
  } else {
    char text[160];
    size_t n = format_version_mismatch(mismatch, text, sizeof text);
    FUZZ_CHECK(n < sizeof text);
  }
}

void metadata(const Input& in, Reader r, int16_t v) {
  static MetadataResponse out;
  DecodeResult res = decode_metadata_response(r, v, out);
  check_result(res, r);
  if (!res.ok()) {
    FUZZ_CHECK(out.brokers.empty() && out.topics.empty() && out.partitions.empty());
    return;
  }
  FUZZ_CHECK(out.brokers.size() <= size_t(kBrokersMax));
  FUZZ_CHECK(out.topics.size() <= size_t(kTopicsMax));
  FUZZ_CHECK(out.partitions.size() <= size_t(kPartitionsMax));
  FUZZ_CHECK(in.holds(out.cluster_id));
  for (const MetadataBroker& b : out.brokers) {
    FUZZ_CHECK(in.holds(b.host));
    FUZZ_CHECK(in.holds(b.rack));
  }
  uint32_t next = 0;
  for (const MetadataTopic& t : out.topics) {
    FUZZ_CHECK(in.holds(t.name));
    FUZZ_CHECK(t.partitions_begin == next);
    FUZZ_CHECK(t.partitions_begin <= t.partitions_end);
    FUZZ_CHECK(t.partitions_end <= out.partitions.size());
    for (const MetadataPartition& p : out.partitions_of(t)) FUZZ_CHECK(p.topic == t.name);
    next = t.partitions_end;
  }
  FUZZ_CHECK(next == out.partitions.size());
}

void list_offsets(const Input& in, Reader r, int16_t v) {
  static ListOffsetsResponse out;
  DecodeResult res = decode_list_offsets_response(r, v, out);
  check_result(res, r);
  if (!res.ok()) {
    FUZZ_CHECK(out.topics.empty() && out.partitions.empty());
    return;
  }
  FUZZ_CHECK(out.partitions.size() <= size_t(kPartitionsMax));
  uint32_t next = 0;
  for (const ListOffsetsTopic& t : out.topics) {
    FUZZ_CHECK(in.holds(t.name));
    FUZZ_CHECK(t.partitions_begin == next);
    FUZZ_CHECK(t.partitions_begin <= t.partitions_end);
    FUZZ_CHECK(t.partitions_end <= out.partitions.size());
    next = t.partitions_end;
  }
  FUZZ_CHECK(next == out.partitions.size());
}

void fetch(const Input& in, Reader r, int16_t v) {
  static FetchResponse out;
  DecodeResult res = decode_fetch_response(r, v, out);
  check_result(res, r);
  if (!res.ok()) {
    FUZZ_CHECK(out.topics.empty() && out.partitions.empty() && out.aborted_transactions.empty());
    return;
  }
  FUZZ_CHECK(out.partitions.size() <= size_t(kPartitionsMax));
  FUZZ_CHECK(out.aborted_transactions.size() <= size_t(kAbortedTransactionsMax));
  uint32_t next = 0;
  for (const FetchTopic& t : out.topics) {
    FUZZ_CHECK(in.holds(t.name));
    FUZZ_CHECK(t.partitions_begin == next);
    FUZZ_CHECK(t.partitions_begin <= t.partitions_end);
    FUZZ_CHECK(t.partitions_end <= out.partitions.size());
    next = t.partitions_end;
  }
  FUZZ_CHECK(next == out.partitions.size());
  uint32_t next_aborted = 0;
  for (const FetchPartition& p : out.partitions) {
    FUZZ_CHECK(in.holds(p.topic));
    // The record set, which record-batch decoding will walk, lies inside the input.
    FUZZ_CHECK(in.holds(p.records));
    FUZZ_CHECK(!p.records_null || p.records.empty());
    FUZZ_CHECK(p.aborted_begin == next_aborted);
    FUZZ_CHECK(p.aborted_begin <= p.aborted_end);
    FUZZ_CHECK(p.aborted_end <= out.aborted_transactions.size());
    FUZZ_CHECK(!p.aborted_null || p.aborted_begin == p.aborted_end);
    next_aborted = p.aborted_end;
  }
  FUZZ_CHECK(next_aborted == out.aborted_transactions.size());
}

void init_producer_id(Reader r, int16_t v) {
  InitProducerIdResponse out;
  check_result(decode_init_producer_id_response(r, v, out), r);
}

void produce(const Input& in, Reader r, int16_t v) {
  static ProduceResponse out;
  DecodeResult res = decode_produce_response(r, v, out);
  check_result(res, r);
  if (!res.ok()) {
    FUZZ_CHECK(out.partitions.empty());
    return;
  }
  FUZZ_CHECK(out.partitions.size() <= size_t(kPartitionsMax));
  for (const ProducePartitionResponse& p : out.partitions) {
    FUZZ_CHECK(in.holds(p.topic));
    FUZZ_CHECK(in.holds(p.error_message));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t api = data[0];
  const uint8_t version = data[1];
  const Input in{data + 2, data + size};
  Reader frame(data + 2, size - 2);
  int32_t correlation_id = 0;
  if (!decode_response_header(frame, correlation_id)) return 0;
  // Each decoder gets its own copy of the reader, positioned after the header.
  if (api == 0 || api >= 6) api_versions(frame, pick(kApiVersionsVersions, version));
  if (api == 1 || api >= 6) metadata(in, frame, pick(kMetadataVersions, version));
  if (api == 2 || api >= 6) list_offsets(in, frame, pick(kListOffsetsVersions, version));
  if (api == 3 || api >= 6) fetch(in, frame, pick(kFetchVersions, version));
  if (api == 4 || api >= 6) init_producer_id(frame, pick(kInitProducerIdVersions, version));
  if (api == 5 || api >= 6) produce(in, frame, pick(kProduceVersions, version));

  size_t body_bytes = 0;
  FrameStatus fs = peek_response_frame({data, size}, 1 << 20, body_bytes);
  if (fs == FrameStatus::complete) FUZZ_CHECK(body_bytes <= size - 4);
  return 0;
}
