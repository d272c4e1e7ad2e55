// `iflame view` as a user runs it: a folder with broken files, a missing viewer bundle, --help.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "test_paths.h"
#include "util/fs.h"
#include "view_test_util.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;
using test::CliRun;

// Slow: each run of the binary loads LibTorch (a few seconds on a busy machine).
TEST(ViewCliSlow, GalleryFromAFolderAndAMissingViewer) {
  if (!fs::exists(test::iflame_binary())) GTEST_SKIP() << "the iflame binary is not built: " << test::iflame_binary();
  const std::string dir = test::temp_dir();
  const std::string meshes = view_test::write_mesh_folder(dir);
  fs::create_directories(dir + "/web/dist");
  write_file_atomic(dir + "/web/dist/iflame-viewer.js", "/* viewer */\n");

  // Readable meshes on the page; each unreadable file named on stderr; exit code 0.
  CliRun r = test::run_iflame("view '" + meshes + "' --out '" + dir + "/out' --assets '" + dir + "/web' --limit 0");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("skipping " + meshes + "/broken.obj: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("skipping " + meshes + "/sub/garbage.ply: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote " + dir + "/out/index.html: 2 meshes, 2 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("open file:///"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(dir + "/out/iflame-viewer.js"));
  EXPECT_TRUE(fs::exists(dir + "/out/meshes/0001.js"));
  EXPECT_FALSE(fs::exists(dir + "/out/meshes/0002.js"));

  // --limit
  r = test::run_iflame("view '" + meshes + "' --out '" + dir + "/one' --assets '" + dir + "/web' --limit 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("1 mesh, 3 more not shown (--limit 1)"), std::string::npos) << r.out;

  // No viewer bundle: the missing file and the fix, before any output is written.
  r = test::run_iflame("view '" + meshes + "' --out '" + dir + "/none' --assets '" + dir + "/meshes'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find(meshes + "/dist/iflame-viewer.js"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("run scripts/setup.sh"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir + "/none"));

  // Nothing readable: exit code 1 naming the problem.
  r = test::run_iflame("view '" + meshes + "/broken.obj' --out '" + dir + "/bad' --assets '" + dir + "/web'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("broken.obj"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no mesh could be loaded"), std::string::npos) << r.out;

  r = test::run_iflame("view --help");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("--limit"), std::string::npos) << r.out;
  EXPECT_NE(test::run_iflame("view --out '" + dir + "/x'").code, 0);  // no input
}

}  // namespace
}  // namespace iflame
