// The library's layering (README, "Layout"): a file under src/ includes only from its own folder
// or from folders below it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>

#include "test_paths.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;

// Folder -> layer, bottom (0) to top; folders of one layer may include each other.
const std::map<std::string, int> kLayers = {
    {"util", 0},     {"mesh", 1},     {"io", 1},      {"tokenizer", 2}, {"render", 2}, {"kernels", 2},
    {"dataset", 3},  {"model", 3},    {"generate", 4}, {"eval", 4},     {"view", 4},
    {"serve", 5},    {"train", 6},    {"bench", 7},   {"cli", 8},
};

TEST(Layering, NoFileIncludesFromAFolderAboveItsOwn) {
  const fs::path src = fs::path(test::source_dir()) / "src";
  const std::regex include_re("^#include \"([a-z_]+)/[^\"]+\"");
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(src)) {
    if (!entry.is_regular_file()) continue;
    const std::string ext = entry.path().extension().string();
    if (ext != ".h" && ext != ".cpp") continue;
    const std::string folder = fs::relative(entry.path(), src).begin()->string();
    auto own = kLayers.find(folder);
    ASSERT_NE(own, kLayers.end()) << "src/" << folder << "/ has no layer: add it here and to the README";
    ++files;
    std::ifstream in(entry.path());
    std::smatch m;
    for (std::string line; std::getline(in, line);) {
      if (!std::regex_search(line, m, include_re)) continue;
      auto used = kLayers.find(m[1].str());
      if (used == kLayers.end() || used->second <= own->second) continue;
      ADD_FAILURE() << fs::relative(entry.path(), src).string() << " (" << folder << ", layer " << own->second
                    << ") includes " << m[1].str() << "/ (layer " << used->second << "): " << line;
    }
  }
  EXPECT_GT(files, 100u);
}

}  // namespace
}  // namespace iflame
