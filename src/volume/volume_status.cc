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
  Json doc = Json::MakeObject();
  doc.Set("store", store_->path());
  doc.Set("pid", static_cast<int64_t>(::getpid()));
  doc.Set("version", BRICKFS_VERSION);
  doc.Set("read_only", read_only());
  if (geo_) {
    doc.Set("shape", Json(Json::Array{Json(geo_->shape[0]), Json(geo_->shape[1]), Json(geo_->shape[2])}));
    doc.Set("dtype", std::string(DTypeName(geo_->dtype)));
    doc.Set("block", Json(Json::Array{Json(geo_->block[0]), Json(geo_->block[1]), Json(geo_->block[2])}));
    doc.Set("brick", Json(Json::Array{Json(geo_->brick[0]), Json(geo_->brick[1]), Json(geo_->brick[2])}));
  } else {
    doc.Set("shape", Json());
    doc.Set("dtype", Json());
  }
  const uint64_t present = received_.Count();
  Json slices = Json::MakeObject();
  slices.Set("present", present);
  slices.Set("received", counters_.slices_received.load());
  slices.Set("expected", geo_ && meta_.fixed_shape ? Json(geo_->shape[0]) : Json());
  Json missing = Json::MakeArray();
  for (const auto& [a, b] : MissingRanges(received_, geo_ ? geo_->shape[0] : 0)) {
    missing.Push(Json(Json::Array{Json(a), Json(b)}));
  }
  slices.Set("missing", std::move(missing));
  doc.Set("slices", std::move(slices));
  uint64_t buffered = 0, flushing = 0, spooled = 0;
  for (const auto& [i, s] : slabs_) {
    if (s->state == Slab::State::kFlushing) ++flushing;
    else if (s->state == Slab::State::kSpooled) ++spooled;
    else ++buffered;
  }
  Json slabs = Json::MakeObject();
  slabs.Set("buffered", buffered);
  slabs.Set("flushing", flushing);
  slabs.Set("spooled", spooled);
  slabs.Set("flushed", counters_.slabs_flushed.load());
  slabs.Set("spooled_total", counters_.slabs_spooled.load());
  doc.Set("slabs", std::move(slabs));
  Json mem = Json::MakeObject();
  // used/peak: everything charged to mem= (slab buffers kept for reuse and
  // the bytes of files being written); slabs_in_use: buffers holding slabs.
  mem.Set("used", budget_->used());
  mem.Set("peak", budget_->peak());
  mem.Set("budget", options_.mem_budget);
  mem.Set("slab_buffers", budget_->used(MemoryBudget::Kind::kSlab));
  mem.Set("slabs_in_use", slab_pool_ ? slab_pool_->in_use_bytes() : uint64_t{0});
  mem.Set("slabs_peak", slab_pool_ ? slab_pool_->peak_bytes() : uint64_t{0});
  mem.Set("files", budget_->used(MemoryBudget::Kind::kFile));
  mem.Set("staged_files", staged.first);
  mem.Set("staged_bytes", staged.second);
  mem.Set("slab_bytes", geo_ ? geo_->slab_bytes() : uint64_t{0});
  if (cache_) {
    auto cs = cache_->GetStats();
    mem.Set("cache_used", cs.bytes);
    mem.Set("cache_budget", cs.budget);
    mem.Set("cache_hits", cs.hits);
    mem.Set("cache_misses", cs.misses);
  }
  doc.Set("memory", std::move(mem));
  Json bytes = Json::MakeObject();
  uint64_t written = counters_.bytes_written.load();
  uint64_t compressed = counters_.block_bytes_written.load();
  uint64_t raw = counters_.raw_bytes_flushed.load();
  bytes.Set("received", counters_.bytes_received.load());
  bytes.Set("written", written);
  bytes.Set("compressed", compressed);
  bytes.Set("raw_flushed", raw);
  bytes.Set("write_amplification", compressed ? static_cast<double>(written) / compressed : 0.0);
  bytes.Set("compression_ratio", compressed ? static_cast<double>(raw) / compressed : 0.0);
  doc.Set("bytes", std::move(bytes));
  Json blocks = Json::MakeObject();
  blocks.Set("bricks_replaced", counters_.bricks_written.load());
  blocks.Set("written", counters_.blocks_written.load());
  blocks.Set("fill", counters_.blocks_fill.load());
  doc.Set("blocks", std::move(blocks));
  Json pyr = Json::MakeObject();
  const int built = level_count_.load();
  pyr.Set("enabled", options_.pyramid);
  pyr.Set("levels", geo_ && geo_->shape[0] > 0 && built > 1
                        ? std::min(built, NumLevels(geo_->shape, geo_->brick))
                        : 1);
  pyr.Set("downsample", meta_.downsample_method);
  pyr.Set("pending_bytes", pyr_bytes_.load());
  pyr.Set("peak_buffer_bytes", pyr_peak_bytes_.load());  // pending rows + slabs downsampled
  pyr.Set("rows_written", pyr_rows_written_.load());
  pyr.Set("bytes_written", pyr_bytes_written_.load());
  doc.Set("pyramid", std::move(pyr));
  doc.Set("elapsed_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  doc.Set("finalized", finalized_);
  Json errors = Json::MakeArray();
  for (const auto& [f, m] : errors_) errors.Push(Json::MakeObject().Set("file", f).Set("message", m));
  doc.Set("errors", std::move(errors));
  doc.Set("errors_total", errors_total_);
  return pretty ? doc.Dump(2) + "\n" : doc.Dump();
}

}  // namespace brickfs
