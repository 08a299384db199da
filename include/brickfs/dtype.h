// Voxel data types brickfs stores: single-channel integers and float32.
// Values are stored little-endian everywhere (store, bricks, virtual TIFFs).
#ifndef BRICKFS_DTYPE_H_
#define BRICKFS_DTYPE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brickfs {

enum class DType : uint8_t { kUint8, kUint16, kInt16, kUint32, kFloat32 };

// Bytes per voxel: 1, 2, 2, 4, 4.
inline uint32_t DTypeSize(DType t) {
  switch (t) {
    case DType::kUint8: return 1;
    case DType::kUint16:
    case DType::kInt16: return 2;
    case DType::kUint32:
    case DType::kFloat32: return 4;
  }
  return 1;
}

// The Zarr v3 data_type name: "uint8", "uint16", "int16", "uint32", "float32".
inline std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kUint8: return "uint8";
    case DType::kUint16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kUint32: return "uint32";
    case DType::kFloat32: return "float32";
  }
  return "uint8";
}

inline std::optional<DType> ParseDType(std::string_view name) {
  for (DType t : {DType::kUint8, DType::kUint16, DType::kInt16, DType::kUint32,
                  DType::kFloat32}) {
    if (DTypeName(t) == name) return t;
  }
  return std::nullopt;
}

// TIFF SampleFormat: 1 unsigned int, 2 signed int, 3 IEEE float.
inline uint16_t DTypeTiffSampleFormat(DType t) {
  switch (t) {
    case DType::kInt16: return 2;
    case DType::kFloat32: return 3;
    default: return 1;
  }
}

}  // namespace brickfs

#endif  // BRICKFS_DTYPE_H_
