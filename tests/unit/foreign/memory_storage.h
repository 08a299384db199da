// An in-memory read-only Storage for the foreign-store tests: objects in a
// map, with counters of the reads made. Thread-safe (one mutex).
#ifndef BRICKFS_TESTS_UNIT_FOREIGN_MEMORY_STORAGE_H_
#define BRICKFS_TESTS_UNIT_FOREIGN_MEMORY_STORAGE_H_

#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "store/storage.h"

namespace brickfs {

class MemoryStorage : public Storage {
 public:
  void Put(const std::string& key, std::string bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_[key] = std::move(bytes);
  }
  void Erase(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    objects_.erase(key);
  }
  std::string* Find(const std::string& key) {
    auto it = objects_.find(key);
    return it == objects_.end() ? nullptr : &it->second;
  }
  int gets = 0, tails = 0, range_batches = 0, sizes = 0, prefetches = 0;

  std::string Locate(std::string_view key) const override { return "mem://s/" + std::string(key); }
  bool read_only() const override { return true; }
  Result<std::string> Get(std::string_view key, uint64_t max_bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++gets;
    BRICKFS_ASSIGN_OR_RETURN(const std::string* o, Lookup(key));
    if (o->size() > max_bytes) {
      return Status::InvalidArgument(Locate(key) + ": " + std::to_string(o->size()) +
                                     " bytes, at most " + std::to_string(max_bytes));
    }
    return *o;
  }
  Result<uint64_t> Size(std::string_view key) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++sizes;
    BRICKFS_ASSIGN_OR_RETURN(const std::string* o, Lookup(key));
    return uint64_t{o->size()};
  }
  Result<Tail> ReadTail(std::string_view key, uint64_t n, uint64_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++tails;
    BRICKFS_ASSIGN_OR_RETURN(const std::string* o, Lookup(key));
    Tail t;
    t.size = o->size();
    const uint64_t take = std::min<uint64_t>(n, o->size());
    t.bytes = o->substr(o->size() - take);
    return t;
  }
  Status ReadRanges(std::string_view key, const std::vector<Range>& ranges,
                    const RangeVisitor& visit) override {
    std::string copy;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++range_batches;
      BRICKFS_ASSIGN_OR_RETURN(const std::string* o, Lookup(key));
      copy = *o;
    }
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (ranges[i].offset > copy.size() || ranges[i].length > copy.size() - ranges[i].offset) {
        return Status::Corruption(Locate(key) + ": range past the end");
      }
      BRICKFS_RETURN_IF_ERROR(visit(i, std::string_view(copy).substr(ranges[i].offset,
                                                                     ranges[i].length)));
    }
    return Status::Ok();
  }
  void Prefetch(std::string_view, const std::vector<Range>&) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++prefetches;
  }
  Result<std::vector<std::string>> List(std::string_view) override {
    return Status::Unsupported("no listing");
  }
  Result<uint64_t> Identity(std::string_view) override { return uint64_t{0}; }
  Status WriteAt(std::string_view, uint64_t, std::string_view) override { return Ro(); }
  Status Truncate(std::string_view, uint64_t) override { return Ro(); }
  Status Replace(std::string_view, std::string_view, const BeforeVisible&) override { return Ro(); }
  Status Remove(std::string_view) override { return Ro(); }
  Status Sync(const std::vector<std::string>&, ThreadPool*) override { return Ro(); }

 private:
  static Status Ro() { return Status::Unsupported("read-only"); }
  Result<const std::string*> Lookup(std::string_view key) {
    if (const std::string bad = KeyProblem(key); !bad.empty()) {
      return Status::InvalidArgument("bad key " + std::string(key) + ": " + bad);
    }
    auto it = objects_.find(std::string(key));
    if (it == objects_.end()) return Status::NotFound(Locate(key) + ": does not exist");
    return &it->second;
  }
  std::mutex mu_;
  std::map<std::string, std::string> objects_;
};

}  // namespace brickfs

#endif  // BRICKFS_TESTS_UNIT_FOREIGN_MEMORY_STORAGE_H_
