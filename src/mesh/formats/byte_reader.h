// Bounds-checked little-endian reading of a file held in memory, shared by the binary game-format
// readers (pmd, g3d, md2, spm). Every read says what it is for, so a short file fails with e.g.
// "truncated: needs 4 bytes at offset 120 for the face count, file has 118". Counts read from a
// file go through need_items() before anything is allocated, so a corrupt count of 4 billion
// fails on the spot instead of allocating gigabytes.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "util/error.h"

namespace iflame::readers::detail {

// Renders bytes found where a magic was expected, escaping what is not printable ASCII.
inline std::string printable(const uint8_t* bytes, size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t c = bytes[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Mesh indices are int32; a vertex count past that cannot be represented.
inline void check_vertex_total(uint64_t total, const std::string& path) {
  if (total > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    throw Error(path, "too many vertices (" + std::to_string(total) + "; at most 2147483647 are supported)");
  }
}

class ByteReader {
 public:
  ByteReader(const std::vector<uint8_t>& bytes, const std::string& path)
      : data_(bytes.data()), size_(bytes.size()), path_(path) {}

  size_t size() const { return size_; }
  size_t offset() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& path() const { return path_; }

  [[noreturn]] void fail(const std::string& message) const { throw Error(path_, message); }

  // Checks the file starts with `magic` (read as the first bytes); `kind` names the format.
  void expect_magic(const char* magic, const char* kind) {
    const size_t n = std::strlen(magic);
    if (size_ == 0) fail(std::string("empty file (expected a ") + kind + ")");
    if (size_ < n || std::memcmp(data_, magic, n) != 0) {
      fail(std::string("bad magic '") + printable(data_, size_ < n ? size_ : n) + "': not a " + kind + " (expected '" +
           magic + "')");
    }
    pos_ = n;
  }

  // Throws unless `n` bytes are left at the current offset.
  void need(uint64_t n, const char* what) const {
    if (n > remaining()) truncated(n, what);
  }
  void need(uint64_t n, const std::string& what) const { need(n, what.c_str()); }

  // Throws unless `count` items of `item_size` bytes each are left; safe for any count (no
  // multiplication that could overflow). Call before reserving memory for the items.
  void need_items(uint64_t count, uint64_t item_size, const std::string& what) const {
    if (item_size == 0 || count <= remaining() / item_size) return;
    fail("truncated: " + what + " need " + std::to_string(count) + " x " + std::to_string(item_size) +
         " bytes but only " + std::to_string(remaining()) + " are left at offset " + std::to_string(pos_) +
         " (file has " + std::to_string(size_) + ")");
  }

  // Moves to an absolute offset (taken from a header); `what` names what is expected there.
  void seek(uint64_t offset, const std::string& what) {
    if (offset > size_) {
      fail("offset " + std::to_string(offset) + " of " + what + " is past the end of the file (file has " +
           std::to_string(size_) + " bytes)");
    }
    pos_ = static_cast<size_t>(offset);
  }

  void skip(uint64_t n, const char* what) {
    need(n, what);
    pos_ += static_cast<size_t>(n);
  }
  void skip(uint64_t n, const std::string& what) { skip(n, what.c_str()); }

  uint8_t u8(const char* what) {
    need(1, what);
    return data_[pos_++];
  }
  uint16_t u16(const char* what) {
    need(2, what);
    const uint16_t v = static_cast<uint16_t>(data_[pos_] | (data_[pos_ + 1] << 8));
    pos_ += 2;
    return v;
  }
  uint32_t u32(const char* what) {
    need(4, what);
    const uint32_t v = static_cast<uint32_t>(data_[pos_]) | (static_cast<uint32_t>(data_[pos_ + 1]) << 8) |
                       (static_cast<uint32_t>(data_[pos_ + 2]) << 16) | (static_cast<uint32_t>(data_[pos_ + 3]) << 24);
    pos_ += 4;
    return v;
  }
  int32_t i32(const char* what) {
    const uint32_t u = u32(what);
    int32_t v;
    std::memcpy(&v, &u, 4);
    return v;
  }
  float f32(const char* what) {
    const uint32_t u = u32(what);
    float v;
    std::memcpy(&v, &u, 4);
    return v;
  }

  // Throws when bytes are left over in a format whose size is fully determined by its contents.
  void expect_end(const char* after) const {
    if (pos_ == size_) return;
    fail("trailing data: " + std::to_string(size_ - pos_) + " bytes after " + after + " at offset " +
         std::to_string(pos_) + " (file has " + std::to_string(size_) + ")");
  }

 private:
  [[noreturn]] void truncated(uint64_t n, const char* what) const {
    fail("truncated: needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) + " for " + what +
         ", file has " + std::to_string(size_));
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

}  // namespace iflame::readers::detail
