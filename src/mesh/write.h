// Mesh writers. Both write atomically (temp file + rename).
#pragma once
#include <string>

#include "mesh/mesh.h"

namespace iflame {

// The OBJ text write_obj writes (vertices with %.17g, so that reading back is exact).
std::string obj_text(const Mesh& mesh, const std::string& comment = "");
void write_obj(const Mesh& mesh, const std::string& path, const std::string& comment = "");
// Binary little-endian PLY (float32 positions, int32 triangle lists).
void write_ply(const Mesh& mesh, const std::string& path);
// Binary glTF 2.0 (.glb): one mesh of float32 positions and uint32 triangle indices.
void write_glb(const Mesh& mesh, const std::string& path);
// Picks the writer from the extension (.obj, .ply or .glb); throws iflame::Error for anything else.
void write_mesh(const Mesh& mesh, const std::string& path);

}  // namespace iflame
