// A read-only Storage over a local directory, for foreign stores.
//
// TEMPORARY (phase 1 of issue 16): main has no local Storage yet; when
// src/store/local_storage.{h,cc} lands, foreign stores use it and this file
// goes. Keys are checked (KeyProblem) before any file is touched; symbolic
// links inside the store are followed like any reader of the store would.
// Every write method returns Unsupported.
//
// Thread-safety: all methods are thread-safe (no mutable state).
#ifndef BRICKFS_FOREIGN_DIR_STORAGE_H_
#define BRICKFS_FOREIGN_DIR_STORAGE_H_

#include <string>

#include "store/storage.h"

namespace brickfs {

class ReadOnlyDirStorage : public Storage {
 public:
  explicit ReadOnlyDirStorage(std::string root);

  std::string Locate(std::string_view key) const override;
  bool read_only() const override { return true; }
  Result<std::string> Get(std::string_view key, uint64_t max_bytes) override;
  Result<uint64_t> Size(std::string_view key) override;
  Result<Tail> ReadTail(std::string_view key, uint64_t n, uint64_t cut_at = UINT64_MAX) override;
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
  Status Sync(const std::vector<std::string>& keys, ThreadPool* io = nullptr) override;

 private:
  // Opens `key` for reading; fills *size. NotFound / IOError name the path.
  Result<int> Open(std::string_view key, uint64_t* size) const;
  Status ReadOnly(std::string_view key) const;

  const std::string root_;
};

}  // namespace brickfs

#endif  // BRICKFS_FOREIGN_DIR_STORAGE_H_
