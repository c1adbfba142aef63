// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka record batches
// v2. Pure functions on caller memory: any thread, no state, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::kafka {

// Extends `crc` (the finished CRC of the bytes before `data`, 0 for none) over n bytes and
// returns the finished CRC, so crc32c(crc32c(0, a, na), b, nb) == crc32c(0, a+b, na + nb).
// crc32c(0, "123456789", 9) == 0xE3069283. Uses the SSE4.2 crc32 instruction when the build
// targets it (`__SSE4_2__`, which -march=native gives on any x86-64 of the last 15 years),
// otherwise crc32c_portable.
uint32_t crc32c(uint32_t crc, const void* data, size_t n);

// Slicing-by-8 table version: same results, any CPU. Exposed so tests can hold the two
// implementations against each other.
uint32_t crc32c_portable(uint32_t crc, const void* data, size_t n);

// True when crc32c() uses the crc32 instruction (for reports and tests).
bool crc32c_is_hardware();

}  // namespace sluice::kafka
