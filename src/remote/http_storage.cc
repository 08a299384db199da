#include "remote/http_storage.h"

#include <algorithm>
#include <cerrno>
#include <ctime>

#include "common/log.h"
#include "common/scope_guard.h"
#include "remote/auth.h"
#include "remote/range_plan.h"

namespace brickfs {

namespace {

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string Escape(std::string_view key) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size());
  for (unsigned char c : key) {
    if (Unreserved(c) || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Bytes(const Storage::Range& r) {
  return "bytes " + std::to_string(r.offset) + "-" + std::to_string(r.offset + r.length - 1);
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// The store's group document: brickfs rewrites it whenever it changes the
// store (every write session), so it vouches for the rest.
constexpr std::string_view kGroupKey = "zarr.json";

}  // namespace

HttpStorage::HttpStorage(std::string base, const RemoteOptions& options,
                         const Credentials& credentials, std::unique_ptr<DiskCache> cache,
                         std::unique_ptr<HttpClient> client)
    : base_(std::move(base)),
      options_(options),
      credentials_(credentials),
      cache_(std::move(cache)),
      client_(std::move(client)) {}

HttpStorage::~HttpStorage() {
  // Prefetch callbacks touch this object: stop them first.
  Suspend();
}

void HttpStorage::Suspend() {
  std::shared_ptr<HttpClient> client;
  {
    std::lock_guard<std::mutex> lock(client_mu_);
    client.swap(client_);
    if (client) http_before_ += client->stats();
  }
  client.reset();  // joins its I/O thread (outside client_mu_: callbacks run until then)
}

Result<std::shared_ptr<HttpClient>> HttpStorage::Client() {
  std::lock_guard<std::mutex> lock(client_mu_);
  if (!client_) {
    BRICKFS_ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> c,
                             HttpClient::Create(options_, credentials_));
    client_ = std::move(c);
  }
  return client_;
}

Result<std::unique_ptr<HttpStorage>> HttpStorage::Open(std::string_view url,
                                                       const RemoteOptions& options) {
  BRICKFS_ASSIGN_OR_RETURN(std::string base, NormalizeStoreUrl(url));
  Credentials credentials;
  if (!options.auth_file.empty()) {
    BRICKFS_ASSIGN_OR_RETURN(credentials, ReadAuthFile(options.auth_file));
  }
  std::string dir = options.cache_dir;
  if (dir.empty()) {
    BRICKFS_ASSIGN_OR_RETURN(dir, DefaultCacheDir());
  }
  BRICKFS_ASSIGN_OR_RETURN(std::unique_ptr<DiskCache> cache,
                           DiskCache::Open(DiskCache::Options{dir, options.cache_size}));
  BRICKFS_ASSIGN_OR_RETURN(std::unique_ptr<HttpClient> client,
                           HttpClient::Create(options, credentials));
  RemoteOptions resolved = options;
  resolved.cache_dir = dir;
  return std::unique_ptr<HttpStorage>(new HttpStorage(std::move(base), resolved, credentials,
                                                      std::move(cache), std::move(client)));
}

std::string HttpStorage::Locate(std::string_view key) const {
  if (key.empty()) return base_;
  return base_ + "/" + Escape(key);
}

Status HttpStorage::CheckKey(std::string_view key) const {
  const std::string problem = KeyProblem(key);
  if (problem.empty()) return Status::Ok();
  return Status::InvalidArgument(base_ + ": bad key \"" + std::string(key) + "\": " + problem);
}

Status HttpStorage::Fail(Status s) {
  if (s.ok() || s.code() == Status::Code::kNotFound) return s;
  // The engine and the reader see EIO whatever went wrong (a 403, a
  // timeout); the message says what.
  if (s.code() == Status::Code::kIOError && s.err() != EIO) s = Status::IOError(s.message(), EIO);
  LogWarning("remote: " + s.ToString());
  std::lock_guard<std::mutex> lock(mu_);
  errors_ += 1;
  last_error_ = s.ToString();
  return s;
}

Status HttpStorage::OfflineMiss(const std::string& url, const std::string& what) const {
  return Status::IOError("offline: " + url + (what.empty() ? "" : " (" + what + ")") +
                             " is not in the cache " + cache_->dir(),
                         EIO);
}

HttpStorage::ObjectState HttpStorage::Known(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? ObjectState{} : it->second;
}

void HttpStorage::Learn(std::string_view key, const std::string& url, const Validator& v,
                        bool absent) {
  DiskCache::ObjectRecord rec;
  rec.base = base_;
  rec.validator = v;
  rec.absent = absent;
  rec.checked_at = UnixNow();
  bool invalidated = false;
  const Status s = cache_->RecordObject(url, rec, &invalidated);
  if (!s.ok()) LogWarning("remote: cannot record " + url + " in the cache: " + s.ToString());
  if (invalidated) {
    LogInfo("remote: " + url + " changed on the server (now " +
            (absent ? std::string("absent") : v.ToString()) + "); what was cached from it was dropped");
  }
  std::lock_guard<std::mutex> lock(mu_);
  ObjectState& st = objects_[std::string(key)];
  if (!st.checked) objects_checked_ += 1;
  if (invalidated) objects_changed_ += 1;
  st.checked = true;
  st.absent = absent;
  st.validator = v;
}

std::optional<HttpStorage::ObjectState> HttpStorage::Adopt(std::string_view key,
                                                           const std::string& url) {
  const std::optional<DiskCache::ObjectRecord> rec = cache_->LookupObject(url);
  if (!rec) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  ObjectState& st = objects_[std::string(key)];
  if (!st.checked) objects_checked_ += 1;
  st.checked = true;
  st.absent = rec->absent;
  st.validator = rec->validator;
  return st;
}

Result<HttpStorage::ObjectState> HttpStorage::FromCache(std::string_view key,
                                                        const std::string& url) {
  if (std::optional<ObjectState> st = Adopt(key, url)) return *st;
  return OfflineMiss(url, "");
}

bool HttpStorage::StoreCurrent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return store_current_;
}

void HttpStorage::GroupSeen(bool changed) {
  if (changed) {
    // What is cached of the store may be of the previous version.
    auto cleared = DiskCache::Clear(cache_->dir(), base_);
    if (!cleared.ok()) {
      LogWarning("remote: " + base_ + " changed on the server, but its cached objects could not be "
                 "dropped (" + cleared.status().message() + "): they will be revalidated one by one");
      return;
    }
    if (cleared->objects > 0) {
      LogInfo("remote: " + base_ + "/zarr.json changed on the server: dropped " +
              std::to_string(cleared->objects) + " objects cached from the previous version");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  store_current_ = true;
}

Result<HttpStorage::ObjectState> HttpStorage::Validate(std::string_view key,
                                                       const std::string& url) {
  ObjectState st = Known(key);
  if (st.checked) return st;
  if (options_.offline) return FromCache(key, url);
  if (StoreCurrent()) {
    if (std::optional<ObjectState> adopted = Adopt(key, url)) return *adopted;
  }
  HttpRequest req;
  req.method = HttpRequest::Method::kHead;
  req.url = url;
  BRICKFS_ASSIGN_OR_RETURN(const std::shared_ptr<HttpClient> client, Client());
  auto r = client->Fetch(std::move(req));
  if (!r.ok()) return Fail(r.status());
  if (r->status == 404) {
    Learn(key, url, Validator{}, true);
  } else if (r->status == 200) {
    Learn(key, url, r->validator, false);
  } else {
    return Fail(Status::IOError("HEAD " + url + ": unexpected HTTP " + std::to_string(r->status), EIO));
  }
  return Known(key);
}

Status HttpStorage::Changed(std::string_view key, const std::string& url, const Validator& was,
                            const Validator& now) {
  if (now.etag.empty() && now.last_modified.empty() && !now.has_size()) {
    // Only "it changed" is known (a 412): learn the new version.
    {
      std::lock_guard<std::mutex> lock(mu_);
      objects_[std::string(key)].checked = false;
    }
    auto fresh = Validate(key, url);
    return Fail(Status::IOError(url + " changed on the server while mounted (was " + was.ToString() +
                                    (fresh.ok() ? ", now " + fresh->validator.ToString() : "") +
                                    "); remount to read the new version",
                                EIO));
  }
  Learn(key, url, now, false);
  return Fail(Status::IOError(url + " changed on the server while mounted (was " + was.ToString() +
                                  ", now " + now.ToString() + "); remount to read the new version",
                              EIO));
}

// ---- Reading ------------------------------------------------------------------------

Result<std::string> HttpStorage::Get(std::string_view key, uint64_t max_bytes) {
  BRICKFS_RETURN_IF_ERROR(CheckKey(key));
  const std::string url = Locate(key);
  const std::string name = DiskCache::WholeEntry();
  const auto too_big = [&](uint64_t size) {
    return Status::InvalidArgument(url + ": " + std::to_string(size) + " bytes, more than the " +
                                   std::to_string(max_bytes) + " allowed");
  };
  ObjectState st = Known(key);
  if (!st.checked && options_.offline) {
    BRICKFS_ASSIGN_OR_RETURN(st, FromCache(key, url));
  }
  if (st.checked) {
    if (st.absent) return Status::NotFound(url + ": not found (HTTP 404)");
    if (auto hit = cache_->Lookup(url, name, st.validator)) {
      if (hit->size() > max_bytes) return too_big(hit->size());
      return std::move(*hit);
    }
    if (options_.offline) return Fail(OfflineMiss(url, ""));
  }
  const std::optional<DiskCache::ObjectRecord> rec = cache_->LookupObject(url);
  std::optional<std::string> cached;
  if (rec && !rec->absent) cached = cache_->Lookup(url, name, rec->validator);
  HttpRequest req;
  req.url = url;
  req.max_body = max_bytes;
  if (cached) req.if_none_match = rec->validator;
  BRICKFS_ASSIGN_OR_RETURN(const std::shared_ptr<HttpClient> client, Client());
  auto r = client->Fetch(std::move(req));
  if (!r.ok()) return Fail(r.status());
  const bool group = key == kGroupKey;
  switch (r->status) {
    case 304:
      Learn(key, url, rec->validator, false);
      if (group) GroupSeen(false);
      if (cached->size() > max_bytes) return too_big(cached->size());
      return std::move(*cached);
    case 200: {
      if (group) GroupSeen(!rec || rec->absent || rec->validator.Conflicts(r->validator));
      Learn(key, url, r->validator, false);
      const Status s = cache_->Insert(url, name, r->validator, r->body);
      if (!s.ok()) LogWarning("remote: " + s.ToString());
      return std::move(r->body);
    }
    case 404:
      Learn(key, url, Validator{}, true);
      return Status::NotFound(url + ": not found (HTTP 404)");
    default:
      return Fail(Status::IOError("GET " + url + ": unexpected HTTP " + std::to_string(r->status), EIO));
  }
}

Result<uint64_t> HttpStorage::Size(std::string_view key) {
  BRICKFS_RETURN_IF_ERROR(CheckKey(key));
  const std::string url = Locate(key);
  BRICKFS_ASSIGN_OR_RETURN(const ObjectState st, Validate(key, url));
  if (st.absent) return Status::NotFound(url + ": not found (HTTP 404)");
  if (!st.validator.has_size()) {
    return Fail(Status::IOError(url + ": the server does not tell the object's size", EIO));
  }
  return st.validator.size;
}

Result<Storage::Tail> HttpStorage::ReadTail(std::string_view key, uint64_t n, uint64_t cut_at) {
  BRICKFS_RETURN_IF_ERROR(CheckKey(key));
  const std::string url = Locate(key);
  if (cut_at != UINT64_MAX) {
    return Status::Unsupported(url + ": a remote store is read-only (no recovery cut)");
  }
  if (n == 0) {
    BRICKFS_ASSIGN_OR_RETURN(const uint64_t size, Size(key));
    return Tail{"", size};
  }
  const std::string name = DiskCache::TailEntry(n);
  ObjectState st = Known(key);
  if (!st.checked && options_.offline) {
    BRICKFS_ASSIGN_OR_RETURN(st, FromCache(key, url));
  } else if (!st.checked && StoreCurrent()) {
    if (std::optional<ObjectState> adopted = Adopt(key, url)) st = *adopted;
  }
  if (st.checked) {
    if (st.absent) return Status::NotFound(url + ": not found (HTTP 404)");
    if (st.validator.has_size()) {
      if (auto hit = cache_->Lookup(url, name, st.validator)) return Tail{std::move(*hit), st.validator.size};
    }
    if (options_.offline) return Fail(OfflineMiss(url, "its last " + std::to_string(n) + " bytes"));
  }
  const std::optional<DiskCache::ObjectRecord> rec = cache_->LookupObject(url);
  std::optional<std::string> cached;
  if (rec && !rec->absent && rec->validator.has_size()) cached = cache_->Lookup(url, name, rec->validator);
  HttpRequest req;
  req.url = url;
  req.suffix = n;
  if (cached) req.if_none_match = rec->validator;
  BRICKFS_ASSIGN_OR_RETURN(const std::shared_ptr<HttpClient> client, Client());
  auto r = client->Fetch(std::move(req));
  if (!r.ok()) return Fail(r.status());
  switch (r->status) {
    case 304:
      Learn(key, url, rec->validator, false);
      return Tail{std::move(*cached), rec->validator.size};
    case 200:
    case 206: {
      Learn(key, url, r->validator, false);
      const Status s = cache_->Insert(url, name, r->validator, r->body);
      if (!s.ok()) LogWarning("remote: " + s.ToString());
      return Tail{std::move(r->body), r->validator.size};
    }
    case 416:
      if (r->validator.size == 0) {  // an empty object has no last bytes
        Learn(key, url, r->validator, false);
        return Tail{"", 0};
      }
      break;
    case 404:
      Learn(key, url, Validator{}, true);
      return Status::NotFound(url + ": not found (HTTP 404)");
    default:
      break;
  }
  return Fail(Status::IOError("GET " + url + " (bytes=-" + std::to_string(n) + "): unexpected HTTP " +
                                  std::to_string(r->status),
                              EIO));
}

std::string HttpStorage::InflightKey(const std::string& url, const Range& r) const {
  return url + '\n' + DiskCache::RangeEntry(r.offset, r.length);
}

std::vector<std::shared_ptr<HttpStorage::Inflight>> HttpStorage::OverlappingLocked(
    const std::string& url, const Range& r) const {
  std::vector<std::shared_ptr<Inflight>> out;
  const std::string prefix = url + '\n';
  for (auto it = inflight_.lower_bound(prefix);
       it != inflight_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    const Range& f = it->second->range;
    if (f.offset < r.offset + r.length && r.offset < f.offset + f.length) out.push_back(it->second);
  }
  return out;
}

void HttpStorage::ReleaseInflight(const std::vector<std::string>& keys) {
  std::vector<std::shared_ptr<Inflight>> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& k : keys) {
      auto it = inflight_.find(k);
      if (it == inflight_.end()) continue;
      done.push_back(std::move(it->second));
      inflight_.erase(it);
    }
  }
  for (auto& f : done) {
    std::lock_guard<std::mutex> lock(f->mu);
    f->done = true;
    f->cv.notify_all();
  }
}

Status HttpStorage::ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                               const RangeVisitor& visit) {
  BRICKFS_RETURN_IF_ERROR(CheckKey(key));
  const std::string url = Locate(key);
  for (const Range& r : ranges) {
    if (r.offset + r.length < r.offset) {
      return Status::InvalidArgument(url + ": range at " + std::to_string(r.offset) + " of " +
                                     std::to_string(r.length) + " bytes wraps around");
    }
  }
  if (ranges.empty()) return Status::Ok();
  BRICKFS_ASSIGN_OR_RETURN(const ObjectState st, Validate(key, url));
  if (st.absent) return Status::NotFound(url + ": not found (HTTP 404)");
  const Validator& v = st.validator;
  std::vector<size_t> misses;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].length == 0) {
      BRICKFS_RETURN_IF_ERROR(visit(i, std::string_view()));
      continue;
    }
    if (auto hit = cache_->LookupRange(url, ranges[i].offset, ranges[i].length, v)) {
      const Status s = visit(i, *hit);
      if (s.code() == Status::Code::kCorruption) {
        // The reader refused the cached bytes (a block failing its crc32c,
        // cached by a prefetch from a bad response): they go, and the next
        // read fetches them again. (Not refetched now: a range is visited
        // once.)
        LogWarning("remote: cached bytes of " + url + " " + Bytes(ranges[i]) + " refused (" +
                   s.message() + "); dropped from the cache");
        cache_->DropRange(url, ranges[i].offset, ranges[i].length);
      }
      BRICKFS_RETURN_IF_ERROR(s);
      continue;
    }
    misses.push_back(i);
  }
  if (misses.empty()) return Status::Ok();
  if (options_.offline) return Fail(OfflineMiss(url, Bytes(ranges[misses.front()])));
  // Bytes someone else is already fetching are waited for, not fetched again.
  std::vector<size_t> mine;
  // (A prefetch may be fetching them in other pieces: any overlap is waited
  // for, and the cache pieces the bytes together.)
  std::vector<std::pair<size_t, std::vector<std::shared_ptr<Inflight>>>> theirs;
  std::vector<std::string> registered;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i : misses) {
      std::vector<std::shared_ptr<Inflight>> overlapping = OverlappingLocked(url, ranges[i]);
      if (!overlapping.empty()) {
        theirs.emplace_back(i, std::move(overlapping));
      } else {
        std::string k = InflightKey(url, ranges[i]);
        inflight_.emplace(k, std::make_shared<Inflight>(ranges[i]));
        registered.push_back(std::move(k));
        mine.push_back(i);
      }
    }
  }
  {
    ScopeGuard release([&] { ReleaseInflight(registered); });
    BRICKFS_RETURN_IF_ERROR(FetchRanges(key, url, v, ranges, mine, visit));
  }
  std::vector<size_t> again;
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.op_timeout_ms);
  for (auto& [i, fetches] : theirs) {
    for (const std::shared_ptr<Inflight>& f : fetches) {
      std::unique_lock<std::mutex> lock(f->mu);
      f->cv.wait_until(lock, deadline, [&] { return f->done; });
    }
    if (auto hit = cache_->LookupRange(url, ranges[i].offset, ranges[i].length, v)) {
      BRICKFS_RETURN_IF_ERROR(visit(i, *hit));
    } else {
      again.push_back(i);  // the other fetch failed or its bytes were not kept
    }
  }
  return FetchRanges(key, url, v, ranges, again, visit);
}

