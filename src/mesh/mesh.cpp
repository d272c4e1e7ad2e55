#include "mesh/mesh.h"

#include <cmath>

#include "util/error.h"

namespace iflame {

void append_fan(const int32_t* corners, size_t count, std::vector<Tri>& out) {
  for (size_t i = 1; i + 1 < count; ++i) out.push_back({corners[0], corners[i], corners[i + 1]});
}

void validate_mesh(const Mesh& mesh, const std::string& path) {
  if (mesh.vertices.empty()) throw Error(path, "no vertices");
  if (mesh.faces.empty()) throw Error(path, "no faces (a mesh needs at least one triangle)");
  for (size_t i = 0; i < mesh.vertices.size(); ++i) {
    for (double c : mesh.vertices[i]) {
      if (!std::isfinite(c)) {
        throw Error(path, "vertex " + std::to_string(i + 1) + " has a non-finite coordinate (NaN or Inf)");
      }
    }
  }
  const auto n = static_cast<int64_t>(mesh.vertices.size());
  for (size_t f = 0; f < mesh.faces.size(); ++f) {
    for (int32_t v : mesh.faces[f]) {
      if (v < 0 || v >= n) {
        throw Error(path, "face " + std::to_string(f + 1) + " refers to vertex " + std::to_string(int64_t(v) + 1) +
                              " but there are " + std::to_string(n) + " vertices");
      }
    }
  }
}

}  // namespace iflame
