// `iflame prepare` as a user runs it: the built binary on a small folder, then the report.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "dataset/dataset_test_util.h"
#include "dataset/format.h"
#include "test_paths.h"
#include "util/fs.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test::CliRun;
CliRun run(const std::string& args) { return test::run_iflame(args); }

void require_binary() {
  if (!fs::exists(test::iflame_binary())) GTEST_SKIP() << "the iflame binary is not built: " << test::iflame_binary();
}

TEST(PrepareCli, BuildsDatasetAndReport) {
  require_binary();
  if (testing::Test::IsSkipped()) return;
  const std::string dir = test::temp_dir();
  for (int i = 0; i < 6; ++i) test::write_obj(dir + "/meshes/obj" + std::to_string(i) + "/m.obj", test::random_mesh(40 + i));
  test::write_obj(dir + "/meshes/big/m.obj", test::grid_mesh(10, 1));  // 200 faces
  test::write_text(dir + "/meshes/bad/broken.obj", "v 0 0 0\nf 1 2 3\n");
  const std::string out = dir + "/data.ifds", report = dir + "/rep.json";
  const CliRun r = run("prepare --input '" + dir + "/meshes' --out '" + out + "' --max-faces 100 --val-fraction 0.5 --jobs 2 --report '" +
                    report + "'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("6 kept"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 skipped"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\r'), std::string::npos) << "progress bar drawn on a pipe: " << r.out;

  const json rep = json::parse(read_file_text(report));
  EXPECT_EQ(rep.at("files_found"), 8);
  EXPECT_EQ(rep.at("kept").at("total"), 6);
  EXPECT_EQ(rep.at("kept").at("train").get<int>() + rep.at("kept").at("val").get<int>(), 6);
  EXPECT_EQ(rep.at("skipped").at("too_many_faces"), 1);
  EXPECT_EQ(rep.at("skipped").at("unreadable"), 1);
  ASSERT_EQ(rep.at("skipped_files").size(), 2u);
  EXPECT_EQ(rep.at("sources").at("meshes").at("found"), 8);
  EXPECT_TRUE(rep.at("face_histogram").at("bins").is_array());
  EXPECT_GT(rep.at("tokens").at("mean").get<double>(), 0.0);
  EXPECT_GT(rep.at("wall_time_s").get<double>(), 0.0);
  EXPECT_GT(rep.at("meshes_per_s").get<double>(), 0.0);
  EXPECT_EQ(rep.at("options").at("max_faces"), 100);
  EXPECT_EQ(DatasetReader(out).size(), 6u);
}

TEST(PrepareCli, HelpAndUsageErrors) {
  require_binary();
  if (testing::Test::IsSkipped()) return;
  const CliRun help = run("prepare --help");
  EXPECT_EQ(help.code, 0);
  for (const char* word : {"--input", "--out", "--max-faces", "--min-faces", "--val-fraction", "--bits", "--jobs", "--z-up",
                           "--report", "--split-by", "stem-prefix", "duplicate", "IFLMDSET"}) {
    EXPECT_NE(help.out.find(word), std::string::npos) << word;
  }
  const std::string dir = test::temp_dir();
  const CliRun missing = run("prepare --input '" + dir + "/missing' --out '" + dir + "/x.ifds'");
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("/missing: no such file or directory"), std::string::npos) << missing.out;
  // Only corrupt files: the dataset and report are written, the exit code says nothing was kept.
  test::write_text(dir + "/bad/a.obj", "garbage");
  const CliRun none = run("prepare --input '" + dir + "/bad' --out '" + dir + "/x.ifds'");
  EXPECT_EQ(none.code, 1) << none.out;
  EXPECT_TRUE(fs::exists(dir + "/x.ifds.report.json"));
}

TEST(PrepareCli, AnExistingDatasetIsReplacedOnlyWithOverwrite) {
  require_binary();
  if (testing::Test::IsSkipped()) return;
  const std::string dir = test::temp_dir();
  for (int i = 0; i < 3; ++i) test::write_obj(dir + "/a/obj" + std::to_string(i) + "/m.obj", test::random_mesh(30 + i));
  for (int i = 0; i < 5; ++i) test::write_obj(dir + "/b/obj" + std::to_string(i) + "/m.obj", test::random_mesh(50 + i));
  const std::string out = dir + "/data.ifds";
  ASSERT_EQ(run("prepare --input '" + dir + "/a' --out '" + out + "' --jobs 1").code, 0);
  ASSERT_EQ(DatasetReader(out).size(), 3u);

  const CliRun refused = run("prepare --input '" + dir + "/b' --out '" + out + "' --jobs 1");
  EXPECT_EQ(refused.code, 1) << refused.out;
  EXPECT_NE(refused.out.find(out + ": exists already"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("--overwrite"), std::string::npos) << refused.out;
  EXPECT_EQ(DatasetReader(out).size(), 3u) << "the refused run changed the dataset";

  const CliRun replaced = run("prepare --input '" + dir + "/b' --out '" + out + "' --jobs 1 --overwrite");
  ASSERT_EQ(replaced.code, 0) << replaced.out;
  EXPECT_EQ(DatasetReader(out).size(), 5u);
}

}  // namespace
}  // namespace iflame