Status HttpStorage::FetchRanges(std::string_view key, const std::string& url, const Validator& v,
                                const std::vector<Range>& ranges, const std::vector<size_t>& wanted,
                                const RangeVisitor& visit) {
  if (wanted.empty()) return Status::Ok();
  const std::vector<FetchRun> runs =
      PlanFetches(ranges, wanted, options_.coalesce_gap, options_.max_request_bytes);
  BRICKFS_ASSIGN_OR_RETURN(const std::shared_ptr<HttpClient> client, Client());
  HttpBatch batch(client.get(), HttpClient::Priority::kDemand,
                  Clock::now() + std::chrono::milliseconds(options_.op_timeout_ms));
  for (const FetchRun& run : runs) {
    HttpRequest req;
    req.url = url;
    req.offset = run.begin;
    req.length = run.end - run.begin;
    if (!v.etag.empty() || !v.last_modified.empty()) req.if_match = v;
    batch.Add(std::move(req));
  }
  while (auto next = batch.Next()) {
    auto& [index, result] = *next;
    if (!result.ok()) return Fail(result.status());
    const HttpResponse& r = *result;
    const FetchRun& run = runs[index];
    const Range asked{run.begin, run.end - run.begin};
    switch (r.status) {
      case 206:
        break;
      case 412:
        return Changed(key, url, v, Validator{});
      case 416:
        return Fail(Status::Corruption(url + ": " + Bytes(asked) + " lie past the end of the object" +
                                       (r.validator.has_size()
                                            ? " (" + std::to_string(r.validator.size) + " bytes)"
                                            : "")));
      case 404:
        return Fail(Status::IOError(url + " vanished from the server while mounted (HTTP 404)", EIO));
      default:
        return Fail(Status::IOError("GET " + url + " (" + Bytes(asked) + "): unexpected HTTP " +
                                        std::to_string(r.status),
                                    EIO));
    }
    if (r.validator.Conflicts(v)) return Changed(key, url, v, r.validator);
    const uint64_t got_end = r.first + r.body.size();
    for (size_t i : run.members) {
      const Range& want = ranges[i];
      if (want.offset + want.length > got_end) {
        return Fail(Status::Corruption(url + ": " + Bytes(want) + " lie past the end of the object (" +
                                       std::to_string(r.validator.size) + " bytes)"));
      }
      const std::string_view bytes =
          std::string_view(r.body).substr(want.offset - r.first, want.length);
      BRICKFS_RETURN_IF_ERROR(visit(i, bytes));
      const Status s = cache_->Insert(url, DiskCache::RangeEntry(want.offset, want.length), v, bytes);
      if (!s.ok()) LogWarning("remote: " + s.ToString());
    }
  }
  return Status::Ok();
}

