#include "format/journal.h"

#include <algorithm>

#include "common/bytes.h"
#include "common/crc32c.h"

namespace brickfs {
namespace {

class Writer {
 public:
  explicit Writer(JournalType t) { buf_.push_back(static_cast<char>(t)); }
  Writer& U8(uint8_t v) {
    buf_.push_back(static_cast<char>(v));
    return *this;
  }
  Writer& U16(uint16_t v) {
    char b[2];
    PutU16(reinterpret_cast<uint8_t*>(b), v);
    buf_.append(b, 2);
    return *this;
  }
  Writer& Bytes(const std::string& s) {
    buf_ += s;
    return *this;
  }
  Writer& U32(uint32_t v) {
    char b[4];
    PutU32(reinterpret_cast<uint8_t*>(b), v);
    buf_.append(b, 4);
    return *this;
  }
  Writer& U64(uint64_t v) {
    char b[8];
    PutU64(reinterpret_cast<uint8_t*>(b), v);
    buf_.append(b, 8);
    return *this;
  }
  void FrameTo(std::string* out) const {
    uint8_t head[8];
    PutU32(head, static_cast<uint32_t>(buf_.size()));
    PutU32(head + 4, Crc32c(buf_.data(), buf_.size()));
    out->append(reinterpret_cast<const char*>(head), 8);
    out->append(buf_);
  }

 private:
  std::string buf_;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool U8(uint8_t* v) {
    if (n_ < 1) return false;
    *v = *p_;
    p_ += 1;
    n_ -= 1;
    return true;
  }
  bool U16(uint16_t* v) {
    if (n_ < 2) return false;
    *v = GetU16(p_);
    p_ += 2;
    n_ -= 2;
    return true;
  }
  bool Bytes(size_t n, std::string* out) {
    if (n_ < n) return false;
    out->assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    n_ -= n;
    return true;
  }
  bool U32(uint32_t* v) {
    if (n_ < 4) return false;
    *v = GetU32(p_);
    p_ += 4;
    n_ -= 4;
    return true;
  }
  bool U64(uint64_t* v) {
    if (n_ < 8) return false;
    *v = GetU64(p_);
    p_ += 8;
    n_ -= 8;
    return true;
  }
  bool done() const { return n_ == 0; }
  size_t left() const { return n_; }

