// Storage over a local directory: the store's files (see storage.h).
//
// Every object is reached below the root without following links
// (OpenFileBeneath, common/file_util.h): a file or directory of the store
// that someone replaced by a symlink is refused (InvalidArgument naming
// it), never read or written through. Objects are regular files; a key's
// directories are made on the first WriteAt (and fsynced by the next Sync).
//
// Thread-safety: all methods are thread-safe (the set of directories made
// and not yet synced is guarded by a mutex); writers of one object must be
// serialized by the caller.
#ifndef BRICKFS_STORE_LOCAL_STORAGE_H_
#define BRICKFS_STORE_LOCAL_STORAGE_H_

#include <functional>
#include <mutex>
#include <set>
#include <string>

#include "store/storage.h"

namespace brickfs {

class LocalStorage : public Storage {
 public:
  // `root` is a directory (it need not exist until the first write).
  LocalStorage(std::string root, bool read_only);

  const std::string& root() const { return root_; }

  std::string Locate(std::string_view key) const override;
  bool read_only() const override { return read_only_; }
  Result<std::string> Get(std::string_view key, uint64_t max_bytes) override;
  Result<uint64_t> Size(std::string_view key) override;
  Result<Tail> ReadTail(std::string_view key, uint64_t n, uint64_t cut_at) override;
  Status ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                    const RangeVisitor& visit) override;
  void Prefetch(std::string_view key, const std::vector<Range>& ranges) override;
  Result<std::vector<std::string>> List(std::string_view prefix) override;
  Result<uint64_t> Identity(std::string_view key) override;
  Status WriteAt(std::string_view key, uint64_t offset, std::string_view bytes) override;
  Status Truncate(std::string_view key, uint64_t length) override;
  Status Replace(std::string_view key, std::string_view bytes,
                 const BeforeVisible& before_visible) override;
  Status Remove(std::string_view key) override;
  // Walks the tree through directory descriptors (no link followed), and
  // forgets the directories below it that it made.
  Status RemoveAll(std::string_view prefix) override;
  Status Sync(const std::vector<std::string>& keys, ThreadPool* io) override;

 private:
  // Opens the object for reading (NotFound when it or a directory above it
  // is missing).
  Result<int> OpenRead(std::string_view key) const;
  // Makes the directories above `key` once (remembered until synced).
  Status MakeParents(const std::string& key);
  // MakeParents(key), then open(); when open() finds a directory missing
  // (removed behind this object's back), the parents are made again and
  // open() retried once.
  Result<int> WithParents(const std::string& key, const std::function<Result<int>()>& open);
  // fsyncs the directories made since the last call, each with its parents
  // up to the root and the root's parent. A directory removed meanwhile is
  // skipped; on a failure every directory not yet synced stays pending.
  Status SyncNewDirs();
  Status CheckWritable(std::string_view key) const;

  const std::string root_;
  const bool read_only_;
  std::mutex mu_;
  std::set<std::string> made_dirs_;      // guarded by mu_: directory keys made or seen
  std::set<std::string> unsynced_dirs_;  // guarded by mu_: made since the last Sync
};

}  // namespace brickfs

#endif  // BRICKFS_STORE_LOCAL_STORAGE_H_
