#include "mesh/write.h"

#include <cstdio>
#include <cstring>

#include "util/error.h"
#include "util/fs.h"

namespace iflame {

std::string obj_text(const Mesh& mesh, const std::string& comment) {
  std::string out;
  out.reserve(mesh.vertices.size() * 40 + mesh.faces.size() * 24 + 64);
  if (!comment.empty()) out += "# " + comment + "\n";
  char buf[128];
  for (const Vec3& v : mesh.vertices) {
    // %.17g round-trips float64 exactly, so write -> read gives the same tokens.
    std::snprintf(buf, sizeof buf, "v %.17g %.17g %.17g\n", v[0], v[1], v[2]);
    out += buf;
  }
  for (const Tri& f : mesh.faces) {
    std::snprintf(buf, sizeof buf, "f %d %d %d\n", f[0] + 1, f[1] + 1, f[2] + 1);
    out += buf;
  }
  return out;
}

void write_obj(const Mesh& mesh, const std::string& path, const std::string& comment) {
  write_file_atomic(path, obj_text(mesh, comment));
}

void write_ply(const Mesh& mesh, const std::string& path) {
  std::string out = "ply\nformat binary_little_endian 1.0\ncomment written by iflame\nelement vertex " +
                    std::to_string(mesh.vertices.size()) +
                    "\nproperty float x\nproperty float y\nproperty float z\nelement face " +
                    std::to_string(mesh.faces.size()) + "\nproperty list uchar int vertex_indices\nend_header\n";
  const size_t header = out.size();
  out.resize(header + mesh.vertices.size() * 12 + mesh.faces.size() * 13);
  char* p = out.data() + header;
  for (const Vec3& v : mesh.vertices) {
    for (double c : v) {
      const float f = static_cast<float>(c);
      std::memcpy(p, &f, 4);
      p += 4;
    }
  }
  for (const Tri& f : mesh.faces) {
    *p++ = 3;
    std::memcpy(p, f.data(), 12);
    p += 12;
  }
  write_file_atomic(path, out);
}

void write_mesh(const Mesh& mesh, const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".obj") return write_obj(mesh, path);
  if (ext == ".ply") return write_ply(mesh, path);
  throw Error(path, "cannot write '" + ext + "' meshes (use .obj or .ply)");
}

}  // namespace iflame
