// HyperLogLog distinct counts, register for register the sketch Redis keeps
// (PFADD/PFCOUNT/PFMERGE): the same 64-bit hash (MurmurHash64A, seed
// 0xadc83b19) over the same bytes, the same register index and run length,
// the same estimator (Ertl's, "New cardinality estimation algorithms for
// HyperLogLog sketches", 2017) and, at precision 14, the same dense layout,
// so a sketch can be written to Redis as a real HyperLogLog.
//
// Precision p (4..18) gives m = 2^p registers and a standard error of
// 1.04 / sqrt(m) (0.81 % at 14, Redis's own). A sketch starts sparse: its
// set registers as sorted (index, run length) pairs, 4 bytes each, grown by
// doubling, so a (window, key) with 5 distinct values costs a few dozen
// bytes, not 12 KiB. Past a quarter of the dense size it turns dense: m
// 6-bit registers packed as Redis packs them (12 KiB at p = 14). Both forms
// hold the same registers, so counts never depend on the form.
//
// A sketch is one heap block owned through a pointer (the aggregate's
// out-of-line state); functions that may grow it take the pointer by
// reference. Not thread-safe: one shard owns a sketch at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::hll {

constexpr uint32_t kPrecisionMin = 4;
constexpr uint32_t kPrecisionMax = 18;
constexpr uint32_t kPrecisionDefault = 14;
constexpr uint32_t kRedisPrecision = 14;  // the only one Redis reads
constexpr uint64_t kSeed = 0xadc83b19ULL;

// MurmurHash64A (Austin Appleby's, as Redis uses it: little-endian reads).
uint64_t murmur64a(const void* data, size_t len, uint64_t seed);
inline uint64_t hash_bytes(std::string_view s) { return murmur64a(s.data(), s.size(), kSeed); }
// An integer is hashed as its decimal text, as PFADD receives it.
uint64_t hash_int(int64_t v);

// A hash's register and run length: the low p bits index the register; the
// rank is 1 + the number of zero bits above them (at most 65 - p).
struct Slot {
  uint32_t index;
  uint8_t rank;
};
inline Slot slot_of(uint64_t hash, uint32_t p) {
  const uint64_t rest = (hash >> p) | (uint64_t(1) << (64 - p));
  return Slot{uint32_t(hash & ((uint64_t(1) << p) - 1)), uint8_t(__builtin_ctzll(rest) + 1)};
}

struct Sketch;  // opaque: one heap block

// An empty sketch of precision p (kPrecisionMin..kPrecisionMax).
Sketch* create(uint32_t p);
void destroy(Sketch* s);
uint32_t precision(const Sketch* s);
bool is_dense(const Sketch* s);
// Heap bytes the sketch holds (header included).
size_t heap_bytes(const Sketch* s);

// Adds a hashed value; may move the sketch (sparse growth, turning dense).
void add(Sketch*& s, uint64_t hash);
// Register `index` (0 when never set).
uint8_t get(const Sketch* s, uint32_t index);
// Every register, one byte each (out: 2^p bytes).
void registers(const Sketch* s, uint8_t* out);
// into[i] = max(into[i], from[i]) for every register; same precision.
void merge(Sketch*& into, const Sketch* from);
// The estimate (PFCOUNT's number at p = 14).
uint64_t count(const Sketch* s);

// Redis's string for a dense HyperLogLog (p = 14 only): "HYLL", encoding 0,
// 3 unused bytes, the cached cardinality marked invalid (Redis recomputes
// it), the 16384 6-bit registers.
constexpr size_t kRedisDenseBytes = 16 + (size_t(1) << kRedisPrecision) * 6 / 8;
void write_redis_dense(const Sketch* s, char* out);
// The same from a sketch's bytes (serialize(); empty: no value yet), without
// building the sketch: false unless they are a precision-14 sketch's.
bool write_redis_dense(std::string_view serialized, char* out);
// Redis's string for the sketch of `serialized` in the form PFADD would
// give it: sparse (runs of zero registers and of equal values, a few dozen
// bytes for a small set) while the sketch is sparse itself, that is at most
// kRedisSparseBytesMax and no register exceeds 32, else dense. Returns its length (at most
// kRedisDenseBytes), 0 unless the bytes are a precision-14 sketch's.
constexpr size_t kRedisSparseBytesMax = 3000;  // Redis's hll-sparse-max-bytes default
size_t write_redis(std::string_view serialized, char* out);

// The sketch as bytes (checkpoints): at most serialized_bytes_max(p).
size_t serialized_bytes_max(uint32_t p);
size_t serialize(const Sketch* s, char* out);
// A sketch of precision p from bytes serialize() wrote; nullptr on anything
// else (a corrupt checkpoint: wrong precision, bad form, registers out of
// range or out of order, wrong length).
Sketch* deserialize(uint32_t p, const char* in, size_t len);

}  // namespace sluice::hll