 private:
  const uint8_t* p_;
  size_t n_;
};

constexpr uint32_t kMaxFrame = 64u << 20;

}  // namespace

void AppendBrickBase(const BrickId& id, uint64_t length, std::string* out) {
  Writer(JournalType::kBrickBase).U8(id.level).U64(id.brick[0]).U64(id.brick[1]).U64(id.brick[2]).U64(length).FrameTo(out);
}

void AppendBrickLength(const BrickId& id, uint64_t length, std::string* out) {
  Writer(JournalType::kBrickLength).U8(id.level).U64(id.brick[0]).U64(id.brick[1]).U64(id.brick[2]).U64(length).FrameTo(out);
}

void AppendSlabCommit(uint8_t level, uint64_t slab, const std::vector<uint64_t>& slices,
                      std::string* out) {
  Writer w(JournalType::kSlabCommit);
  w.U8(level).U64(slab).U32(static_cast<uint32_t>(slices.size()));
  for (uint64_t z : slices) w.U64(z);
  w.FrameTo(out);
}

void AppendBrickReplace(const BrickId& id, uint64_t length, uint64_t inode, std::string* out) {
  Writer(JournalType::kBrickReplace).U8(id.level).U64(id.brick[0]).U64(id.brick[1]).U64(id.brick[2]).U64(length).U64(inode).FrameTo(out);
}

void AppendRangeCommit(uint64_t z0, uint64_t z1, std::string* out) {
  Writer(JournalType::kRangeCommit).U64(z0).U64(z1).FrameTo(out);
}

void AppendSession(uint64_t session, uint64_t previous, std::string* out) {
  Writer(JournalType::kSession).U64(session).U64(previous).FrameTo(out);
}

void AppendName(uint64_t z, uint64_t size, int64_t mtime_ns, const std::string& name,
                std::string* out) {
  Writer w(JournalType::kName);
  w.U64(z).U64(size).U64(static_cast<uint64_t>(mtime_ns)).U16(static_cast<uint16_t>(name.size()));
  w.Bytes(name);
  w.FrameTo(out);
}

void AppendReceived(uint64_t z, std::string* out) {
  Writer(JournalType::kReceived).U64(z).FrameTo(out);
}

void AppendGeometry(const Geometry& g, std::string* out) {
  Writer w(JournalType::kGeometry);
  for (uint64_t v : g.shape) w.U64(v);
  w.U8(static_cast<uint8_t>(g.dtype));
  for (uint64_t v : g.block) w.U64(v);
  for (uint64_t v : g.brick) w.U64(v);
  w.FrameTo(out);
}

std::optional<uint64_t> JournalState::RecoveredLength(const BrickId& id) const {
  if (auto it = committed.find(id); it != committed.end()) return it->second;
  if (auto it = base.find(id); it != base.end()) return it->second;
  return std::nullopt;
}

Result<JournalState> ReplayJournal(const std::string& bytes, const std::string& where) {
  JournalState st;
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  size_t pos = 0;
  std::map<BrickId, uint64_t> pending;  // lengths awaiting their commit
  while (pos + 8 <= bytes.size()) {
    uint32_t len = GetU32(data + pos);
    uint32_t crc = GetU32(data + pos + 4);
    if (len == 0 || len > kMaxFrame || len > bytes.size() - pos - 8) break;  // torn
    const uint8_t* payload = data + pos + 8;
    if (Crc32c(payload, len) != crc) break;  // torn or corrupt tail
    auto malformed = [&](const char* what) {
      return Status::Corruption(where + ": journal frame at offset " + std::to_string(pos) +
                                " is malformed (" + what + ")");
    };
    Reader r(payload, len);
    uint8_t type = 0;
    r.U8(&type);
    switch (static_cast<JournalType>(type)) {
      case JournalType::kBrickBase:
      case JournalType::kBrickLength:
      case JournalType::kBrickReplace: {
        BrickId id;
        uint64_t length = 0;
        std::optional<uint64_t> inode;
        if (!r.U8(&id.level) || !r.U64(&id.brick[0]) || !r.U64(&id.brick[1]) ||
            !r.U64(&id.brick[2]) || !r.U64(&length)) {
          return malformed("brick record size");
        }
        if (static_cast<JournalType>(type) == JournalType::kBrickReplace && r.left() == 8) {
          uint64_t ino = 0;
          r.U64(&ino);
          inode = ino;
        }
        if (!r.done()) return malformed("brick record size");
        if (static_cast<JournalType>(type) == JournalType::kBrickBase) {
          st.base.try_emplace(id, length);  // the first base of a session wins
        } else if (static_cast<JournalType>(type) == JournalType::kBrickReplace) {
          // A whole new file: earlier lengths of this brick no longer apply
          // (unless the rename never happened: `before`).
          pending.erase(id);
          st.replaced[id] = JournalState::Replacement{length, inode, st.RecoveredLength(id)};
          st.base[id] = length;
          st.committed[id] = length;
        } else {
          pending[id] = length;
        }
        break;
      }
      case JournalType::kSlabCommit: {
        uint8_t level = 0;
        uint64_t slab = 0;
        uint32_t count = 0;
        if (!r.U8(&level) || !r.U64(&slab) || !r.U32(&count) || r.left() != uint64_t{count} * 8) {
          return malformed("slab commit size");
        }
        for (uint32_t i = 0; i < count; ++i) {
          uint64_t z = 0;
          r.U64(&z);
          if (z >= kMaxSide) return malformed("slice number beyond the limits");
          if (level == 0) st.committed_slices.insert(z);
        }
        if (level == 0) st.slab_commit_offset[slab] = pos;
        // Appends to one brick happen in file order but slabs may commit out
        // of order; a shard only grows within a session, and its longest
        // committed length ends in an index that covers every earlier append.
        for (const auto& [id, length] : pending) {
          uint64_t& c = st.committed[id];
          c = std::max(c, length);
        }
        pending.clear();
        break;
      }
      case JournalType::kReceived: {
        uint64_t z = 0;
        if (!r.U64(&z) || !r.done()) return malformed("received record size");
        if (z >= kMaxSide) return malformed("slice number beyond the limits");
        st.received.insert(z);
        break;
      }
      case JournalType::kSession: {
        uint64_t session = 0, previous = 0;
        if (!r.U64(&session) || !r.U64(&previous) || !r.done()) {
          return malformed("session record size");
        }
        if (st.session == 0) {
          st.session = session;
          st.previous_session = previous;
        }
        break;
      }
      case JournalType::kRangeCommit: {
        uint64_t z0 = 0, z1 = 0;
        if (!r.U64(&z0) || !r.U64(&z1) || !r.done()) return malformed("range commit size");
        if (z0 >= z1 || z1 > kMaxSide) return malformed("range beyond the limits");
        st.committed_ranges.Insert(z0, z1);
        break;
      }
      case JournalType::kName: {
        JournalName n;
        uint64_t mtime = 0;
        uint16_t name_len = 0;
        if (!r.U64(&n.z) || !r.U64(&n.size) || !r.U64(&mtime) || !r.U16(&name_len) ||
            !r.Bytes(name_len, &n.name) || !r.done()) {
          return malformed("name record size");
        }
        if (n.z >= kMaxSide) return malformed("slice number beyond the limits");
        n.mtime_ns = static_cast<int64_t>(mtime);
        n.offset = pos;
        st.names.push_back(std::move(n));
        break;
      }
      case JournalType::kGeometry: {
        Geometry g;
        uint8_t dtype = 0;
        if (!r.U64(&g.shape[0]) || !r.U64(&g.shape[1]) || !r.U64(&g.shape[2]) || !r.U8(&dtype) ||
            !r.U64(&g.block[0]) || !r.U64(&g.block[1]) || !r.U64(&g.block[2]) ||
            !r.U64(&g.brick[0]) || !r.U64(&g.brick[1]) || !r.U64(&g.brick[2]) || !r.done() ||
            dtype > static_cast<uint8_t>(DType::kFloat32)) {
          return malformed("geometry record");
        }
        g.dtype = static_cast<DType>(dtype);
        if (!g.Validate().empty()) return malformed("geometry values");
        st.geometry = g;
        break;
      }
      default:
        return malformed("unknown record type");
    }
    pos += 8 + len;
    ++st.frames;
  }
  st.valid_bytes = pos;
  st.torn_bytes = bytes.size() - pos;
  return st;
}

VolumeMeta RecoveredMeta(const std::optional<VolumeMeta>& meta, const Geometry& g, const JournalState& js,
                         ZRanges* lost) {
  VolumeMeta m = meta ? *meta : VolumeMeta{};
  m.geo = g;
  IntervalSet present = SetFromRanges(m.present);
  uint64_t z_end = m.geo.shape[0];
  if (!js.received.empty()) z_end = std::max(z_end, *js.received.rbegin() + 1);
  if (!js.committed_slices.empty()) z_end = std::max(z_end, *js.committed_slices.rbegin() + 1);
  z_end = std::max(z_end, js.committed_ranges.End());
  if (m.fixed_shape) z_end = m.geo.shape[0];
  for (uint64_t z : js.committed_slices) {
    if (z < z_end) present.Insert(z);
  }
  for (const auto& [a, b] : js.committed_ranges) present.Insert(a, std::min(b, z_end));
  IntervalSet lost_set;
  for (uint64_t z : js.received) {
    if (z < z_end && !present.Contains(z)) lost_set.Insert(z);
  }
  present.Erase(z_end, UINT64_MAX);
  *lost = RangesFromSet(lost_set);
  m.geo.shape[0] = z_end;
  m.present = RangesFromSet(present);
  return m;
}

}  // namespace brickfs
