// MegaGlest model (.g3d v4), little-endian; only frame 0 is read:
//   char[3] "G3D"; u8 version (4); u16 mesh count; u8 model type
//   per mesh, a 116-byte header: char name[64]; u32 frame count, vertex count, index count;
//     f32 diffuse[3], specular[3], specular power, opacity; u32 properties; u32 texture flags
//   then a 64-byte texture name per set texture-flag bit,
//   positions (frame count x vertex count x f32[3], frame 0 first), normals (same size),
//   texture coordinates (vertex count x f32[2], only when any texture flag is set),
//   indices (index count x u32, 0-based within the mesh, 3 per triangle).
// The meshes fill the file exactly; leftover bytes mean the layout was misread.
#include <bitset>
#include <string>

#include "mesh/formats/byte_reader.h"
#include "mesh/readers.h"

namespace iflame::readers {

Mesh read_g3d(const std::vector<uint8_t>& bytes, const std::string& path) {
  detail::ByteReader r(bytes, path);
  r.expect_magic("G3D", "MegaGlest G3D model");
  const uint8_t version = r.u8("the version");
  if (version != 4) r.fail("unsupported G3D version " + std::to_string(version) + " (expected 4)");
  const uint16_t mesh_count = r.u16("the mesh count");
  r.skip(1, "the model type");

  Mesh mesh;
  for (uint32_t m = 0; m < mesh_count; ++m) {
    const std::string which = "mesh " + std::to_string(m + 1);
    r.need(116, "the header of " + which);
    r.skip(64, "the mesh name");
    const uint32_t frame_count = r.u32("the frame count");
    const uint32_t vertex_count = r.u32("the vertex count");
    const uint32_t index_count = r.u32("the index count");
    r.skip(36, "the material");
    const uint32_t textures = r.u32("the texture flags");
    // One name per set bit, as the corpus converter counts them.
    r.skip(64 * uint64_t(std::bitset<32>(textures).count()), "the texture names of " + which);

    if (frame_count == 0 && vertex_count > 0) {
      r.fail(which + " has " + std::to_string(vertex_count) + " vertices but no frames");
    }
    const uint64_t frame_bytes = uint64_t(vertex_count) * 24;  // positions + normals per frame
    r.need_items(frame_count, frame_bytes, "frames (positions and normals) of " + which);
    const size_t base = mesh.vertices.size();
    detail::check_vertex_total(base + uint64_t(vertex_count), path);
    for (uint32_t i = 0; i < vertex_count; ++i) {
      const double x = r.f32("a position");
      const double y = r.f32("a position");
      const double z = r.f32("a position");
      mesh.vertices.push_back({x, y, z});
    }
    // The other frames' positions, then all normals.
    r.skip(uint64_t(frame_count) * frame_bytes - uint64_t(vertex_count) * 12, "the frames of " + which);
    if (textures != 0) r.skip(uint64_t(vertex_count) * 8, "the texture coordinates of " + which);

    r.need_items(index_count, 4, "indices of " + which);
    for (uint32_t t = 0; t < index_count / 3; ++t) {
      Tri tri;
      for (int32_t& corner : tri) {
        const uint32_t index = r.u32("an index");
        if (index >= vertex_count) {
          r.fail("triangle " + std::to_string(t + 1) + " of " + which + " uses vertex index " + std::to_string(index) +
                 " but the mesh has " + std::to_string(vertex_count) + " vertices");
        }
        corner = static_cast<int32_t>(base + index);
      }
      mesh.faces.push_back(tri);
    }
    // An index count that is not a multiple of 3 leaves a partial triangle, ignored like the converter does.
    r.skip(uint64_t(index_count % 3) * 4, "an index");
  }
  r.expect_end("the last mesh");

  validate_mesh(mesh, path);
  return mesh;
}

}  // namespace iflame::readers
