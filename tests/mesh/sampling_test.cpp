// Evaluation normalization and surface sampling: bounding box of the used vertices, area
// weighting, uniform barycentric coordinates, seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "eval/eval_test_util.h"
#include "mesh/sampling.h"
#include "util/error.h"

namespace iflame::eval {
namespace {

TEST(EvalSampling, NormalizeUsesTheFacesBoundingBoxAndLongestSide) {
  Mesh m;
  m.vertices = {{1, 2, 3}, {5, 2, 3}, {1, 4, 3}, {1, 2, 4}, {100, 100, 100}};  // the last one is unused
  m.faces = {{0, 1, 2}, {0, 1, 3}};
  const Mesh n = normalize_for_eval(m);
  // bbox [1,5] x [2,4] x [3,4]: center (3, 3, 3.5), longest side 4.
  EXPECT_DOUBLE_EQ(n.vertices[0][0], -0.5);
  EXPECT_DOUBLE_EQ(n.vertices[1][0], 0.5);
  EXPECT_DOUBLE_EQ(n.vertices[0][1], -0.25);
  EXPECT_DOUBLE_EQ(n.vertices[2][1], 0.25);
  EXPECT_DOUBLE_EQ(n.vertices[0][2], -0.125);
  EXPECT_DOUBLE_EQ(n.vertices[3][2], 0.125);
  EXPECT_DOUBLE_EQ(n.vertices[4][0], 24.25);  // moved along, not counted
  Mesh point;
  point.vertices = {{1, 1, 1}};
  point.faces = {{0, 0, 0}};
  EXPECT_THROW(normalize_for_eval(point), Error);
}

TEST(EvalSampling, PointsFollowTriangleAreas) {
  // Triangle at z = 0 with area 0.5, triangle at z = 1 with area 0.25: 2/3 and 1/3 of the points.
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {0.5, 0, 1}, {0, 1, 1}};
  m.faces = {{0, 1, 2}, {3, 4, 5}};
  EXPECT_DOUBLE_EQ(surface_area(m), 0.75);
  const size_t n = 30000;
  const PointCloud c = sample_surface(m, n, 7);
  ASSERT_EQ(c.size(), n);
  size_t top = 0;
  for (const Point3f& p : c) {
    ASSERT_TRUE(p[2] == 0.0f || p[2] == 1.0f);
    if (p[2] == 1.0f) {
      ++top;
      EXPECT_GE(p[0], 0.0f);
      EXPECT_GE(p[1], 0.0f);
      EXPECT_LE(2 * p[0] + p[1], 1.0f + 1e-6f);  // inside (0,0), (0.5,0), (0,1)
    } else {
      EXPECT_LE(p[0] + p[1], 1.0f + 1e-6f);
    }
  }
  // Binomial(30000, 1/3): mean 10000, sd 82.
  EXPECT_NEAR(double(top), 10000.0, 400.0);
}

TEST(EvalSampling, PointsAreUniformInsideATriangle) {
  Mesh m;
  m.vertices = {{0, 0, 0}, {3, 0, 0}, {0, 3, 0}};
  m.faces = {{0, 1, 2}};
  const PointCloud c = sample_surface(m, 40000, 3);
  double mx = 0, my = 0;
  size_t near_corner = 0;  // within the sub-triangle x + y < 1: 1/9 of the area
  for (const Point3f& p : c) {
    mx += p[0];
    my += p[1];
    near_corner += p[0] + p[1] < 1.0f;
  }
  EXPECT_NEAR(mx / double(c.size()), 1.0, 0.02);  // the centroid
  EXPECT_NEAR(my / double(c.size()), 1.0, 0.02);
  EXPECT_NEAR(double(near_corner) / double(c.size()), 1.0 / 9.0, 0.01);
}

TEST(EvalSampling, SeededAndIndependentOfOtherMeshes) {
  const Mesh cube = test::cube_mesh(1, 2, 3);
  const PointCloud a = sample_normalized(cube, 500, 11), b = sample_normalized(cube, 500, 11);
  const PointCloud c = sample_normalized(cube, 500, 12);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Normalized: longest side (z) spans [-0.5, 0.5]; nothing leaves the box.
  for (const Point3f& p : a) {
    EXPECT_LE(std::abs(p[0]), 1.0f / 6.0f + 1e-6f);
    EXPECT_LE(std::abs(p[1]), 1.0f / 3.0f + 1e-6f);
    EXPECT_LE(std::abs(p[2]), 0.5f + 1e-6f);
  }
  EXPECT_NE(item_seed(0, 0, 1), item_seed(0, 1, 1));
  EXPECT_NE(item_seed(0, 0, 1), item_seed(0, 0, 2));
  EXPECT_EQ(item_seed(5, 1, 9), item_seed(5, 1, 9));
}

TEST(EvalSampling, ZeroAreaMeshesAreRejected) {
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};  // collinear
  m.faces = {{0, 1, 2}};
  EXPECT_THROW(sample_surface(m, 10, 0), Error);
  // A zero-area face next to a real one is never picked.
  m.vertices.push_back({0, 1, 0});
  m.faces.push_back({0, 1, 3});
  for (const Point3f& p : sample_surface(m, 2000, 1)) EXPECT_LE(p[0] + p[1], 1.0f + 1e-6f);
}

}  // namespace
}  // namespace iflame::eval