void HttpStorage::Prefetch(std::string_view key, const std::vector<Range>& ranges) {
  if (options_.offline || !KeyProblem(key).empty()) return;
  const ObjectState st = Known(key);
  if (!st.checked || st.absent) return;  // a hint: no validation round trip for it
  const std::string url = Locate(key);
  const auto client = Client();
  if (!client.ok()) return;
  std::vector<size_t> wanted;
  std::vector<std::string> registered;
  uint64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < ranges.size(); ++i) {
      const Range& r = ranges[i];
      if (r.length == 0 || r.offset + r.length < r.offset) continue;
      if (prefetch_bytes_ + bytes + r.length > options_.prefetch_bytes) break;
      std::string k = InflightKey(url, r);
      if (!OverlappingLocked(url, r).empty()) continue;
      wanted.push_back(i);
      registered.push_back(std::move(k));
      bytes += r.length;
    }
  }
  // The cache check reads files: outside the lock, then claim what is left.
  std::vector<size_t> fetch;
  std::vector<std::string> claimed;
  {
    std::vector<bool> cached(wanted.size());
    for (size_t j = 0; j < wanted.size(); ++j) {
      const Range& r = ranges[wanted[j]];
      cached[j] = cache_->ContainsRange(url, r.offset, r.length, st.validator);
    }
    std::lock_guard<std::mutex> lock(mu_);
    bytes = 0;
    for (size_t j = 0; j < wanted.size(); ++j) {
      if (cached[j] || !OverlappingLocked(url, ranges[wanted[j]]).empty()) continue;
      if (prefetch_bytes_ + bytes + ranges[wanted[j]].length > options_.prefetch_bytes) break;
      inflight_.emplace(registered[j], std::make_shared<Inflight>(ranges[wanted[j]]));
      fetch.push_back(wanted[j]);
      claimed.push_back(registered[j]);
      bytes += ranges[wanted[j]].length;
    }
    prefetch_bytes_ += bytes;
  }
  if (fetch.empty()) return;
  const std::vector<FetchRun> runs =
      PlanFetches(ranges, fetch, options_.coalesce_gap, options_.max_request_bytes);
  const auto deadline = Clock::now() + std::chrono::milliseconds(options_.op_timeout_ms);
  for (const FetchRun& run : runs) {
    std::vector<Range> members;
    std::vector<std::string> keys;
    uint64_t run_bytes = 0;
    for (size_t i : run.members) {
      members.push_back(ranges[i]);
      keys.push_back(InflightKey(url, ranges[i]));
      run_bytes += ranges[i].length;
    }
    HttpRequest req;
    req.url = url;
    req.offset = run.begin;
    req.length = run.end - run.begin;
    if (!st.validator.etag.empty() || !st.validator.last_modified.empty()) req.if_match = st.validator;
    (*client)->Submit(
        std::move(req), HttpClient::Priority::kPrefetch, deadline, nullptr,
        [this, url, v = st.validator, members = std::move(members), keys = std::move(keys),
         run_bytes](Result<HttpResponse> r) {
          if (r.ok() && r->status == 206 && !r->validator.Conflicts(v)) {
            const uint64_t got_end = r->first + r->body.size();
            for (const Range& want : members) {
              if (want.offset + want.length > got_end) break;
              const Status s =
                  cache_->Insert(url, DiskCache::RangeEntry(want.offset, want.length), v,
                                 std::string_view(r->body).substr(want.offset - r->first, want.length));
              if (!s.ok()) LogWarning("remote: " + s.ToString());
            }
          }
          {
            std::lock_guard<std::mutex> lock(mu_);
            prefetch_bytes_ -= std::min(prefetch_bytes_, run_bytes);
          }
          ReleaseInflight(keys);
        });
  }
}

