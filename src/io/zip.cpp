#include "io/zip.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <utility>

#include "util/error.h"

namespace iflame {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22, kZip64LocatorSize = 20, kZip64EndSize = 56, kCentralSize = 46, kLocalSize = 30;

uint16_t u16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
uint64_t u64(const uint8_t* p) { return uint64_t(u32(p)) | (uint64_t(u32(p + 4)) << 32); }

// Offset of the end-of-central-directory record, or SIZE when there is none. The record is
// the last 22 bytes unless the archive has a comment; then scan back (at most 64 KiB).
size_t find_end_record(const uint8_t* data, size_t size) {
  if (size < kEndSize) return size;
  const size_t lowest = size - kEndSize > 0xffff ? size - kEndSize - 0xffff : 0;
  for (size_t pos = size - kEndSize + 1; pos-- > lowest;) {
    if (u32(data + pos) == kEndSig && pos + kEndSize + u16(data + pos + 20) <= size) return pos;
  }
  return size;
}

}  // namespace

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc) {
  // zlib's (its counter is 32-bit: large inputs go in pieces).
  constexpr size_t kChunk = size_t(1) << 30;
  uLong c = crc;
  for (size_t done = 0; done < n; done += kChunk) c = ::crc32(c, p + done, uInt(std::min(n - done, kChunk)));
  return uint32_t(c);
}

bool ZipReader::looks_like_zip(const uint8_t* data, size_t size) { return find_end_record(data, size) < size; }

ZipReader::ZipReader(const uint8_t* data, size_t size, std::string path) : data_(data), size_(size), path_(std::move(path)) {
  const size_t end = find_end_record(data, size);
  if (end >= size) throw Error(path_, "not a zip archive (no end-of-central-directory record; truncated or not a zip file)");
  const uint8_t* e = data + end;
  if (u16(e + 4) != 0 || u16(e + 6) != 0) throw Error(path_, "multi-disk zip archives are not supported");
  uint64_t count = u16(e + 10);
  uint64_t cd_size = u32(e + 12);
  uint64_t cd_offset = u32(e + 16);

  // ZIP64: a locator right before the end record points at the ZIP64 end record, which holds
  // the 64-bit counts and offsets (the 32-bit fields are then 0xffff / 0xffffffff).
  if (end >= kZip64LocatorSize && u32(data + end - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint64_t z64 = u64(data + end - kZip64LocatorSize + 8);
    if (z64 > size || size - z64 < kZip64EndSize || u32(data + z64) != kZip64EndSig) {
      throw Error(path_, "damaged zip archive: the ZIP64 end record is missing or out of range");
    }
    const uint8_t* z = data + z64;
    count = u64(z + 32);
    cd_size = u64(z + 40);
    cd_offset = u64(z + 48);
  }
  if (cd_offset > size || cd_size > size - cd_offset) {
    throw Error(path_, "damaged or truncated zip archive: the central directory [" + std::to_string(cd_offset) + ", +" +
                           std::to_string(cd_size) + ") lies outside the " + std::to_string(size) + "-byte file");
  }
  if (count > cd_size / kCentralSize) {
    throw Error(path_, "damaged zip archive: " + std::to_string(count) + " entries cannot fit in a " + std::to_string(cd_size) +
                           "-byte central directory");
  }

  const uint8_t* p = data + cd_offset;
  const uint8_t* cd_end = p + cd_size;
  entries_.reserve(size_t(count));
  for (uint64_t i = 0; i < count; ++i) {
    if (size_t(cd_end - p) < kCentralSize || u32(p) != kCentralHeaderSig) {
      throw Error(path_, "damaged zip archive: central directory entry " + std::to_string(i) + " is missing or malformed");
    }
    ZipEntry entry;
    entry.flags = u16(p + 8);
    entry.method = u16(p + 10);
    entry.crc32 = u32(p + 16);
    entry.compressed_size = u32(p + 20);
    entry.size = u32(p + 24);
    const size_t name_len = u16(p + 28), extra_len = u16(p + 30), comment_len = u16(p + 32);
    entry.local_header_offset = u32(p + 42);
    if (size_t(cd_end - p) - kCentralSize < name_len + extra_len + comment_len) {
      throw Error(path_, "damaged zip archive: central directory entry " + std::to_string(i) + " runs past the directory");
    }
    entry.name.assign(reinterpret_cast<const char*>(p + kCentralSize), name_len);
    // Extra fields: the ZIP64 one (id 1) carries the 64-bit values of the fields set to ~0.
    const uint8_t* x = p + kCentralSize + name_len;
    const uint8_t* x_end = x + extra_len;
    while (x_end - x >= 4) {
      const uint16_t id = u16(x), len = u16(x + 2);
      if (x_end - x - 4 < len) throw Error(path_, "damaged zip archive: bad extra field in entry '" + entry.name + "'");
      if (id == 0x0001) {
        const uint8_t* f = x + 4;
        const uint8_t* f_end = f + len;
        auto take = [&](uint64_t* value) {
          if (f_end - f < 8) throw Error(path_, "damaged zip archive: short ZIP64 extra field in entry '" + entry.name + "'");
          *value = u64(f);
          f += 8;
        };
        if (entry.size == 0xffffffffu) take(&entry.size);
        if (entry.compressed_size == 0xffffffffu) take(&entry.compressed_size);
        if (entry.local_header_offset == 0xffffffffu) take(&entry.local_header_offset);
      }
      x += 4 + len;
    }
    if (!by_name_.emplace(entry.name, entries_.size()).second) {
      throw Error(path_, "damaged zip archive: the entry '" + entry.name + "' appears twice");
    }
    entries_.push_back(std::move(entry));
    p += kCentralSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &entries_[it->second];
}

ZipReader::Span ZipReader::read(const ZipEntry& entry) const {
  const std::string where = "zip entry '" + entry.name + "'";
  if (entry.flags & 0x1) throw Error(path_, where + " is encrypted");
  if (entry.method != 0) {
    throw Error(path_, where + " is compressed (method " + std::to_string(entry.method) + (entry.method == 8 ? ", DEFLATE" : "") +
                           "); only uncompressed (STORED) entries are supported, as torch.save writes them. "
                           "Re-save with torch.save, or re-zip with `zip -0`");
  }
  if (entry.compressed_size != entry.size) {
    throw Error(path_, where + " is stored but its compressed and uncompressed sizes differ");
  }
  const uint64_t lho = entry.local_header_offset;
  if (lho > size_ || size_ - lho < kLocalSize || u32(data_ + lho) != kLocalHeaderSig) {
    throw Error(path_, where + ": local header missing or out of range (truncated or damaged archive)");
  }
  const uint8_t* h = data_ + lho;
  const size_t name_len = u16(h + 26), extra_len = u16(h + 28);
  const uint64_t begin = lho + kLocalSize + name_len + extra_len;
  if (begin > size_ || entry.size > size_ - begin) {
    throw Error(path_, where + ": data runs past the end of the file (truncated archive?)");
  }
  if (name_len != entry.name.size() || entry.name.compare(0, name_len, reinterpret_cast<const char*>(h + kLocalSize), name_len) != 0) {
    throw Error(path_, where + ": the local header names a different file (damaged archive)");
  }
  const uint8_t* contents = data_ + begin;
  if (crc32(contents, size_t(entry.size)) != entry.crc32) {
    throw Error(path_, where + ": CRC-32 mismatch (the data is damaged)");
  }
  return {contents, size_t(entry.size)};
}

}  // namespace iflame
