// The names writers gave to slices, with the size and modification time
// they left: what `stat z/<name>` reports after a copy, so that `rsync -a`
// and `cp -u` see an unchanged stack as unchanged (README "Slice names").
//
// One entry per z at most: the name of the version z holds now. A slice
// replaced under another name, or changed by a brick write, loses its entry
// (its canonical name z/NNNNN.tif always resolves).
//
// Persistence: STORE/.brickfs/names, written whole (atomically) at every
// finalize; between finalizes each change is a journal record (format
// journal.h, kName), replayed over the file by recovery.
//
// File format (little-endian): "BFNM" u32 magic, version u32 (1), count u64,
// then per entry z u64, size u64, mtime_ns i64, name_len u16, name bytes;
// then crc32c u32 of everything before it. Validated before use: names are
// 1..255 bytes without '/' or NUL, z below the volume's depth, no z twice.
//
// Thread-safety: a value type; the Volume guards it with its mutex.
#ifndef BRICKFS_VOLUME_SLICE_NAMES_H_
#define BRICKFS_VOLUME_SLICE_NAMES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "brickfs/status.h"

namespace brickfs {

struct SliceName {
  std::string name;      // a file name in z/ (not a canonical NNNNN.tif)
  uint64_t z = 0;
  uint64_t size = 0;     // bytes the writer wrote
  int64_t mtime_ns = 0;  // modification time it left (utimens), ns since the epoch

  bool operator==(const SliceName& o) const {
    return name == o.name && z == o.z && size == o.size && mtime_ns == o.mtime_ns;
  }
};

class SliceNames {
 public:
  static constexpr size_t kMaxNameBytes = 255;
  // True for a name that may be stored: 1..255 bytes, no '/', no NUL.
  static bool ValidName(const std::string& name);

  // Makes `entry` the name of its z (dropping z's previous name and any
  // other z this name had).
  void Set(const SliceName& entry);
  std::optional<SliceName> Find(const std::string& name) const;
  std::optional<SliceName> OfZ(uint64_t z) const;
  // Updates the time of a name; false when it has no entry.
  bool SetTime(const std::string& name, int64_t mtime_ns);
  void Forget(const std::string& name);
  // Drops the names of every z in [z0, z1).
  void ForgetRange(uint64_t z0, uint64_t z1);
  // Drops names of z >= depth.
  void Truncate(uint64_t depth) { ForgetRange(depth, UINT64_MAX); }
  size_t size() const { return by_z_.size(); }
  bool empty() const { return by_z_.empty(); }

  std::string Encode() const;
  // Parses a names file; Corruption (naming `where`) on any bad number, name
  // or checksum. Entries with z >= depth are Corruption too.
  static Result<SliceNames> Decode(const std::string& bytes, uint64_t depth,
                                   const std::string& where);

 private:
  std::map<uint64_t, SliceName> by_z_;
  std::map<std::string, uint64_t> by_name_;
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_SLICE_NAMES_H_
