// Wavefront OBJ, read by hand in float64 so that quantization matches the reference exactly
// (assimp parses OBJ in float32, which moves coordinates that sit on rounding ties).
// Only `v` and `f` records matter; `vt`, `vn`, groups, materials and the like are skipped.
#include <charconv>
#include <cstring>

#include "mesh/readers.h"
#include "util/error.h"

namespace iflame::readers {
namespace {

struct LineCursor {
  const char* p;
  const char* end;
  void skip_space() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
  }
  bool at_end() {
    skip_space();
    return p >= end;
  }
};

}  // namespace

Mesh read_obj(const std::vector<uint8_t>& bytes, const std::string& path) {
  Mesh mesh;
  const char* data = reinterpret_cast<const char*>(bytes.data());
  const char* end = data + bytes.size();
  if (!bytes.empty() && std::memchr(data, '\0', bytes.size()) != nullptr) {
    throw Error(path, "not an OBJ text file (contains NUL bytes)");
  }
  std::vector<int32_t> corners;
  size_t line_no = 0;
  for (const char* line = data; line < end;) {
    const char* eol = static_cast<const char*>(std::memchr(line, '\n', size_t(end - line)));
    if (!eol) eol = end;
    ++line_no;
    LineCursor c{line, eol};
    c.skip_space();
    auto where = [&] { return "line " + std::to_string(line_no) + ": "; };
    if (c.p + 1 < c.end && c.p[0] == 'v' && (c.p[1] == ' ' || c.p[1] == '\t')) {
      c.p += 2;
      Vec3 v{};
      for (int k = 0; k < 3; ++k) {
        c.skip_space();
        // from_chars does not accept a leading '+', which some exporters write.
        if (c.p < c.end && *c.p == '+') ++c.p;
        auto [next, ec] = std::from_chars(c.p, c.end, v[k]);
        if (ec != std::errc() || (next < c.end && *next != ' ' && *next != '\t' && *next != '\r')) {
          throw Error(path, where() + "vertex needs 3 numeric coordinates");
        }
        c.p = next;
      }
      mesh.vertices.push_back(v);
    } else if (c.p + 1 < c.end && c.p[0] == 'f' && (c.p[1] == ' ' || c.p[1] == '\t')) {
      c.p += 2;
      corners.clear();
      while (!c.at_end()) {
        long long index = 0;
        auto [next, ec] = std::from_chars(c.p, c.end, index);
        if (ec != std::errc()) throw Error(path, where() + "face corner is not an integer index");
        // Skip "/vt/vn" parts of the corner.
        while (next < c.end && *next != ' ' && *next != '\t' && *next != '\r') ++next;
        c.p = next;
        const auto nv = static_cast<long long>(mesh.vertices.size());
        if (index < 0) index = nv + index + 1;  // negative indices count back from the last vertex
        if (index < 1 || index > nv) {
          throw Error(path, where() + "face refers to vertex " + std::to_string(index) + " but only " +
                                std::to_string(nv) + " vertices are defined so far");
        }
        corners.push_back(static_cast<int32_t>(index - 1));
      }
      if (corners.size() < 3) throw Error(path, where() + "face has fewer than 3 corners");
      append_fan(corners.data(), corners.size(), mesh.faces);
    }
    line = eol + 1;
  }
  validate_mesh(mesh, path);
  return mesh;
}

}  // namespace iflame::readers
