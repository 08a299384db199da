// CRC-32C (Castagnoli), as used by Zarr v3's crc32c codec: reflected,
// polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF.
// Uses the SSE4.2 crc32 instruction when the CPU has it, else slicing-by-8.
// Thread-safe.
#ifndef BRICKFS_COMMON_CRC32C_H_
#define BRICKFS_COMMON_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace brickfs {

// CRC-32C of data[0, n). Extend(Crc32c(a), b) == Crc32c(a ++ b).
uint32_t Crc32c(const void* data, size_t n);
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

}  // namespace brickfs

#endif  // BRICKFS_COMMON_CRC32C_H_
