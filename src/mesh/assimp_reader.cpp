// Everything without a reader of our own goes through assimp: PLY, STL, glTF/GLB, DAE, AC3D,
// 3DS, MD3, FBX, ... Node transforms are applied (PreTransformVertices) so that multi-part
// scenes come out assembled; points and lines are dropped; polygons are triangulated.
#include <assimp/postprocess.h>
#include <assimp/scene.h>

#include <assimp/Importer.hpp>
#include <cmath>

#include <stdexcept>
#include <string>

#include "mesh/readers.h"
#include "util/error.h"

// Debian's assimp 5.2.5 is built with live internal assertions (ai_assert) that end in
// std::abort(): FlightGear's Models/Airport/LGSM_Biglight.ac stops the whole process inside
// TriangulateProcess. libassimp calls Assimp::aiAssertViolation through the PLT, so this
// definition, linked with the reader (same translation unit, so always pulled in), takes its
// place: it throws, Importer::ReadFile catches it and returns no scene, and the file is
// reported as unreadable. Only one definition may exist in the program.
namespace Assimp {

void aiAssertViolation(const char* expression, const char* file, int line);

void aiAssertViolation(const char* expression, const char* file, int line) {
  throw std::runtime_error(std::string("assimp internal assertion failed: ") + (expression ? expression : "?") + " at " +
                           (file ? file : "?") + ":" + std::to_string(line));
}

}  // namespace Assimp

namespace iflame::readers {

Mesh read_with_assimp(const std::string& path) {
  Assimp::Importer importer;
  // Drop points and lines at import (SortByPType splits them out, this removes them).
  importer.SetPropertyInteger(AI_CONFIG_PP_SBP_REMOVE, aiPrimitiveType_POINT | aiPrimitiveType_LINE);
  // ValidateDataStructure first: it rejects scenes that would crash the later steps (e.g. an
  // MD3 surface without vertices segfaults them).
  const unsigned flags = aiProcess_ValidateDataStructure | aiProcess_Triangulate | aiProcess_PreTransformVertices |
                         aiProcess_SortByPType;
  const aiScene* scene = importer.ReadFile(path, flags);
  if (!scene) {
    std::string why = importer.GetErrorString();
    throw Error(path, why.empty() ? "unreadable mesh file" : "unreadable mesh file (" + why + ")");
  }
  Mesh mesh;
  for (unsigned m = 0; m < scene->mNumMeshes; ++m) {
    const aiMesh* am = scene->mMeshes[m];
    if (!(am->mPrimitiveTypes & aiPrimitiveType_TRIANGLE)) continue;
    const auto base = static_cast<int64_t>(mesh.vertices.size());
    for (unsigned i = 0; i < am->mNumVertices; ++i) {
      const aiVector3D& p = am->mVertices[i];
      mesh.vertices.push_back({double(p.x), double(p.y), double(p.z)});
    }
    for (unsigned f = 0; f < am->mNumFaces; ++f) {
      const aiFace& face = am->mFaces[f];
      if (face.mNumIndices != 3) continue;
      mesh.faces.push_back({int32_t(base + face.mIndices[0]), int32_t(base + face.mIndices[1]),
                            int32_t(base + face.mIndices[2])});
    }
  }
  validate_mesh(mesh, path);
  return mesh;
}

}  // namespace iflame::readers
