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

// Every file below DIR (recursively) that is_mesh_path accepts, sorted by path. A walk that
// stops early keeps what it found and says why in `*error` (empty when it listed everything).
// Throws iflame::Error naming DIR when it is not a folder.
std::vector<std::string> find_mesh_files(const std::string& dir, std::string* error);

// Mesh files under `inputs` for commands that take files and folders alike: folders are
// searched with find_mesh_files, files are kept as given. `name` is the path relative to its
// folder, or the file name. Nothing throws: what is wrong with an input is in `problems`.
struct MeshFile {
  std::string path, name;
};
struct MeshFileListing {
  std::vector<MeshFile> files;
  std::vector<std::string> problems;  // "PATH: no such file or folder", empty folders, ...
  size_t missing = 0;                 // inputs that do not exist
};
MeshFileListing collect_mesh_files(const std::vector<std::string>& inputs);

}  // namespace iflame
