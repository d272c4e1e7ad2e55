// Mesh statistics: a closed cube, an open quad, a non-manifold fan, degenerate and duplicate
// faces, welding by position, and per-set sums with failed inputs.
#include <gtest/gtest.h>

#include "dataset/dataset_test_util.h"
#include "eval/eval_test_util.h"
#include "eval/inputs.h"
#include "eval/mesh_stats.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame::eval {
namespace {

TEST(EvalMeshStats, ClosedCubeIsWatertight) {
  const MeshStats s = mesh_stats(test::cube_mesh());
  EXPECT_EQ(s.faces, 12u);
  EXPECT_EQ(s.vertices, 8u);
  EXPECT_EQ(s.edges, 18u);
  EXPECT_EQ(s.boundary_edges, 0u);
  EXPECT_EQ(s.non_manifold_edges, 0u);
  EXPECT_EQ(s.degenerate_faces, 0u);
  EXPECT_EQ(s.duplicate_faces, 0u);
  EXPECT_DOUBLE_EQ(s.area, 6.0);
  EXPECT_TRUE(s.watertight());
}

TEST(EvalMeshStats, CubeWithSplitVerticesIsStillWatertight) {
  // Every triangle with its own three vertices (as at UV seams): welded by position.
  const Mesh cube = test::cube_mesh();
  Mesh split;
  for (const Tri& f : cube.faces) {
    const int32_t base = int32_t(split.vertices.size());
    for (int32_t v : f) split.vertices.push_back(cube.vertices[size_t(v)]);
    split.faces.push_back({base, base + 1, base + 2});
  }
  const MeshStats s = mesh_stats(split);
  EXPECT_EQ(s.vertices, 8u);
  EXPECT_TRUE(s.watertight());
}

TEST(EvalMeshStats, OpenQuadHasBoundaryEdges) {
  Mesh quad;
  quad.vertices = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}};
  quad.faces = {{0, 1, 2}, {0, 2, 3}};
  const MeshStats s = mesh_stats(quad);
  EXPECT_EQ(s.edges, 5u);
  EXPECT_EQ(s.boundary_edges, 4u);
  EXPECT_EQ(s.non_manifold_edges, 0u);
  EXPECT_FALSE(s.watertight());
}

TEST(EvalMeshStats, ThreeFacesOnOneEdgeAreNonManifold) {
  // A closed cube plus a fin on edge (0, 1): that edge has three faces.
  Mesh m = test::cube_mesh();
  m.vertices.push_back({0.5, -1, -1});
  m.faces.push_back({0, 1, 8});
  const MeshStats s = mesh_stats(m);
  EXPECT_EQ(s.non_manifold_edges, 1u);
  EXPECT_EQ(s.boundary_edges, 2u);  // the fin's two free edges
  EXPECT_FALSE(s.watertight());
}

TEST(EvalMeshStats, DegenerateAndDuplicateFaces) {
  Mesh m = test::cube_mesh();
  m.faces.push_back({0, 0, 1});                        // repeated index
  m.vertices.push_back({2, 0, 0});
  m.faces.push_back({0, 1, 8});                        // collinear: zero area
  m.faces.push_back({m.faces[0][2], m.faces[0][1], m.faces[0][0]});  // face 0 reversed: its back side
  const MeshStats s = mesh_stats(m);
  EXPECT_EQ(s.faces, 15u);
  EXPECT_EQ(s.degenerate_faces, 2u);
  EXPECT_EQ(s.duplicate_faces, 1u);
  EXPECT_EQ(s.repeated_faces, 0u);  // a back side is no copy
  EXPECT_EQ(s.non_manifold_edges, 3u);  // the duplicated triangle's edges now have 3 faces
  // Face 1 again, its corners turned but in the same orientation: a copy.
  m.faces.push_back({m.faces[1][1], m.faces[1][2], m.faces[1][0]});
  const MeshStats copied = mesh_stats(m);
  EXPECT_EQ(copied.duplicate_faces, 2u);
  EXPECT_EQ(copied.repeated_faces, 1u);
  EXPECT_FALSE(s.watertight());
  Mesh flat;
  flat.vertices = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};
  flat.faces = {{0, 1, 2}};
  EXPECT_FALSE(mesh_stats(flat).usable());
}

TEST(EvalMeshStats, SetsCountFailuresAndUnusableMeshes) {
  const std::string dir = test::temp_dir();
  test::write_obj(dir + "/a_cube.obj", test::cube_mesh());
  Mesh quad;
  quad.vertices = {{0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}};
  quad.faces = {{0, 1, 2}, {0, 2, 3}};
  test::write_obj(dir + "/b_quad.obj", quad);
  Mesh flat;
  flat.vertices = {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}};
  flat.faces = {{0, 1, 2}};
  test::write_obj(dir + "/c_flat.obj", flat);
  test::write_text(dir + "/sub/d_broken.obj", "v 0 0 0\nf 1 2 3\n");  // index out of range
  test::write_text(dir + "/sub/e_garbage.ply", "this is not a ply file\n");  // assimp, in a reader process
  test::write_text(dir + "/notes.txt", "not a mesh");

  const auto files = list_mesh_files(dir);
  ASSERT_EQ(files.size(), 5u);
  const auto items = load_mesh_files(files, dir, 2);
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].name, "a_cube.obj");
  EXPECT_EQ(items[3].name, "sub/d_broken.obj");
  EXPECT_TRUE(items[0].loaded);
  EXPECT_FALSE(items[3].loaded);
  EXPECT_NE(items[3].error.find("d_broken.obj"), std::string::npos) << items[3].error;
  EXPECT_FALSE(items[4].loaded);
  EXPECT_NE(items[4].error.find("e_garbage.ply"), std::string::npos) << items[4].error;

  const CloudSet set = sample_set(items, 64, 0, 0, 2);
  EXPECT_EQ(set.stats.inputs, 5u);
  EXPECT_EQ(set.stats.loaded, 3u);
  EXPECT_EQ(set.stats.failed, 2u);
  EXPECT_EQ(set.stats.usable, 2u);
  EXPECT_EQ(set.stats.watertight, 1u);
  EXPECT_DOUBLE_EQ(set.stats.watertight_share(), 1.0 / 3.0);
  EXPECT_EQ(set.stats.faces, 12u + 2u + 1u);
  ASSERT_EQ(set.clouds.size(), 2u);
  EXPECT_EQ(set.names[1], "b_quad.obj");
  ASSERT_EQ(set.skipped.size(), 1u);
  EXPECT_NE(set.skipped[0].find("c_flat.obj"), std::string::npos);
  EXPECT_THROW(list_mesh_files(dir + "/missing"), Error);
}

}  // namespace
}  // namespace iflame::eval
