#include "mesh/write.h"

#include <algorithm>
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

void write_glb(const Mesh& mesh, const std::string& path) {
  // glTF 2.0 binary: a 12-byte header, a JSON chunk (padded with spaces to 4 bytes) and a BIN
  // chunk of float32 positions then uint32 indices.
  const size_t nv = mesh.vertices.size(), nf = mesh.faces.size();
  Vec3 lo{0, 0, 0}, hi{0, 0, 0};
  for (size_t i = 0; i < nv; ++i) {
    for (int k = 0; k < 3; ++k) {
      lo[k] = i ? std::min(lo[k], double(float(mesh.vertices[i][k]))) : double(float(mesh.vertices[i][k]));
      hi[k] = i ? std::max(hi[k], double(float(mesh.vertices[i][k]))) : double(float(mesh.vertices[i][k]));
    }
  }
  const size_t pos_bytes = nv * 12, idx_bytes = nf * 12;
  char num[64];
  auto vec = [&](const Vec3& v) {
    std::snprintf(num, sizeof num, "[%.9g,%.9g,%.9g]", v[0], v[1], v[2]);
    return std::string(num);
  };
  std::string json =
      R"({"asset":{"version":"2.0","generator":"iflame"},"scene":0,"scenes":[{"nodes":[0]}],"nodes":[{"mesh":0}],)"
      R"("meshes":[{"primitives":[{"attributes":{"POSITION":0},"indices":1,"mode":4}]}],)"
      R"("buffers":[{"byteLength":)" + std::to_string(pos_bytes + idx_bytes) + "}],"
      R"("bufferViews":[{"buffer":0,"byteOffset":0,"byteLength":)" + std::to_string(pos_bytes) + R"(,"target":34962},)"
      R"({"buffer":0,"byteOffset":)" + std::to_string(pos_bytes) + R"(,"byteLength":)" + std::to_string(idx_bytes) +
      R"(,"target":34963}],"accessors":[{"bufferView":0,"componentType":5126,"count":)" + std::to_string(nv) +
      R"(,"type":"VEC3","min":)" + vec(lo) + R"(,"max":)" + vec(hi) + R"(},)"
      R"({"bufferView":1,"componentType":5125,"count":)" + std::to_string(3 * nf) + R"(,"type":"SCALAR"}]})";
  json.resize((json.size() + 3) / 4 * 4, ' ');
  std::string out;
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };  // little-endian hosts
  u32(0x46546C67);  // "glTF"
  u32(2);
  u32(uint32_t(12 + 8 + json.size() + 8 + pos_bytes + idx_bytes));
  u32(uint32_t(json.size()));
  u32(0x4E4F534A);  // "JSON"
  out += json;
  u32(uint32_t(pos_bytes + idx_bytes));
  u32(0x004E4942);  // "BIN"
  for (const Vec3& v : mesh.vertices) {
    for (int k = 0; k < 3; ++k) {
      const float f = float(v[k]);
      out.append(reinterpret_cast<const char*>(&f), 4);
    }
  }
  for (const Tri& f : mesh.faces) {
    for (int k = 0; k < 3; ++k) u32(uint32_t(f[k]));
  }
  write_file_atomic(path, out);
}

void write_mesh(const Mesh& mesh, const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".obj") return write_obj(mesh, path);
  if (ext == ".ply") return write_ply(mesh, path);
  if (ext == ".glb") return write_glb(mesh, path);
  throw Error(path, "cannot write '" + ext + "' meshes (use .obj, .ply or .glb)");
}

}  // namespace iflame
