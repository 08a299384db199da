// The status side of the engine: errors recorded for the status page, and
// the .brickfs/status document (its fields are described in the README,
// "Status"). Part of class Volume (volume/volume.h).
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "brickfs/version.h"
#include "common/log.h"
#include "common/text.h"
#include "format/json.h"
#include "volume/pyramid_settings.h"
#include "volume/slab.h"
#include "volume/volume.h"

namespace brickfs {

void Volume::RecordError(const std::string& file, const std::string& message) {
  // Names come from whoever writes to the mount: spelled out so that the
  // status stays valid UTF-8 JSON and the log one line per event.
  const std::string safe_file = EscapeUntrusted(file), safe_message = EscapeUntrusted(message);
  LogWarning(safe_file + ": " + safe_message);
  std::lock_guard<std::mutex> lock(mu_);
  ++errors_total_;
  errors_.emplace_back(safe_file, safe_message);
  if (errors_.size() > 100) errors_.erase(errors_.begin());  // keep the latest
}

bool Volume::HasUnwrittenSlabs() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [i, slab] : slabs_) {
    if (slab->dirty) return true;
  }
  return false;
}

std::string Volume::StatusJson(bool pretty) const {
  // Staged files first, without mu_ (their own locks may be held by an
  // ingest that waits for mu_).
  std::pair<uint64_t, uint64_t> staged{0, 0};
  {
    std::lock_guard<std::mutex> lock(staged_mu_);
    if (staged_info_) staged = staged_info_();
  }
  std::unique_lock<std::mutex> lock(mu_);
  Json doc = Json::object();
  doc["store"] = store_->path();
  doc["pid"] = static_cast<int64_t>(::getpid());
  doc["version"] = BRICKFS_VERSION;
  doc["read_only"] = read_only();
  if (geo_) {
    doc["shape"] = geo_->shape;
    doc["dtype"] = std::string(DTypeName(geo_->dtype));
    doc["block"] = geo_->block;
    doc["brick"] = geo_->brick;
  } else {
    doc["shape"] = Json();
    doc["dtype"] = Json();
  }
  const uint64_t present = received_.Count();
  Json slices = Json::object();
  slices["present"] = present;
  slices["received"] = counters_.slices_received.load();
  slices["expected"] = geo_ && meta_.fixed_shape ? Json(geo_->shape[0]) : Json();
  slices["missing"] = MissingRanges(received_, geo_ ? geo_->shape[0] : 0);
  doc["slices"] = std::move(slices);
  uint64_t buffered = 0, flushing = 0, spooled = 0;
  for (const auto& [i, s] : slabs_) {
    if (s->state == Slab::State::kFlushing) ++flushing;
    else if (s->state == Slab::State::kSpooled) ++spooled;
    else ++buffered;
  }
  Json slabs = Json::object();
  slabs["buffered"] = buffered;
  slabs["flushing"] = flushing;
  slabs["spooled"] = spooled;
  slabs["flushed"] = counters_.slabs_flushed.load();
  slabs["spooled_total"] = counters_.slabs_spooled.load();
  doc["slabs"] = std::move(slabs);
  Json mem = Json::object();
  // used/peak: everything charged to mem= (slab buffers kept for reuse and
  // the bytes of files being written); slabs_in_use: buffers holding slabs.
  mem["used"] = budget_->used();
  mem["peak"] = budget_->peak();
  mem["budget"] = options_.mem_budget;
  mem["slab_buffers"] = budget_->used(MemoryBudget::Kind::kSlab);
  mem["slabs_in_use"] = slab_pool_ ? slab_pool_->in_use_bytes() : uint64_t{0};
  mem["slabs_peak"] = slab_pool_ ? slab_pool_->peak_bytes() : uint64_t{0};
  mem["files"] = budget_->used(MemoryBudget::Kind::kFile);
  mem["staged_files"] = staged.first;
  mem["staged_bytes"] = staged.second;
  mem["slab_bytes"] = geo_ ? geo_->slab_bytes() : uint64_t{0};
  if (cache_) {
    auto cs = cache_->GetStats();
    mem["cache_used"] = cs.bytes;
    mem["cache_budget"] = cs.budget;
    mem["cache_hits"] = cs.hits;
    mem["cache_misses"] = cs.misses;
  }
  doc["memory"] = std::move(mem);
  Json bytes = Json::object();
  uint64_t written = counters_.bytes_written.load();
  uint64_t compressed = counters_.block_bytes_written.load();
  uint64_t raw = counters_.raw_bytes_flushed.load();
  bytes["received"] = counters_.bytes_received.load();
  bytes["written"] = written;
  bytes["compressed"] = compressed;
  bytes["raw_flushed"] = raw;
  bytes["write_amplification"] = compressed ? static_cast<double>(written) / compressed : 0.0;
  bytes["compression_ratio"] = compressed ? static_cast<double>(raw) / compressed : 0.0;
  doc["bytes"] = std::move(bytes);
  Json blocks = Json::object();
  blocks["bricks_replaced"] = counters_.bricks_written.load();
  blocks["written"] = counters_.blocks_written.load();
  blocks["fill"] = counters_.blocks_fill.load();
  doc["blocks"] = std::move(blocks);
  Json pyr = Json::object();
  const int built = level_count_.load();
  pyr["enabled"] = options_.pyramid;
  pyr["levels"] = geo_ && geo_->shape[0] > 0 && built > 1
                     ? std::min(built, NumLevels(geo_->shape, geo_->brick))
                     : 1;
  pyr["downsample"] = meta_.downsample_method;
  pyr["pending_bytes"] = pyr_bytes_.load();
  pyr["peak_buffer_bytes"] = pyr_peak_bytes_.load();  // pending rows + slabs downsampled
  pyr["rows_written"] = pyr_rows_written_.load();
  pyr["bytes_written"] = pyr_bytes_written_.load();
  doc["pyramid"] = std::move(pyr);
  doc["elapsed_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  doc["finalized"] = finalized_;
  Json errors = Json::array();
  for (const auto& [f, m] : errors_) errors.push_back(Json{{"file", f}, {"message", m}});
  doc["errors"] = std::move(errors);
  doc["errors_total"] = errors_total_;
  return pretty ? DumpJson(doc, 2) + "\n" : DumpJson(doc);
}

}  // namespace brickfs
