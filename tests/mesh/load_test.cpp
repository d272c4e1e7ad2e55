#include "mesh/load.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "mesh/write.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

std::string write_text(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// Expects load_mesh to throw an iflame::Error whose message names the file and contains `what`.
void expect_load_error(const std::string& path, const std::string& what) {
  try {
    load_mesh(path);
    ADD_FAILURE() << path << " loaded without error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

Mesh tetrahedron() {
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  m.faces = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
  return m;
}

TEST(LoadMesh, ObjReadsFloat64ExactlyAndTriangulatesPolygons) {
  const auto dir = test::temp_dir();
  const auto path = write_text(dir, "a.obj",
                               "# comment\nv 0.1 0.2 0.30000000000000004\nv +1 0 0 1.0\nv 0 1 0\r\nv 0 0 1\n"
                               "vt 0 0\nvn 0 0 1\ng part\nf 1/1/1 2//1 3 4\nf -1 -2 -3\n");
  const Mesh m = load_mesh(path);
  ASSERT_EQ(m.vertices.size(), 4u);
  EXPECT_EQ(m.vertices[0][2], 0.30000000000000004);
  EXPECT_EQ(m.vertices[1][0], 1.0);
  ASSERT_EQ(m.faces.size(), 3u);  // quad -> 2 triangles, plus one with negative indices
  EXPECT_EQ(m.faces[0], (Tri{0, 1, 2}));
  EXPECT_EQ(m.faces[1], (Tri{0, 2, 3}));
  EXPECT_EQ(m.faces[2], (Tri{3, 2, 1}));
}

TEST(LoadMesh, OffReadsPolygons) {
  const auto dir = test::temp_dir();
  const auto path = write_text(dir, "a.off", "OFF\n# cube corner\n4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n3 0 1 2 255 0 0\n");
  const Mesh m = load_mesh(path);
  EXPECT_EQ(m.vertices.size(), 4u);
  EXPECT_EQ(m.faces.size(), 3u);
}

TEST(LoadMesh, WrittenObjAndPlyReadBack) {
  const auto dir = test::temp_dir();
  const Mesh m = tetrahedron();
  write_mesh(m, dir + "/t.obj");
  write_mesh(m, dir + "/t.ply");
  for (const char* name : {"/t.obj", "/t.ply"}) {
    SCOPED_TRACE(name);
    const Mesh back = load_mesh(dir + name);
    EXPECT_EQ(back.vertices, m.vertices);
    EXPECT_EQ(back.faces, m.faces);
  }
  EXPECT_THROW(write_mesh(m, dir + "/t.xyz"), Error);
}

TEST(LoadMesh, WrittenGlbReadsBackThroughAssimp) {
  const auto dir = test::temp_dir();
  const Mesh m = tetrahedron();
  write_mesh(m, dir + "/t.glb");
  const Mesh back = load_mesh(dir + "/t.glb");
  ASSERT_EQ(back.faces.size(), m.faces.size());
  // Positions are float32 in glTF: each face's corners agree to float rounding.
  for (size_t f = 0; f < m.faces.size(); ++f) {
    for (int c = 0; c < 3; ++c) {
      for (int k = 0; k < 3; ++k) {
        EXPECT_NEAR(back.vertices[size_t(back.faces[f][c])][k], m.vertices[size_t(m.faces[f][c])][k], 1e-6) << f << " " << c;
      }
    }
  }
}

TEST(LoadMesh, AssimpFormatsLoad) {
  // ASCII STL and ASCII PLY written by hand, read through assimp.
  const auto dir = test::temp_dir();
  const auto stl = write_text(dir, "a.stl",
                              "solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
                              "endloop\nendfacet\nendsolid t\n");
  EXPECT_EQ(load_mesh(stl).faces.size(), 1u);
  const auto ply = write_text(dir, "a.ply",
                              "ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
                              "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                              "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n");
  const Mesh m = load_mesh(ply);
  EXPECT_EQ(m.faces.size(), 2u);
}

TEST(LoadMesh, BadInputGivesErrorsNamingTheFile) {
  const auto dir = test::temp_dir();
  expect_load_error(dir + "/missing.obj", "cannot open");
  expect_load_error(write_text(dir, "empty.obj", ""), "empty file");
  expect_load_error(write_text(dir, "nofaces.obj", "v 0 0 0\nv 1 0 0\n"), "no faces");
  expect_load_error(write_text(dir, "nan.obj", "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"), "non-finite");
  expect_load_error(write_text(dir, "inf.obj", "v inf 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"), "non-finite");
  expect_load_error(write_text(dir, "range.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n"), "refers to vertex 9");
  expect_load_error(write_text(dir, "text.obj", "v 0 zero 0\n"), "line 1");
  expect_load_error(write_text(dir, "truncated.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2"), "fewer than 3");
  expect_load_error(write_text(dir, "binary.obj", std::string("\x7f\x45\x4c\x46\x00\x01\x02garbage", 15)), "NUL");
  expect_load_error(write_text(dir, "bad.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n"), "truncated");
  expect_load_error(write_text(dir, "huge.off", "OFF\n999999999 1 0\n0 0 0\n"), "do not fit");
  expect_load_error(write_text(dir, "garbage.ply", "this is not a ply file at all"), "unreadable");
  expect_load_error(write_text(dir, "garbage.stl", std::string(200, '\x01')), "");
  expect_load_error(write_text(dir, "mesh.xyz", "1 2 3"), "unknown mesh format");
  expect_load_error(write_text(dir, "fake.pmd", "not a pmd"), "pmd");
}

TEST(LoadMesh, KnowsWhichPathsAreMeshes) {
  EXPECT_TRUE(is_mesh_path("a/b/model_normalized.obj"));
  EXPECT_TRUE(is_mesh_path("x.GLB"));
  EXPECT_TRUE(is_mesh_path("unit.g3d"));
  EXPECT_FALSE(is_mesh_path("texture.png"));
  EXPECT_FALSE(is_mesh_path("model.mtl"));
}

TEST(LoadMesh, ReferenceMeshesLoad) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const Mesh chair = load_mesh(test::reference_dir() + "/meshes/chair.obj");
  EXPECT_EQ(chair.vertices.size(), 32u);
  EXPECT_EQ(chair.faces.size(), 48u);
}

}  // namespace
}  // namespace iflame
