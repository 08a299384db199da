#include "volume/slice_names.h"

#include "common/bytes.h"
#include "common/crc32c.h"

namespace brickfs {
namespace {

constexpr uint32_t kMagic = 0x4d4e4642;  // "BFNM"
constexpr uint32_t kVersion = 1;
constexpr size_t kHeader = 16, kEntryFixed = 26;

}  // namespace

bool SliceNames::ValidName(const std::string& name) {
  return !name.empty() && name.size() <= kMaxNameBytes &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

void SliceNames::Set(const SliceName& entry) {
  Forget(entry.name);
  auto it = by_z_.find(entry.z);
  if (it != by_z_.end()) by_name_.erase(it->second.name);
  by_z_[entry.z] = entry;
  by_name_[entry.name] = entry.z;
}

std::optional<SliceName> SliceNames::Find(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return by_z_.at(it->second);
}

std::optional<SliceName> SliceNames::OfZ(uint64_t z) const {
  auto it = by_z_.find(z);
  if (it == by_z_.end()) return std::nullopt;
  return it->second;
}

bool SliceNames::SetTime(const std::string& name, int64_t mtime_ns) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return false;
  by_z_.at(it->second).mtime_ns = mtime_ns;
  return true;
}

void SliceNames::Forget(const std::string& name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return;
  by_z_.erase(it->second);
  by_name_.erase(it);
}

void SliceNames::ForgetRange(uint64_t z0, uint64_t z1) {
  for (auto it = by_z_.lower_bound(z0); it != by_z_.end() && it->first < z1;) {
    by_name_.erase(it->second.name);
    it = by_z_.erase(it);
  }
}

std::string SliceNames::Encode() const {
  std::string out(kHeader, '\0');
  auto* h = reinterpret_cast<uint8_t*>(out.data());
  PutU32(h, kMagic);
  PutU32(h + 4, kVersion);
  PutU64(h + 8, by_z_.size());
  for (const auto& [z, e] : by_z_) {
    uint8_t fixed[kEntryFixed];
    PutU64(fixed, e.z);
    PutU64(fixed + 8, e.size);
    PutU64(fixed + 16, static_cast<uint64_t>(e.mtime_ns));
    PutU16(fixed + 24, static_cast<uint16_t>(e.name.size()));
    out.append(reinterpret_cast<const char*>(fixed), kEntryFixed);
    out += e.name;
  }
  uint8_t crc[4];
  PutU32(crc, Crc32c(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
  out.append(reinterpret_cast<const char*>(crc), 4);
  return out;
}

Result<SliceNames> SliceNames::Decode(const std::string& bytes, uint64_t depth,
                                      const std::string& where) {
  auto bad = [&](const std::string& why) { return Status::Corruption(where + ": " + why); };
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < kHeader + 4) return bad("too short for a names file");
  if (GetU32(p) != kMagic) return bad("not a brickfs names file (bad magic)");
  if (GetU32(p + 4) != kVersion) {
    return bad("names file version " + std::to_string(GetU32(p + 4)) + " is not supported");
  }
  const size_t body = bytes.size() - 4;
  if (Crc32c(p, body) != GetU32(p + body)) return bad("crc32c mismatch");
  const uint64_t count = GetU64(p + 8);
  // Each entry takes at least kEntryFixed + 1 bytes: bounds count before any loop.
  if (count > (body - kHeader) / (kEntryFixed + 1)) {
    return bad("claims " + std::to_string(count) + " entries in " + std::to_string(bytes.size()) +
               " bytes");
  }
  SliceNames names;
  size_t pos = kHeader;
  for (uint64_t i = 0; i < count; ++i) {
    if (body - pos < kEntryFixed) return bad("entry " + std::to_string(i) + " is cut short");
    SliceName e;
    e.z = GetU64(p + pos);
    e.size = GetU64(p + pos + 8);
    e.mtime_ns = static_cast<int64_t>(GetU64(p + pos + 16));
    const size_t len = GetU16(p + pos + 24);
    pos += kEntryFixed;
    if (len > body - pos) return bad("entry " + std::to_string(i) + " is cut short");
    e.name.assign(bytes, pos, len);
    pos += len;
    if (!ValidName(e.name)) return bad("entry " + std::to_string(i) + " has an invalid name");
    if (e.z >= depth) {
      return bad("entry " + std::to_string(i) + " names z=" + std::to_string(e.z) +
                 ", outside the volume's " + std::to_string(depth) + " slices");
    }
    if (names.OfZ(e.z) || names.Find(e.name)) {
      return bad("entry " + std::to_string(i) + " repeats a z or a name");
    }
    names.Set(e);
  }
  if (pos != body) return bad("trailing bytes after the last entry");
  return names;
}

}  // namespace brickfs
