#include "mesh/load.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "mesh/readers.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

bool starts_with(const std::vector<uint8_t>& b, const char* magic) {
  const size_t n = std::strlen(magic);
  return b.size() >= n && std::memcmp(b.data(), magic, n) == 0;
}

// Extensions assimp 5.2 reads that are useful for meshes (its full list is longer).
const std::vector<std::string> kAssimpExtensions = {
    ".ply", ".stl", ".gltf", ".glb", ".dae", ".ac", ".ac3d", ".3ds", ".md3", ".fbx", ".x",
    ".lwo", ".ase", ".ms3d", ".blend", ".3mf", ".amf", ".q3o", ".cob", ".smd", ".mdl", ".nff", ".raw", ".ter"};

}  // namespace

const std::vector<std::string>& mesh_extensions() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> v = {".obj", ".off", ".pmd", ".g3d", ".md2", ".spm", ".pie"};
    v.insert(v.end(), kAssimpExtensions.begin(), kAssimpExtensions.end());
    return v;
  }();
  return all;
}

bool is_mesh_path(const std::string& path) {
  const std::string ext = lower_extension(path);
  const auto& all = mesh_extensions();
  return std::find(all.begin(), all.end(), ext) != all.end();
}

std::vector<std::string> find_mesh_files(const std::string& dir, std::string* error) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir, "not a folder");
  std::vector<std::string> found;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code file_ec;
    if (it->is_regular_file(file_ec) && is_mesh_path(it->path().string())) found.push_back(it->path().string());
  }
  if (error) *error = ec ? "could not list everything: " + ec.message() : "";
  std::sort(found.begin(), found.end());
  return found;
}

MeshFileListing collect_mesh_files(const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  MeshFileListing out;
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      std::string error;
      std::vector<std::string> found;
      try {
        found = find_mesh_files(input, &error);
      } catch (const Error&) {  // the folder went away since is_directory
        error = "no longer a folder";
      }
      if (!error.empty()) out.problems.push_back(input + ": " + error);
      if (found.empty()) out.problems.push_back(input + ": no mesh files in this folder");
      for (const std::string& path : found) {
        std::error_code rel_ec;
        const fs::path rel = fs::relative(path, input, rel_ec);
        out.files.push_back({path, rel_ec || rel.empty() ? fs::path(path).filename().string() : rel.generic_string()});
      }
    } else if (fs::exists(input, ec)) {
      out.files.push_back({input, fs::path(input).filename().string()});
    } else {
      out.problems.push_back(input + ": no such file or folder");
      ++out.missing;
    }
  }
  return out;
}

Mesh load_mesh(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  if (bytes.empty()) throw Error(path, "empty file");
  // Magic bytes win over the extension: game archives often misname files.
  if (starts_with(bytes, "PSMD")) return readers::read_pmd(bytes, path);
  if (starts_with(bytes, "IDP2")) return readers::read_md2(bytes, path);
  if (starts_with(bytes, "G3D")) return readers::read_g3d(bytes, path);
  const std::string ext = lower_extension(path);
  if (ext == ".spm") return readers::read_spm(bytes, path);
  if (ext == ".pie" || starts_with(bytes, "PIE ")) return readers::read_pie(bytes, path);
  if (ext == ".obj") return readers::read_obj(bytes, path);
  if (ext == ".off" || starts_with(bytes, "OFF\n") || starts_with(bytes, "OFF\r") || starts_with(bytes, "OFF ")) {
    return readers::read_off(bytes, path);
  }
  if (ext == ".pmd" || ext == ".md2" || ext == ".g3d") {
    throw Error(path, "not a " + ext.substr(1) + " file (wrong magic bytes)");
  }
  if (std::find(kAssimpExtensions.begin(), kAssimpExtensions.end(), ext) == kAssimpExtensions.end()) {
    throw Error(path, "unknown mesh format '" + ext + "' (supported: see `iflame tokenize --help`)");
  }
  return readers::read_with_assimp(path);
}

}  // namespace iflame
