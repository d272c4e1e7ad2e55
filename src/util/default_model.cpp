#include "util/default_model.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "util/error.h"

namespace iflame {

namespace fs = std::filesystem;

std::string executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

ModelSearch find_default_model() {
  ModelSearch search;
  auto try_path = [&](const fs::path& path) {
    search.tried.push_back(path.lexically_normal().string());
    std::error_code ec;
    if (search.found.empty() && fs::is_regular_file(path, ec)) search.found = search.tried.back();
  };
  if (const char* env = std::getenv("IFLAME_MODEL"); env && *env) {
    try_path(env);  // an explicit choice: no fallback to another model
    return search;
  }
  const fs::path models = fs::path("models") / kDefaultModelFile;
  const fs::path share = fs::path("share") / "iflame" / models;
  if (const std::string bin = executable_dir(); !bin.empty()) {
    try_path(fs::path(bin) / ".." / models);  // a build folder inside the source tree
    try_path(fs::path(bin) / models);
    try_path(fs::path(bin) / ".." / share);  // cmake --install --prefix P: P/bin, P/share/iflame
  }
#ifdef IFLAME_INSTALL_PREFIX
  try_path(fs::path(IFLAME_INSTALL_PREFIX) / share);
#endif
#ifdef IFLAME_SOURCE_DIR
  try_path(fs::path(IFLAME_SOURCE_DIR) / models);  // a build folder anywhere else
#endif
  return search;
}

std::string default_model_path() {
  const ModelSearch search = find_default_model();
  if (!search.found.empty()) return search.found;
  std::string where;
  for (const std::string& p : search.tried) where += "\n  " + p;
  const bool from_env = std::getenv("IFLAME_MODEL") && *std::getenv("IFLAME_MODEL");
  throw Error(std::string("no default model: ") +
              (from_env ? "IFLAME_MODEL names a file that does not exist:" : "none of these exists:") + where +
              "\nPass --weights W.safetensors, set IFLAME_MODEL, or train one with scripts/train.sh.");
}

}  // namespace iflame
