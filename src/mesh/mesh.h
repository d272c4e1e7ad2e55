// The in-memory triangle mesh every reader produces and every writer consumes.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace iflame {

using Vec3 = std::array<double, 3>;
using Tri = std::array<int32_t, 3>;

// Positions in float64 (the tokenizer's quantization is specified in float64) and triangles as
// 0-based vertex indices. Readers fan-triangulate polygons; nothing else is stored.
struct Mesh {
  std::vector<Vec3> vertices;
  std::vector<Tri> faces;
};

// Builds triangles from one polygon as a fan (v0, vi, vi+1), appending to `out`.
// Polygons with fewer than 3 corners add nothing.
void append_fan(const int32_t* corners, size_t count, std::vector<Tri>& out);

// Throws iflame::Error naming `path` when the mesh is unusable: no vertices, no faces, a
// non-finite coordinate, or an index out of range.
void validate_mesh(const Mesh& mesh, const std::string& path);

}  // namespace iflame
