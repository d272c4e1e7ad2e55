// A read-only zip archive view over bytes in memory: the central directory (with ZIP64 end
// records and extra fields), STORED entries, CRC-32 checks. Enough for PyTorch checkpoints,
// which torch.save writes as an uncompressed zip. DEFLATE entries are reported, not inflated.
//
// Why our own and not libzip or minizip (both Debian packages): this is 180 lines that parse
// untrusted bytes already in memory (a mapped file) and hand out spans into them without
// copying, with every offset checked against the bytes present and fuzzed (tests/fuzz/zip).
// libzip reads through its own source and file abstractions and copies each entry out; minizip
// wants a file API. Neither would make this smaller. CRC-32 comes from zlib.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace iflame {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 = stored, 8 = deflate
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  // DATA must outlive the reader. PATH names the archive in error messages. Throws
  // iflame::Error when the bytes are not a zip archive or its central directory is damaged.
  ZipReader(const uint8_t* data, size_t size, std::string path);

  // True when the bytes end with a zip end-of-central-directory record (cheap; no throw).
  static bool looks_like_zip(const uint8_t* data, size_t size);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when there is no entry with that exact name.
  const ZipEntry* find(const std::string& name) const;

  struct Span {
    const uint8_t* data;
    size_t size;
  };
  // The contents of a STORED entry (pointing into the archive bytes), after checking its local
  // header and CRC-32. Throws iflame::Error for compressed or encrypted entries and damage.
  Span read(const ZipEntry& entry) const;

 private:
  const uint8_t* data_;
  size_t size_;
  std::string path_;
  std::vector<ZipEntry> entries_;
  std::unordered_map<std::string, size_t> by_name_;
};

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace iflame
