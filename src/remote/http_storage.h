// A read-only Storage over HTTP(S): the objects of a store below a base URL
// (key "0/c/1/2/3" is BASE/0/c/1/2/3), fetched with range requests through
// HttpClient and kept in the persistent DiskCache, so that a volume on a web
// server or an object store is read by fetching only the shard indexes and
// blocks that reads touch, once.
//
// Freshness: each object is revalidated once per HttpStorage (per mount),
// the first time it is used: a whole object (metadata) and a shard's tail
// by a conditional GET (If-None-Match / If-Modified-Since: a 304 costs no
// body), anything else by a HEAD. Later uses trust that validation. The
// store's group document (key "zarr.json", which brickfs rewrites with every
// session that changes the store) vouches for the rest: once it is found
// unchanged (304), every other object the cache has a record of is taken as
// recorded, without a request, so a second mount reads cached planes with
// no request but the metadata's revalidation. When it has changed (or was
// not cached), everything cached of the store is dropped first, so that no
// record of a previous version is trusted. (A shard replaced on the server
// while the group document stays the same, which brickfs never does, is
// then not noticed until the group changes.) Blocks
// fetched afterwards are asked for with If-Match on the validator their
// index was read under, and every response's ETag / Last-Modified / size
// is compared with it: an object that changed on the server while mounted
// fails the read (IOError naming the URL and both versions; remount to see
// the new version) and everything cached from its old version is dropped.
// So the cache never serves bytes of another version of an object than the
// one the server had when this mount first used it.
//
// Errors: a 404 is NotFound (the engine's fill value); every other failure
// (a 401/403, a 5xx or a dropped connection after the retries of
// HttpClient, a timeout, a response that never validated) is IOError with
// errno EIO, so that a read of a mounted file fails with EIO; its message
// names the URL and the HTTP status or network error, and the last is kept
// for the status document. Every operation
// finishes within RemoteOptions::op_timeout_ms. Bytes of blocks enter the
// cache only after the reader's visit accepted them (the engine checks each
// block's crc32c there); whole objects and tails after HTTP validation
// (length, Content-Range, validator).
//
// Offline (RemoteOptions::offline): no request at all; what the cache holds
// is served as it was last validated, and anything else fails with EIO
// ("offline: URL ... is not in the cache DIR").
//
// Writing, listing and Identity: Unsupported / 0 (a remote store is
// read-only and cannot be listed over plain HTTP).
//
// Thread-safety: all methods are thread-safe (Storage's rule).
#ifndef BRICKFS_REMOTE_HTTP_STORAGE_H_
#define BRICKFS_REMOTE_HTTP_STORAGE_H_

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "brickfs/status.h"
#include "remote/disk_cache.h"
#include "remote/http_client.h"
#include "remote/remote_options.h"
#include "store/storage.h"

namespace brickfs {

class HttpStorage : public Storage {
 public:
  // Opens the store at `url` (http:// or https://; NormalizeStoreUrl's
  // checks), reading options.auth_file (ReadAuthFile's checks) and opening
  // the cache (options.cache_dir, else DefaultCacheDir()). Makes no request.
  static Result<std::unique_ptr<HttpStorage>> Open(std::string_view url,
                                                   const RemoteOptions& options);
  ~HttpStorage() override;

  std::string Locate(std::string_view key) const override;
  bool read_only() const override { return true; }

  Result<std::string> Get(std::string_view key, uint64_t max_bytes) override;
  Result<uint64_t> Size(std::string_view key) override;
  Result<Tail> ReadTail(std::string_view key, uint64_t n, uint64_t cut_at = UINT64_MAX) override;
  Status ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                    const RangeVisitor& visit) override;
  void Prefetch(std::string_view key, const std::vector<Range>& ranges) override;
  // 0: bytes between blocks cost transfer; requests are coalesced here
  // (RemoteOptions::coalesce_gap, within a bound of dropped bytes).
  uint64_t read_through_gap() const override { return 0; }
  Result<std::vector<std::string>> List(std::string_view prefix) override;
  Result<uint64_t> Identity(std::string_view key) override;

  Status WriteAt(std::string_view key, uint64_t offset, std::string_view bytes) override;
  Status Truncate(std::string_view key, uint64_t length) override;
  Status Replace(std::string_view key, std::string_view bytes,
                 const BeforeVisible& before_visible) override;
  Status Remove(std::string_view key) override;
  Status Sync(const std::vector<std::string>& keys, ThreadPool* io = nullptr) override;

