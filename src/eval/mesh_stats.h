// Per-mesh and per-set mesh quality counts for evaluating generated meshes: degenerate and
// duplicate faces, boundary and non-manifold edges, watertightness, and how many inputs gave a
// usable mesh at all.
#pragma once
#include <vector>
#include <cstddef>

#include "mesh/mesh.h"

namespace iflame::eval {

// Topology is judged on vertices welded by exact position (as trimesh does on load), so a
// mesh split at UV seams still counts as closed.
struct MeshStats {
  size_t faces = 0;               // triangles as given
  size_t vertices = 0;            // distinct positions the faces use
  size_t degenerate_faces = 0;    // fewer than 3 distinct positions, or zero area
  size_t duplicate_faces = 0;     // same 3 positions as an earlier face, in any order or orientation
  size_t repeated_faces = 0;      // of those, the same orientation too: a copy, not a back side
  size_t edges = 0;               // distinct edges of the non-degenerate faces
  size_t boundary_edges = 0;      // edges of exactly one face
  size_t non_manifold_edges = 0;  // edges of three or more faces (duplicates included)
  double area = 0;                // total surface area
  // Every edge of the non-degenerate faces is shared by exactly two faces (and there is one).
  bool watertight() const { return edges > 0 && boundary_edges == 0 && non_manifold_edges == 0; }
  // Has area, so it can be sampled.
  bool usable() const { return area > 0; }
};

MeshStats mesh_stats(const Mesh& mesh);

// Sums over a set of inputs; `inputs` counts everything, including files that failed to load.
struct SetStats {
  size_t inputs = 0;
  size_t loaded = 0;     // read as a mesh
  size_t usable = 0;     // loaded and with surface area (these enter the metrics)
  size_t failed = 0;     // could not be read (inputs - loaded)
  size_t watertight = 0;
  size_t faces = 0, vertices = 0, degenerate_faces = 0, duplicate_faces = 0, repeated_faces = 0, boundary_edges = 0,
         non_manifold_edges = 0;
  size_t with_degenerate = 0, with_duplicates = 0, with_repeated = 0, with_non_manifold = 0;  // meshes with at least one
  size_t max_faces = 0;
  static constexpr size_t kHistogramBin = 50;
  std::vector<size_t> face_histogram;  // loaded meshes by face count: bin b holds [50 b, 50 (b + 1))

  void add(const MeshStats& s);
  void add_failure();
  double mean_faces() const { return loaded ? double(faces) / double(loaded) : 0.0; }
  double mean_vertices() const { return loaded ? double(vertices) / double(loaded) : 0.0; }
  double watertight_share() const { return loaded ? double(watertight) / double(loaded) : 0.0; }
  double usable_share() const { return inputs ? double(usable) / double(inputs) : 0.0; }
};

}  // namespace iflame::eval
