// 0 A.D. model (.pmd, "PSMD" v3/v4), little-endian:
//   char[4] "PSMD"; u32 version; u32 data size (= file size - 12)
//   u32 vertex count; v4 only: u32 UV-set count n (v3: n = 1)
//   vertices: f32 position[3], f32 normal[3], f32 uv[2] x n, u8 bone[4], f32 weight[4]
//   u32 face count; faces: u16 vertex[3]
//   then bones and prop points, which carry no geometry and are skipped (the data size
//   already pins the file's length).
// Positions are in the game's left-handed Y-up frame: 0 A.D.'s Collada converter
// (source/collada/PMDConvert.cpp, TransformStaticModel/TransformSkinnedModel) mirrors the
// artist's right-handed model (z -> -z for Y-up sources, y <-> z for Z-up ones) and writes the
// triangle indices unchanged; the engine then draws with a left-handed projection and CCW front
// faces. Read as they are stored, models come out mirrored and wound clockwise seen from outside
// (351 of 352 closed .pmd meshes in our corpus have negative signed volume; 96-100% of the closed
// OBJ/AC/SPM/MD3/G3D meshes have positive). Negating z undoes the mirror: this gives the
// original model (Y-up sources) or its Z-up-to-Y-up rotation, wound CCW like every other
// reader's output.
#include <string>

#include "mesh/formats/byte_reader.h"
#include "mesh/readers.h"

namespace iflame::readers {

Mesh read_pmd(const std::vector<uint8_t>& bytes, const std::string& path) {
  detail::ByteReader r(bytes, path);
  r.expect_magic("PSMD", "0 A.D. PMD model");
  const uint32_t version = r.u32("the version");
  if (version != 3 && version != 4) {
    r.fail("unsupported PMD version " + std::to_string(version) + " (expected 3 or 4)");
  }
  const uint32_t data_size = r.u32("the data size");
  if (data_size != r.remaining()) {
    r.fail(std::string(data_size > r.remaining() ? "truncated" : "trailing data") + ": header says " +
           std::to_string(data_size) + " bytes follow the 12-byte header, file has " + std::to_string(r.remaining()));
  }

  const uint32_t vertex_count = r.u32("the vertex count");
  const uint32_t uv_sets = version >= 4 ? r.u32("the UV-set count") : 1;
  const uint64_t stride = 12 + 12 + 8 * uint64_t(uv_sets) + 4 + 16;
  r.need_items(vertex_count, stride, "vertices");
  detail::check_vertex_total(vertex_count, path);

  Mesh mesh;
  mesh.vertices.reserve(vertex_count);
  for (uint32_t i = 0; i < vertex_count; ++i) {
    const double x = r.f32("a vertex position");
    const double y = r.f32("a vertex position");
    const double z = r.f32("a vertex position");
    mesh.vertices.push_back({x, y, 0.0 - z});  // left- to right-handed (header); 0.0 - z keeps +0.0
    r.skip(stride - 12, "a vertex's normal, UVs and bone weights");
  }

  const uint32_t face_count = r.u32("the face count");
  r.need_items(face_count, 6, "faces");
  mesh.faces.reserve(face_count);
  for (uint32_t f = 0; f < face_count; ++f) {
    const int32_t a = r.u16("a face");
    const int32_t b = r.u16("a face");
    const int32_t c = r.u16("a face");
    mesh.faces.push_back({a, b, c});
  }

  validate_mesh(mesh, path);
  return mesh;
}

}  // namespace iflame::readers
