// The generation-quality metrics of the field (spec section 6), computed as PointFlow's
// metrics/evaluation_metrics.py computes them (Chamfer path): COV, MMD, 1-NNA from Chamfer
// matrices, and JSD between occupancy histograms on a 28^3 grid clipped to the unit ball.
#pragma once
#include <vector>

#include "mesh/chamfer.h"

namespace iflame::eval {

struct CoverageMmd {
  double coverage = 0;  // share of references that are the nearest reference of some sample
  double mmd = 0;       // mean over references of the Chamfer distance to the nearest sample
  double mmd_smp = 0;   // mean over samples of the distance to the nearest reference (PointFlow's lgan_mmd_smp)
};

// From the |R| x |S| matrix (rows references, columns samples), PointFlow's lgan_mmd_cov.
// A sample whose nearest references tie counts toward the first of them.
CoverageMmd coverage_mmd(const DistanceMatrix& ref_by_sample);

struct OneNna {
  double accuracy = 0;             // over S union R; 0.5 is ideal
  double accuracy_references = 0;  // PointFlow's acc_t: references whose nearest neighbour is a reference
  double accuracy_samples = 0;     // acc_f: samples whose nearest neighbour is a sample
};

// Leave-one-out 1-nearest-neighbour accuracy over R union S (PointFlow's knn with k = 1): each
// cloud's label is predicted by its nearest other cloud (distance to itself +inf). Exact ties go
// to the first cloud in the order references, then samples. rr: |R| x |R|, rs: |R| x |S|,
// ss: |S| x |S|. Throws iflame::Error on mismatched sizes.
OneNna one_nna(const DistanceMatrix& rr, const DistanceMatrix& rs, const DistanceMatrix& ss);

// The kept points of PointFlow's unit_cube_grid_point_cloud(resolution, clip_sphere=True):
// i / (resolution - 1) - 0.5 per axis for i in [0, resolution), kept when within the ball of
// radius 0.5 (decided in exact integer arithmetic), in i, j, k order (x slowest).
std::vector<Point3f> occupancy_grid(int resolution = 28);

// For every kept grid point, how many points of all `clouds` have it as their nearest kept grid
// point (exact Euclidean nearest neighbour; points outside the ball snap inward).
std::vector<double> occupancy_counts(const std::vector<PointCloud>& clouds, int resolution = 28, int threads = 0);

// Jensen-Shannon divergence in bits between two histograms, each normalized to sum 1, as
// PointFlow computes it: H((P + Q) / 2) - (H(P) + H(Q)) / 2. Throws iflame::Error for
// different sizes, negative entries or an all-zero histogram.
double jensen_shannon_bits(const std::vector<double>& p, const std::vector<double>& q);

// JSD between the occupancy histograms of the sample and the reference clouds.
double jsd_occupancy(const std::vector<PointCloud>& samples, const std::vector<PointCloud>& references,
                     int resolution = 28, int threads = 0);

// For each query cloud, the closest cloud of `pool` by Chamfer distance (the novelty check: a
// sample whose nearest training mesh is very close is a copy). Computed in blocks of queries,
// so memory stays at block x |pool| distances. Ties go to the first. Throws for an empty pool.
struct Nearest {
  size_t index = 0;
  double distance = 0;
};
std::vector<Nearest> nearest_clouds(const std::vector<PointCloud>& queries, const std::vector<PointCloud>& pool,
                                    const ChamferOptions& options = {});

struct GenerationMetrics {
  size_t samples = 0, references = 0;
  CoverageMmd cov_mmd;
  OneNna nna;
  double jsd = 0;
};

// Everything at once: the |R| x |S|, |R| x |R| and |S| x |S| Chamfer matrices (options.progress
// counts all of their pairs: |R||S| + |R|(|R|-1)/2 + |S|(|S|-1)/2), COV/MMD, 1-NNA and JSD.
// Both sets need at least one cloud (1-NNA needs two clouds in all).
GenerationMetrics generation_metrics(const std::vector<PointCloud>& samples, const std::vector<PointCloud>& references,
                                     const ChamferOptions& options = {}, int jsd_resolution = 28);

// Cloud pairs generation_metrics computes, for progress totals.
size_t generation_metric_pairs(size_t samples, size_t references);

}  // namespace iflame::eval
