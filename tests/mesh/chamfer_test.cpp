// Chamfer distances: hand-computed cases, every SIMD kernel against the float64 definition
// (cloud sizes that are not multiples of the vector width included), symmetry, determinism.
#include <gtest/gtest.h>

#include "mesh/chamfer.h"

#include "eval/eval_test_util.h"
#include "util/error.h"

namespace iflame::eval {
namespace {

TEST(EvalChamfer, HandComputedPairs) {
  // A = {(0,0,0), (1,0,0)}, B = {(0,1,0)}: A->B squared distances 1 and 2 (mean 1.5), B->A 1.
  const PointCloud a = {{0, 0, 0}, {1, 0, 0}}, b = {{0, 1, 0}};
  EXPECT_DOUBLE_EQ(chamfer_distance(a, b), 2.5);
  EXPECT_DOUBLE_EQ(chamfer_distance(b, a), 2.5);
  // Three points each: A = {(0,0,0), (0.5,0,0), (0,0,0.25)}, B = {(0,0,0), (0.5,0.5,0), (0,0,-0.25)}.
  // A->B: 0, 0.25, 0.0625 (mean 0.3125/3); B->A: 0, 0.25, 0.0625 (the same): total 0.625/3.
  const PointCloud c = {{0, 0, 0}, {0.5f, 0, 0}, {0, 0, 0.25f}}, d = {{0, 0, 0}, {0.5f, 0.5f, 0}, {0, 0, -0.25f}};
  EXPECT_NEAR(chamfer_distance(c, d), 0.625 / 3, 1e-15);
  EXPECT_DOUBLE_EQ(chamfer_distance(c, c), 0.0);
  for (const std::string& k : chamfer_kernels()) {
    ChamferOptions o;
    o.kernel = k;
    const DistanceMatrix m = pairwise_chamfer({a, c}, {b, d, c}, o);
    ASSERT_EQ(m.rows, 2u);
    ASSERT_EQ(m.cols, 3u);
    EXPECT_NEAR(m.at(0, 0), 2.5, 1e-6) << k;
    EXPECT_NEAR(m.at(1, 1), 0.625 / 3, 1e-7) << k;
    EXPECT_NEAR(m.at(1, 2), 0.0, 1e-7) << k;
  }
}

TEST(EvalChamfer, EveryKernelMatchesTheFloat64Definition) {
  // Sizes around the vector widths and block sizes (1, 2, 4, 8, 16 points).
  std::vector<PointCloud> a, b;
  const size_t sizes_a[] = {1, 3, 16, 17, 100}, sizes_b[] = {2, 15, 33, 64, 129, 1};
  size_t s = 0;
  for (size_t n : sizes_a) a.push_back(test::random_box_clouds(1, n, 100 + s++)[0]);
  for (size_t n : sizes_b) b.push_back(test::random_box_clouds(1, n, 200 + s++, 0.1f)[0]);
  const auto kernels = chamfer_kernels();
  ASSERT_FALSE(kernels.empty());
  EXPECT_EQ(kernels.back(), "generic");
  for (const std::string& k : kernels) {
    ChamferOptions o;
    o.kernel = k;
    const DistanceMatrix m = pairwise_chamfer(a, b, o);
    for (size_t i = 0; i < a.size(); ++i) {
      for (size_t j = 0; j < b.size(); ++j) {
        const double ref = chamfer_distance(a[i], b[j]);
        EXPECT_NEAR(m.at(i, j), ref, 1e-6 * ref + 1e-7) << k << " pair " << i << "," << j;
      }
    }
  }
}

TEST(EvalChamfer, SelfMatrixIsSymmetricAndMatchesPairwise) {
  const auto c = test::random_box_clouds(7, 50, 5);
  const DistanceMatrix self = self_chamfer(c);
  const DistanceMatrix full = pairwise_chamfer(c, c);
  for (size_t i = 0; i < c.size(); ++i) {
    EXPECT_EQ(self.at(i, i), 0.0);
    for (size_t j = 0; j < c.size(); ++j) {
      EXPECT_EQ(self.at(i, j), self.at(j, i));
      if (i != j) {
        EXPECT_NEAR(self.at(i, j), full.at(i, j), 1e-9 + 1e-6 * full.at(i, j));
      }
    }
  }
}

TEST(EvalChamfer, ThreadCountDoesNotChangeResults) {
  const auto a = test::random_box_clouds(9, 40, 1), b = test::random_box_clouds(5, 70, 2);
  ChamferOptions one, two;
  one.threads = 1;
  two.threads = 3;
  EXPECT_EQ(pairwise_chamfer(a, b, one).values, pairwise_chamfer(a, b, two).values);
  EXPECT_EQ(self_chamfer(a, one).values, self_chamfer(a, two).values);
}

TEST(EvalChamfer, BadInputsAreErrors) {
  EXPECT_THROW(pairwise_chamfer({PointCloud{}}, {PointCloud{{0, 0, 0}}}), Error);
  EXPECT_THROW(chamfer_distance(PointCloud{}, PointCloud{{0, 0, 0}}), Error);
  EXPECT_THROW(resolve_chamfer_kernel("sse9"), Error);
  EXPECT_EQ(resolve_chamfer_kernel("auto"), chamfer_kernels().front());
  EXPECT_TRUE(pairwise_chamfer({}, {}).values.empty());
}

}  // namespace
}  // namespace iflame::eval
