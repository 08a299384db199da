// remote_probe: drives one HttpStorage (src/remote) from a script, for the
// integration tests of remote stores (tests/integration/test_remote_storage.py)
// and for trying a server by hand. Not installed.
//
//   remote_probe --url URL [--cache-dir DIR] [--cache-size N] [--offline]
//                [--auth-file F] [--ca-file F] [--op-timeout-ms N]
//                [--connect-timeout-ms N] [--stall-timeout-ms N]
//                [--max-attempts N] [--backoff-initial-ms N] [--gap N]
//                [--in-flight N] [--prefetch-bytes N]
//
// Reads commands from stdin, one per line, runs them in order on the same
// storage (one "mount"), and prints one JSON object per command on stdout:
//
//   get KEY [MAX]                  {"code","errno","message","hex","ms"}
//   size KEY                       {..., "size"}
//   tail KEY N                     {..., "hex", "size"}
//   ranges KEY OFF:LEN[,OFF:LEN]   {..., "hex": [per range, in order]}
//   refuse KEY OFF:LEN[,...]       as ranges, but the visitor answers Corruption
//   prefetch KEY OFF:LEN[,...]     {"code":"OK"} (returns at once)
//   idle                           waits until no request is in flight
//   stats                          {"http": {...}, "cache": {...}, ...}
//   sleep MS
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/bytes.h"
#include "remote/http_storage.h"

namespace {

using brickfs::HttpStorage;
using brickfs::RemoteOptions;
using brickfs::Status;
using brickfs::Storage;
using nlohmann::json;

std::string Hex(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

const char* CodeName(Status::Code c) {
  switch (c) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kInvalidArgument: return "InvalidArgument";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kIOError: return "IOError";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kUnsupported: return "Unsupported";
    case Status::Code::kBusy: return "Busy";
    case Status::Code::kNoSpace: return "NoSpace";
  }
  return "?";
}

void Fill(json* out, const Status& s) {
  (*out)["code"] = CodeName(s.code());
  (*out)["errno"] = s.err();
  (*out)["message"] = s.message();
}

std::vector<Storage::Range> ParseRanges(const std::string& text) {
  std::vector<Storage::Range> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t colon = item.find(':');
    out.push_back({std::stoull(item.substr(0, colon)), std::stoull(item.substr(colon + 1))});
  }
  return out;
}

int Usage() {
  std::fprintf(stderr, "usage: remote_probe --url URL [options] < commands (see the source)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  RemoteOptions opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) std::exit(Usage());
      return argv[++i];
    };
    if (a == "--url") url = next();
    else if (a == "--cache-dir") opt.cache_dir = next();
    else if (a == "--cache-size") {
      if (!brickfs::ParseSize(next(), &opt.cache_size)) return Usage();
    } else if (a == "--offline") opt.offline = true;
    else if (a == "--auth-file") opt.auth_file = next();
    else if (a == "--ca-file") opt.ca_file = next();
    else if (a == "--op-timeout-ms") opt.op_timeout_ms = std::stoul(next());
    else if (a == "--connect-timeout-ms") opt.connect_timeout_ms = std::stoul(next());
    else if (a == "--stall-timeout-ms") opt.stall_timeout_ms = std::stoul(next());
    else if (a == "--max-attempts") opt.max_attempts = std::stoul(next());
    else if (a == "--backoff-initial-ms") opt.backoff_initial_ms = std::stoul(next());
    else if (a == "--gap") opt.coalesce_gap = std::stoull(next());
    else if (a == "--in-flight") opt.max_in_flight = std::stoul(next());
    else if (a == "--prefetch-bytes") opt.prefetch_bytes = std::stoull(next());
    else return Usage();
  }
  if (url.empty()) return Usage();
  auto opened = HttpStorage::Open(url, opt);
  if (!opened.ok()) {
    json out;
    out["op"] = "open";
    Fill(&out, opened.status());
    std::cout << out.dump() << std::endl;
    return 1;
  }
  HttpStorage& st = **opened;
  for (std::string line; std::getline(std::cin, line);) {
    std::stringstream in(line);
    std::string op, key, arg;
    in >> op >> key >> arg;
    if (op.empty()) continue;
    json out;
    out["op"] = op;
    const auto t0 = std::chrono::steady_clock::now();
    if (op == "get") {
      auto r = st.Get(key, arg.empty() ? (uint64_t{1} << 30) : std::stoull(arg));
      Fill(&out, r.status());
      if (r.ok()) out["hex"] = Hex(*r);
    } else if (op == "size") {
      auto r = st.Size(key);
      Fill(&out, r.status());
      if (r.ok()) out["size"] = *r;
    } else if (op == "tail") {
      auto r = st.ReadTail(key, std::stoull(arg));
      Fill(&out, r.status());
      if (r.ok()) {
        out["hex"] = Hex(r->bytes);
        out["size"] = r->size;
      }
    } else if (op == "ranges" || op == "refuse") {
      // refuse: the visitor finds every range corrupt (as the engine does a
      // block failing its crc32c).
      const bool refuse = op == "refuse";
      const auto ranges = ParseRanges(arg);
      std::vector<std::string> got(ranges.size());
      std::vector<int> visits(ranges.size());
      const Status s = st.ReadRanges(key, ranges, [&](size_t i, std::string_view bytes) {
        got[i] = Hex(bytes);
        visits[i] += 1;
        return refuse ? Status::Corruption("refused by the probe") : Status::Ok();
      });
      Fill(&out, s);
      if (s.ok()) {
        out["hex"] = got;
        out["visits"] = visits;
      }
    } else if (op == "prefetch") {
      st.Prefetch(key, ParseRanges(arg));
      Fill(&out, Status::Ok());
    } else if (op == "idle") {
      while (st.stats().http.in_flight > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      // A finished prefetch writes the cache on the client's thread just
      // after leaving the in-flight count.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      Fill(&out, Status::Ok());
    } else if (op == "stats") {
      const HttpStorage::Stats s = st.stats();
      out["http"] = {{"requests", s.http.requests}, {"retries", s.http.retries},
                     {"failures", s.http.failures}, {"body_bytes", s.http.body_bytes},
                     {"http_version", s.http.http_version}};
      out["cache"] = {{"hits", s.cache.hits}, {"misses", s.cache.misses},
                      {"inserts", s.cache.inserts}, {"insert_bytes", s.cache.insert_bytes},
                      {"dropped_bad", s.cache.dropped_bad}, {"evicted_files", s.cache.evicted_files}};
      out["objects_checked"] = s.objects_checked;
      out["objects_changed"] = s.objects_changed;
      out["errors"] = s.errors;
      out["last_error"] = s.last_error;
      Fill(&out, Status::Ok());
    } else if (op == "sleep") {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoul(key)));
      Fill(&out, Status::Ok());
    } else {
      Fill(&out, Status::InvalidArgument("unknown command " + op));
    }
    out["ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0).count();
    std::cout << out.dump() << std::endl;
  }
  return 0;
}
