// Where the default model is looked for.
#include "util/default_model.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(DefaultModel, LooksBesideTheBuildInTheInstallPrefixAndInTheSourceTree) {
  ::unsetenv("IFLAME_MODEL");
  const ModelSearch search = find_default_model();
  const std::string file = std::string("models/") + kDefaultModelFile;
  const std::string bin = executable_dir();
  ASSERT_FALSE(bin.empty());
  EXPECT_TRUE(contains(search.tried, (fs::path(bin) / ".." / file).lexically_normal().string()));
  EXPECT_TRUE(contains(search.tried, (fs::path(bin) / ".." / "share/iflame" / file).lexically_normal().string()));
  EXPECT_TRUE(contains(search.tried, (fs::path(test::source_dir()) / file).lexically_normal().string()));
  if (!search.found.empty()) {
    EXPECT_TRUE(contains(search.tried, search.found));
  }
}

TEST(DefaultModel, IflameModelIsTheOnlyPlaceWhenSetAndItsAbsenceIsNamed) {
  const std::string dir = test::temp_dir();
  ::setenv("IFLAME_MODEL", (dir + "/m.safetensors").c_str(), 1);
  ModelSearch search = find_default_model();
  ASSERT_EQ(search.tried.size(), 1u);
  EXPECT_TRUE(search.found.empty());
  try {
    default_model_path();
    ADD_FAILURE() << "no error for a missing model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/m.safetensors"), std::string::npos) << e.what();
  }
  std::ofstream(dir + "/m.safetensors") << "x";
  EXPECT_EQ(default_model_path(), dir + "/m.safetensors");
  ::unsetenv("IFLAME_MODEL");
}

}  // namespace
}  // namespace iflame
