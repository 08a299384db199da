// Recomputing pyramid levels from level 0, for fsck (DESIGN.md §8): level
// blocks are compared with their recomputation and, when asked, the ones
// that differ are rewritten with the append protocol (fresh blocks and a new
// index appended to their shard; nothing is modified in place).
//
// Level L is the 2x2x2 reduction (volume/downsample.h, the store's method)
// of level L-1, exactly as the daemon computes it while ingesting. Level 0
// is the truth and is only read. A level-L block is recomputed from level
// L-1 *as it should be*: where level L-1 is itself being recomputed (a block
// wanted there, or every block with WantAll) its recomputed voxels are used,
// elsewhere its stored voxels. So with WantAll every level is checked against
// level 0, and a wrong block in level 1 is not blamed on level 2 as well.
//
// The work goes depth first in tiles of (block z, brick y, brick x) voxels of
// a level (a block row of one brick): a level-L tile is computed from the up
// to 2x2x2 tiles of level L-1 below it. Memory: about 9 tiles per level
// (a tile of the default uint16 geometry is 4 MiB), whatever the volume.
// Every stored block read is validated (crc32c, frame size) by BlockCodec.
//
// Thread-safety: an object is used by one thread at a time.
#ifndef BRICKFS_VOLUME_LEVEL_REBUILD_H_
#define BRICKFS_VOLUME_LEVEL_REBUILD_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "brickfs/geometry.h"
#include "brickfs/status.h"
#include "store/shard_store.h"
#include "volume/downsample.h"

namespace brickfs {

class LevelRebuild {
 public:
  // Why a block is wanted, as bits; a block's result carries them back.
  enum Reason : uint8_t {
    kDeep = 1,      // fsck --deep: every block
    kProblem = 2,   // a problem found in it (or its shard) by the check
    kRecovery = 4,  // over level 0 changed by a session that did not finish
  };

  struct Options {
    std::string store;   // the store directory; level L is STORE/L
    Geometry level0;     // level 0: the volume's shape, block, brick, dtype
    int num_levels = 1;  // levels 0 .. num_levels-1
    DownsampleMethod method = DownsampleMethod::kMean;
    int zstd_level = 1;  // of the blocks written
    bool write = false;  // default: compare only
  };

  // A wanted block that differs from its recomputation (or whose stored copy
  // cannot be decoded), or that could not be recomputed.
  struct Block {
    int level = 0;
    Shape3 zyx{0, 0, 0};    // block coordinates within its level
    Shape3 brick{0, 0, 0};  // its brick, and its position in the brick's index
    uint64_t index = 0;
    uint8_t reasons = 0;
    bool compared = false;       // false: the level below could not be read (error says why)
    bool stored = false;         // its shard index has an entry for it
    std::string unreadable;      // why the stored copy could not be decoded ("": it could)
    uint64_t voxels = 0;         // voxels of the block inside the level's shape
    uint64_t voxels_differ = 0;  // of those, the ones that differ
    Shape3 first{0, 0, 0};       // level voxel coordinates of the first that differs
    std::string stored_value, expected_value;  // its values, as text
    bool rewritten = false;
    uint64_t offset = 0;  // where the rewrite was appended in the shard
    std::string error;    // why it was not compared or not rewritten
  };

  struct Result {
    std::vector<Block> blocks;  // in the order found
    uint64_t compared = 0;      // wanted blocks recomputed and compared
    uint64_t rewritten = 0;
    uint64_t not_compared = 0;  // wanted blocks whose sources could not be read
  };

  explicit LevelRebuild(Options options);

  // Blocks to recompute; block coordinates of `level` (1 <= level < num_levels).
  void WantAll(uint8_t reason);
  void WantBlock(int level, const Shape3& zyx, uint8_t reason);
  // Every block of the brick (of `level`) inside the level's shape.
  void WantBrick(int level, const Shape3& brick, uint8_t reason);
  // Every block of every level >= 1 computed from level-0 voxels [lo, hi).
  void WantLevel0Box(const Shape3& lo, const Shape3& hi, uint8_t reason);
  bool empty() const;

  // Recomputes the wanted blocks (and what they need), compares and, with
  // options.write, appends the ones that differ; then fsyncs the shards
  // written. Block-level failures are in *out; the status is an error only
  // for what concerns the whole run (a sync, a directory).
  Status Run(Result* out);

 private:
  // A box of voxels in memory: voxel (z, y, x) of the box at
  // data + (z * plane + y * row + x) * vb.
  struct Box {
    uint8_t* data;
    uint64_t row, plane;  // in voxels
  };
  Geometry LevelGeo(int level) const;
  Shape3 TileOfBlock(const Shape3& zyx) const;
  // Fills box with the expected voxels of tile t of `level` (as stored for
  // level 0); an error means a source could not be read (the box is then
  // partly zero, and nothing above it is compared).
  Status Process(int level, const Shape3& t, const Box& box, Result* out);
  // Stored voxels [lo, hi) of `level` (fill where no block is stored).
  Status ReadStored(int level, const Shape3& lo, const Shape3& hi, const Box& box);
  // Compares (and rewrites) the wanted blocks of tile [lo, hi) of `level`.
  void CompareTile(int level, const Shape3& lo, const Shape3& hi, const Box& box, Result* out);
  // The wanted blocks of a tile whose sources could not be read.
  void SkipTile(int level, const Shape3& lo, const Shape3& hi, const std::string& why, Result* out);
  uint8_t Reasons(int level, const Shape3& zyx) const;

  const Options o_;
  const Shape3 tile_;  // voxels
  uint8_t all_ = 0;
  std::vector<std::map<Shape3, uint8_t>> wanted_;  // [level]: block -> reasons
  std::vector<std::set<Shape3>> dirty_;            // [level]: tiles to recompute
  std::vector<std::unique_ptr<ShardStore>> shards_;
  std::vector<uint8_t> raw_;  // one decoded block
};

}  // namespace brickfs

#endif  // BRICKFS_VOLUME_LEVEL_REBUILD_H_
