#include "eval/mesh_stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

namespace iflame::eval {

MeshStats mesh_stats(const Mesh& mesh) {
  MeshStats s;
  s.faces = mesh.faces.size();
  // Weld by exact position (std::map: -0.0 and 0.0 are the same point).
  std::map<Vec3, int32_t> ids;
  std::vector<int32_t> weld(mesh.vertices.size(), -1);
  auto welded = [&](int32_t v) {
    int32_t& w = weld.at(size_t(v));
    if (w < 0) w = ids.emplace(mesh.vertices[size_t(v)], int32_t(ids.size())).first->second;
    return w;
  };
  std::vector<std::array<int32_t, 3>> keys;     // sorted welded triples of the non-degenerate faces
  std::vector<std::array<int32_t, 3>> oriented;  // the same, rotated smallest first: orientation kept
  std::vector<uint64_t> edges;
  for (const Tri& f : mesh.faces) {
    std::array<int32_t, 3> k = {welded(f[0]), welded(f[1]), welded(f[2])};
    const Vec3 &a = mesh.vertices[size_t(f[0])], &b = mesh.vertices[size_t(f[1])], &c = mesh.vertices[size_t(f[2])];
    const double ux = b[0] - a[0], uy = b[1] - a[1], uz = b[2] - a[2];
    const double vx = c[0] - a[0], vy = c[1] - a[1], vz = c[2] - a[2];
    const double cx = uy * vz - uz * vy, cy = uz * vx - ux * vz, cz = ux * vy - uy * vx;
    const double area = 0.5 * std::sqrt(cx * cx + cy * cy + cz * cz);
    s.area += area;
    std::array<int32_t, 3> turned = k;
    std::rotate(turned.begin(), std::min_element(turned.begin(), turned.end()), turned.end());
    std::sort(k.begin(), k.end());
    if (k[0] == k[1] || k[1] == k[2] || !(area > 0)) {
      ++s.degenerate_faces;
      continue;
    }
    keys.push_back(k);
    oriented.push_back(turned);
    auto edge = [](int32_t lo, int32_t hi) { return (uint64_t(uint32_t(lo)) << 32) | uint32_t(hi); };
    edges.push_back(edge(k[0], k[1]));
    edges.push_back(edge(k[1], k[2]));
    edges.push_back(edge(k[0], k[2]));
  }
  s.vertices = ids.size();
  std::sort(keys.begin(), keys.end());
  for (size_t i = 1; i < keys.size(); ++i) s.duplicate_faces += keys[i] == keys[i - 1];
  std::sort(oriented.begin(), oriented.end());
  for (size_t i = 1; i < oriented.size(); ++i) s.repeated_faces += oriented[i] == oriented[i - 1];
  std::sort(edges.begin(), edges.end());
  for (size_t i = 0; i < edges.size();) {
    size_t j = i;
    while (j < edges.size() && edges[j] == edges[i]) ++j;
    ++s.edges;
    if (j - i == 1) ++s.boundary_edges;
    if (j - i > 2) ++s.non_manifold_edges;
    i = j;
  }
  return s;
}

void SetStats::add(const MeshStats& s) {
  ++inputs;
  ++loaded;
  usable += s.usable();
  watertight += s.watertight();
  faces += s.faces;
  vertices += s.vertices;
  degenerate_faces += s.degenerate_faces;
  duplicate_faces += s.duplicate_faces;
  repeated_faces += s.repeated_faces;
  boundary_edges += s.boundary_edges;
  non_manifold_edges += s.non_manifold_edges;
  with_degenerate += s.degenerate_faces > 0;
  with_duplicates += s.duplicate_faces > 0;
  with_repeated += s.repeated_faces > 0;
  with_non_manifold += s.non_manifold_edges > 0;
  max_faces = std::max(max_faces, s.faces);
  const size_t bin = s.faces / kHistogramBin;
  if (face_histogram.size() <= bin) face_histogram.resize(bin + 1, 0);
  ++face_histogram[bin];
}

void SetStats::add_failure() {
  ++inputs;
  ++failed;
}

}  // namespace iflame::eval
