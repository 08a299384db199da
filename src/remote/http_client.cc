#include "remote/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "brickfs/version.h"
#include "common/log.h"

namespace brickfs {

namespace {

// Bytes of an error response's body kept (for nothing but bounding memory).
constexpr size_t kMaxErrorBody = 4096;

std::once_flag g_curl_init;

std::string Seconds(Clock::duration d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s",
                std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0);
  return buf;
}

// "HTTP 503" plus the reason phrase for the common ones.
std::string HttpStatusText(long status) {
  const char* reason = "";
  switch (status) {
    case 400: reason = " Bad Request"; break;
    case 401: reason = " Unauthorized"; break;
    case 403: reason = " Forbidden"; break;
    case 405: reason = " Method Not Allowed"; break;
    case 408: reason = " Request Timeout"; break;
    case 410: reason = " Gone"; break;
    case 429: reason = " Too Many Requests"; break;
    case 500: reason = " Internal Server Error"; break;
    case 502: reason = " Bad Gateway"; break;
    case 503: reason = " Service Unavailable"; break;
    case 504: reason = " Gateway Timeout"; break;
    default: break;
  }
  return "HTTP " + std::to_string(status) + reason;
}

bool RetryableCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_AGAIN:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}

std::string HeaderValue(CURL* easy, const char* name) {
  struct curl_header* h = nullptr;
  if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || h == nullptr ||
      h->value == nullptr) {
    return "";
  }
  return h->value;
}

}  // namespace

std::string HttpRequest::Describe() const {
  std::string s = (method == Method::kHead ? "HEAD " : "GET ") + url;
  if (length > 0) {
    s += " (bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1) + ")";
  } else if (suffix > 0) {
    s += " (bytes=-" + std::to_string(suffix) + ")";
  }
  return s;
}

// One request through its attempts. Owned by the I/O thread from Submit to
// Complete.
struct HttpClient::Call {
  HttpRequest req;
  Priority priority = Priority::kDemand;
  Clock::time_point deadline;
  Clock::time_point submitted;
  std::shared_ptr<std::atomic<bool>> cancel;
  Done done;
  uint32_t attempts = 0;
  Status last_error;
  bool timed_out = false;  // the last failure was a timeout

  // The current attempt.
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string range_header;
  std::string body;
  bool checked_status = false;
  std::string abort_reason;  // why the write callback stopped the transfer
  bool abort_final = false;  // ... and whether retrying cannot help
  HttpClient* client = nullptr;

  bool is_range() const { return req.length > 0; }
  bool is_suffix() const { return req.length == 0 && req.suffix > 0; }
  bool cancelled() const { return cancel && cancel->load(); }

  void ReleaseEasy(CURLM* multi) {
    if (easy != nullptr) {
      curl_multi_remove_handle(multi, easy);
      curl_easy_cleanup(easy);
      easy = nullptr;
    }
    if (headers != nullptr) {
      curl_slist_free_all(headers);
      headers = nullptr;
    }
  }
};

