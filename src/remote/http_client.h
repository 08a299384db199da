// HTTP(S) requests for remote stores, through libcurl: one I/O thread drives
// a curl multi handle, so that many requests are in flight at once (HTTP/1.1
// keep-alive connections, or streams of one HTTP/2 connection where the
// server offers it), connections and TLS sessions are reused, and no caller
// thread ever blocks inside curl.
//
// Each request gets at most RemoteOptions::max_attempts attempts and must
// finish by its deadline: attempts that fail with a 5xx, 429 or 408, a
// dropped or refused connection, a stalled or timed-out transfer, or a
// response that fails validation are retried after exponential backoff with
// jitter (a Retry-After is honoured up to retry_after_max_ms); whatever is
// still failing at the deadline fails for good. A response is validated
// before anyone sees it: a range request must come back as 206 with a
// Content-Range for exactly the bytes asked (a 200, meaning the server
// ignored Range, is abandoned as soon as its status arrives) and a body of
// that length; a whole-object GET must not exceed its max_body, and its body
// must match Content-Length.
//
// Final answers (returned, not errors): 200, 206, 304 (to a conditional
// request), 404, 412 (If-Match failed), 416. Errors: IOError naming the
// method, URL, range and HTTP status or curl error (errno EACCES for 401 and
// 403, ETIMEDOUT when the deadline passed, EIO otherwise); InvalidArgument
// when a whole object exceeds max_body.
//
// Thread-safety: all methods are thread-safe. Completion callbacks run on
// the I/O thread, one at a time, and must be quick (hand the result over,
// write a cache file); they must not call Fetch or wait for other requests.
#ifndef BRICKFS_REMOTE_HTTP_CLIENT_H_
#define BRICKFS_REMOTE_HTTP_CLIENT_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "brickfs/status.h"
#include "remote/auth.h"
#include "remote/remote_options.h"
#include "remote/validator.h"

namespace brickfs {

using Clock = std::chrono::steady_clock;

struct HttpRequest {
  enum class Method { kGet, kHead };
  Method method = Method::kGet;
  std::string url;
  // Which bytes: [offset, offset + length) when length > 0; else the last
  // `suffix` bytes when suffix > 0; else the whole object.
  uint64_t offset = 0, length = 0;
  uint64_t suffix = 0;
  // A whole-object GET larger than this fails (InvalidArgument) before its
  // body is read.
  uint64_t max_body = uint64_t{1} << 30;
  // A conditional request: with if_none_match, a 304 answers "unchanged";
  // with if_match, a 412 answers "changed". The ETag is used when the
  // validator has one (a strong one for If-Match), else Last-Modified.
  std::optional<Validator> if_none_match;
  std::optional<Validator> if_match;

  // "GET URL (bytes=0-99)" for messages.
  std::string Describe() const;
};

struct HttpResponse {
  long status = 0;
  std::string body;
  // ETag and Last-Modified as sent; size from Content-Range's total (206,
  // 416), the body (200 to a GET) or Content-Length (HEAD); unknown else.
  Validator validator;
  uint64_t first = 0;  // object offset of body[0] (206)
  uint32_t attempts = 0;
};

class HttpClient {
 public:
  // Starts the I/O thread. InvalidArgument when ca_file is given but
  // unreadable; IOError when curl cannot be initialized.
  static Result<std::unique_ptr<HttpClient>> Create(const RemoteOptions& options,
                                                    const Credentials& credentials);
  // Cancels what is pending (their callbacks get ECANCELED) and joins.
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Demand requests go before prefetches; prefetches use at most half of
  // the slots.
  enum class Priority { kDemand, kPrefetch };
  using Done = std::function<void(Result<HttpResponse>)>;
  // Queues `request`; `done` is called exactly once, on the I/O thread (or
  // in the destructor). A set `cancel` abandons the request (done gets
  // ECANCELED). The request fails with ETIMEDOUT at `deadline`.
  void Submit(HttpRequest request, Priority priority, Clock::time_point deadline,
              std::shared_ptr<std::atomic<bool>> cancel, Done done);

  // One request, waited for. The deadline is now + op_timeout_ms.
  Result<HttpResponse> Fetch(HttpRequest request);

  const RemoteOptions& options() const { return options_; }

  struct Stats {
    uint64_t requests = 0;        // attempts started
    uint64_t retries = 0;         // attempts after a failed one
    uint64_t failures = 0;        // requests that failed for good
    uint64_t body_bytes = 0;      // response body bytes received
    uint64_t in_flight = 0;
    long http_version = 0;        // of the last response: 11, 20 (0 none yet)
    // Adds the counters of `later` (a client that replaced this one).
    Stats& operator+=(const Stats& later) {
      requests += later.requests;
      retries += later.retries;
      failures += later.failures;
      body_bytes += later.body_bytes;
      in_flight = later.in_flight;
      if (later.http_version != 0) http_version = later.http_version;
      return *this;
    }
  };
  Stats stats() const;

  struct Call;

 private:
  HttpClient(const RemoteOptions& options, const Credentials& credentials);
  void Loop();
  void StartAttempt(Call* call);
  void FinishAttempt(Call* call, int curl_code);
  // Completes and frees a call.
  void Complete(Call* call, Result<HttpResponse> result);
  // Retries or fails a call whose attempt failed with `why`.
  void RetryOrFail(Call* call, Status why, std::optional<Clock::duration> retry_after);
  Clock::duration Backoff(uint32_t attempts);

  const RemoteOptions options_;
  const Credentials credentials_;
  void* multi_ = nullptr;  // CURLM*, used on the I/O thread only

  std::mutex mu_;
  std::vector<Call*> submitted_;  // guarded by mu_
  bool stopping_ = false;         // guarded by mu_

  // I/O thread only:
  std::deque<Call*> demand_, prefetch_;
  std::vector<std::pair<Clock::time_point, Call*>> waiting_;  // retries not yet due
  std::vector<Call*> active_;
  uint64_t rng_state_ = 0x9e3779b97f4a7c15ull;

  std::atomic<uint64_t> requests_{0}, retries_{0}, failures_{0}, body_bytes_{0}, in_flight_{0};
  std::atomic<long> http_version_{0};
  std::thread thread_;
};

// Requests that run together: Add several, then take results as they come.
// Destroying a batch (or an error from Next) abandons what is still running.
// Thread-safety: one thread uses a batch.
class HttpBatch {
 public:
  HttpBatch(HttpClient* client, HttpClient::Priority priority, Clock::time_point deadline);
  ~HttpBatch();
  HttpBatch(const HttpBatch&) = delete;
  HttpBatch& operator=(const HttpBatch&) = delete;

  // Starts a request; returns its index (0, 1, ...).
  size_t Add(HttpRequest request);
  // Waits for the next finished request and returns its index and result;
  // nullopt when every request has been returned. Never waits past the
  // deadline (plus a second for the I/O thread to report): then it returns
  // an ETIMEDOUT error with index SIZE_MAX.
  std::optional<std::pair<size_t, Result<HttpResponse>>> Next();
  // Abandons what is still running.
  void Cancel();

 private:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::pair<size_t, Result<HttpResponse>>> done;
  };
  HttpClient* const client_;
  const HttpClient::Priority priority_;
  const Clock::time_point deadline_;
  const std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  const std::shared_ptr<std::atomic<bool>> cancel_ = std::make_shared<std::atomic<bool>>(false);
  size_t added_ = 0, returned_ = 0;
};

}  // namespace brickfs

#endif  // BRICKFS_REMOTE_HTTP_CLIENT_H_
