// COV, MMD, 1-NNA and JSD: hand-computed matrices and histograms, the limiting cases
// (identical sets, disjoint sets, two draws of one distribution), and the occupancy grid
// against a brute-force nearest neighbour.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "eval/eval_test_util.h"
#include "eval/metrics.h"
#include "util/error.h"

namespace iflame::eval {
namespace {

DistanceMatrix matrix(size_t rows, size_t cols, std::vector<double> v) { return {rows, cols, std::move(v)}; }

TEST(EvalMetrics, CoverageAndMmdHandComputed) {
  // 3 references (rows) x 2 samples (columns).
  const DistanceMatrix rs = matrix(3, 2, {0.1, 0.5,   //
                                          0.2, 0.3,   //
                                          0.9, 0.8});
  const CoverageMmd c = coverage_mmd(rs);
  // Sample 0's nearest reference is 0, sample 1's is 1: 2 of 3 covered.
  EXPECT_DOUBLE_EQ(c.coverage, 2.0 / 3.0);
  // Per reference the nearest sample: 0.1, 0.2, 0.8.
  EXPECT_DOUBLE_EQ(c.mmd, (0.1 + 0.2 + 0.8) / 3.0);
  EXPECT_DOUBLE_EQ(c.mmd_smp, (0.1 + 0.3) / 2.0);
}

TEST(EvalMetrics, OneNnaHandComputed) {
  // One-point clouds on a line, clusters 1 apart: {R, R} at 0, {S, S} at 10, {R, S} at 20 and 30.
  // The pure clusters are right (4 of 8), the mixed ones wrong: 50%; references 2/4, samples 2/4.
  const std::vector<PointCloud> refs = {{{0, 0, 0}}, {{0.1f, 0, 0}}, {{2, 0, 0}}, {{3, 0, 0}}};
  const std::vector<PointCloud> smps = {{{1, 0, 0}}, {{1.1f, 0, 0}}, {{2.1f, 0, 0}}, {{3.1f, 0, 0}}};
  const OneNna n = one_nna(self_chamfer(refs), pairwise_chamfer(refs, smps), self_chamfer(smps));
  EXPECT_DOUBLE_EQ(n.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(n.accuracy_references, 0.5);
  EXPECT_DOUBLE_EQ(n.accuracy_samples, 0.5);
  EXPECT_THROW(one_nna(self_chamfer(refs), pairwise_chamfer(refs, smps), self_chamfer({smps[0]})), Error);
}

TEST(EvalMetrics, IdenticalSetsCoverEverythingWithZeroMmdAndJsd) {
  const auto clouds = test::random_box_clouds(12, 300, 9);
  const GenerationMetrics m = generation_metrics(clouds, clouds);
  EXPECT_DOUBLE_EQ(m.cov_mmd.coverage, 1.0);
  EXPECT_NEAR(m.cov_mmd.mmd, 0.0, 1e-7);
  EXPECT_EQ(m.jsd, 0.0);
  // Every cloud's nearest other cloud is its copy in the other set: memorization reads 0%.
  EXPECT_DOUBLE_EQ(m.nna.accuracy, 0.0);
}

TEST(EvalMetrics, FarApartSetsAreFullySeparated) {
  const auto refs = test::random_box_clouds(10, 100, 1, -0.25f);
  const auto smps = test::random_box_clouds(10, 100, 2, +0.25f);
  const GenerationMetrics m = generation_metrics(smps, refs);
  EXPECT_DOUBLE_EQ(m.nna.accuracy, 1.0);
  EXPECT_GT(m.jsd, 0.1);
  EXPECT_GT(m.cov_mmd.mmd, 0.1);
}

TEST(EvalMetrics, TwoDrawsOfOneDistributionGiveAboutHalf) {
  const auto refs = test::random_box_clouds(60, 128, 31), smps = test::random_box_clouds(60, 128, 32);
  const GenerationMetrics m = generation_metrics(smps, refs);
  EXPECT_GT(m.nna.accuracy, 0.3);
  EXPECT_LT(m.nna.accuracy, 0.7);
  EXPECT_GT(m.cov_mmd.coverage, 0.4);
}

TEST(EvalMetrics, JsdOfTwoLargeDrawsIsNearItsFloor) {
  // 200 boxes of 500 points per set: enough for the ~11.5k cells that mostly noise remains.
  const double same = jsd_occupancy(test::random_box_clouds(200, 500, 1), test::random_box_clouds(200, 500, 2));
  const double shifted = jsd_occupancy(test::random_box_clouds(200, 500, 1), test::random_box_clouds(200, 500, 2, 0.1f));
  EXPECT_GT(same, 0.0);
  EXPECT_LT(same, 0.05);
  EXPECT_GT(shifted, 2 * same);
}

TEST(EvalMetrics, JensenShannonHandComputed) {
  EXPECT_DOUBLE_EQ(jensen_shannon_bits({1, 0}, {0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(jensen_shannon_bits({3, 5, 0}, {6, 10, 0}), 0.0);  // normalized first
  // P = (1, 0), Q = (1/2, 1/2), M = (3/4, 1/4): H(M) - (0 + 1) / 2.
  const double hm = -(0.75 * std::log2(0.75) + 0.25 * std::log2(0.25));
  EXPECT_NEAR(jensen_shannon_bits({2, 0}, {1, 1}), hm - 0.5, 1e-15);
  EXPECT_THROW(jensen_shannon_bits({1}, {1, 2}), Error);
  EXPECT_THROW(jensen_shannon_bits({0, 0}, {1, 2}), Error);
  EXPECT_THROW(jensen_shannon_bits({-1, 2}, {1, 2}), Error);
}

TEST(EvalMetrics, OccupancyGridIsPointFlowsClippedGrid) {
  // PointFlow: float32 grid i / 27 - 0.5, kept where the norm is <= 0.5.
  const auto g = occupancy_grid(28);
  size_t expected = 0;
  for (int i = 0; i < 28; ++i) {
    for (int j = 0; j < 28; ++j) {
      for (int k = 0; k < 28; ++k) {
        const double x = i / 27.0 - 0.5, y = j / 27.0 - 0.5, z = k / 27.0 - 0.5;
        if (std::sqrt(x * x + y * y + z * z) <= 0.5) {
          ASSERT_LT(expected, g.size());
          EXPECT_EQ(g[expected][0], float(x));
          EXPECT_EQ(g[expected][2], float(z));
          ++expected;
        }
      }
    }
  }
  EXPECT_EQ(g.size(), expected);
  EXPECT_GT(expected, 10000u);
}

TEST(EvalMetrics, OccupancyCountsUseTheNearestKeptGridPoint) {
  // Points everywhere in and around the cube (outside the ball and outside the cube too).
  const auto clouds = test::random_box_clouds(6, 2000, 77);
  std::vector<PointCloud> wide = clouds;
  for (auto& c : wide) {
    for (auto& p : c) {
      for (float& v : p) v *= 1.3f;  // up to +-0.65
    }
  }
  for (int res : {28, 9}) {
    const auto grid = occupancy_grid(res);
    const auto counts = occupancy_counts(wide, res, 2);
    std::vector<double> brute(grid.size(), 0.0);
    for (const auto& c : wide) {
      for (const auto& p : c) {
        size_t best = 0;
        double best_d = std::numeric_limits<double>::infinity();
        for (size_t k = 0; k < grid.size(); ++k) {
          const double dx = double(p[0]) - grid[k][0], dy = double(p[1]) - grid[k][1], dz = double(p[2]) - grid[k][2];
          const double d = dx * dx + dy * dy + dz * dz;
          if (d < best_d) {
            best_d = d;
            best = k;
          }
        }
        brute[best] += 1;
      }
    }
    EXPECT_EQ(counts, brute) << "resolution " << res;
  }
}

TEST(EvalMetrics, NearestCloudsIsTheRowMinimumOfTheChamferMatrix) {
  std::vector<PointCloud> queries, pool;
  for (int i = 0; i < 70; ++i) queries.push_back({{float(i % 7) * 0.1f, 0, 0}, {0, float(i % 5) * 0.1f, 0}});
  for (int i = 0; i < 9; ++i) pool.push_back({{float(i) * 0.07f, 0, 0}, {0, float(i % 4) * 0.12f, 0}});
  const auto nearest = nearest_clouds(queries, pool);  // 70 queries: two blocks
  const DistanceMatrix d = pairwise_chamfer(queries, pool);
  ASSERT_EQ(nearest.size(), queries.size());
  for (size_t q = 0; q < queries.size(); ++q) {
    size_t best = 0;
    for (size_t c = 1; c < pool.size(); ++c) {
      if (d.at(q, c) < d.at(q, best)) best = c;
    }
    EXPECT_EQ(nearest[q].index, best) << q;
    EXPECT_DOUBLE_EQ(nearest[q].distance, d.at(q, best)) << q;
  }
  EXPECT_THROW(nearest_clouds(queries, {}), Error);
}

}  // namespace
}  // namespace iflame::eval