namespace {

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* call = static_cast<HttpClient::Call*>(userdata);
  const size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
  if (!call->checked_status) {
    call->checked_status = true;
    if (status == 200 && call->is_range()) {
      call->abort_reason = "the server ignored the Range header (HTTP 200 instead of 206)";
      return 0;
    }
    if (status == 200 && call->is_suffix()) {
      // Acceptable only when the whole object is the tail asked for.
      curl_off_t cl = -1;
      curl_easy_getinfo(call->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
      if (cl < 0 || static_cast<uint64_t>(cl) > call->req.suffix) {
        call->abort_reason = "the server ignored the Range header (HTTP 200 instead of 206)";
        return 0;
      }
    }
    if (status == 200 && !call->is_range() && !call->is_suffix()) {
      curl_off_t cl = -1;
      curl_easy_getinfo(call->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
      if (cl >= 0 && static_cast<uint64_t>(cl) > call->req.max_body) {
        call->abort_reason = "the object is " + std::to_string(cl) + " bytes, more than the " +
                             std::to_string(call->req.max_body) + " allowed";
        call->abort_final = true;
        return 0;
      }
    }
  }
  if (status != 200 && status != 206) {
    // An error page: kept only up to a bound, never used.
    if (call->body.size() < kMaxErrorBody) {
      call->body.append(ptr, std::min(n, kMaxErrorBody - call->body.size()));
    }
    return n;
  }
  const uint64_t limit = call->is_range()    ? call->req.length
                         : call->is_suffix() ? call->req.suffix
                                             : call->req.max_body;
  if (call->body.size() + n > limit) {
    if (!call->is_range() && !call->is_suffix()) {
      call->abort_reason = "the object is more than the " + std::to_string(limit) +
                           " bytes allowed";
      call->abort_final = true;
    } else {
      call->abort_reason = "the response body is longer than the " + std::to_string(limit) +
                           " bytes asked for";
    }
    return 0;
  }
  call->body.append(ptr, n);
  return n;
}

}  // namespace

HttpClient::HttpClient(const RemoteOptions& options, const Credentials& credentials)
    : options_(options), credentials_(credentials) {}

Result<std::unique_ptr<HttpClient>> HttpClient::Create(const RemoteOptions& options,
                                                       const Credentials& credentials) {
  if (!options.ca_file.empty()) {
    const int fd = ::open(options.ca_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::InvalidArgument("ca_file " + options.ca_file + ": " + std::strerror(errno));
    ::close(fd);
  }
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<HttpClient> c(new HttpClient(options, credentials));
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) return Status::IOError("curl_multi_init failed", ENOMEM);
  c->multi_ = multi;
  const long slots = std::max<long>(1, options.max_in_flight);
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, slots);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, slots);
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, slots);
  c->rng_state_ ^= static_cast<uint64_t>(Clock::now().time_since_epoch().count()) ^
                   (static_cast<uint64_t>(::getpid()) << 32);
  c->thread_ = std::thread([p = c.get()] { p->Loop(); });
  return c;
}

