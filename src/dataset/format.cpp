#include "dataset/format.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <utility>

#include "util/error.h"

namespace iflame {
namespace {

constexpr const char* kHint = " (re-run `iflame prepare` to rebuild the dataset)";

bool host_is_little_endian() {
  const uint16_t one = 1;
  uint8_t first;
  std::memcpy(&first, &one, 1);
  return first == 1;
}

void require_little_endian(const std::string& path) {
  if (!host_is_little_endian()) throw Error(path, "datasets are little-endian; big-endian hosts are not supported");
}

uint64_t align8(uint64_t x) { return (x + 7) & ~uint64_t(7); }

void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

uint32_t checked_u32(size_t v, const std::string& path, const std::string& what) {
  if (v > std::numeric_limits<uint32_t>::max()) throw Error(path, what + " does not fit the format (" + std::to_string(v) + ")");
  return uint32_t(v);
}

// Where each blob of one entry goes.
struct Layout {
  uint64_t strings, vertices, triangles, tokens, end;
};

Layout layout_entry(const DatasetEntry& e, uint64_t at) {
  Layout l;
  l.strings = at;
  l.vertices = align8(l.strings + e.name.size() + e.group.size() + e.source.size() + 3);
  l.triangles = align8(l.vertices + e.vertices.size() * sizeof(float));
  l.tokens = align8(l.triangles + e.triangles.size() * sizeof(int32_t));
  l.end = align8(l.tokens + e.tokens.size() * sizeof(uint16_t));
  return l;
}

// Sequential writer to a temporary file that pads to the offsets the layout computed.
class BlobFile {
 public:
  BlobFile(const std::string& final_path, const std::string& tmp_path) : path_(final_path), tmp_(tmp_path) {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw Error(path_, std::string("cannot write: ") + std::strerror(errno));
  }
  ~BlobFile() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }
  void write(const void* data, size_t n) {
    if (n && std::fwrite(data, 1, n, f_) != n) fail();
    pos_ += n;
  }
  void pad_to(uint64_t offset) {
    static const uint8_t zeros[8] = {};
    if (offset < pos_ || offset - pos_ > 8) throw std::logic_error("dataset writer: layout mismatch");
    write(zeros, size_t(offset - pos_));
  }
  uint64_t pos() const { return pos_; }
  // Flushes, syncs and renames the temporary file over the final path.
  void commit() {
    bool ok = std::fflush(f_) == 0;
    ok = (::fsync(::fileno(f_)) == 0) && ok;
    ok = (std::fclose(f_) == 0) && ok;
    f_ = nullptr;
    if (!ok) {
      std::remove(tmp_.c_str());
      throw Error(path_, "write failed (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp_, path_, ec);
    if (ec) {
      std::remove(tmp_.c_str());
      throw Error(path_, "cannot rename temporary file into place: " + ec.message());
    }
  }

 private:
  [[noreturn]] void fail() { throw Error(path_, std::string("write failed: ") + std::strerror(errno) + " (disk full?)"); }
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  uint64_t pos_ = 0;
};

}  // namespace

const char* split_name(Split split) { return split == Split::kVal ? "val" : "train"; }

void write_dataset(const std::string& path, const std::vector<DatasetEntry>& entries, int bits,
                   const std::string& meta_json) {
  require_little_endian(path);
  if (bits < 1 || bits > 15) throw Error(path, "tokenizer bits must be 1..15 for uint16 tokens, got " + std::to_string(bits));
  const uint64_t n = entries.size();
  const uint64_t index_offset = kDatasetHeaderSize;
  const uint64_t meta_offset = index_offset + n * kDatasetRecordSize;
  const uint64_t data_offset = align8(meta_offset + meta_json.size());

  // Lay everything out first: the index precedes the blobs it points to.
  std::vector<Layout> layouts;
  layouts.reserve(entries.size());
  uint64_t at = data_offset, num_val = 0;
  for (const DatasetEntry& e : entries) {
    if (e.vertices.size() % 3 || e.triangles.size() % 3 || e.tokens.size() % kTokensPerFace) {
      throw Error(path, "entry '" + e.name + "' has arrays that are not whole vertices, triangles or face rows");
    }
    for (const std::string* s : {&e.name, &e.group, &e.source}) {
      if (s->find('\0') != std::string::npos) throw Error(path, "entry '" + e.name + "' has a NUL byte in a string");
    }
    layouts.push_back(layout_entry(e, at));
    at = layouts.back().end;
    num_val += e.split == Split::kVal;
  }
  const uint64_t file_size = at;

  uint8_t header[kDatasetHeaderSize] = {};
  std::memcpy(header, kDatasetMagic, 8);
  put_u32(header + 8, kDatasetVersion);
  put_u32(header + 12, kDatasetHeaderSize);
  put_u32(header + 16, kDatasetRecordSize);
  put_u32(header + 20, uint32_t(bits));
  put_u32(header + 24, kTokensPerFace);
  put_u32(header + 28, 0);
  put_u64(header + 32, n);
  put_u64(header + 40, n - num_val);
  put_u64(header + 48, num_val);
  put_u64(header + 56, index_offset);
  put_u64(header + 64, meta_offset);
  put_u64(header + 72, meta_json.size());
  put_u64(header + 80, data_offset);
  put_u64(header + 88, file_size);

  BlobFile out(path, path + ".tmp." + std::to_string(::getpid()));
  out.write(header, sizeof header);
  std::vector<uint8_t> index(size_t(n) * kDatasetRecordSize, 0);
  for (size_t i = 0; i < entries.size(); ++i) {
    const DatasetEntry& e = entries[i];
    const Layout& l = layouts[i];
    uint8_t* r = index.data() + i * kDatasetRecordSize;
    put_u64(r + 0, l.strings);
    put_u64(r + 8, l.strings + e.name.size() + 1);
    put_u64(r + 16, l.strings + e.name.size() + 1 + e.group.size() + 1);
    put_u64(r + 24, l.vertices);
    put_u64(r + 32, l.triangles);
    put_u64(r + 40, l.tokens);
    put_u32(r + 48, checked_u32(e.name.size(), path, "a name length"));
    put_u32(r + 52, checked_u32(e.group.size(), path, "a group length"));
    put_u32(r + 56, checked_u32(e.source.size(), path, "a source length"));
    put_u32(r + 60, checked_u32(e.vertices.size() / 3, path, "a vertex count"));
    put_u32(r + 64, checked_u32(e.triangles.size() / 3, path, "a triangle count"));
    put_u32(r + 68, checked_u32(e.tokens.size() / kTokensPerFace, path, "a face count"));
    put_u32(r + 72, e.input_faces);
    r[76] = uint8_t(e.split);
  }
  out.write(index.data(), index.size());
  out.write(meta_json.data(), meta_json.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const DatasetEntry& e = entries[i];
    const Layout& l = layouts[i];
    out.pad_to(l.strings);
    for (const std::string* s : {&e.name, &e.group, &e.source}) out.write(s->c_str(), s->size() + 1);
    out.pad_to(l.vertices);
    out.write(e.vertices.data(), e.vertices.size() * sizeof(float));
    out.pad_to(l.triangles);
    out.write(e.triangles.data(), e.triangles.size() * sizeof(int32_t));
    out.pad_to(l.tokens);
    out.write(e.tokens.data(), e.tokens.size() * sizeof(uint16_t));
  }
  out.pad_to(file_size);
  if (out.pos() != file_size) throw std::logic_error("dataset writer: size mismatch");
  out.commit();
}

Mesh DatasetMesh::to_mesh() const {
  Mesh m;
  m.vertices.resize(num_vertices);
  for (size_t i = 0; i < num_vertices; ++i) {
    m.vertices[i] = {double(vertices[3 * i]), double(vertices[3 * i + 1]), double(vertices[3 * i + 2])};
  }
  m.faces.resize(num_triangles);
  for (size_t i = 0; i < num_triangles; ++i) m.faces[i] = {triangles[3 * i], triangles[3 * i + 1], triangles[3 * i + 2]};
  return m;
}

std::vector<int64_t> DatasetMesh::sequence(const TokenizerConfig& config, size_t pad_to_rows) const {
  const size_t rows = size_t(num_faces) + 2;
  std::vector<int64_t> seq;
  seq.reserve(std::max(rows, pad_to_rows) * kTokensPerFace);
  seq.insert(seq.end(), kTokensPerFace, config.bos());
  seq.insert(seq.end(), tokens, tokens + num_tokens());
  seq.insert(seq.end(), kTokensPerFace, config.eos());
  if (pad_to_rows > rows) seq.insert(seq.end(), (pad_to_rows - rows) * kTokensPerFace, config.pad());
  return seq;
}

DatasetReader::DatasetReader(const std::string& path) : path_(path) {
  require_little_endian(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path, std::string("cannot open dataset: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(path, std::string("cannot stat dataset: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path, "not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(path, std::string("cannot map dataset: ") + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  try {
    validate();
    verify();  // every index and token too: training indexes arrays with them
  } catch (...) {
    close();
    throw;
  }
}

DatasetReader::~DatasetReader() { close(); }

DatasetReader::DatasetReader(DatasetReader&& other) noexcept { *this = std::move(other); }

DatasetReader& DatasetReader::operator=(DatasetReader&& other) noexcept {
  if (this != &other) {
    close();
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    version_ = other.version_;
    bits_ = other.bits_;
    num_meshes_ = std::exchange(other.num_meshes_, 0);
    num_train_ = other.num_train_;
    num_val_ = other.num_val_;
    index_offset_ = other.index_offset_;
    meta_offset_ = other.meta_offset_;
    meta_size_ = other.meta_size_;
  }
  return *this;
}

void DatasetReader::close() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
}

void DatasetReader::validate() {
  auto bad = [&](const std::string& what) { return Error(path_, "corrupt dataset: " + what + kHint); };
  if (size_ < 8 || std::memcmp(data_, kDatasetMagic, 8) != 0) {
    throw Error(path_, "not an iflame dataset (wrong magic bytes; expected \"IFLMDSET\"). Datasets are made by `iflame prepare`");
  }
  if (size_ < kDatasetHeaderSize) {
    throw Error(path_, "truncated dataset: " + std::to_string(size_) + " bytes, shorter than the " +
                           std::to_string(kDatasetHeaderSize) + "-byte header" + kHint);
  }
  const uint8_t* h = data_;
  version_ = get_u32(h + 8);
  if (version_ == 0) throw bad("format version 0");
  if (version_ > kDatasetVersion) {
    throw Error(path_, "dataset format version " + std::to_string(version_) + " is newer than this build reads (up to " +
                           std::to_string(kDatasetVersion) + "); update iflame or re-run `iflame prepare` with this build");
  }
  if (get_u32(h + 12) != kDatasetHeaderSize) throw bad("header size " + std::to_string(get_u32(h + 12)));
  if (get_u32(h + 16) != kDatasetRecordSize) throw bad("record size " + std::to_string(get_u32(h + 16)));
  if (get_u32(h + 24) != kTokensPerFace) throw bad("tokens per face " + std::to_string(get_u32(h + 24)));
  const uint32_t bits = get_u32(h + 20);
  if (bits < 1 || bits > 15) throw bad("tokenizer bits " + std::to_string(bits));
  bits_ = int(bits);
  const uint64_t n = get_u64(h + 32), train = get_u64(h + 40), val = get_u64(h + 48);
  index_offset_ = get_u64(h + 56);
  meta_offset_ = get_u64(h + 64);
  meta_size_ = get_u64(h + 72);
  const uint64_t data_offset = get_u64(h + 80), file_size = get_u64(h + 88);
  if (file_size != size_) {
    if (size_ < file_size) {
      throw Error(path_, "truncated dataset: " + std::to_string(size_) + " bytes but the header says " +
                             std::to_string(file_size) + kHint);
    }
    throw bad(std::to_string(size_ - file_size) + " unexpected bytes after the end (" + std::to_string(file_size) + ")");
  }
  if (train + val != n || n > size_ / kDatasetRecordSize) throw bad("mesh counts (" + std::to_string(n) + " meshes)");
  if (index_offset_ < kDatasetHeaderSize || index_offset_ > size_ || n * kDatasetRecordSize > size_ - index_offset_) {
    throw bad("index offset " + std::to_string(index_offset_) + " out of range");
  }
  const uint64_t index_end = index_offset_ + n * kDatasetRecordSize;
  if (meta_offset_ < index_end || meta_offset_ > size_ || meta_size_ > size_ - meta_offset_) {
    throw bad("metadata offset out of range");
  }
  if (data_offset < meta_offset_ + meta_size_ || data_offset > size_) throw bad("data offset out of range");
  num_meshes_ = size_t(n);
  num_train_ = size_t(train);
  num_val_ = size_t(val);

  // Every record: each blob inside [data_offset, file_size), aligned, strings NUL-terminated.
  uint64_t counted_val = 0;
  for (size_t i = 0; i < num_meshes_; ++i) {
    const uint8_t* r = data_ + index_offset_ + i * kDatasetRecordSize;
    auto where = [&](const std::string& what) { return bad("mesh " + std::to_string(i) + ": " + what); };
    auto check_blob = [&](uint64_t off, uint64_t count, uint64_t elem, uint64_t align, const char* what) {
      if (off < data_offset || off > size_ || off % align != 0 || count > (size_ - off) / elem) {
        throw where(std::string(what) + " offset " + std::to_string(off) + " (+" + std::to_string(count) + " x " +
                    std::to_string(elem) + " bytes) out of range");
      }
    };
    const uint64_t offs[3] = {get_u64(r + 0), get_u64(r + 8), get_u64(r + 16)};
    const uint32_t lens[3] = {get_u32(r + 48), get_u32(r + 52), get_u32(r + 56)};
    const char* names[3] = {"name", "group", "source"};
    for (int s = 0; s < 3; ++s) {
      check_blob(offs[s], uint64_t(lens[s]) + 1, 1, 1, names[s]);
      if (data_[offs[s] + lens[s]] != 0) throw where(std::string(names[s]) + " is not NUL-terminated");
    }
    check_blob(get_u64(r + 24), uint64_t(get_u32(r + 60)) * 3, sizeof(float), 4, "vertices");
    check_blob(get_u64(r + 32), uint64_t(get_u32(r + 64)) * 3, sizeof(int32_t), 4, "triangles");
    check_blob(get_u64(r + 40), uint64_t(get_u32(r + 68)) * kTokensPerFace, sizeof(uint16_t), 2, "tokens");
    if (r[76] > 1) throw where("split value " + std::to_string(int(r[76])));
    counted_val += r[76];
  }
  if (counted_val != num_val_) throw bad("the records hold " + std::to_string(counted_val) + " val meshes, the header says " + std::to_string(num_val_));
}

TokenizerConfig DatasetReader::tokenizer_config() const {
  TokenizerConfig c;
  c.bits = bits_;
  return c;
}

std::string_view DatasetReader::meta_json() const {
  return std::string_view(reinterpret_cast<const char*>(data_ + meta_offset_), size_t(meta_size_));
}

DatasetMesh DatasetReader::operator[](size_t i) const {
  assert(i < num_meshes_);
  const uint8_t* r = data_ + index_offset_ + i * kDatasetRecordSize;
  DatasetMesh m;
  auto str = [&](size_t off_at, size_t len_at) {
    return std::string_view(reinterpret_cast<const char*>(data_ + get_u64(r + off_at)), get_u32(r + len_at));
  };
  m.name = str(0, 48);
  m.group = str(8, 52);
  m.source = str(16, 56);
  m.vertices = reinterpret_cast<const float*>(data_ + get_u64(r + 24));
  m.triangles = reinterpret_cast<const int32_t*>(data_ + get_u64(r + 32));
  m.tokens = reinterpret_cast<const uint16_t*>(data_ + get_u64(r + 40));
  m.num_vertices = get_u32(r + 60);
  m.num_triangles = get_u32(r + 64);
  m.num_faces = get_u32(r + 68);
  m.input_faces = get_u32(r + 72);
  m.split = Split(r[76]);
  return m;
}

DatasetMesh DatasetReader::at(size_t i) const {
  if (i >= num_meshes_) {
    throw std::out_of_range(path_ + ": mesh " + std::to_string(i) + " of " + std::to_string(num_meshes_));
  }
  return (*this)[i];
}

std::vector<size_t> DatasetReader::indices(Split split) const {
  std::vector<size_t> out;
  out.reserve(split == Split::kVal ? num_val_ : num_train_);
  for (size_t i = 0; i < num_meshes_; ++i) {
    if (data_[index_offset_ + i * kDatasetRecordSize + 76] == uint8_t(split)) out.push_back(i);
  }
  return out;
}

void DatasetReader::verify() const {
  const uint16_t max_token = uint16_t(1u << bits_);
  for (size_t i = 0; i < num_meshes_; ++i) {
    const DatasetMesh m = (*this)[i];
    auto bad = [&](const std::string& what) {
      return Error(path_, "corrupt dataset: mesh " + std::to_string(i) + " (" + std::string(m.name) + "): " + what + kHint);
    };
    for (size_t k = 0; k < size_t(m.num_vertices) * 3; ++k) {
      if (!std::isfinite(m.vertices[k])) throw bad("non-finite vertex coordinate");
    }
    for (size_t k = 0; k < size_t(m.num_triangles) * 3; ++k) {
      if (m.triangles[k] < 0 || uint32_t(m.triangles[k]) >= m.num_vertices) {
        throw bad("triangle index " + std::to_string(m.triangles[k]) + " out of range");
      }
    }
    for (size_t k = 0; k < m.num_tokens(); ++k) {
      if (m.tokens[k] > max_token) throw bad("token " + std::to_string(m.tokens[k]) + " out of range");
    }
  }
}

}  // namespace iflame
