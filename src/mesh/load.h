// One entry point for reading a mesh from any supported file.
#pragma once
#include <string>
#include <vector>

#include "mesh/mesh.h"

namespace iflame {

// Reads PATH as a triangle mesh, choosing the reader by content (magic bytes) and extension:
// our own readers for OBJ (float64, exact), OFF, and the game formats assimp cannot read
// (.pmd, .g3d, .md2, .spm, .pie); assimp for everything else (PLY, STL, glTF/GLB, DAE, AC3D,
// 3DS, MD3, ...). Polygons are fan-triangulated. Throws iflame::Error naming the file and the
// problem for anything unreadable; never crashes on corrupt input.
Mesh load_mesh(const std::string& path);

// True when PATH has an extension some reader handles (used to walk directories).
bool is_mesh_path(const std::string& path);

// The extensions is_mesh_path accepts, for help texts.
const std::vector<std::string>& mesh_extensions();

}  // namespace iflame