  // Ends the I/O thread (cancelling what is in flight) so that the process
  // can fork, as `brickfs mount` does when it daemonizes after reading the
  // store's metadata; the next request starts a new one. Call it while no
  // operation runs.
  void Suspend();

  const std::string& url() const { return base_; }
  const RemoteOptions& options() const { return options_; }
  DiskCache* cache() { return cache_.get(); }

  struct Stats {
    HttpClient::Stats http;
    DiskCache::Stats cache;
    uint64_t objects_checked = 0;   // revalidated (or, offline, taken from the cache)
    uint64_t objects_changed = 0;   // found changed on the server
    uint64_t errors = 0;            // failed operations (not counting 404)
    std::string last_error;         // the message of the last one
  };
  Stats stats() const;

 private:
  HttpStorage(std::string base, const RemoteOptions& options, const Credentials& credentials,
              std::unique_ptr<DiskCache> cache, std::unique_ptr<HttpClient> client);
  // The client, started again after Suspend (IOError when curl cannot be
  // set up).
  Result<std::shared_ptr<HttpClient>> Client();

  // What this mount knows of an object.
  struct ObjectState {
    bool checked = false;  // validated by this mount
    bool absent = false;   // 404
    Validator validator;
  };
  // Bytes being fetched (by a reader or a prefetch); others wanting the
  // same bytes wait for them and then read the cache.
  struct Inflight {
    explicit Inflight(const Range& r) : range(r) {}
    const Range range;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };

  Status CheckKey(std::string_view key) const;
  // The object's state, validating it (HEAD) when this mount has not yet.
  Result<ObjectState> Validate(std::string_view key, const std::string& url);
  ObjectState Known(std::string_view key);
  // Records what the server said about an object (in memory and in the
  // cache; a conflicting validator drops its cached entries).
  void Learn(std::string_view key, const std::string& url, const Validator& v, bool absent);
  // The object's record in the cache taken as this mount's state; nullopt
  // without one.
  std::optional<ObjectState> Adopt(std::string_view key, const std::string& url);
  // Offline: the object's record in the cache, or the EIO error.
  Result<ObjectState> FromCache(std::string_view key, const std::string& url);
  // Whether the group document was seen this mount (records are trusted).
  bool StoreCurrent() const;
  // The group document was revalidated: `changed` drops the store's cached
  // objects first; then records are trusted.
  void GroupSeen(bool changed);
  Status Fail(Status s);
  Status OfflineMiss(const std::string& url, const std::string& what) const;
  Status Changed(std::string_view key, const std::string& url, const Validator& was,
                 const Validator& now);
  // Fetches ranges[i] for i in `wanted` (validated object, version `v`),
  // visits each and caches it.
  Status FetchRanges(std::string_view key, const std::string& url, const Validator& v,
                     const std::vector<Range>& ranges, const std::vector<size_t>& wanted,
                     const RangeVisitor& visit);
  std::string InflightKey(const std::string& url, const Range& r) const;
  // The fetches in flight of bytes of `url` that overlap `r`. REQUIRES: mu_.
  std::vector<std::shared_ptr<Inflight>> OverlappingLocked(const std::string& url,
                                                           const Range& r) const;
  void ReleaseInflight(const std::vector<std::string>& keys);

  const std::string base_;
  const RemoteOptions options_;
  const Credentials credentials_;
  const std::unique_ptr<DiskCache> cache_;

  mutable std::mutex client_mu_;
  std::shared_ptr<HttpClient> client_;  // guarded by client_mu_; reset first in the destructor
  HttpClient::Stats http_before_;       // guarded by client_mu_: of clients ended by Suspend

  mutable std::mutex mu_;
  std::map<std::string, ObjectState, std::less<>> objects_;          // guarded by mu_
  std::map<std::string, std::shared_ptr<Inflight>> inflight_;        // guarded by mu_
  uint64_t prefetch_bytes_ = 0;                                      // guarded by mu_
  bool store_current_ = false;                                       // guarded by mu_
  uint64_t objects_checked_ = 0, objects_changed_ = 0, errors_ = 0;  // guarded by mu_
  std::string last_error_;                                           // guarded by mu_
};

}  // namespace brickfs

#endif  // BRICKFS_REMOTE_HTTP_STORAGE_H_
