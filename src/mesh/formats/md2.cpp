// Quake 2 / UFO:AI model (.md2), little-endian; only frame 0 is read:
//   header (68 bytes): char[4] "IDP2"; then 16 i32: version (8), skin width, skin height,
//     frame size, skin count, vertex count, texcoord count, triangle count, GL-command count,
//     frame count, and the offsets of skins, texcoords, triangles, frames, GL commands and the
//     end of the file
//   triangle (12 bytes): u16 vertex[3], u16 texcoord[3]
//   frame: f32 scale[3], f32 translate[3], char name[16], then per vertex u8 x, y, z and a
//     normal index; position = packed * scale + translate
// Sections are found through the header's offsets, so they may come in any order; the end
// offset must equal the file size (true for every UFO:AI file).
// Winding: id's tools store triangles clockwise seen from outside. Quake II's GL renderer draws
// them (right-handed Z-up world, view set up by rotations only) with glCullFace(GL_FRONT) and
// switches to GL_BACK only for the mirrored left-handed weapon (ref_gl gl_rmain.c R_SetupGL,
// gl_mesh.c R_DrawAliasModel). Read as stored, 273 of 274 closed .md2 meshes in our corpus had
// negative signed volume (86-100% positive for our other formats) and 554 of 585 open ones had
// normals pointing mostly inward. The reader swaps two corners per triangle so meshes wind CCW
// from outside: now 273 of 274 closed positive, 554 of 585 open mostly outward.
// Positions stay as stored: assimp and three.js fix the winding by swapping y and z instead,
// which mirrors the model; the Z-up -> Y-up rotation is done later (dataset/prepare.h).
#include <string>
#include <utility>

#include "mesh/formats/byte_reader.h"
#include "mesh/readers.h"

namespace iflame::readers {

Mesh read_md2(const std::vector<uint8_t>& bytes, const std::string& path) {
  detail::ByteReader r(bytes, path);
  r.expect_magic("IDP2", "Quake 2 MD2 model");
  r.need(64, "the header");
  const int32_t version = r.i32("the version");
  if (version != 8) r.fail("unsupported MD2 version " + std::to_string(version) + " (expected 8)");
  int32_t h[15];
  for (int32_t& v : h) v = r.i32("the header");
  // h[] starts after the version: h[4] = vertex count, h[6] = triangles, h[8] = frames, ...
  const int32_t vertex_count = h[4], triangle_count = h[6], frame_count = h[8];
  const int32_t triangles_at = h[11], frames_at = h[12], end_at = h[14];
  if (vertex_count < 0) r.fail("negative vertex count " + std::to_string(vertex_count));
  if (triangle_count < 0) r.fail("negative triangle count " + std::to_string(triangle_count));
  if (frame_count < 1) r.fail("no frames (frame count " + std::to_string(frame_count) + ")");
  if (triangles_at < 0) r.fail("negative triangle offset " + std::to_string(triangles_at));
  if (frames_at < 0) r.fail("negative frame offset " + std::to_string(frames_at));
  if (end_at < 0 || uint64_t(end_at) != r.size()) {
    r.fail("header says the file ends at offset " + std::to_string(end_at) + " but it has " + std::to_string(r.size()) +
           " bytes");
  }

  Mesh mesh;
  r.seek(uint64_t(frames_at), "frame 0");
  double scale[3], translate[3];
  for (double& s : scale) s = r.f32("the frame scale");
  for (double& t : translate) t = r.f32("the frame translation");
  r.skip(16, "the frame name");
  r.need_items(uint64_t(vertex_count), 4, "packed vertices of frame 0");
  mesh.vertices.reserve(size_t(vertex_count));
  for (int32_t i = 0; i < vertex_count; ++i) {
    Vec3 v;
    for (size_t k = 0; k < 3; ++k) v[k] = r.u8("a packed vertex") * scale[k] + translate[k];
    r.skip(1, "a vertex normal index");
    mesh.vertices.push_back(v);
  }

  r.seek(uint64_t(triangles_at), "the triangles");
  r.need_items(uint64_t(triangle_count), 12, "triangles");
  mesh.faces.reserve(size_t(triangle_count));
  for (int32_t t = 0; t < triangle_count; ++t) {
    Tri tri;
    for (int32_t& corner : tri) {
      corner = r.u16("a triangle");
      if (corner >= vertex_count) {
        r.fail("triangle " + std::to_string(t + 1) + " uses vertex index " + std::to_string(corner) +
               " but there are " + std::to_string(vertex_count) + " vertices");
      }
    }
    r.skip(6, "a triangle's texcoord indices");
    std::swap(tri[1], tri[2]);  // CW -> CCW from outside (header)
    mesh.faces.push_back(tri);
  }

  validate_mesh(mesh, path);
  return mesh;
}

}  // namespace iflame::readers
