// Small meshes and point clouds for the evaluation tests.
#pragma once
#include <random>
#include <vector>

#include "mesh/mesh.h"
#include "mesh/sampling.h"

namespace iflame::test {

// A closed unit cube [0, 1]^3: 8 vertices, 12 outward-facing triangles.
inline Mesh cube_mesh(double sx = 1, double sy = 1, double sz = 1) {
  Mesh m;
  for (int i = 0; i < 8; ++i) m.vertices.push_back({sx * (i & 1), sy * ((i >> 1) & 1), sz * ((i >> 2) & 1)});
  const int quads[6][4] = {{0, 2, 3, 1}, {4, 5, 7, 6}, {0, 1, 5, 4}, {2, 6, 7, 3}, {0, 4, 6, 2}, {1, 3, 7, 5}};
  for (const auto& q : quads) {
    m.faces.push_back({q[0], q[1], q[2]});
    m.faces.push_back({q[0], q[2], q[3]});
  }
  return m;
}

// `count` clouds of `points` uniform points in a box of random extents (0.3..1 per axis)
// centered at `center`: many draws of one distribution.
inline std::vector<PointCloud> random_box_clouds(size_t count, size_t points, uint64_t seed, float center = 0) {
  std::mt19937_64 rng(seed);
  auto u = [&] { return float(double(rng() >> 11) * 0x1p-53); };
  std::vector<PointCloud> out(count);
  for (auto& c : out) {
    const float ex = 0.3f + 0.7f * u(), ey = 0.3f + 0.7f * u(), ez = 0.3f + 0.7f * u();
    c.resize(points);
    for (auto& p : c) p = {center + ex * (u() - 0.5f), center + ey * (u() - 0.5f), center + ez * (u() - 0.5f)};
  }
  return out;
}

}  // namespace iflame::test