HttpClient::~HttpClient() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  if (thread_.joinable()) thread_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void HttpClient::Submit(HttpRequest request, Priority priority, Clock::time_point deadline,
                        std::shared_ptr<std::atomic<bool>> cancel, Done done) {
  auto* call = new Call;
  call->req = std::move(request);
  call->priority = priority;
  call->deadline = deadline;
  call->submitted = Clock::now();
  call->cancel = std::move(cancel);
  call->done = std::move(done);
  call->client = this;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      submitted_.push_back(call);
      call = nullptr;
    }
  }
  if (call != nullptr) {  // shutting down
    Done d = std::move(call->done);
    const std::string what = call->req.Describe();
    delete call;
    d(Status::IOError(what + ": the client is shutting down", ECANCELED));
    return;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

Result<HttpResponse> HttpClient::Fetch(HttpRequest request) {
  HttpBatch batch(this, Priority::kDemand,
                  Clock::now() + std::chrono::milliseconds(options_.op_timeout_ms));
  batch.Add(std::move(request));
  auto r = batch.Next();
  if (!r) return Status::IOError("request vanished", EIO);  // cannot happen
  return std::move(r->second);
}

HttpClient::Stats HttpClient::stats() const {
  Stats s;
  s.requests = requests_;
  s.retries = retries_;
  s.failures = failures_;
  s.body_bytes = body_bytes_;
  s.in_flight = in_flight_;
  s.http_version = http_version_;
  return s;
}

Clock::duration HttpClient::Backoff(uint32_t attempts) {
  // xorshift64: jitter only, no need for quality.
  rng_state_ ^= rng_state_ << 13;
  rng_state_ ^= rng_state_ >> 7;
  rng_state_ ^= rng_state_ << 17;
  const double jitter = 0.5 + 0.5 * static_cast<double>(rng_state_ >> 11) / static_cast<double>(1ull << 53);
  double ms = options_.backoff_initial_ms;
  for (uint32_t i = 1; i < attempts && ms < options_.backoff_max_ms; ++i) ms *= 2;
  ms = std::min<double>(ms, options_.backoff_max_ms) * jitter;
  return std::chrono::microseconds(static_cast<int64_t>(ms * 1000));
}

void HttpClient::StartAttempt(Call* call) {
  const auto now = Clock::now();
  const auto left_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(call->deadline - now).count();
  call->attempts += 1;
  requests_ += 1;
  if (call->attempts > 1) retries_ += 1;
  call->body.clear();
  call->checked_status = false;
  call->abort_reason.clear();
  call->abort_final = false;
  CURL* e = curl_easy_init();
  if (e == nullptr) {
    Complete(call, Status::IOError(call->req.Describe() + ": curl_easy_init failed", ENOMEM));
    return;
  }
  call->easy = e;
  curl_easy_setopt(e, CURLOPT_URL, call->req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, call);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "brickfs/" BRICKFS_VERSION);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(std::max<int64_t>(1, std::min<int64_t>(options_.connect_timeout_ms, left_ms))));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, left_ms)));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(std::max<uint32_t>(1, options_.stall_bytes_per_s)));
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                   static_cast<long>(std::max<uint32_t>(1, (options_.stall_timeout_ms + 999) / 1000)));
  if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
  switch (credentials_.kind) {
    case Credentials::Kind::kBasic:
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(e, CURLOPT_USERNAME, credentials_.user.c_str());
      curl_easy_setopt(e, CURLOPT_PASSWORD, credentials_.password.c_str());
      break;
    case Credentials::Kind::kBearer:
      curl_easy_setopt(e, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BEARER));
      curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, credentials_.token.c_str());
      break;
    case Credentials::Kind::kNone:
      break;
  }
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
  if (call->req.method == HttpRequest::Method::kHead) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (call->is_range()) {
    call->range_header = std::to_string(call->req.offset) + "-" +
                         std::to_string(call->req.offset + call->req.length - 1);
    curl_easy_setopt(e, CURLOPT_RANGE, call->range_header.c_str());
  } else if (call->is_suffix()) {
    call->range_header = "-" + std::to_string(call->req.suffix);
    curl_easy_setopt(e, CURLOPT_RANGE, call->range_header.c_str());
  }
  const auto add_header = [call](const std::string& h) {
    call->headers = curl_slist_append(call->headers, h.c_str());
  };
  if (call->req.if_none_match) {
    const Validator& v = *call->req.if_none_match;
    if (!v.etag.empty()) {
      add_header("If-None-Match: " + v.etag);
    } else if (!v.last_modified.empty()) {
      add_header("If-Modified-Since: " + v.last_modified);
    }
  }
  if (call->req.if_match) {
    const Validator& v = *call->req.if_match;
    if (v.strong_etag()) {
      add_header("If-Match: " + v.etag);
    } else if (!v.last_modified.empty()) {
      add_header("If-Unmodified-Since: " + v.last_modified);
    }
  }
  if (call->headers != nullptr) curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
  if (curl_multi_add_handle(static_cast<CURLM*>(multi_), e) != CURLM_OK) {
    call->ReleaseEasy(static_cast<CURLM*>(multi_));
    Complete(call, Status::IOError(call->req.Describe() + ": curl_multi_add_handle failed", EIO));
    return;
  }
  active_.push_back(call);
  in_flight_ = active_.size();
}

void HttpClient::Complete(Call* call, Result<HttpResponse> result) {
  if (!result.ok() && result.status().err() != ECANCELED) failures_ += 1;
  Done done = std::move(call->done);
  delete call;
  done(std::move(result));
}

