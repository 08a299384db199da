// The FUSE file system of one mount: the handlers behind fuse_operations
// (mount/fuse_mount.cc installs them). Thin: decode a request, consult the
// namespace (mount/namespace.h) and the files being written
// (mount/write_file.h), call the volume, reply.
//
// What writes mean (README "The mount"):
//   z/NAME (a slice name)   buffered per open handle; ingested at close (and
//                           at fsync, which also makes it durable)
//   z/NAME (a staged name)  a temporary file held in memory: readable,
//                           writable, renamable; rename onto a slice name
//                           ingests it at that z; never stored otherwise
//   bricks/NAME             buffered; replaces the brick at close
// Opening an existing slice for update (no O_TRUNC) starts from the bytes it
// shows. Writers' names resolve (stat) to the size and time they left.
//
// Thread-safety: every handler may run on any FUSE thread concurrently.
// Lock order: mu_ before a WriteFile's own mutex; neither is held across a
// volume call that may block.
#ifndef BRICKFS_MOUNT_BRICK_FS_H_
#define BRICKFS_MOUNT_BRICK_FS_H_

#define FUSE_USE_VERSION 314
#include <fuse3/fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "mount/namespace.h"
#include "mount/write_file.h"
#include "volume/volume.h"

namespace brickfs {

// Status -> errno: the only translation point on the mount side.
int ToErrno(const Status& s);

class BrickFs {
 public:
  BrickFs(Volume* volume, time_t mount_time);
  ~BrickFs();

  Volume* volume() { return volume_; }

  int GetAttr(const char* path, struct stat* st, fuse_file_info* fi);
  int ReadDir(const char* path, void* buf, fuse_fill_dir_t filler, off_t off);
  int Open(const char* path, fuse_file_info* fi);
  int Create(const char* path, mode_t mode, fuse_file_info* fi);
  int Read(char* buf, size_t size, off_t off, fuse_file_info* fi);
  int Write(const char* buf, size_t size, off_t off, fuse_file_info* fi);
  int Flush(fuse_file_info* fi);
  int Fsync(fuse_file_info* fi);
  int FsyncDir(const char* path);
  int Release(fuse_file_info* fi);
  int Truncate(const char* path, off_t size, fuse_file_info* fi);
  int Rename(const char* from, const char* to, unsigned int flags);
  int Unlink(const char* path);
  int Utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi);
  int Chmod(const char* path, mode_t mode, fuse_file_info* fi);
  int Refuse(const char* op, const char* path, int err);
  int StatFs(struct statvfs* st);

  // At unmount: staged files never renamed are dropped, each named in the
  // status and the log. Returns how many.
  size_t DropStaged();

 private:
  struct Handle;
  Handle* Get(fuse_file_info* fi) { return reinterpret_cast<Handle*>(fi->fh); }
  void FillFile(struct stat* st, mode_t mode, uint64_t size, int64_t mtime_ns = 0) const;
  void FillDir(struct stat* st, mode_t mode) const;
  int GetDirAttr(const PathInfo& p, struct stat* st) const;
  void FillLevelsDir(const PathInfo& p, const std::function<void(const std::string&)>& fill) const;
  bool LevelExists(const PathInfo& p) const { return p.level < volume_->LevelCount(); }
  // The brick a bricks/ name designates, if it is one of this volume's.
  std::optional<Shape3> BrickOf(const PathInfo& p) const;
  // ParsePath, plus: only the exact canonical spelling names a plane.
  PathInfo Parse(const char* path) const;
  // True for the canonical name of a z/ plane at the current width.
  bool IsCanonical(const std::string& name) const;
  int OpenSliceWrite(const PathInfo& p, fuse_file_info* fi, bool truncate);
  int OpenBrickWrite(const PathInfo& p, const Shape3& brick, fuse_file_info* fi, bool truncate);
  int OpenStaged(const PathInfo& p, std::shared_ptr<WriteFile> file, fuse_file_info* fi,
                 bool writing);
  int OpenPlaneRead(const char* path, const PathInfo& p, fuse_file_info* fi);
  int NewHandle(std::unique_ptr<Handle> h, fuse_file_info* fi);
  std::shared_ptr<WriteFile> NewFile(WriteFile::Kind kind, const std::string& name);
  // Fills a file with the bytes the virtual TIFF of slice z shows.
  PreloadFn SliceContent(uint64_t z);
  // Ingests a slice file now (close, fsync, rename). Returns -errno. From
  // fsync, a file that is no whole TIFF yet is no error: nothing is stored.
  int IngestFile(const std::shared_ptr<WriteFile>& f, bool from_fsync);
  int WriteBrickFile(const std::shared_ptr<WriteFile>& f, const Shape3& brick);
  // Open write files of a writer's name (for stat and utimens while copying).
  std::shared_ptr<WriteFile> WritingFile(const std::string& name);
  uint64_t CapOf(const WriteFile& f, const Shape3& brick) const;

  Volume* const volume_;
  const time_t mount_time_;
  const MemoryCharger charger_;
  const std::shared_ptr<BufferPool> buffers_;  // spare slice buffers
  StagedFiles staged_;
  std::mutex mu_;
  // Writer names with open write handles (for stat during cp).
  std::multimap<std::string, std::weak_ptr<WriteFile>> writing_;  // guarded by mu_
  // Generation of the volume when each virtual file was last opened.
  std::unordered_map<std::string, uint64_t> opened_generation_;  // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_MOUNT_BRICK_FS_H_
