#include "mesh/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "util/error.h"

namespace iflame {

namespace {

// splitmix64 finalizer: decorrelates nearby seeds.
uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from the top 53 bits (std::uniform_real_distribution differs between
// standard libraries).
double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1p-53; }

double triangle_area(const Vec3& a, const Vec3& b, const Vec3& c) {
  const double ux = b[0] - a[0], uy = b[1] - a[1], uz = b[2] - a[2];
  const double vx = c[0] - a[0], vy = c[1] - a[1], vz = c[2] - a[2];
  const double cx = uy * vz - uz * vy, cy = uz * vx - ux * vz, cz = ux * vy - uy * vx;
  return 0.5 * std::sqrt(cx * cx + cy * cy + cz * cz);
}

}  // namespace

uint64_t item_seed(uint64_t seed, uint64_t stream, uint64_t index) { return mix(mix(mix(seed) ^ stream) ^ index); }

Mesh normalize_for_eval(const Mesh& mesh) {
  Vec3 lo{std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
          std::numeric_limits<double>::infinity()};
  Vec3 hi{-lo[0], -lo[1], -lo[2]};
  for (const Tri& f : mesh.faces) {
    for (int32_t v : f) {
      const Vec3& p = mesh.vertices.at(size_t(v));
      for (int a = 0; a < 3; ++a) {
        lo[a] = std::min(lo[a], p[a]);
        hi[a] = std::max(hi[a], p[a]);
      }
    }
  }
  const double extent = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
  if (!(extent > 0) || !std::isfinite(extent)) throw Error("mesh has no faces or zero extent; nothing to normalize");
  Mesh out = mesh;
  for (Vec3& p : out.vertices) {
    for (int a = 0; a < 3; ++a) p[a] = (p[a] - 0.5 * (lo[a] + hi[a])) / extent;
  }
  return out;
}

double surface_area(const Mesh& mesh) {
  double total = 0;
  for (const Tri& f : mesh.faces) {
    total += triangle_area(mesh.vertices.at(size_t(f[0])), mesh.vertices.at(size_t(f[1])), mesh.vertices.at(size_t(f[2])));
  }
  return total;
}

PointCloud sample_surface(const Mesh& mesh, size_t count, uint64_t seed) {
  // Cumulative areas; a point picks the first triangle whose cumulative area exceeds u * total.
  std::vector<double> cumulative(mesh.faces.size());
  double total = 0;
  for (size_t f = 0; f < mesh.faces.size(); ++f) {
    const Tri& t = mesh.faces[f];
    total += triangle_area(mesh.vertices.at(size_t(t[0])), mesh.vertices.at(size_t(t[1])), mesh.vertices.at(size_t(t[2])));
    cumulative[f] = total;
  }
  if (!(total > 0) || !std::isfinite(total)) throw Error("mesh has no surface area (every face is degenerate)");
  std::mt19937_64 rng(seed);
  PointCloud out(count);
  for (Point3f& p : out) {
    const double pick = uniform01(rng) * total;
    size_t f = size_t(std::upper_bound(cumulative.begin(), cumulative.end(), pick) - cumulative.begin());
    // upper_bound skips zero-area faces (their cumulative equals the previous one), except when
    // rounding puts `pick` at the very end: then take the last face with area.
    if (f == cumulative.size()) {
      f = cumulative.size() - 1;
      while (f > 0 && cumulative[f] == cumulative[f - 1]) --f;
    }
    const Tri& t = mesh.faces[f];
    const Vec3 &a = mesh.vertices[size_t(t[0])], &b = mesh.vertices[size_t(t[1])], &c = mesh.vertices[size_t(t[2])];
    const double u = std::sqrt(uniform01(rng)), r2 = uniform01(rng);
    const double wa = 1 - u, wb = u * (1 - r2), wc = u * r2;
    for (int k = 0; k < 3; ++k) p[size_t(k)] = float(wa * a[size_t(k)] + wb * b[size_t(k)] + wc * c[size_t(k)]);
  }
  return out;
}

PointCloud sample_normalized(const Mesh& mesh, size_t count, uint64_t seed) {
  return sample_surface(normalize_for_eval(mesh), count, seed);
}

}  // namespace iflame
