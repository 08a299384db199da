// A brickfs store: the Zarr v3 group, its metadata files, and (for a local
// store) the private state directory STORE/.brickfs/ (lock file). Its bytes
// are reached through storage(): a LocalStorage for a directory, or any
// Storage (a remote store) opened read-only by OpenReadOnly.
//
// Opening for writing takes an exclusive flock on STORE/.brickfs/lock (a
// read-only open takes a shared one), so two daemons never write one store.
// The lock is released when the Store is destroyed or the process dies.
//
// The store may belong to another user, who can plant links in it: writing
// requires STORE/.brickfs to be a real directory of the effective user and
// the lock a regular file of that user (OpenOwnedFile, common/file_util.h);
// metadata is written without following links. A read-only open refuses a
// symlinked lock but accepts any owner (reading another user's store is fine).
//
// Thread-safety: WriteMeta is serialized internally; the rest is immutable
// after Open.
#ifndef BRICKFS_STORE_STORE_H_
#define BRICKFS_STORE_STORE_H_

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "brickfs/status.h"
#include "format/volume_meta.h"
#include "store/storage.h"

namespace brickfs {

struct StoreOpenOptions {
  bool create_if_missing = false;  // make an empty group (no array yet)
  bool read_only = false;
  bool take_lock = true;  // false for inspection (info) of a live store
  // fsck: open a store whose group STORE/zarr.json is missing or not a
  // brickfs group (BrickfsGroupProblem) when its array 0/zarr.json is, so
  // that the group can be rebuilt. Default: such a store is Corruption.
  bool allow_bad_group = false;
};

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Opens STORE. Errors: NotFound (absent and !create_if_missing),
  // InvalidArgument (not a directory, or not a brickfs/Zarr v3 store, or
  // STORE/.brickfs or its lock refused: a symlink, another owner, ...),
  // Busy (locked by another daemon, with its pid), Unsupported (newer
  // format), Corruption (metadata fails validation; or the group zarr.json
  // is missing or not brickfs's while 0/zarr.json is a brickfs array: the
  // message advises `brickfs fsck --repair`), IOError.
  static Result<std::unique_ptr<Store>> Open(const std::string& path,
                                             const StoreOpenOptions& options);

  // Opens a store brickfs wrote, read-only, through any storage (a remote
  // one: no lock, no private state). Errors as Open.
  static Result<std::unique_ptr<Store>> OpenReadOnly(std::shared_ptr<Storage> storage);

  // Creates a new store with the given metadata (fixed shape).
  // InvalidArgument if `path` already exists.
  static Status Create(const std::string& path, const VolumeMeta& meta);

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  // The level-0 metadata read at open; nullopt for a new store whose first
  // slice has not arrived.
  const std::optional<VolumeMeta>& meta() const { return meta_; }
  // Local stores only (maintenance tools): the directory of array `level`.
  std::string ArrayDir(int level) const { return path_ + "/" + std::to_string(level); }
  // The store's bytes: array `level` is below key std::to_string(level).
  const std::shared_ptr<Storage>& storage() const { return storage_; }
  // True for a store in a local directory (with private state: journal,
  // lock, names); false for one opened by OpenReadOnly over another storage.
  bool local() const { return local_; }

  // Opens a store for an offline tool (fsck, compact) with its lock taken
  // (shared when read_only, else exclusive); a mounted store is Busy with a
  // message naming the daemon's pid and saying to unmount it first.
  // allow_bad_group: as in StoreOpenOptions (fsck).
  static Result<std::unique_ptr<Store>> OpenForMaintenance(const std::string& path,
                                                           bool read_only,
                                                           bool allow_bad_group = false);

  // Durably replaces STORE/0/zarr.json and STORE/zarr.json.
  Status WriteMeta(const VolumeMeta& meta);

 private:
  Store() = default;
  // Reads and checks the group and array-0 documents into meta_.
  Status ReadMetadata(const StoreOpenOptions& options);

  std::string path_;  // the directory, or the URL of a remote store
  std::shared_ptr<Storage> storage_;
  bool local_ = true;
  bool read_only_ = false;
  int lock_fd_ = -1;
  std::optional<VolumeMeta> meta_;
  std::mutex write_mu_;
};

}  // namespace brickfs

#endif  // BRICKFS_STORE_STORE_H_