void HttpClient::RetryOrFail(Call* call, Status why, std::optional<Clock::duration> retry_after) {
  call->last_error = why;
  const auto now = Clock::now();
  Clock::duration wait = Backoff(call->attempts);
  bool capped = false;
  if (retry_after) {
    const auto cap = std::chrono::milliseconds(options_.retry_after_max_ms);
    wait = std::min<Clock::duration>(*retry_after, cap);
    capped = *retry_after > cap;
  }
  const std::string tried = "; gave up after " + std::to_string(call->attempts) +
                            (call->attempts == 1 ? " attempt" : " attempts") + " in " +
                            Seconds(now - call->submitted);
  if (call->cancelled()) {
    Complete(call, Status::IOError(call->req.Describe() + ": cancelled", ECANCELED));
  } else if (call->attempts >= options_.max_attempts) {
    Complete(call, Status::IOError(why.message() + tried, call->timed_out ? ETIMEDOUT : EIO));
  } else if (now + wait >= call->deadline) {
    Complete(call, Status::IOError(why.message() + tried +
                                       (capped ? " (the server asked to retry later than " +
                                                     Seconds(std::chrono::milliseconds(
                                                         options_.retry_after_max_ms)) +
                                                     ")"
                                               : " (deadline " +
                                                     Seconds(call->deadline - call->submitted) +
                                                     ")"),
                                   ETIMEDOUT));
  } else {
    waiting_.emplace_back(now + wait, call);
  }
}

void HttpClient::FinishAttempt(Call* call, int curl_code) {
  CURL* e = call->easy;
  const std::string what = call->req.Describe();
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  long version = 0;
  curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
  body_bytes_ += call->body.size();
  const auto code = static_cast<CURLcode>(curl_code);
  call->timed_out = false;

  if (code != CURLE_OK) {
    std::string reason;
    if (code == CURLE_WRITE_ERROR && !call->abort_reason.empty()) {
      reason = call->abort_reason;
      if (call->abort_final) {
        call->ReleaseEasy(static_cast<CURLM*>(multi_));
        Complete(call, Status::InvalidArgument(what + ": " + reason));
        return;
      }
    } else {
      reason = std::string(curl_easy_strerror(code));
      if (status != 0) reason += " (after " + HttpStatusText(status) + ")";
    }
    call->timed_out = code == CURLE_OPERATION_TIMEDOUT;
    call->ReleaseEasy(static_cast<CURLM*>(multi_));
    Status why = Status::IOError(what + ": " + reason, call->timed_out ? ETIMEDOUT : EIO);
    if (code == CURLE_WRITE_ERROR || RetryableCurlCode(code)) {
      RetryOrFail(call, why, std::nullopt);
    } else {
      Complete(call, Status::IOError(what + ": " + reason + " (not retried)", EIO));
    }
    return;
  }

  if (version == CURL_HTTP_VERSION_2_0) {
    http_version_ = 20;
  } else if (version != 0) {
    http_version_ = 11;
  }

  if (status == 429 || status == 408 || (status >= 500 && status <= 599)) {
    std::optional<Clock::duration> retry_after;
    curl_off_t ra = -1;
    if (curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) {
      retry_after = std::chrono::seconds(ra);
    }
    call->ReleaseEasy(static_cast<CURLM*>(multi_));
    RetryOrFail(call, Status::IOError(what + ": " + HttpStatusText(status), EIO), retry_after);
    return;
  }
  if (status == 401 || status == 403) {
    call->ReleaseEasy(static_cast<CURLM*>(multi_));
    Complete(call, Status::IOError(what + ": " + HttpStatusText(status), EACCES));
    return;
  }
  const bool known = status == 200 || status == 206 || status == 304 || status == 404 ||
                     status == 412 || status == 416;
  if (!known) {
    call->ReleaseEasy(static_cast<CURLM*>(multi_));
    Complete(call, Status::IOError(what + ": " + HttpStatusText(status), EIO));
    return;
  }

  HttpResponse r;
  r.status = status;
  r.attempts = call->attempts;
  r.validator.etag = HeaderValue(e, "ETag");
  r.validator.last_modified = HeaderValue(e, "Last-Modified");
  const std::string content_range = HeaderValue(e, "Content-Range");
  curl_off_t content_length = -1;
  curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
  call->ReleaseEasy(static_cast<CURLM*>(multi_));

  std::string bad;  // why the response cannot be used (then retried)
  if (status == 200 || status == 206) {
    r.body = std::move(call->body);
    if (call->req.method == HttpRequest::Method::kHead) {
      if (content_length >= 0) r.validator.size = static_cast<uint64_t>(content_length);
    } else if (status == 200) {
      if (call->is_range()) {
        bad = "the server ignored the Range header (HTTP 200 instead of 206)";
      } else if (content_length >= 0 && static_cast<uint64_t>(content_length) != r.body.size()) {
        bad = "the body is " + std::to_string(r.body.size()) + " bytes, Content-Length says " +
              std::to_string(content_length);
      } else if (call->is_suffix() && r.body.size() > call->req.suffix) {
        bad = "the server ignored the Range header (HTTP 200 instead of 206)";
      } else {
        r.validator.size = r.body.size();
      }
    } else if (!call->is_range() && !call->is_suffix()) {
      bad = "HTTP 206 to a request without Range";
    } else {
      const auto cr = ParseContentRange(content_range);
      if (!cr || cr->unsatisfied) {
        bad = "HTTP 206 with a missing or malformed Content-Range \"" + content_range + "\"";
      } else if (cr->last - cr->first + 1 != r.body.size()) {
        bad = "the body is " + std::to_string(r.body.size()) + " bytes, Content-Range \"" +
              content_range + "\" says " + std::to_string(cr->last - cr->first + 1);
      } else if (call->is_range()) {
        const uint64_t want_last = call->req.offset + call->req.length - 1;
        if (cr->first != call->req.offset || cr->last > want_last ||
            (cr->last < want_last && cr->total != cr->last + 1)) {
          bad = "Content-Range \"" + content_range + "\" does not match the range asked for";
        }
      } else {  // suffix
        if (cr->total == Validator::kUnknownSize || cr->last + 1 != cr->total ||
            cr->first != cr->total - std::min(cr->total, call->req.suffix)) {
          bad = "Content-Range \"" + content_range + "\" does not match the last " +
                std::to_string(call->req.suffix) + " bytes";
        }
      }
      if (bad.empty()) {
        r.first = cr->first;
        r.validator.size = cr->total;
      }
    }
  } else if (status == 416) {
    const auto cr = ParseContentRange(content_range);
    if (cr && cr->total != Validator::kUnknownSize) r.validator.size = cr->total;
  } else if (status == 304 && !call->req.if_none_match) {
    bad = "HTTP 304 to an unconditional request";
  }
  if (!bad.empty()) {
    RetryOrFail(call, Status::IOError(what + ": " + bad, EIO), std::nullopt);
    return;
  }
  Complete(call, std::move(r));
}

