// Test helpers for the file-format tests: a zip writer (STORED, optional ZIP64 records), a
// protocol-2 pickle writer for hand-made torch.save checkpoints, and small file helpers.
#pragma once
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "io/zip.h"

namespace iflame::test {

inline std::vector<uint8_t> to_bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

inline void write_bytes(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), std::streamsize(data.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

struct TestZipEntry {
  std::string name, data;
  uint16_t method = 0;  // written as is (the data is never compressed)
};

class ZipWriterForTests {
 public:
  static void put16(std::string& s, uint64_t v) {
    for (int i = 0; i < 2; ++i) s += char((v >> (8 * i)) & 0xff);
  }
  static void put32(std::string& s, uint64_t v) {
    for (int i = 0; i < 4; ++i) s += char((v >> (8 * i)) & 0xff);
  }
  static void put64(std::string& s, uint64_t v) {
    for (int i = 0; i < 8; ++i) s += char((v >> (8 * i)) & 0xff);
  }

  // ZIP64: every size and offset goes through the ZIP64 extra field and end records.
  static std::string build(const std::vector<TestZipEntry>& entries, bool zip64 = false) {
    std::string out, central;
    for (const auto& e : entries) {
      const uint64_t offset = out.size();
      const uint32_t crc = crc32(reinterpret_cast<const uint8_t*>(e.data.data()), e.data.size());
      std::string local_extra, central_extra;
      if (zip64) {
        put16(local_extra, 1);
        put16(local_extra, 16);
        put64(local_extra, e.data.size());
        put64(local_extra, e.data.size());
        put16(central_extra, 1);
        put16(central_extra, 24);
        put64(central_extra, e.data.size());
        put64(central_extra, e.data.size());
        put64(central_extra, offset);
      }
      const uint64_t size32 = zip64 ? 0xffffffffu : e.data.size();
      put32(out, 0x04034b50);
      put16(out, zip64 ? 45 : 20);
      put16(out, 0);
      put16(out, e.method);
      put32(out, 0);
      put32(out, crc);
      put32(out, size32);
      put32(out, size32);
      put16(out, e.name.size());
      put16(out, local_extra.size());
      out += e.name + local_extra + e.data;

      put32(central, 0x02014b50);
      put16(central, zip64 ? 45 : 20);
      put16(central, zip64 ? 45 : 20);
      put16(central, 0);
      put16(central, e.method);
      put32(central, 0);
      put32(central, crc);
      put32(central, size32);
      put32(central, size32);
      put16(central, e.name.size());
      put16(central, central_extra.size());
      put16(central, 0);
      put16(central, 0);
      put16(central, 0);
      put32(central, 0);
      put32(central, zip64 ? 0xffffffffu : offset);
      central += e.name + central_extra;
    }
    const uint64_t cd_offset = out.size();
    out += central;
    if (zip64) {
      const uint64_t end64 = out.size();
      put32(out, 0x06064b50);
      put64(out, 44);
      put16(out, 45);
      put16(out, 45);
      put32(out, 0);
      put32(out, 0);
      put64(out, entries.size());
      put64(out, entries.size());
      put64(out, central.size());
      put64(out, cd_offset);
      put32(out, 0x07064b50);
      put32(out, 0);
      put64(out, end64);
      put32(out, 1);
    }
    put32(out, 0x06054b50);
    put16(out, 0);
    put16(out, 0);
    put16(out, zip64 ? 0xffff : entries.size());
    put16(out, zip64 ? 0xffff : entries.size());
    put32(out, zip64 ? 0xffffffffu : central.size());
    put32(out, zip64 ? 0xffffffffu : cd_offset);
    put16(out, 0);
    return out;
  }
};

// Emits protocol-2 pickles the way torch.save does (text GLOBALs, BININT*, MARK/TUPLE, ...).
class PickleWriter {
 public:
  PickleWriter() { out_ = "\x80\x02"; }
  PickleWriter& op(uint8_t c) {
    out_ += char(c);
    return *this;
  }
  PickleWriter& raw(const std::string& s) {
    out_ += s;
    return *this;
  }
  PickleWriter& str(const std::string& s) {
    op('X');
    ZipWriterForTests::put32(out_, s.size());
    out_ += s;
    return *this;
  }
  PickleWriter& integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      out_ += char(v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      ZipWriterForTests::put32(out_, uint64_t(v));
    } else {
      op(0x8a);
      out_ += char(8);
      ZipWriterForTests::put64(out_, uint64_t(v));
    }
    return *this;
  }
  PickleWriter& global(const std::string& module, const std::string& name) {
    op('c');
    out_ += module + "\n" + name + "\n";
    return *this;
  }
  PickleWriter& ints(const std::vector<int64_t>& values) {
    op('(');
    for (int64_t v : values) integer(v);
    return op('t');
  }
  PickleWriter& storage(const std::string& type, const std::string& key, int64_t numel, const std::string& module = "torch") {
    op('(').str("storage").global(module, type).str(key).str("cpu").integer(numel).op('t');
    return op('Q');
  }
  // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, {}).
  PickleWriter& tensor(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                       const std::vector<int64_t>& shape, const std::vector<int64_t>& stride) {
    global("torch._utils", "_rebuild_tensor_v2").op('(');
    storage(type, key, numel).integer(offset).ints(shape).ints(stride).op(0x89).op('}').op('t');
    return op('R');
  }
  std::string bytes() const { return out_; }

 private:
  std::string out_;
};

// A torch.save-like zip: archive/data.pkl, archive/data/<key> records, archive/version.
inline std::string make_checkpoint(const std::string& pickle, const std::vector<std::pair<std::string, std::string>>& records,
                                   bool zip64 = false) {
  std::vector<TestZipEntry> entries{{"archive/data.pkl", pickle, 0}};
  for (const auto& [key, data] : records) entries.push_back({"archive/data/" + key, data, 0});
  entries.push_back({"archive/version", "3\n", 0});
  return ZipWriterForTests::build(entries, zip64);
}

inline std::string floats_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace iflame::test
