// Settings of a remote (HTTP/HTTPS) store: where its cache lives, how long
// a request may take, how hard to retry, how requests are shaped. Parsed
// from mount options (-o cache_dir=,cache_size=,offline,auth_file=,...);
// every field carries its default here.
//
// Also the checks of a store URL (scheme, no credentials) and the default
// cache directory. Thread-safety: values and pure functions.
#ifndef BRICKFS_REMOTE_REMOTE_OPTIONS_H_
#define BRICKFS_REMOTE_REMOTE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "brickfs/status.h"

namespace brickfs {

struct RemoteOptions {
  // The persistent cache (remote/disk_cache.h). Empty: DefaultCacheDir().
  std::string cache_dir;
  // Bound of the cache's bytes on disk; least recently used entries go first.
  uint64_t cache_size = uint64_t{4} << 30;
  // Read only from the cache; anything missing fails (EIO) naming the URL.
  bool offline = false;
  // A file holding "user:password" (basic auth) or "bearer TOKEN"; it must
  // not be readable by group or others. Empty: no credentials.
  std::string auth_file;
  // A PEM bundle of CA certificates to trust instead of the system's (a
  // private CA, or the tests' self-signed server). Empty: the system's.
  std::string ca_file;

  // ---- Time limits: nothing waits forever ---------------------------------
  // Establishing a connection (TCP + TLS).
  uint32_t connect_timeout_ms = 10'000;
  // A transfer that moves fewer than `stall_bytes_per_s` bytes per second for
  // this long is abandoned (and retried while the deadline allows).
  uint32_t stall_timeout_ms = 15'000;
  uint32_t stall_bytes_per_s = 1024;
  // Every storage operation (one Get, one ReadTail, one ReadRanges batch)
  // ends within this time, retries included: after it the read fails (EIO).
  uint32_t op_timeout_ms = 60'000;

  // ---- Retries (5xx, 429, 408, dropped connections, bad responses) --------
  uint32_t max_attempts = 6;
  // Backoff before attempt k+1: min(backoff_max, backoff_initial * 2^(k-1)),
  // scaled by a random factor in [0.5, 1] (jitter).
  uint32_t backoff_initial_ms = 100;
  uint32_t backoff_max_ms = 5'000;
  // A Retry-After (429, 503) is honoured up to this wait.
  uint32_t retry_after_max_ms = 10'000;

  // ---- Request shaping -----------------------------------------------------
  // Requests in flight at once (HTTP/1.1 connections, or HTTP/2 streams).
  uint32_t max_in_flight = 8;
  // Ranges of one object closer than this are fetched in one request (the
  // bytes between are dropped), as long as the dropped bytes stay under
  // 1/16 of the bytes wanted.
  uint64_t coalesce_gap = 16 << 10;
  // No coalesced request grows past this (several run in parallel instead).
  uint64_t max_request_bytes = 8 << 20;
  // Prefetched bytes in flight at once; hints past it are dropped.
  uint64_t prefetch_bytes = 64 << 20;
};

// $XDG_CACHE_HOME/brickfs when XDG_CACHE_HOME is an absolute path, else
// ~/.cache/brickfs (HOME, else the password database). InvalidArgument when
// no home directory can be found.
Result<std::string> DefaultCacheDir();

// True for "http://..." and "https://..." (case-insensitive scheme): what
// `brickfs mount` treats as a remote store.
bool IsRemoteUrl(std::string_view source);

// Checks a store URL and returns it without trailing '/'. InvalidArgument
// (naming the URL and the reason) for: a scheme other than http/https, no
// host, credentials in the URL ("user:pass@host": they would show in `ps`
// and the status; use auth_file), a query or fragment, control characters
// or spaces.
Result<std::string> NormalizeStoreUrl(std::string_view url);

// `url` with credentials, if any, removed: for messages.
std::string RedactUrl(std::string_view url);

}  // namespace brickfs

#endif  // BRICKFS_REMOTE_REMOTE_OPTIONS_H_
