// `iflame view`: a static HTML gallery of meshes with an interactive three.js viewer per mesh.
//
// The written folder is self-contained and works opened as a plain file (file://), where
// browsers refuse ES modules and fetch(): three.js comes as one classic script bundled at setup
// time (web/, see scripts/setup.sh), and every mesh is a classic script of its own:
//   OUT/index.html          the grid of cards (name, face and vertex counts) and skipped files
//   OUT/iflame-viewer.js    three.js + OrbitControls + web/src/viewer.js, copied from web/dist/
//   OUT/meshes/NNNN.js      (window.iflameMeshes = window.iflameMeshes || []).push({id, name,
//                           vertices, faces, positions, indices, index_bits});
// where positions is base64 of little-endian float32 x,y,z per vertex and indices base64 of
// little-endian uint16 (index_bits 16, at most 65536 vertices) or uint32 corners, 3 per face.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mesh/load.h"
#include "mesh/mesh.h"

namespace iflame::view {

// The name of the bundled viewer script, in web/dist/ and in every gallery.
inline constexpr const char* kViewerScript = "iflame-viewer.js";

// The bundled viewer script to copy into galleries. Looks in `assets_dir` when given (the web/
// folder or its dist/), else in $IFLAME_WEB_DIR, else in the source tree's web/ (compiled in).
// Throws iflame::Error naming the missing file and saying to run scripts/setup.sh.
std::string find_viewer_script(const std::string& assets_dir = "");

struct GalleryOptions {
  std::string title;          // the page heading; "" -> "iflame view"
  size_t limit = 0;           // at most this many meshes on the page (0: all)
  std::string viewer_script;  // the bundled viewer to copy (find_viewer_script())
};

struct GalleryMesh {
  std::string name, data_file;  // data_file relative to the gallery folder
  size_t vertices = 0, faces = 0;
};
struct SkippedMesh {
  std::string path, reason;
};
struct GalleryReport {
  std::string index_html;  // the page's path
  std::vector<GalleryMesh> meshes;
  std::vector<SkippedMesh> skipped;  // unreadable files, in input order
  size_t not_shown = 0;              // files beyond the limit, not read
};

// Loads `files` in order (skipping unreadable ones, never throwing for them) until `limit` meshes
// are loaded, and writes the gallery into `out_dir` (created; an older gallery's meshes/*.js are
// replaced). Throws iflame::Error when the folder or a file cannot be written.
GalleryReport write_gallery(const std::vector<MeshFile>& files, const std::string& out_dir, const GalleryOptions& options);

// The pieces, exposed for tests.
std::string base64_encode(const void* data, size_t size);
// The JS statement of one mesh record (see the file comment). Throws iflame::Error naming `name`
// when a coordinate does not fit in float32.
std::string mesh_record_js(const Mesh& mesh, const std::string& id, const std::string& name);
std::string html_escape(const std::string& text);

}  // namespace iflame::view