void HttpClient::Loop() {
  auto* multi = static_cast<CURLM*>(multi_);
  for (;;) {
    bool stop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop = stopping_;
      for (Call* c : submitted_) (c->priority == Priority::kDemand ? demand_ : prefetch_).push_back(c);
      submitted_.clear();
    }
    if (stop) break;
    const auto now = Clock::now();
    // Retries that are due go first in their queue.
    for (size_t i = 0; i < waiting_.size();) {
      if (waiting_[i].first <= now || waiting_[i].second->cancelled()) {
        Call* c = waiting_[i].second;
        (c->priority == Priority::kDemand ? demand_ : prefetch_).push_front(c);
        waiting_[i] = waiting_.back();
        waiting_.pop_back();
      } else {
        ++i;
      }
    }
    // Abandoned transfers.
    for (size_t i = 0; i < active_.size();) {
      Call* c = active_[i];
      if (c->cancelled()) {
        active_[i] = active_.back();
        active_.pop_back();
        c->ReleaseEasy(multi);
        Complete(c, Status::IOError(c->req.Describe() + ": cancelled", ECANCELED));
      } else {
        ++i;
      }
    }
    // Start what fits: demand first; prefetches take at most half the slots.
    const size_t slots = std::max<size_t>(1, options_.max_in_flight);
    const auto start_from = [&](std::deque<Call*>& q, size_t limit) {
      while (!q.empty() && active_.size() < limit) {
        Call* c = q.front();
        q.pop_front();
        if (c->cancelled()) {
          Complete(c, Status::IOError(c->req.Describe() + ": cancelled", ECANCELED));
        } else if (Clock::now() >= c->deadline) {
          const Status last = c->last_error;
          Complete(c, Status::IOError(c->req.Describe() + ": no answer by the deadline (" +
                                          Seconds(c->deadline - c->submitted) + ")" +
                                          (last.ok() ? "" : "; last error: " + last.message()),
                                      ETIMEDOUT));
        } else {
          StartAttempt(c);
        }
      }
    };
    start_from(demand_, slots);
    size_t active_prefetch = 0;
    for (Call* c : active_) active_prefetch += c->priority == Priority::kPrefetch;
    if (demand_.empty()) {
      start_from(prefetch_, std::min(slots, active_.size() - active_prefetch +
                                                std::max<size_t>(1, slots / 2)));
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Call* c = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &c);
      const CURLcode result = msg->data.result;
      active_.erase(std::find(active_.begin(), active_.end(), c));
      FinishAttempt(c, result);
    }
    in_flight_ = active_.size();
    // Sleep until curl has work, a retry is due, or a request arrives.
    int timeout_ms = 200;
    const auto after = Clock::now();
    for (const auto& [due, c] : waiting_) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(due - after).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, timeout_ms));
    }
    if (!demand_.empty() && active_.size() < slots) timeout_ms = 0;
    curl_multi_poll(multi, nullptr, 0, timeout_ms, nullptr);
  }
  // Shutting down: everything pending is cancelled.
  std::vector<Call*> all(active_.begin(), active_.end());
  active_.clear();
  for (Call* c : all) c->ReleaseEasy(multi);
  for (Call* c : demand_) all.push_back(c);
  for (Call* c : prefetch_) all.push_back(c);
  for (auto& [due, c] : waiting_) all.push_back(c);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Call* c : submitted_) all.push_back(c);
    submitted_.clear();
  }
  demand_.clear();
  prefetch_.clear();
  waiting_.clear();
  in_flight_ = 0;
  for (Call* c : all) {
    Complete(c, Status::IOError(c->req.Describe() + ": the client is shutting down", ECANCELED));
  }
}

