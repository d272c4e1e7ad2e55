// Surface point clouds of meshes for the generation metrics (spec section 6): the evaluation
// normalization and area-weighted, seeded surface sampling.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "mesh/mesh.h"

namespace iflame {

using Point3f = std::array<float, 3>;
using PointCloud = std::vector<Point3f>;

inline constexpr size_t kDefaultPoints = 2048;

// The evaluation normalization: center on the bounding-box center of the vertices that faces
// use, divide by the longest side, so the mesh fits [-0.5, 0.5]^3 with longest side 1.
// Unreferenced vertices move along but do not count. Throws iflame::Error when the faces'
// vertices have zero extent (a point).
Mesh normalize_for_eval(const Mesh& mesh);

// Total surface area (float64).
double surface_area(const Mesh& mesh);

// `count` points on the surface of `mesh` (as given, not normalized): each point picks a
// triangle with probability proportional to its area, then uniform barycentric coordinates
// (u = sqrt(r1): (1 - u) a + u (1 - r2) b + u r2 c). The same seed gives the same cloud on
// every platform (mt19937_64 with our own uniform conversion). Throws iflame::Error when the
// mesh has no area (every face degenerate).
PointCloud sample_surface(const Mesh& mesh, size_t count, uint64_t seed);

// normalize_for_eval, then sample_surface.
PointCloud sample_normalized(const Mesh& mesh, size_t count, uint64_t seed);

// A seed for item `index` of stream `stream` (e.g. 0 for samples, 1 for references), so each
// mesh's points are independent of the order and threads they are computed in.
uint64_t item_seed(uint64_t seed, uint64_t stream, uint64_t index);

}  // namespace iflame
