#include "operators/hyperloglog.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/assert.h"

namespace sluice::hll {

struct Sketch {
  uint8_t p;
  uint8_t dense;
  uint16_t unused;
  uint32_t n;    // sparse: entries in use
  uint32_t cap;  // sparse: entries allocated
  uint32_t pad;
  // Then, sparse: cap entries (index << 8 | rank), sorted by index;
  // dense: dense_bytes(p) bytes of packed registers and one spare byte.
};
static_assert(sizeof(Sketch) == 16);

namespace {

constexpr uint32_t kBits = 6;
constexpr uint32_t kRankMax = 63;
constexpr double kAlphaInf = 0.721347520444481703680;  // 1 / (2 ln 2)
constexpr uint32_t kSparseCapMin = 4;

constexpr size_t dense_bytes(uint32_t p) { return ((size_t(1) << p) * kBits + 7) / 8; }
// Sparse entries allowed: their bytes stay within a quarter of the dense form's.
constexpr uint32_t sparse_max(uint32_t p) { return uint32_t(dense_bytes(p) / 16); }

uint32_t* entries(Sketch* s) { return reinterpret_cast<uint32_t*>(s + 1); }
const uint32_t* entries(const Sketch* s) { return reinterpret_cast<const uint32_t*>(s + 1); }
uint8_t* regs(Sketch* s) { return reinterpret_cast<uint8_t*>(s + 1); }
const uint8_t* regs(const Sketch* s) { return reinterpret_cast<const uint8_t*>(s + 1); }

// 6-bit registers from the least significant bit up, as Redis packs them
// (a register may straddle two bytes).
uint8_t get_packed(const uint8_t* r, uint32_t i) {
  const size_t byte = size_t(i) * kBits / 8;
  const uint32_t fb = (i * kBits) & 7;
  uint32_t v = uint32_t(r[byte]) >> fb;
  if (fb > 8 - kBits) v |= uint32_t(r[byte + 1]) << (8 - fb);
  return uint8_t(v & kRankMax);
}
void set_packed(uint8_t* r, uint32_t i, uint8_t v) {
  const size_t byte = size_t(i) * kBits / 8;
  const uint32_t fb = (i * kBits) & 7;
  r[byte] = uint8_t((r[byte] & ~(kRankMax << fb)) | (uint32_t(v) << fb));
  if (fb > 8 - kBits) {
    r[byte + 1] = uint8_t((r[byte + 1] & ~(kRankMax >> (8 - fb))) | (uint32_t(v) >> (8 - fb)));
  }
}

Sketch* allocate(uint32_t p, bool dense, uint32_t cap) {
  const size_t body = dense ? dense_bytes(p) + 1 : size_t(cap) * 4;
  auto* s = static_cast<Sketch*>(std::malloc(sizeof(Sketch) + body));
  if (s == nullptr) throw std::bad_alloc();
  *s = Sketch{uint8_t(p), uint8_t(dense), 0, 0, dense ? 0 : cap, 0};
  if (dense) std::memset(regs(s), 0, body);
  return s;
}

void to_dense(Sketch*& s) {
  Sketch* d = allocate(s->p, true, 0);
  const uint32_t* e = entries(s);
  for (uint32_t k = 0; k < s->n; ++k) set_packed(regs(d), e[k] >> 8, uint8_t(e[k] & 0xff));
  std::free(s);
  s = d;
}

void set_max(Sketch*& s, uint32_t index, uint8_t rank) {
  if (s->dense) {
    if (rank > get_packed(regs(s), index)) set_packed(regs(s), index, rank);
    return;
  }
  uint32_t* e = entries(s);
  uint32_t lo = 0, hi = s->n;  // first entry whose index >= index
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if ((e[mid] >> 8) < index) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < s->n && (e[lo] >> 8) == index) {
    if (rank > (e[lo] & 0xff)) e[lo] = index << 8 | rank;
    return;
  }
  if (s->n == sparse_max(s->p)) {
    to_dense(s);
    set_packed(regs(s), index, rank);
    return;
  }
  if (s->n == s->cap) {
    const uint32_t cap = s->cap * 2 < sparse_max(s->p) ? s->cap * 2 : sparse_max(s->p);
    auto* grown = static_cast<Sketch*>(std::realloc(s, sizeof(Sketch) + size_t(cap) * 4));
    if (grown == nullptr) throw std::bad_alloc();
    s = grown;
    s->cap = cap;
    e = entries(s);
  }
  std::memmove(e + lo + 1, e + lo, size_t(s->n - lo) * 4);
  e[lo] = index << 8 | rank;
  ++s->n;
}

// Ertl's sigma and tau (the paper's, as Redis computes them).
double sigma(double x) {
  if (x == 1.0) return INFINITY;
  double y = 1.0, z = x, prev;
  do {
    x *= x;
    prev = z;
    z += x * y;
    y += y;
  } while (prev != z);
  return z;
}
double tau(double x) {
  if (x == 0.0 || x == 1.0) return 0.0;
  double y = 1.0, z = 1.0 - x, prev;
  do {
    x = std::sqrt(x);
    prev = z;
    y *= 0.5;
    z -= std::pow(1.0 - x, 2) * y;
  } while (prev != z);
  return z / 3.0;
}

void put_u32(char* out, uint32_t v) { std::memcpy(out, &v, 4); }
uint32_t get_u32(const char* in) {
  uint32_t v;
  std::memcpy(&v, in, 4);
  return v;
}

}  // namespace