// ---- HttpBatch --------------------------------------------------------------------

HttpBatch::HttpBatch(HttpClient* client, HttpClient::Priority priority, Clock::time_point deadline)
    : client_(client), priority_(priority), deadline_(deadline) {}

HttpBatch::~HttpBatch() { Cancel(); }

void HttpBatch::Cancel() { cancel_->store(true); }

size_t HttpBatch::Add(HttpRequest request) {
  const size_t index = added_++;
  std::shared_ptr<Shared> shared = shared_;
  client_->Submit(std::move(request), priority_, deadline_, cancel_,
                  [shared, index](Result<HttpResponse> r) {
                    std::lock_guard<std::mutex> lock(shared->mu);
                    shared->done.emplace_back(index, std::move(r));
                    shared->cv.notify_all();
                  });
  return index;
}

std::optional<std::pair<size_t, Result<HttpResponse>>> HttpBatch::Next() {
  if (returned_ == added_) return std::nullopt;
  std::unique_lock<std::mutex> lock(shared_->mu);
  // The I/O thread fails requests at the deadline; the extra second only
  // guards against a bug there.
  const auto limit = deadline_ + std::chrono::seconds(1);
  if (!shared_->cv.wait_until(lock, limit, [&] { return !shared_->done.empty(); })) {
    lock.unlock();
    Cancel();
    returned_ = added_;
    return std::make_pair(SIZE_MAX, Result<HttpResponse>(Status::IOError(
                                        "no answer from the server by the deadline", ETIMEDOUT)));
  }
  auto r = std::move(shared_->done.front());
  shared_->done.pop_front();
  ++returned_;
  return r;
}

}  // namespace brickfs
