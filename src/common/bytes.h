// Little-endian encoding of fixed-width integers into byte buffers.
#ifndef BRICKFS_COMMON_BYTES_H_
#define BRICKFS_COMMON_BYTES_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace brickfs {

inline void PutU16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void PutU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void PutU64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint16_t GetU16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t GetU32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t GetU64(const uint8_t* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "brickfs assumes a little-endian host");

// "1.5 GiB", "512 KiB", "17 B"
std::string HumanBytes(uint64_t n);

// Parses "123", "64K", "512M", "2G", "1T" (powers of 1024; an optional
// trailing "B" or "iB" is accepted). Returns false on garbage or overflow.
bool ParseSize(const std::string& text, uint64_t* out);

}  // namespace brickfs

#endif  // BRICKFS_COMMON_BYTES_H_