uint64_t murmur64a(const void* data, size_t len, uint64_t seed) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed ^ (uint64_t(len) * m);
  const size_t blocks = len / 8;
  for (size_t i = 0; i < blocks; ++i, p += 8) {
    uint64_t k;
    std::memcpy(&k, p, 8);  // little-endian machines only (x86-64, arm64)
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  const size_t tail = len & 7;
  if (tail != 0) {
    for (size_t i = tail; i-- > 0;) h ^= uint64_t(p[i]) << (8 * i);
    h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

uint64_t hash_int(int64_t v) {
  char text[24];
  const auto res = std::to_chars(text, text + sizeof text, v);
  return murmur64a(text, size_t(res.ptr - text), kSeed);
}

Sketch* create(uint32_t p) {
  SLUICE_ASSERT(p >= kPrecisionMin && p <= kPrecisionMax);
  const uint32_t smax = sparse_max(p);
  if (smax < kSparseCapMin) return allocate(p, true, 0);
  return allocate(p, false, kSparseCapMin);
}

void destroy(Sketch* s) { std::free(s); }
uint32_t precision(const Sketch* s) { return s->p; }
bool is_dense(const Sketch* s) { return s->dense != 0; }
size_t heap_bytes(const Sketch* s) {
  return sizeof(Sketch) + (s->dense ? dense_bytes(s->p) + 1 : size_t(s->cap) * 4);
}

void add(Sketch*& s, uint64_t hash) {
  const Slot slot = slot_of(hash, s->p);
  set_max(s, slot.index, slot.rank);
}

uint8_t get(const Sketch* s, uint32_t index) {
  if (s->dense) return get_packed(regs(s), index);
  const uint32_t* e = entries(s);
  uint32_t lo = 0, hi = s->n;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if ((e[mid] >> 8) < index) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < s->n && (e[lo] >> 8) == index ? uint8_t(e[lo] & 0xff) : 0;
}

void registers(const Sketch* s, uint8_t* out) {
  const uint32_t m = uint32_t(1) << s->p;
  if (s->dense) {
    for (uint32_t i = 0; i < m; ++i) out[i] = get_packed(regs(s), i);
    return;
  }
  std::memset(out, 0, m);
  const uint32_t* e = entries(s);
  for (uint32_t k = 0; k < s->n; ++k) out[e[k] >> 8] = uint8_t(e[k] & 0xff);
}

void merge(Sketch*& into, const Sketch* from) {
  SLUICE_ASSERT(into->p == from->p);
  if (!from->dense) {
    const uint32_t* e = entries(from);
    for (uint32_t k = 0; k < from->n; ++k) set_max(into, e[k] >> 8, uint8_t(e[k] & 0xff));
    return;
  }
  if (!into->dense) to_dense(into);
  const uint32_t m = uint32_t(1) << into->p;
  for (uint32_t i = 0; i < m; ++i) {
    const uint8_t v = get_packed(regs(from), i);
    if (v > get_packed(regs(into), i)) set_packed(regs(into), i, v);
  }
}

uint64_t count(const Sketch* s) {
  const uint32_t p = s->p;
  const uint32_t q = 64 - p;
  const double m = double(uint64_t(1) << p);
  uint32_t histogram[kRankMax + 2] = {};
  if (s->dense) {
    const uint32_t n = uint32_t(1) << p;
    for (uint32_t i = 0; i < n; ++i) ++histogram[get_packed(regs(s), i)];
  } else {
    histogram[0] = (uint32_t(1) << p) - s->n;
    const uint32_t* e = entries(s);
    for (uint32_t k = 0; k < s->n; ++k) ++histogram[e[k] & 0xff];
  }
  double z = m * tau((m - histogram[q + 1]) / m);
  for (uint32_t j = q; j >= 1; --j) {
    z += histogram[j];
    z *= 0.5;
  }
  z += m * sigma(histogram[0] / m);
  return uint64_t(llroundl(kAlphaInf * m * m / z));
}

void write_redis_dense(const Sketch* s, char* out) {
  SLUICE_ASSERT(s->p == kRedisPrecision);
  std::memset(out, 0, kRedisDenseBytes);
  std::memcpy(out, "HYLL", 4);  // then encoding 0 (dense), 3 unused bytes
  out[15] = char(0x80);         // cached cardinality: invalid
  auto* r = reinterpret_cast<uint8_t*>(out + 16);
  if (s->dense) {
    std::memcpy(r, regs(s), dense_bytes(s->p));
    return;
  }
  const uint32_t* e = entries(s);
  for (uint32_t k = 0; k < s->n; ++k) set_packed(r, e[k] >> 8, uint8_t(e[k] & 0xff));
}

bool write_redis_dense(std::string_view in, char* out) {
  std::memset(out, 0, kRedisDenseBytes);
  std::memcpy(out, "HYLL", 4);
  out[15] = char(0x80);
  if (in.empty()) return true;
  constexpr uint32_t p = kRedisPrecision;
  if (in.size() < 6 || uint8_t(in[0]) != p) return false;
  auto* r = reinterpret_cast<uint8_t*>(out + 16);
  const uint32_t n = get_u32(in.data() + 2);
  if (in[1] == 1) {
    if (n != 0 || in.size() != 6 + dense_bytes(p)) return false;
    std::memcpy(r, in.data() + 6, dense_bytes(p));
    return true;
  }
  if (in[1] != 0 || n > sparse_max(p) || in.size() != 6 + size_t(n) * 4) return false;
  uint32_t last = 0;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t e = get_u32(in.data() + 6 + size_t(k) * 4);
    const uint32_t index = e >> 8, rank = e & 0xff;
    if (index >= (1u << p) || rank == 0 || rank > 65 - p || (k > 0 && index <= last)) return false;
    last = index;
    set_packed(r, index, uint8_t(rank));
  }
  return true;
}

size_t write_redis(std::string_view in, char* out) {
  constexpr uint32_t m = 1u << kRedisPrecision;
  static constexpr char kNoValue[6] = {char(kRedisPrecision), 0, 0, 0, 0, 0};  // an empty sparse sketch
  if (in.empty()) in = std::string_view(kNoValue, sizeof kNoValue);
  if (in.size() >= 6 && in[1] == 0 && uint8_t(in[0]) == kRedisPrecision) {
    const uint32_t n = get_u32(in.data() + 2);
    if (n <= sparse_max(kRedisPrecision) && in.size() == 6 + size_t(n) * 4) {
      std::memset(out, 0, 16);
      std::memcpy(out, "HYLL", 4);
      out[4] = 1;  // sparse
      out[15] = char(0x80);
      size_t len = 16;
      auto zeros = [&](uint32_t run) {  // ZERO: 00xxxxxx (1..64); XZERO: 01xxxxxx yyyyyyyy (1..16384)
        while (run > 0) {
          if (run <= 64) {
            out[len++] = char(run - 1);
            return;
          }
          const uint32_t r = run < m ? run : m;
          out[len++] = char(0x40 | ((r - 1) >> 8));
          out[len++] = char((r - 1) & 0xff);
          run -= r;
        }
      };
      uint32_t next = 0;  // first register not yet encoded
      bool ok = true;
      for (uint32_t k = 0; k < n && ok;) {
        const uint32_t e = get_u32(in.data() + 6 + size_t(k) * 4);
        const uint32_t index = e >> 8, value = e & 0xff;
        if (index < next || index >= m || value == 0 || value > 32) {
          ok = false;
          break;
        }
        zeros(index - next);
        // VAL: 1vvvvvxx, value 1..32, a run of 1..4 registers with it.
        uint32_t run = 1;
        while (run < 4 && k + run < n && index + run < m) {
          const uint32_t f = get_u32(in.data() + 6 + size_t(k + run) * 4);
          if ((f >> 8) != index + run || (f & 0xff) != value) break;
          ++run;
        }
        out[len++] = char(0x80 | ((value - 1) << 2) | (run - 1));
        next = index + run;
        k += run;
        // Room for this sketch's next opcodes (at most 3 bytes) before the bound.
        if (k < n && len + 3 > kRedisSparseBytesMax) ok = false;
      }
      if (ok && next <= m) {
        zeros(m - next);
        if (len <= kRedisSparseBytesMax) return len;
      }
    }
  }
  return write_redis_dense(in, out) ? kRedisDenseBytes : 0;
}

// u8 precision, u8 form (0 sparse, 1 dense), u32 entries; then the sparse
// entries (u32 each, index << 8 | rank, increasing) or the packed registers.
size_t serialized_bytes_max(uint32_t p) {
  const size_t sparse = size_t(sparse_max(p)) * 4;
  return 6 + (sparse > dense_bytes(p) ? sparse : dense_bytes(p));
}

size_t serialize(const Sketch* s, char* out) {
  out[0] = char(s->p);
  out[1] = char(s->dense);
  put_u32(out + 2, s->dense ? 0 : s->n);
  if (s->dense) {
    std::memcpy(out + 6, regs(s), dense_bytes(s->p));
    return 6 + dense_bytes(s->p);
  }
  std::memcpy(out + 6, entries(s), size_t(s->n) * 4);
  return 6 + size_t(s->n) * 4;
}

Sketch* deserialize(uint32_t p, const char* in, size_t len) {
  if (p < kPrecisionMin || p > kPrecisionMax || len < 6 || uint8_t(in[0]) != p) return nullptr;
  const uint32_t rank_max = 65 - p;
  const uint32_t m = uint32_t(1) << p;
  const uint32_t n = get_u32(in + 2);
  if (in[1] == 1) {
    if (n != 0 || len != 6 + dense_bytes(p)) return nullptr;
    Sketch* s = allocate(p, true, 0);
    std::memcpy(regs(s), in + 6, dense_bytes(p));
    for (uint32_t i = 0; i < m; ++i) {
      if (get_packed(regs(s), i) > rank_max) {
        destroy(s);
        return nullptr;
      }
    }
    // Bits past the last register must be clear (serialize never sets them).
    const uint32_t used_bits = m * kBits;
    if (used_bits % 8 != 0 && (regs(s)[dense_bytes(p) - 1] >> (used_bits % 8)) != 0) {
      destroy(s);
      return nullptr;
    }
    return s;
  }
  if (in[1] != 0 || n > sparse_max(p) || len != 6 + size_t(n) * 4) return nullptr;
  Sketch* s = create(p);
  if (s->dense) {  // a precision too small for the sparse form: never written sparse
    destroy(s);
    return nullptr;
  }
  uint32_t last = 0;
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t e = get_u32(in + 6 + size_t(k) * 4);
    const uint32_t index = e >> 8, rank = e & 0xff;
    if (index >= m || rank == 0 || rank > rank_max || (k > 0 && index <= last)) {
      destroy(s);
      return nullptr;
    }
    last = index;
    set_max(s, index, uint8_t(rank));
  }
  return s;
}

}  // namespace sluice::hll
