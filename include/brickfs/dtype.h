// Voxel data types: single-channel integers and floats.
// Values are little-endian everywhere (store, bricks, virtual TIFFs).
//
// brickfs's own stores (create, ingest, journal) hold only the five types of
// IsStoreDType; foreign OME-Zarr stores (src/foreign) are read in all eight.
// The enum values are written in journal records: append, never renumber.
#ifndef BRICKFS_DTYPE_H_
#define BRICKFS_DTYPE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace brickfs {

enum class DType : uint8_t {
  kUint8,
  kUint16,
  kInt16,
  kUint32,
  kFloat32,
  // Read from foreign stores only (not IsStoreDType).
  kInt8,
  kInt32,
  kFloat64,
};

inline constexpr DType kAllDTypes[] = {DType::kUint8,   DType::kUint16, DType::kInt16,
                                       DType::kUint32,  DType::kFloat32, DType::kInt8,
                                       DType::kInt32,   DType::kFloat64};

// Bytes per voxel: 1, 2, 4 or 8.
inline uint32_t DTypeSize(DType t) {
  switch (t) {
    case DType::kUint8:
    case DType::kInt8: return 1;
    case DType::kUint16:
    case DType::kInt16: return 2;
    case DType::kUint32:
    case DType::kInt32:
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
  }
  return 1;
}

// The Zarr v3 data_type name: "uint8", "int16", "float64", ...
inline std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kUint8: return "uint8";
    case DType::kUint16: return "uint16";
    case DType::kInt16: return "int16";
    case DType::kUint32: return "uint32";
    case DType::kFloat32: return "float32";
    case DType::kInt8: return "int8";
    case DType::kInt32: return "int32";
    case DType::kFloat64: return "float64";
  }
  return "uint8";
}

// Whether brickfs's own stores hold this type (create, ingest, the journal):
// uint8, uint16, int16, uint32, float32.
inline bool IsStoreDType(DType t) {
  return t == DType::kUint8 || t == DType::kUint16 || t == DType::kInt16 ||
         t == DType::kUint32 || t == DType::kFloat32;
}

// A type of brickfs's own stores by name (IsStoreDType), else nullopt.
inline std::optional<DType> ParseDType(std::string_view name) {
  for (DType t : kAllDTypes) {
    if (IsStoreDType(t) && DTypeName(t) == name) return t;
  }
  return std::nullopt;
}

// Any of the eight types by name, else nullopt.
inline std::optional<DType> ParseAnyDType(std::string_view name) {
  for (DType t : kAllDTypes) {
    if (DTypeName(t) == name) return t;
  }
  return std::nullopt;
}

// TIFF SampleFormat: 1 unsigned int, 2 signed int, 3 IEEE float.
inline uint16_t DTypeTiffSampleFormat(DType t) {
  switch (t) {
    case DType::kUint8:
    case DType::kUint16:
    case DType::kUint32: return 1;
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32: return 2;
    case DType::kFloat32:
    case DType::kFloat64: return 3;
  }
  return 1;
}

}  // namespace brickfs

#endif  // BRICKFS_DTYPE_H_
