// The individual readers behind load_mesh (mesh/load.h). Each takes the file's bytes and its
// path (for messages), and throws iflame::Error on anything malformed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mesh/mesh.h"

namespace iflame::readers {

Mesh read_obj(const std::vector<uint8_t>& bytes, const std::string& path);
Mesh read_off(const std::vector<uint8_t>& bytes, const std::string& path);
Mesh read_with_assimp(const std::string& path);

// Game formats (docs: shared data-sources.md), readers in mesh/formats/.
Mesh read_pmd(const std::vector<uint8_t>& bytes, const std::string& path);  // 0 A.D. PSMD v3/v4
Mesh read_g3d(const std::vector<uint8_t>& bytes, const std::string& path);  // MegaGlest G3D v4, frame 0
Mesh read_md2(const std::vector<uint8_t>& bytes, const std::string& path);  // Quake 2 / UFO:AI, frame 0
Mesh read_spm(const std::vector<uint8_t>& bytes, const std::string& path);  // SuperTuxKart SP v1
Mesh read_pie(const std::vector<uint8_t>& bytes, const std::string& path);  // Warzone 2100 PIE 2/3 (text)

}  // namespace iflame::readers
