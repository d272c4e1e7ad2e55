// Object File Format (OFF): "OFF", then "nv nf ne", nv lines of x y z, nf lines of
// "n i0 .. in-1". Read by hand in float64 (assimp reads it in float32 and accepts less).
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "mesh/readers.h"
#include "util/error.h"

namespace iflame::readers {
namespace {

// Tokenizer over the OFF text that skips '#' comments and counts lines for messages.
class Tokens {
 public:
  Tokens(const std::vector<uint8_t>& bytes, const std::string& path)
      : p_(reinterpret_cast<const char*>(bytes.data())), end_(p_ + bytes.size()), path_(path) {}

  std::string next(const char* what) {
    skip();
    if (p_ >= end_) throw Error(path_, std::string("truncated: expected ") + what + " at line " + std::to_string(line_));
    const char* start = p_;
    while (p_ < end_ && !std::isspace(static_cast<unsigned char>(*p_)) && *p_ != '#') ++p_;
    return std::string(start, p_);
  }
  double number(const char* what) {
    std::string s = next(what);
    char* e = nullptr;
    double v = std::strtod(s.c_str(), &e);
    if (e == s.c_str() || *e != '\0') throw Error(path_, std::string("expected ") + what + " at line " + std::to_string(line_) + ", got '" + s + "'");
    return v;
  }
  long long integer(const char* what) {
    std::string s = next(what);
    char* e = nullptr;
    long long v = std::strtoll(s.c_str(), &e, 10);
    if (e == s.c_str() || *e != '\0') throw Error(path_, std::string("expected ") + what + " at line " + std::to_string(line_) + ", got '" + s + "'");
    return v;
  }
  void skip_line() {
    while (p_ < end_ && *p_ != '\n') ++p_;
  }
  size_t remaining() const { return size_t(end_ - p_); }

 private:
  void skip() {
    while (p_ < end_) {
      if (*p_ == '#') {
        skip_line();
      } else if (std::isspace(static_cast<unsigned char>(*p_))) {
        if (*p_ == '\n') ++line_;
        ++p_;
      } else {
        break;
      }
    }
  }
  const char* p_;
  const char* end_;
  const std::string& path_;
  size_t line_ = 1;
};

}  // namespace

Mesh read_off(const std::vector<uint8_t>& bytes, const std::string& path) {
  if (!bytes.empty() && std::memchr(bytes.data(), '\0', bytes.size()) != nullptr) {
    throw Error(path, "not an OFF text file (contains NUL bytes)");
  }
  Tokens t(bytes, path);
  std::string magic = t.next("the OFF header");
  if (magic != "OFF") throw Error(path, "not an OFF file (header is '" + magic.substr(0, 16) + "', expected 'OFF')");
  long long nv = t.integer("the vertex count");
  long long nf = t.integer("the face count");
  t.integer("the edge count");
  // Each vertex needs at least 6 characters ("0 0 0\n"), each face 8: reject absurd counts early.
  if (nv < 0 || nf < 0 || size_t(nv) > t.remaining() / 6 + 1 || size_t(nf) > t.remaining() / 8 + 1) {
    throw Error(path, "vertex/face counts (" + std::to_string(nv) + ", " + std::to_string(nf) + ") do not fit the file size");
  }
  Mesh mesh;
  mesh.vertices.resize(size_t(nv));
  for (auto& v : mesh.vertices) {
    for (int k = 0; k < 3; ++k) v[k] = t.number("a vertex coordinate");
  }
  std::vector<int32_t> corners;
  for (long long f = 0; f < nf; ++f) {
    long long n = t.integer("a face corner count");
    if (n < 3 || n > 1'000'000) throw Error(path, "face " + std::to_string(f + 1) + " has " + std::to_string(n) + " corners");
    corners.clear();
    for (long long i = 0; i < n; ++i) {
      long long idx = t.integer("a face index");
      if (idx < 0 || idx >= nv) throw Error(path, "face " + std::to_string(f + 1) + " refers to vertex " + std::to_string(idx) + " of " + std::to_string(nv));
      corners.push_back(static_cast<int32_t>(idx));
    }
    t.skip_line();  // optional per-face colour
    append_fan(corners.data(), corners.size(), mesh.faces);
  }
  validate_mesh(mesh, path);
  return mesh;
}

}  // namespace iflame::readers
