// Readers for the game formats (.pmd, .g3d, .md2, .spm, .pie): small files built here byte by
// byte, read back exactly, and every kind of corruption rejected with an iflame::Error that
// names the file. The sample builders are shared with formats_fuzz_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mesh/mesh.h"
#include "mesh/readers.h"
#include "util/error.h"

namespace iflame::format_samples {
namespace {

// A valid file plus where to poke it: an f32 vertex coordinate, a vertex index (index_width
// bytes wide) and the u32 vertex count.
struct Sample {
  std::vector<uint8_t> bytes;
  size_t coord_at = 0;
  size_t index_at = 0;
  size_t index_width = 0;
  size_t count_at = 0;
};

// Little-endian byte writer.
struct Writer {
  std::vector<uint8_t> b;
  size_t size() const { return b.size(); }
  Writer& u8(uint32_t v) {
    b.push_back(static_cast<uint8_t>(v));
    return *this;
  }
  Writer& u16(uint32_t v) { return u8(v).u8(v >> 8); }
  Writer& u32(uint32_t v) { return u16(v).u16(v >> 16); }
  Writer& f32(float f) {
    uint32_t v;
    std::memcpy(&v, &f, 4);
    return u32(v);
  }
  Writer& str(const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Writer& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

// Exactly representable in f32, so the expected float64 values are exact.
const std::vector<Vec3> kTetra = {{-1.5, 0, 2}, {1, 0.25, 0}, {0, 2, -0.5}, {0.75, -1, 1}};
const std::vector<Tri> kTetraFaces = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
const std::vector<Vec3> kTriangle = {{0, 0, 0}, {4, 0, 0}, {0, 4, 0}};

void set_uint(std::vector<uint8_t>& b, size_t at, size_t width, uint32_t v) {
  for (size_t i = 0; i < width; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// PSMD v3 (one UV set) or v4 with `uv_sets` UV sets: `vertices` (the tetrahedron by default) as
// stored positions, `faces`, then no bones and no prop points.
Sample pmd_sample(uint32_t version, uint32_t uv_sets, const std::vector<Vec3>& vertices = kTetra,
                  const std::vector<Tri>& faces = kTetraFaces) {
  Sample s;
  Writer w;
  w.str("PSMD").u32(version).u32(0);
  s.count_at = w.size();
  w.u32(static_cast<uint32_t>(vertices.size()));
  if (version >= 4) w.u32(uv_sets);
  s.coord_at = w.size();
  for (const Vec3& v : vertices) {
    for (double c : v) w.f32(static_cast<float>(c));
    w.f32(0).f32(1).f32(0);                                                       // normal
    for (uint32_t i = 0; i < 2 * (version >= 4 ? uv_sets : 1); ++i) w.f32(0.5f);  // UVs
    w.u8(0).u8(0xff).u8(0xff).u8(0xff).f32(1).f32(0).f32(0).f32(0);               // bone weights
  }
  w.u32(static_cast<uint32_t>(faces.size()));
  s.index_at = w.size();
  s.index_width = 2;
  for (const Tri& t : faces) w.u16(t[0]).u16(t[1]).u16(t[2]);
  w.u32(0).u32(0);  // bones, prop points
  s.bytes = w.b;
  set_uint(s.bytes, 8, 4, static_cast<uint32_t>(s.bytes.size() - 12));
  return s;
}

// G3D v4 with two meshes: the tetrahedron (2 frames, 2 texture names, texcoords) and a triangle
// (1 frame, no textures).
Sample g3d_sample() {
  Sample s;
  Writer w;
  w.str("G3D").u8(4).u16(2).u8(0);
  auto header = [&](const std::string& name, uint32_t frames, uint32_t vertices, uint32_t indices, uint32_t textures) {
    w.str(name).zeros(64 - name.size());
    w.u32(frames);
    if (s.count_at == 0) s.count_at = w.size();
    w.u32(vertices).u32(indices);
    for (int i = 0; i < 8; ++i) w.f32(0.5f);  // diffuse, specular, specular power, opacity
    w.u32(0).u32(textures);
  };
  header("tetra", 2, 4, 12, 0b101);
  w.str("diffuse.tga").zeros(64 - 11).str("normal.tga").zeros(64 - 10);
  s.coord_at = w.size();
  for (int frame = 0; frame < 2; ++frame) {
    for (const Vec3& v : kTetra) {
      for (double c : v) w.f32(static_cast<float>(c * (frame + 1)));
    }
  }
  for (int i = 0; i < 2 * 4; ++i) w.f32(0).f32(0).f32(1);  // normals
  for (int i = 0; i < 4; ++i) w.f32(0.25f).f32(0.75f);     // texcoords
  s.index_at = w.size();
  s.index_width = 4;
  for (const Tri& t : kTetraFaces) w.u32(t[0]).u32(t[1]).u32(t[2]);

  header("triangle", 1, 3, 3, 0);
  for (const Vec3& v : kTriangle) {
    for (double c : v) w.f32(static_cast<float>(c));
  }
  for (int i = 0; i < 3; ++i) w.f32(0).f32(0).f32(1);
  w.u32(0).u32(1).u32(2);
  s.bytes = w.b;
  return s;
}

// MD2 in the usual section order (header, skins, texcoords, triangles, frames, GL commands),
// 4 texcoords, 2 frames: frame 0 holds `packed` (u8 values) with scale (0.5, 0.25, 2) and
// translation (-1, 3, 0.5), frame 1 vertex i at (i, i, i); the triangles are `faces` as stored.
const std::vector<Vec3> kMd2Packed = {{0, 0, 0}, {2, 4, 1}, {10, 0, 3}, {255, 128, 7}};

Sample md2_sample(const std::vector<Vec3>& packed = kMd2Packed, const std::vector<Tri>& faces = kTetraFaces) {
  Sample s;
  Writer w;
  const auto vertices = static_cast<uint32_t>(packed.size()), triangles = static_cast<uint32_t>(faces.size());
  const uint32_t frame_size = 40 + 4 * vertices, skins_at = 68, st_at = skins_at + 64, tris_at = st_at + 16;
  const uint32_t frames_at = tris_at + 12 * triangles, gl_at = frames_at + 2 * frame_size, end_at = gl_at + 4;
  w.str("IDP2");
  for (uint32_t v : {8u, 64u, 64u, frame_size, 1u, vertices, 4u, triangles, 1u, 2u, skins_at, st_at, tris_at, frames_at,
                     gl_at, end_at}) {
    w.u32(v);
  }
  s.count_at = 24;
  w.str("skin.pcx").zeros(64 - 8);
  for (int i = 0; i < 4; ++i) w.u16(i * 8).u16(i * 4);
  s.index_at = w.size();
  s.index_width = 2;
  for (const Tri& t : faces) w.u16(t[0]).u16(t[1]).u16(t[2]).u16(0).u16(1).u16(2);
  s.coord_at = w.size();  // the scale, which multiplies every packed coordinate
  w.f32(0.5f).f32(0.25f).f32(2).f32(-1).f32(3).f32(0.5f).str("frame0").zeros(10);
  for (const Vec3& p : packed) w.u8(uint32_t(p[0])).u8(uint32_t(p[1])).u8(uint32_t(p[2])).u8(0);
  w.f32(1).f32(1).f32(1).f32(0).f32(0).f32(0).str("frame1").zeros(10);
  for (uint32_t i = 0; i < vertices; ++i) w.u8(i).u8(i).u8(i).u8(0);
  w.u32(0);  // GL command list terminator
  s.bytes = w.b;
  return s;
}

// Static SPM (normals, colors, tangents) with two materials and two buffers: the tetrahedron
// (material with both textures: 2 UV sets + tangent; one white and three RGB colors) and a
// triangle (material without textures: no UVs).
Sample spm_static_sample() {
  Sample s;
  Writer w;
  w.str("SP").u8((1 << 3) | 2).u8(7);
  for (int i = 0; i < 6; ++i) w.f32(0);
  w.u16(2).u8(5).str("a.png").u8(5).str("b.png").u8(0).u8(0);
  w.u16(1).u16(2);
  s.count_at = w.size();
  w.u32(4).u32(12).u16(0);
  s.coord_at = w.size();
  for (size_t i = 0; i < kTetra.size(); ++i) {
    for (double c : kTetra[i]) w.f32(static_cast<float>(c));
    w.u32(0x1ff << 10);
    if (i == 0) {
      w.u8(128);
    } else {
      w.u8(0).u8(10).u8(20).u8(30);  // any marker but 128, then r, g, b
    }
    w.u16(0).u16(0).u16(0).u16(0).u32(0);  // uv, uv2, tangent
  }
  s.index_at = w.size();
  s.index_width = 1;
  for (const Tri& t : kTetraFaces) w.u8(t[0]).u8(t[1]).u8(t[2]);
  w.u32(3).u32(3).u16(1);
  for (const Vec3& v : kTriangle) {
    for (double c : v) w.f32(static_cast<float>(c));
    w.u32(0).u8(128);
  }
  w.u8(0).u8(1).u8(2);
  s.bytes = w.b;
  return s;
}

// Skinned SPM with one buffer of 300 vertices (so 16-bit indices): vertex i at (i, i % 3, i % 5),
// triangles (0, i, i + 1); no armature section.
Sample spm_skinned_sample() {
  Sample s;
  Writer w;
  w.str("SP").u8((1 << 3) | 1).u8(0);
  for (int i = 0; i < 6; ++i) w.f32(0);
  w.u16(1).u8(3).str("t.p").u8(0);
  w.u16(1).u16(1);
  s.count_at = w.size();
  w.u32(300).u32(3 * 298).u16(0);
  s.coord_at = w.size();
  for (uint32_t i = 0; i < 300; ++i) {
    w.f32(static_cast<float>(i)).f32(static_cast<float>(i % 3)).f32(static_cast<float>(i % 5));
    w.u32(0);                                      // uv
    w.u16(0).u16(0xffff).u16(0xffff).u16(0xffff);  // joints
    w.u16(0x3c00).u16(0).u16(0).u16(0);            // weights (half floats)
  }
  s.index_at = w.size();
  s.index_width = 2;
  for (uint32_t i = 1; i < 299; ++i) w.u16(0).u16(i).u16(i + 1);
  s.bytes = w.b;
  return s;
}

// PIE 3, two levels: level 1 has 5 points, two triangles and a quad (with texture coordinates)
// and a CONNECTORS block; level 2 a triangle whose indices restart at 0. Ends with the last
// polygon's final index and a newline, so only dropping that newline keeps it valid.
std::string pie_text() {
  return "PIE 3\n"
         "TYPE 10200\n"
         "TEXTURE 0 page-7.png 256 256\n"
         "LEVELS 2\n"
         "LEVEL 1\n"
         "POINTS 5\n"
         "\t-1.5 0 2\n"
         "\t1 0.25 0\n"
         "\t0 2 -0.5\n"
         "\t0.75 -1 1\n"
         "\t+3 1e1 -2.5e-1\n"
         "POLYGONS 3\n"
         "\t200 3 0 2 1 0 0 1 0 1 1\n"
         "\t200 4 0 1 4 3 0 0 1 0 1 1 0 1\n"
         "\t200 3 1 2 3 0 0 1 0 1 1\n"
         "CONNECTORS 1\n"
         "\t0 0 10\n"
         "LEVEL 2\n"
         "POINTS 3\n"
         "\t0 0 0\n"
         "\t4 0 0\n"
         "\t0 4 0\n"
         "POLYGONS 1\n"
         "\t0 3 0 1 2\n";
}

std::vector<uint8_t> bytes_of(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

}  // namespace

// Seeds for formats_fuzz_test.cpp.
std::vector<uint8_t> sample_file(const std::string& name) {
  if (name == "pmd3") return pmd_sample(3, 1).bytes;
  if (name == "pmd4") return pmd_sample(4, 2).bytes;
  if (name == "g3d") return g3d_sample().bytes;
  if (name == "md2") return md2_sample().bytes;
  if (name == "spm") return spm_static_sample().bytes;
  if (name == "spm_skinned") return spm_skinned_sample().bytes;
  if (name == "pie") return bytes_of(pie_text());
  throw std::invalid_argument("no sample file named " + name);
}

}  // namespace iflame::format_samples

namespace iflame {
namespace {

using namespace format_samples;
using Reader = Mesh (*)(const std::vector<uint8_t>&, const std::string&);

const std::string kPath = "models/sample.bin";

// Passes when `read` throws an iflame::Error that names kPath and contains `needle`.
::testing::AssertionResult rejects(Reader read, const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    read(bytes, kPath);
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.find(kPath) == std::string::npos || message.find(needle) == std::string::npos) {
      return ::testing::AssertionFailure() << "message lacks the path or '" << needle << "': " << message;
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-iflame exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "accepted the input";
}

// Every proper prefix of `bytes` must be rejected (each is a truncated file).
void expect_prefixes_rejected(Reader read, const std::vector<uint8_t>& bytes) {
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_TRUE(rejects(read, std::vector<uint8_t>(bytes.begin(), bytes.begin() + n), ""))
        << "prefix of " << n << " bytes";
  }
}

void set_f32(std::vector<uint8_t>& b, size_t at, float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

std::vector<uint8_t> with_nan(const Sample& s) {
  std::vector<uint8_t> b = s.bytes;
  set_f32(b, s.coord_at, std::numeric_limits<float>::quiet_NaN());
  return b;
}

std::vector<uint8_t> with_index(const Sample& s, uint32_t index) {
  std::vector<uint8_t> b = s.bytes;
  set_uint(b, s.index_at, s.index_width, index);
  return b;
}

std::vector<uint8_t> with_count(const Sample& s, uint32_t count) {
  std::vector<uint8_t> b = s.bytes;
  set_uint(b, s.count_at, 4, count);
  return b;
}

std::vector<uint8_t> with_byte(std::vector<uint8_t> b, size_t at, uint8_t v) {
  b[at] = v;
  return b;
}

std::vector<uint8_t> plus_bytes(std::vector<uint8_t> b, size_t n) {
  b.insert(b.end(), n, 0);
  return b;
}

std::vector<Vec3> concat(std::vector<Vec3> a, const std::vector<Vec3>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- PMD ----

// PMD stores the game's left-handed coordinates; the reader negates z.
std::vector<Vec3> mirror_z(std::vector<Vec3> vertices) {
  for (Vec3& v : vertices) v[2] = -v[2];
  return vertices;
}

// Sum of det(v0, v1, v2) / 6: positive for a closed mesh wound CCW seen from outside.
double signed_volume(const Mesh& m) {
  double sum = 0;
  for (const Tri& t : m.faces) {
    const Vec3& a = m.vertices[t[0]];
    const Vec3& b = m.vertices[t[1]];
    const Vec3& c = m.vertices[t[2]];
    sum += a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0]) + a[2] * (b[0] * c[1] - b[1] * c[0]);
  }
  return sum / 6;
}

TEST(FormatsPmd, ReadsVersion3) {
  const Mesh m = readers::read_pmd(pmd_sample(3, 1).bytes, kPath);
  EXPECT_EQ(m.vertices, mirror_z(kTetra));
  EXPECT_EQ(m.faces, kTetraFaces);
  EXPECT_FALSE(std::signbit(m.vertices[1][2])) << "a stored z of +0 must not become -0";
}

TEST(FormatsPmd, ReadsVersion4WithTwoUvSets) {
  const Mesh m = readers::read_pmd(pmd_sample(4, 2).bytes, kPath);
  EXPECT_EQ(m.vertices, mirror_z(kTetra));
  EXPECT_EQ(m.faces, kTetraFaces);
}

// 0 A.D.'s converter (PMDConvert.cpp) turns a right-handed Y-up model into the game's left-handed
// frame by negating z and keeps the triangle indices: a cube wound CCW from outside is stored
// mirrored and wound CW. Reading it must give back the original cube, with positive volume.
TEST(FormatsPmd, UndoesTheGameMirrorSoClosedMeshesWindOutward) {
  Mesh cube;
  cube.vertices = {{0, 0, 0}, {2, 0, 0}, {2, 2, 0}, {0, 2, 0}, {0, 0, 2}, {2, 0, 2}, {2, 2, 2}, {0, 2, 2}};
  cube.faces = {{0, 3, 2}, {0, 2, 1}, {4, 5, 6}, {4, 6, 7}, {0, 1, 5}, {0, 5, 4},
                {3, 7, 6}, {3, 6, 2}, {0, 4, 7}, {0, 7, 3}, {1, 2, 6}, {1, 6, 5}};
  ASSERT_DOUBLE_EQ(signed_volume(cube), 8.0);
  Mesh stored = cube;
  stored.vertices = mirror_z(cube.vertices);
  ASSERT_DOUBLE_EQ(signed_volume(stored), -8.0);  // how the game's files read without the fix

  for (uint32_t version : {3u, 4u}) {
    const Mesh m = readers::read_pmd(pmd_sample(version, 1, stored.vertices, stored.faces).bytes, kPath);
    EXPECT_EQ(m.vertices, cube.vertices) << "version " << version;
    EXPECT_EQ(m.faces, cube.faces) << "version " << version;
    EXPECT_DOUBLE_EQ(signed_volume(m), 8.0) << "version " << version;
  }
}

TEST(FormatsPmd, RejectsEmptyAndTruncated) {
  EXPECT_TRUE(rejects(readers::read_pmd, {}, "empty file"));
  expect_prefixes_rejected(readers::read_pmd, pmd_sample(3, 1).bytes);
  expect_prefixes_rejected(readers::read_pmd, pmd_sample(4, 2).bytes);
}

TEST(FormatsPmd, RejectsBadMagicAndVersion) {
  const Sample s = pmd_sample(4, 1);
  EXPECT_TRUE(rejects(readers::read_pmd, with_byte(s.bytes, 0, 'X'), "bad magic"));
  EXPECT_TRUE(rejects(readers::read_pmd, with_byte(s.bytes, 4, 5), "unsupported PMD version 5"));
  EXPECT_TRUE(rejects(readers::read_pmd, with_byte(s.bytes, 4, 2), "unsupported PMD version 2"));
}

TEST(FormatsPmd, RejectsBadContents) {
  const Sample s = pmd_sample(4, 1);
  EXPECT_TRUE(rejects(readers::read_pmd, with_index(s, 4), "refers to vertex 5 but there are 4 vertices"));
  EXPECT_TRUE(rejects(readers::read_pmd, with_nan(s), "non-finite"));
  EXPECT_TRUE(rejects(readers::read_pmd, with_count(s, 0xffffffff), "truncated: vertices need 4294967295 x 52 bytes"));
  // A v4 UV-set count near 2^32 makes the vertex stride ~32 GB; must not overflow or allocate.
  std::vector<uint8_t> uv = s.bytes;
  set_uint(uv, s.count_at + 4, 4, 0xffffffff);
  EXPECT_TRUE(rejects(readers::read_pmd, uv, "truncated"));
  // The header's data size pins the file's length.
  EXPECT_TRUE(rejects(readers::read_pmd, plus_bytes(s.bytes, 1), "trailing data"));
}

// ---- G3D ----

TEST(FormatsG3d, ReadsFrameZeroOfEveryMesh) {
  const Mesh m = readers::read_g3d(g3d_sample().bytes, kPath);
  EXPECT_EQ(m.vertices, concat(kTetra, kTriangle));
  std::vector<Tri> faces = kTetraFaces;
  faces.push_back({4, 5, 6});
  EXPECT_EQ(m.faces, faces);
}

TEST(FormatsG3d, RejectsEmptyAndTruncated) {
  EXPECT_TRUE(rejects(readers::read_g3d, {}, "empty file"));
  expect_prefixes_rejected(readers::read_g3d, g3d_sample().bytes);
}

TEST(FormatsG3d, RejectsBadMagicAndVersion) {
  const Sample s = g3d_sample();
  EXPECT_TRUE(rejects(readers::read_g3d, with_byte(s.bytes, 1, 'X'), "bad magic"));
  EXPECT_TRUE(rejects(readers::read_g3d, with_byte(s.bytes, 3, 3), "unsupported G3D version 3"));
}

TEST(FormatsG3d, RejectsBadContents) {
  const Sample s = g3d_sample();
  EXPECT_TRUE(rejects(readers::read_g3d, with_index(s, 4), "uses vertex index 4 but the mesh has 4 vertices"));
  EXPECT_TRUE(rejects(readers::read_g3d, with_nan(s), "non-finite"));
  EXPECT_TRUE(rejects(readers::read_g3d, with_count(s, 0xffffffff), "truncated"));
  EXPECT_TRUE(rejects(readers::read_g3d, with_count(s, 0x40000000), "truncated"));
  std::vector<uint8_t> no_frames = s.bytes;
  set_uint(no_frames, s.count_at - 4, 4, 0);
  EXPECT_TRUE(rejects(readers::read_g3d, no_frames, "mesh 1 has 4 vertices but no frames"));
  std::vector<uint8_t> many_frames = s.bytes;
  set_uint(many_frames, s.count_at - 4, 4, 0xffffffff);
  EXPECT_TRUE(rejects(readers::read_g3d, many_frames, "truncated"));
  std::vector<uint8_t> many_meshes = with_byte(s.bytes, 4, 3);
  EXPECT_TRUE(rejects(readers::read_g3d, many_meshes, "truncated: needs 116 bytes"));
  EXPECT_TRUE(rejects(readers::read_g3d, plus_bytes(s.bytes, 3), "trailing data: 3 bytes"));
}

// ---- MD2 ----

// MD2 triangles are stored CW from outside; the reader swaps corners 1 and 2.
std::vector<Tri> swap_corners(std::vector<Tri> faces) {
  for (Tri& t : faces) std::swap(t[1], t[2]);
  return faces;
}

TEST(FormatsMd2, ReadsFrameZero) {
  const Mesh m = readers::read_md2(md2_sample().bytes, kPath);
  // packed * (0.5, 0.25, 2) + (-1, 3, 0.5)
  const std::vector<Vec3> expected = {{-1, 3, 0.5}, {0, 4, 2.5}, {4, 3, 6.5}, {126.5, 35, 14.5}};
  EXPECT_EQ(m.vertices, expected);
  EXPECT_EQ(m.faces, swap_corners(kTetraFaces));
}

// Quake II draws MD2 triangles with glCullFace(GL_FRONT) in a right-handed frame, so id's tools
// store them CW seen from outside. A cube stored that way must read back unmirrored, wound CCW
// (positive volume).
TEST(FormatsMd2, ReadsClockwiseTrianglesSoClosedMeshesWindOutward) {
  const std::vector<Vec3> packed = {{0, 0, 0}, {2, 0, 0}, {2, 2, 0}, {0, 2, 0},
                                    {0, 0, 2}, {2, 0, 2}, {2, 2, 2}, {0, 2, 2}};
  const std::vector<Tri> ccw = {{0, 3, 2}, {0, 2, 1}, {4, 5, 6}, {4, 6, 7}, {0, 1, 5}, {0, 5, 4},
                                {3, 7, 6}, {3, 6, 2}, {0, 4, 7}, {0, 7, 3}, {1, 2, 6}, {1, 6, 5}};
  Mesh cube;  // what the file means: packed * (0.5, 0.25, 2) + (-1, 3, 0.5), a 1 x 0.5 x 4 box
  for (const Vec3& p : packed) cube.vertices.push_back({p[0] * 0.5 - 1, p[1] * 0.25 + 3, p[2] * 2 + 0.5});
  cube.faces = ccw;
  ASSERT_DOUBLE_EQ(signed_volume(cube), 2.0);
  Mesh stored = cube;
  stored.faces = swap_corners(ccw);
  ASSERT_DOUBLE_EQ(signed_volume(stored), -2.0);  // how the files read without the swap

  const Mesh m = readers::read_md2(md2_sample(packed, stored.faces).bytes, kPath);
  EXPECT_EQ(m.vertices, cube.vertices);
  EXPECT_EQ(m.faces, cube.faces);
  EXPECT_DOUBLE_EQ(signed_volume(m), 2.0);
}

TEST(FormatsMd2, RejectsEmptyAndTruncated) {
  EXPECT_TRUE(rejects(readers::read_md2, {}, "empty file"));
  expect_prefixes_rejected(readers::read_md2, md2_sample().bytes);
}

TEST(FormatsMd2, RejectsBadMagicAndVersion) {
  const Sample s = md2_sample();
  EXPECT_TRUE(rejects(readers::read_md2, with_byte(s.bytes, 3, '3'), "bad magic 'IDP3'"));
  EXPECT_TRUE(rejects(readers::read_md2, with_byte(s.bytes, 4, 7), "unsupported MD2 version 7"));
}

TEST(FormatsMd2, RejectsBadContents) {
  const Sample s = md2_sample();
  EXPECT_TRUE(rejects(readers::read_md2, with_index(s, 4), "uses vertex index 4 but there are 4 vertices"));
  EXPECT_TRUE(rejects(readers::read_md2, with_nan(s), "non-finite"));
  EXPECT_TRUE(rejects(readers::read_md2, with_count(s, 0x7fffffff),
                      "truncated: packed vertices of frame 0 need 2147483647 x 4 bytes"));
  EXPECT_TRUE(rejects(readers::read_md2, with_count(s, 0xffffffff), "negative vertex count"));
  std::vector<uint8_t> b = s.bytes;
  set_uint(b, 32, 4, 0x7fffffff);  // triangle count
  EXPECT_TRUE(rejects(readers::read_md2, b, "truncated"));
  b = s.bytes;
  set_uint(b, 40, 4, 0);  // frame count
  EXPECT_TRUE(rejects(readers::read_md2, b, "no frames"));
  b = s.bytes;
  set_uint(b, 56, 4, 100000);  // frames offset
  EXPECT_TRUE(rejects(readers::read_md2, b, "past the end"));
  b = s.bytes;
  set_uint(b, 52, 4, 0x80000000);  // triangles offset
  EXPECT_TRUE(rejects(readers::read_md2, b, "negative triangle offset"));
  EXPECT_TRUE(rejects(readers::read_md2, plus_bytes(s.bytes, 4), "file ends at offset 312 but it has 316 bytes"));
}

// ---- SPM ----

TEST(FormatsSpm, ReadsStaticMesh) {
  const Mesh m = readers::read_spm(spm_static_sample().bytes, kPath);
  EXPECT_EQ(m.vertices, concat(kTetra, kTriangle));
  std::vector<Tri> faces = kTetraFaces;
  faces.push_back({4, 5, 6});
  EXPECT_EQ(m.faces, faces);
}

TEST(FormatsSpm, ReadsSkinnedMeshWithSixteenBitIndices) {
  const Sample s = spm_skinned_sample();
  for (size_t armature : {0, 100}) {
    const Mesh m = readers::read_spm(plus_bytes(s.bytes, armature), kPath);
    ASSERT_EQ(m.vertices.size(), 300u);
    EXPECT_EQ(m.vertices[299], (Vec3{299, 299 % 3, 299 % 5}));
    ASSERT_EQ(m.faces.size(), 298u);
    EXPECT_EQ(m.faces[297], (Tri{0, 298, 299}));
  }
}

TEST(FormatsSpm, RejectsEmptyAndTruncated) {
  EXPECT_TRUE(rejects(readers::read_spm, {}, "empty file"));
  expect_prefixes_rejected(readers::read_spm, spm_static_sample().bytes);
  expect_prefixes_rejected(readers::read_spm, spm_skinned_sample().bytes);
}

TEST(FormatsSpm, RejectsBadMagicVersionAndType) {
  const Sample s = spm_static_sample();
  EXPECT_TRUE(rejects(readers::read_spm, with_byte(s.bytes, 0, 'X'), "bad magic"));
  EXPECT_TRUE(rejects(readers::read_spm, with_byte(s.bytes, 2, (2 << 3) | 2), "unsupported SPM version 2"));
  EXPECT_TRUE(rejects(readers::read_spm, with_byte(s.bytes, 2, 1 << 3), "(SPMS) is not supported"));
}

TEST(FormatsSpm, RejectsBadContents) {
  const Sample s = spm_static_sample();
  EXPECT_TRUE(rejects(readers::read_spm, with_index(s, 4), "uses vertex index 4 but the buffer has 4 vertices"));
  EXPECT_TRUE(rejects(readers::read_spm, with_index(spm_skinned_sample(), 300), "uses vertex index 300"));
  EXPECT_TRUE(rejects(readers::read_spm, with_nan(s), "non-finite"));
  EXPECT_TRUE(rejects(readers::read_spm, with_count(s, 0xffffffff), "at most 65535"));
  EXPECT_TRUE(rejects(readers::read_spm, with_count(s, 60000),
                      "truncated: vertices of buffer 1 of mesh 1 need 60000 x 29 bytes"));
  std::vector<uint8_t> b = s.bytes;
  set_uint(b, s.count_at + 4, 4, 0xffffffff);  // index count
  EXPECT_TRUE(rejects(readers::read_spm, b, "truncated"));
  b = s.bytes;
  set_uint(b, s.count_at + 8, 2, 2);  // material id
  EXPECT_TRUE(rejects(readers::read_spm, b, "uses material 2 but there are 2 materials"));
  EXPECT_TRUE(rejects(readers::read_spm, plus_bytes(s.bytes, 1), "trailing data"));
}

// ---- PIE ----

const std::vector<Vec3> kPieVertices = {{-1.5, 0, 2},   {1, 0.25, 0}, {0, 2, -0.5}, {0.75, -1, 1},
                                        {3, 10, -0.25}, {0, 0, 0},    {4, 0, 0},    {0, 4, 0}};
const std::vector<Tri> kPieFaces = {{0, 2, 1}, {0, 1, 4}, {0, 4, 3}, {1, 2, 3}, {5, 6, 7}};

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

Mesh read_pie_text(const std::string& text) { return readers::read_pie(bytes_of(text), kPath); }

TEST(FormatsPie, ReadsLevelsAndFansPolygons) {
  const Mesh m = read_pie_text(pie_text());
  EXPECT_EQ(m.vertices, kPieVertices);
  EXPECT_EQ(m.faces, kPieFaces);
}

TEST(FormatsPie, ReadsCrLfLineEndingsAndPie2) {
  std::string crlf;
  for (char c : pie_text()) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const Mesh m = read_pie_text(crlf);
  EXPECT_EQ(m.vertices, kPieVertices);
  EXPECT_EQ(m.faces, kPieFaces);
  EXPECT_EQ(read_pie_text(replaced(pie_text(), "PIE 3", "PIE 2")).faces, kPieFaces);
}

TEST(FormatsPie, RejectsEmptyAndTruncated) {
  EXPECT_TRUE(rejects(readers::read_pie, {}, "empty file"));
  // Text cannot tell a missing final newline from a complete file; every shorter prefix fails.
  const std::vector<uint8_t> bytes = bytes_of(pie_text());
  expect_prefixes_rejected(readers::read_pie, std::vector<uint8_t>(bytes.begin(), bytes.end() - 1));
  EXPECT_EQ(readers::read_pie(std::vector<uint8_t>(bytes.begin(), bytes.end() - 1), kPath).faces, kPieFaces);
}

TEST(FormatsPie, RejectsBadMagicAndVersion) {
  EXPECT_TRUE(rejects(readers::read_pie, bytes_of(replaced(pie_text(), "PIE 3", "PIF 3")), "bad magic"));
  EXPECT_TRUE(
      rejects(readers::read_pie, bytes_of(replaced(pie_text(), "PIE 3", "PIE 5")), "unsupported PIE version 5"));
  EXPECT_TRUE(rejects(readers::read_pie, bytes_of("\x89PNG\r\n"), "bad magic"));
}

TEST(FormatsPie, RejectsBadContents) {
  auto rejects_text = [](const std::string& text, const std::string& needle) {
    return rejects(readers::read_pie, bytes_of(text), needle);
  };
  const std::string t = pie_text();
  // Indices are relative to their level: 3 is past level 2's 3 points though the file has 8.
  EXPECT_TRUE(rejects_text(replaced(t, "\t0 3 0 1 2", "\t0 3 0 1 3"), "line 24: polygon corner 3 is outside"));
  EXPECT_TRUE(rejects_text(replaced(t, "\t0 3 0 1 2", "\t0 3 0 1 -1"), "polygon corner -1"));
  EXPECT_TRUE(rejects_text(replaced(t, "\t0 3 0 1 2", "\t0 4 0 1 2"), "declares 4 corners"));
  EXPECT_TRUE(rejects_text(replaced(t, "\t0 3 0 1 2", "\t0 4000000000 0 1 2"), "declares 4000000000 corners"));
  EXPECT_TRUE(rejects_text(replaced(t, "\t0 3 0 1 2", "\t0 3 0 1 x"), "expected an integer"));
  EXPECT_TRUE(rejects_text(replaced(t, "\t0.75 -1 1", "\t0.75 nan 1"), "non-finite"));
  EXPECT_TRUE(rejects_text(replaced(t, "\t0.75 -1 1", "\t0.75 -1"), "needs 3 coordinates"));
  EXPECT_TRUE(rejects_text(replaced(t, "\t0.75 -1 1", "\t0.75 -1 1e999"), "expected a coordinate"));
  // A huge count reads on into the next block (as the format has no terminator) or the file's end.
  EXPECT_TRUE(rejects_text(replaced(t, "POINTS 5", "POINTS 4000000000"), "line 12: a point needs 3 coordinates"));
  EXPECT_TRUE(
      rejects_text("PIE 3\nPOINTS 4000000000\n0 0 0\n", "declares 4000000000 entries but the file ends after 1"));
  EXPECT_TRUE(rejects_text(replaced(t, "POINTS 5", "POINTS -1"), "negative count"));
  EXPECT_TRUE(rejects_text(replaced(t, "POLYGONS 3", "POLYGONS 99999999999999999999"), "expected an integer"));
  EXPECT_TRUE(rejects_text(replaced(t, "LEVELS 2", "LEVELS 3"), "LEVELS says 3 levels but the file has 2"));
  EXPECT_TRUE(rejects_text(replaced(t, "POLYGONS 1\n\t0 3 0 1 2\n", ""), "POINTS block at line 19 has no POLYGONS"));
  EXPECT_TRUE(rejects_text("PIE 3\nPOLYGONS 1\n0 3 0 1 2\n", "POLYGONS before any POINTS"));
}

}  // namespace
}  // namespace iflame
