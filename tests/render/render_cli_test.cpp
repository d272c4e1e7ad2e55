// `iflame render` as a user runs it: one mesh, a folder with a broken file, and a training log.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>

#include "render/png.h"
#include "test_paths.h"
#include "util/fs.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;

using test::CliRun;
CliRun run(const std::string& args) { return test::run_iflame(args); }

const char* kCube =
    "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nv 0 0 1\nv 1 0 1\nv 0 1 1\nv 1 1 1\n"
    "f 1 3 4 2\nf 5 6 8 7\nf 1 2 6 5\nf 3 7 8 4\nf 1 5 7 3\nf 2 4 8 6\n";

render::Image read_png(const std::string& path) { return render::decode_png(read_file_bytes(path), path); }

// Slow: each run of the binary loads LibTorch (a few seconds on a busy machine).
TEST(RenderCliSlow, ViewsGridAndCurve) {
  if (!fs::exists(test::iflame_binary())) GTEST_SKIP() << "the iflame binary is not built: " << test::iflame_binary();
  const std::string dir = test::temp_dir();
  fs::create_directories(dir + "/meshes/sub");
  write_file_atomic(dir + "/meshes/cube.obj", kCube);
  write_file_atomic(dir + "/meshes/sub/cube2.obj", kCube);
  write_file_atomic(dir + "/meshes/sub/broken.obj", "v 0 0 0\nf 1 2 3\n");

  // One mesh: its views side by side.
  CliRun r = run("render '" + dir + "/meshes/cube.obj' --out '" + dir + "/one.png' --size 48 --views 2");
  ASSERT_EQ(r.code, 0) << r.out;
  render::Image img = read_png(dir + "/one.png");
  EXPECT_EQ(img.width, 96);
  EXPECT_EQ(img.height, 48);

  // A folder: a grid of the readable meshes; the broken one is named and skipped.
  r = run("render '" + dir + "/meshes' --out '" + dir + "/grid.png' --size 40 --grid 3");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("broken.obj"), std::string::npos) << r.out;
  img = read_png(dir + "/grid.png");
  EXPECT_EQ(img.width, 2 * 40);  // 2 meshes: no wider than that
  EXPECT_GT(img.height, 40);     // plus captions

  // A path that does not exist is named and counted as skipped; the rest is drawn.
  r = run("render '" + dir + "/meshes/cube.obj' '" + dir + "/nothing.obj' --out '" + dir + "/two.png' --size 40");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(dir + "/nothing.obj: no such file or folder"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 input skipped"), std::string::npos) << r.out;

  // Nothing readable: an error naming the file, exit code 1, no crash.
  r = run("render '" + dir + "/meshes/sub/broken.obj' --out '" + dir + "/none.png'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("broken.obj"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir + "/none.png"));

  // A training log.
  write_file_atomic(dir + "/log.jsonl", "{\"step\": 0, \"loss\": 3}\n{\"step\": 5, \"loss\": 2, \"val_loss\": 2.5}\n{\"step\": 9, \"loss\": 1}\n");
  r = run("render --curve '" + dir + "/log.jsonl' --out '" + dir + "/curve.png' --keys loss,val_loss --width 300 --height 200 --log-y");
  ASSERT_EQ(r.code, 0) << r.out;
  img = read_png(dir + "/curve.png");
  EXPECT_EQ(img.width, 300);
  EXPECT_EQ(img.height, 200);

  r = run("render --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--curve"), std::string::npos);
  EXPECT_NE(run("render '" + dir + "/meshes/cube.obj'").code, 0);  // --out is required
}

}  // namespace
}  // namespace iflame
