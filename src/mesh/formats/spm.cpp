// SuperTuxKart mesh (.spm, SP v1), little-endian; the stored (bind) pose is read:
//   char[2] "SP"; u8 version << 3 | type (0 SPMS space-partitioned, unsupported; 1 SPMA skinned;
//     else SPMN static); u8 flags (bit 0 normals, bit 1 vertex colors, bit 2 tangents)
//   f32 bounding box[6]
//   u16 material count; per material two names (u8 length + bytes): texture 1 and texture 2
//   u16 mesh count; per mesh u16 buffer count; per buffer:
//     u32 vertex count (at most 65535), u32 index count, u16 material id
//     vertices: f32 position[3]; [normals] u32 packed normal; [colors] u8 128 for white, or
//       any other u8 then u8 r, g, b; [material has texture 1] half uv[2], [texture 2] half uv2[2],
//       [tangents] u32 packed tangent; [skinned] i16 joint[4], half weight[4]
//     indices (3 per triangle, 0-based within the buffer): u8 when the buffer has at most
//       255 vertices, else u16
//   skinned files continue with the armature (not read); static files end after the meshes.
#include <string>
#include <utility>

#include "mesh/formats/byte_reader.h"
#include "mesh/readers.h"

namespace iflame::readers {

Mesh read_spm(const std::vector<uint8_t>& bytes, const std::string& path) {
  detail::ByteReader r(bytes, path);
  r.expect_magic("SP", "SuperTuxKart SPM mesh");
  const uint8_t kind = r.u8("the version and type");
  if (kind >> 3 != 1) r.fail("unsupported SPM version " + std::to_string(kind >> 3) + " (expected 1)");
  const uint8_t type = kind & 7;
  if (type == 0) r.fail("space-partitioned SPM (SPMS) is not supported");
  const bool skinned = type == 1;
  const uint8_t flags = r.u8("the flags");
  const bool has_normals = flags & 1, has_colors = flags & 2, has_tangents = flags & 4;
  r.skip(24, "the bounding box");

  // Per material: whether it has texture 1 and texture 2, which decides the UVs per vertex.
  const uint16_t material_count = r.u16("the material count");
  std::vector<std::pair<bool, bool>> materials;
  materials.reserve(material_count);
  for (uint32_t i = 0; i < material_count; ++i) {
    const uint8_t len1 = r.u8("a texture name length");
    r.skip(len1, "a texture name");
    const uint8_t len2 = r.u8("a texture name length");
    r.skip(len2, "a texture name");
    materials.emplace_back(len1 > 0, len2 > 0);
  }

  Mesh mesh;
  const uint16_t mesh_count = r.u16("the mesh count");
  for (uint32_t m = 0; m < mesh_count; ++m) {
    const uint16_t buffer_count = r.u16("the buffer count");
    for (uint32_t b = 0; b < buffer_count; ++b) {
      const std::string which = "buffer " + std::to_string(b + 1) + " of mesh " + std::to_string(m + 1);
      const uint32_t vertex_count = r.u32("a vertex count");
      const uint32_t index_count = r.u32("an index count");
      const uint16_t material = r.u16("a material id");
      if (material >= materials.size()) {
        r.fail(which + " uses material " + std::to_string(material) + " but there are " +
               std::to_string(materials.size()) + " materials");
      }
      // SuperTuxKart itself refuses larger buffers (its indices are 16-bit).
      if (vertex_count > 65535) {
        r.fail(which + " has " + std::to_string(vertex_count) + " vertices (at most 65535 are allowed)");
      }
      const bool uv1 = materials[material].first, uv2 = materials[material].second;
      const uint32_t uv_bytes = uv1 ? 4 + 4 * uv2 + 4 * has_tangents : 0;
      const uint32_t min_vertex_bytes = 12 + 4 * has_normals + has_colors + uv_bytes + 16 * skinned;
      r.need_items(vertex_count, min_vertex_bytes, "vertices of " + which);

      const size_t base = mesh.vertices.size();
      detail::check_vertex_total(base + uint64_t(vertex_count), path);
        for (uint32_t i = 0; i < vertex_count; ++i) {
        const double x = r.f32("a vertex position");
        const double y = r.f32("a vertex position");
        const double z = r.f32("a vertex position");
        mesh.vertices.push_back({x, y, z});
        if (has_normals) r.skip(4, "a vertex normal");
        if (has_colors && r.u8("a vertex color") != 128) r.skip(3, "a vertex color");
        r.skip(uv_bytes, "vertex UVs and tangent");
        if (skinned) r.skip(16, "vertex joints and weights");
      }

      const uint32_t index_size = vertex_count > 255 ? 2 : 1;
      r.need_items(index_count, index_size, "indices of " + which);
        for (uint32_t t = 0; t < index_count / 3; ++t) {
        Tri tri;
        for (int32_t& corner : tri) {
          const uint32_t index = index_size == 2 ? r.u16("an index") : r.u8("an index");
          if (index >= vertex_count) {
            r.fail("triangle " + std::to_string(t + 1) + " of " + which + " uses vertex index " +
                   std::to_string(index) + " but the buffer has " + std::to_string(vertex_count) + " vertices");
          }
          corner = static_cast<int32_t>(base + index);
        }
        mesh.faces.push_back(tri);
      }
      // A partial triangle at the end is ignored, as the corpus converter does.
      r.skip(uint64_t(index_count % 3) * index_size, "an index");
    }
  }
  if (!skinned) r.expect_end("the last mesh");

  validate_mesh(mesh, path);
  return mesh;
}

}  // namespace iflame::readers
