// Helpers for the dataset tests: small OBJ meshes written into a test's temp directory.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "mesh/mesh.h"
#include "mesh/write.h"

namespace iflame::test {

inline void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// The library's OBJ writer, into a folder created on demand.
inline void write_obj(const std::string& path, const Mesh& mesh) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  iflame::write_obj(mesh, path);
}

// A height-field grid of n x n cells (2 n^2 triangles) with bumps from `seed`: distinct seeds
// give distinct canonical meshes; all of its faces survive 7-bit quantization for n <= 30.
inline Mesh grid_mesh(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Mesh m;
  for (int i = 0; i <= n; ++i) {
    for (int j = 0; j <= n; ++j) {
      const double h = double(rng() % 1000) / 1000.0 * 0.3;
      m.vertices.push_back({double(i) / n, h, double(j) / n});
    }
  }
  auto id = [n](int i, int j) { return int32_t(i * (n + 1) + j); };
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < n; ++j) {
      m.faces.push_back({id(i, j), id(i + 1, j), id(i + 1, j + 1)});
      m.faces.push_back({id(i, j), id(i + 1, j + 1), id(i, j + 1)});
    }
  }
  return m;
}

// A random mesh of `faces` triangles over 12 random vertices (distinct per seed).
inline Mesh random_mesh(uint64_t seed, int faces = 6) {
  std::mt19937_64 rng(seed);
  Mesh m;
  for (int i = 0; i < 12; ++i) {
    m.vertices.push_back({double(rng() % 10007) / 10007.0, double(rng() % 10007) / 10007.0, double(rng() % 10007) / 10007.0});
  }
  for (int f = 0; f < faces; ++f) {
    const int32_t a = int32_t(rng() % 12);
    int32_t b = int32_t(rng() % 12), c = int32_t(rng() % 12);
    while (b == a) b = int32_t(rng() % 12);
    while (c == a || c == b) c = int32_t(rng() % 12);
    m.faces.push_back({a, b, c});
  }
  return m;
}

// A Quake 3 MD3 file with a tetrahedron surface and, when `empty_surface`, a second surface
// with no vertices and no triangles: Debian's assimp 5.2.5 segfaults on that (OpenArena's
// models/misc/telep.md3 has one).
inline std::string md3_bytes(bool empty_surface) {
  std::string out;
  auto i32 = [&](int32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto f32 = [&](float v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto i16 = [&](int16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
  auto name = [&](const std::string& n, size_t width) { out += n + std::string(width - n.size(), '\0'); };
  const int verts[4][3] = {{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}};
  const int tris[4][3] = {{0, 1, 2}, {0, 1, 3}, {0, 2, 3}, {1, 2, 3}};
  auto surface = [&](const std::string& sname, int nv, int nt) {
    const int otri = 108, osh = otri + 12 * nt, ost = osh + 68, oxyz = ost + 8 * nv, end = oxyz + 8 * nv;
    out += "IDP3";
    name(sname, 64);
    for (int v : {0, 1, 1, nv, nt, otri, osh, ost, oxyz, end}) i32(v);
    for (int t = 0; t < nt; ++t) {
      for (int k = 0; k < 3; ++k) i32(tris[t][k]);
    }
    name("shader", 64);
    i32(0);
    for (int v = 0; v < nv; ++v) f32(0), f32(0);
    for (int v = 0; v < nv; ++v) i16(int16_t(verts[v][0] * 64)), i16(int16_t(verts[v][1] * 64)), i16(int16_t(verts[v][2] * 64)), i16(0);
    return end;
  };
  const int surfaces = empty_surface ? 2 : 1;
  const int frames_size = 56, surface_size = 108 + 12 * 4 + 68 + 16 * 4, empty_size = 108 + 68;
  const int ofr = 108, osurf = ofr + frames_size, oend = osurf + surface_size + (empty_surface ? empty_size : 0);
  out += "IDP3";
  i32(15);
  name("test", 64);
  for (int v : {0, 1, 0, surfaces, 0, ofr, osurf, osurf, oend}) i32(v);
  for (float v : {0.f, 0.f, 0.f, 10.f, 10.f, 10.f, 0.f, 0.f, 0.f, 10.f}) f32(v);
  name("frame", 16);
  surface("Tetra", 4, 4);
  if (empty_surface) surface("Empty", 0, 0);
  return out;
}

}  // namespace iflame::test
