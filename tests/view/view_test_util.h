// Shared by the view tests: a folder of small meshes (good and broken) and a reader for the mesh
// scripts a gallery writes.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mesh/mesh.h"
#include "util/fs.h"

namespace iflame::view_test {

namespace fs = std::filesystem;

// Quads with coordinates that are not exact in float32 (0.1).
inline const char* kCube =
    "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nv 0 0 1.1\nv 1 0 1.1\nv 0 1 1.1\nv 1 1 1.1\n"
    "f 1 3 4 2\nf 5 6 8 7\nf 1 2 6 5\nf 3 7 8 4\nf 1 5 7 3\nf 2 4 8 6\n";
inline const char* kTetraOff = "OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3\n";

// DIR/meshes with, in sorted order: "a&b<c>.off" (a tetrahedron), "broken.obj" (a face past the
// last vertex), "cube.obj", "notes.txt" (not a mesh: ignored), "sub/garbage.ply" (random bytes).
inline std::string write_mesh_folder(const std::string& dir) {
  const std::string m = dir + "/meshes";
  fs::create_directories(m + "/sub");
  write_file_atomic(m + "/a&b<c>.off", kTetraOff);
  write_file_atomic(m + "/broken.obj", "v 0 0 0\nf 1 2 3\n");
  write_file_atomic(m + "/cube.obj", kCube);
  write_file_atomic(m + "/notes.txt", "not a mesh\n");
  std::string junk;
  for (int i = 0; i < 300; ++i) junk.push_back(char((i * 7919) % 251));
  write_file_atomic(m + "/sub/garbage.ply", junk);
  return m;
}

inline std::vector<uint8_t> base64_decode(const std::string& text) {
  std::vector<uint8_t> out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=') break;
    else {
      ADD_FAILURE() << "not base64: '" << c << "'";
      return out;
    }
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t((acc >> bits) & 0xff));
    }
  }
  return out;
}

// A mesh script of a gallery, parsed: the record and the mesh it holds (positions as written).
struct MeshScript {
  nlohmann::json record;
  std::vector<float> positions;
  std::vector<uint32_t> indices;
};

inline MeshScript read_mesh_script(const std::string& path) {
  const std::string text = read_file_text(path);
  const std::string prefix = "(window.iflameMeshes = window.iflameMeshes || []).push(", suffix = ");\n";
  MeshScript s;
  if (text.rfind(prefix, 0) != 0 || text.size() < prefix.size() + suffix.size() ||
      text.compare(text.size() - suffix.size(), suffix.size(), suffix) != 0) {
    ADD_FAILURE() << path << " is not a mesh script: " << text.substr(0, 120);
    return s;
  }
  s.record = nlohmann::json::parse(text.substr(prefix.size(), text.size() - prefix.size() - suffix.size()));
  const std::vector<uint8_t> pos = base64_decode(s.record.at("positions").get<std::string>());
  const std::vector<uint8_t> idx = base64_decode(s.record.at("indices").get<std::string>());
  EXPECT_EQ(pos.size() % 4, 0u);
  s.positions.resize(pos.size() / 4);
  for (size_t i = 0; i < s.positions.size(); ++i) {
    const uint32_t bits = uint32_t(pos[4 * i]) | uint32_t(pos[4 * i + 1]) << 8 | uint32_t(pos[4 * i + 2]) << 16 | uint32_t(pos[4 * i + 3]) << 24;
    std::memcpy(&s.positions[i], &bits, 4);
  }
  const int width = s.record.at("index_bits").get<int>() / 8;
  EXPECT_TRUE(width == 2 || width == 4);
  EXPECT_EQ(idx.size() % size_t(width), 0u);
  for (size_t i = 0; i + size_t(width) <= idx.size(); i += size_t(width)) {
    uint32_t v = 0;
    for (int b = 0; b < width; ++b) v |= uint32_t(idx[i + size_t(b)]) << (8 * b);
    s.indices.push_back(v);
  }
  return s;
}

// Expects the script to hold exactly `mesh` (positions rounded to float32).
inline void expect_same_mesh(const MeshScript& s, const Mesh& mesh, const std::string& what) {
  ASSERT_EQ(s.positions.size(), 3 * mesh.vertices.size()) << what;
  ASSERT_EQ(s.indices.size(), 3 * mesh.faces.size()) << what;
  EXPECT_EQ(s.record.at("vertices").get<size_t>(), mesh.vertices.size()) << what;
  EXPECT_EQ(s.record.at("faces").get<size_t>(), mesh.faces.size()) << what;
  for (size_t v = 0; v < mesh.vertices.size(); ++v) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(s.positions[3 * v + size_t(c)], float(mesh.vertices[v][size_t(c)])) << what << " vertex " << v;
  }
  for (size_t f = 0; f < mesh.faces.size(); ++f) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(s.indices[3 * f + size_t(c)], uint32_t(mesh.faces[f][size_t(c)])) << what << " face " << f;
  }
}

}  // namespace iflame::view_test
