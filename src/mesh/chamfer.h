// Chamfer distances between point clouds (spec section 6): the squared Chamfer distance of
// PointFlow, mean over A of the squared distance to the nearest point of B plus the same from
// B to A, and whole matrices of it between two sets of clouds, on every core.
//
// The matrix kernel works on clouds packed as x, y, z, |p|^2 float arrays and computes, per
// 16 (AVX-512) or 8 (AVX2) points of B and 4 or 2 points of A held in registers,
// d = |a|^2 + |b|^2 - 2 a.b (one add, three FMAs; PointFlow's expansion) and folds d into the
// row minima (A -> B) and the column minima (B -> A) at once, so one pass gives both
// directions. The CPU's best kernel is chosen at run time; nothing needs -march flags.
#pragma once
#include <string>
#include <vector>

#include "mesh/sampling.h"

namespace iflame {

class Progress;

// Row-major |rows| x |cols| matrix of float64.
struct DistanceMatrix {
  size_t rows = 0, cols = 0;
  std::vector<double> values;
  double& at(size_t i, size_t j) { return values[i * cols + j]; }
  double at(size_t i, size_t j) const { return values[i * cols + j]; }
};

// The reference definition in float64 with direct differences (exact, slow): for tests and
// single pairs. Throws iflame::Error for an empty cloud.
double chamfer_distance(const PointCloud& a, const PointCloud& b);

struct ChamferOptions {
  int threads = 0;              // <= 0: every core
  std::string kernel = "auto";  // "auto" (the fastest this CPU runs), "avx512", "avx2" or "generic"
  Progress* progress = nullptr;  // if set, counts finished cloud pairs
};

// The kernels this CPU can run, fastest first ("generic" is always last).
std::vector<std::string> chamfer_kernels();
// "auto" -> the fastest available; throws iflame::Error for an unknown or unavailable name.
std::string resolve_chamfer_kernel(const std::string& name);

// |A| x |B| matrix of chamfer distances (float32 arithmetic, float64 means; within ~1e-6 of
// chamfer_distance for clouds in the unit cube). Throws iflame::Error for an empty cloud.
DistanceMatrix pairwise_chamfer(const std::vector<PointCloud>& a, const std::vector<PointCloud>& b,
                                const ChamferOptions& options = {});

// |A| x |A| symmetric matrix: each unordered pair computed once; the diagonal is 0 (not computed).
DistanceMatrix self_chamfer(const std::vector<PointCloud>& a, const ChamferOptions& options = {});

}  // namespace iflame