Result<std::vector<std::string>> HttpStorage::List(std::string_view prefix) {
  return Status::Unsupported(Locate(prefix) + ": an HTTP store cannot be listed");
}

Result<uint64_t> HttpStorage::Identity(std::string_view key) {
  BRICKFS_RETURN_IF_ERROR(CheckKey(key));
  return uint64_t{0};
}

// ---- Writing: never --------------------------------------------------------------------

Status HttpStorage::WriteAt(std::string_view key, uint64_t, std::string_view) {
  return Status::Unsupported(Locate(key) + ": a remote store is read-only");
}
Status HttpStorage::Truncate(std::string_view key, uint64_t) {
  return Status::Unsupported(Locate(key) + ": a remote store is read-only");
}
Status HttpStorage::Replace(std::string_view key, std::string_view, const BeforeVisible&) {
  return Status::Unsupported(Locate(key) + ": a remote store is read-only");
}
Status HttpStorage::Remove(std::string_view key) {
  return Status::Unsupported(Locate(key) + ": a remote store is read-only");
}
Status HttpStorage::Sync(const std::vector<std::string>&, ThreadPool*) {
  return Status::Unsupported(base_ + ": a remote store is read-only");
}

HttpStorage::Stats HttpStorage::stats() const {
  Stats s;
  {
    std::lock_guard<std::mutex> lock(client_mu_);
    s.http = http_before_;
    if (client_) s.http += client_->stats();
  }
  s.cache = cache_->stats();
  std::lock_guard<std::mutex> lock(mu_);
  s.objects_checked = objects_checked_;
  s.objects_changed = objects_changed_;
  s.errors = errors_;
  s.last_error = last_error_;
  return s;
}

}  // namespace brickfs
