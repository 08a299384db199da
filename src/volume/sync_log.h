// Slices made durable by fsync(2) before their slab is committed.
//
// A slab is written to the store once, when all its slices are present; an
// acquisition program that fsyncs every frame must not have to wait for
// that, nor force 32 re-encodes of the slab. So fsync of a slice file
// appends the slice's decoded bytes to STORE/.brickfs/synced/slab-N (one
// append-only file per slab) and fdatasyncs it. When slab N commits, its
// file is removed. After a crash, recovery commits every record newer than
// the last commit of its slab in the journal: each record carries the
// journal's session and its length when the bytes were taken (a commit
// frame past that offset holds this version of the slice or a newer one).
//
// Record (little-endian): magic u32 "BFSY", crc32c u32 of everything after
// it, session u64, journal_offset u64, z u64, nbytes u64, then nbytes of
// the slice (C order, little-endian). A torn tail ends a file's records.
//
// The files are private state: opened with OpenOwnedFile (no symlink, no
// hard link written, no file of another user; common/file_util.h).
//
// Thread-safety: Append and Remove of different slabs run concurrently;
// appends to one slab must be serialized by the caller (Volume::SyncSlice
// holds a lock per slab from copying the slice to the end of its append).
#ifndef BRICKFS_VOLUME_SYNC_LOG_H_
#define BRICKFS_VOLUME_SYNC_LOG_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "brickfs/status.h"

namespace brickfs {

class SyncLog {
 public:
  // `dir` is STORE/.brickfs/synced (created on the first append).
  SyncLog(std::string dir, uint64_t session) : dir_(std::move(dir)), session_(session) {}

  // Appends slice z of `slab` and makes it durable (fdatasync; the
  // directory too when the file is new).
  Status Append(uint64_t slab, uint64_t z, uint64_t journal_offset, const uint8_t* data,
                size_t n);
  // Removes slab's file (its records are now in the store).
  void Remove(uint64_t slab);

  struct Record {
    uint64_t slab = 0;
    uint64_t z = 0;
    uint64_t journal_offset = 0;
    std::string path;      // the file holding it
    uint64_t offset = 0;   // of its data in the file
  };
  // The valid records of `session` in every file of `dir`, for slices of
  // `slice_bytes` in slabs of `slab_depth`: per z only the last one. Files
  // and records that fail validation (torn, another session, a z outside
  // the file's slab) are skipped; `skipped` counts them.
  static std::vector<Record> Scan(const std::string& dir, uint64_t session, uint64_t slice_bytes,
                                  uint64_t slab_depth, uint64_t* skipped);
  // Reads a record's slice into out[0, n).
  static Status ReadData(const Record& r, uint8_t* out, size_t n);
  // Removes the slab files in `dir`, then `dir` if it is empty. A `dir`
  // that is a symlink is left alone.
  static void RemoveAll(const std::string& dir);

  std::string PathOf(uint64_t slab) const { return dir_ + "/slab-" + std::to_string(slab); }

 private:
  const std::string dir_;
  const uint64_t session_;
  std::mutex mu_;
  bool dir_made_ = false;        // guarded by mu_
  std::set<uint64_t> files_;     // slabs with a file; guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_SYNC_LOG_H_
