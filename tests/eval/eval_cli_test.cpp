// `iflame eval` end to end: folders and a dataset split as references, unreadable files
// reported by name and skipped, the JSON report.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "dataset/dataset_test_util.h"
#include "dataset/format.h"
#include "eval/eval_test_util.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"

namespace iflame {
namespace {

// Boxes of distinct proportions: distinct shapes after normalization.
std::vector<Mesh> boxes() {
  return {test::cube_mesh(1, 1, 1), test::cube_mesh(1, 2, 3), test::cube_mesh(3, 1, 0.2), test::cube_mesh(1, 4, 1),
          test::cube_mesh(0.1, 1, 1)};
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST(EvalCli, FoldersWithAnUnreadableFile) {
  const std::string dir = test::temp_dir();
  const auto shapes = boxes();
  for (size_t i = 0; i < shapes.size(); ++i) {
    test::write_obj(dir + "/samples/s" + std::to_string(i) + ".obj", shapes[i]);
    test::write_obj(dir + "/refs/r" + std::to_string(i) + ".obj", shapes[i]);
  }
  test::write_text(dir + "/samples/zz_broken.obj", "v 1 2\nf 1 2 3\n");
  const auto r = test::run_iflame("eval --samples '" + dir + "/samples' --reference '" + dir +
                                  "/refs' --points 256 --seed 3 --threads 2 --json '" + dir + "/eval.json'");
  ASSERT_EQ(r.code, 0) << r.out;
  const size_t skip = r.out.find("samples: skipping ");
  ASSERT_NE(skip, std::string::npos) << r.out;
  EXPECT_NE(r.out.substr(skip, r.out.find('\n', skip) - skip).find("zz_broken.obj"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("COV"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1-NNA"), std::string::npos) << r.out;
  const auto j = read_json(dir + "/eval.json");
  EXPECT_EQ(j["samples"]["inputs"], 6);
  EXPECT_EQ(j["samples"]["failed"], 1);
  EXPECT_EQ(j["samples"]["usable"], 5);
  EXPECT_EQ(j["samples"]["watertight_share"], 1.0);
  ASSERT_EQ(j["samples"]["failed_files"].size(), 1u);
  EXPECT_EQ(j["samples"]["failed_files"][0]["name"], "zz_broken.obj");
  EXPECT_EQ(j["references"]["usable"], 5);
  const auto& m = j["metrics"];
  EXPECT_EQ(m["samples"], 5);
  EXPECT_EQ(m["references"], 5);
  // The same five shapes, sampled with different points: every reference is covered, and each
  // cloud's nearest neighbour is the same shape in the other set.
  EXPECT_DOUBLE_EQ(m["cov"].get<double>(), 1.0);
  EXPECT_LT(m["mmd"].get<double>(), 0.01);
  EXPECT_DOUBLE_EQ(m["nna"].get<double>(), 0.0);
  EXPECT_GT(m["jsd"].get<double>(), 0.0);  // 5 x 256 points over ~11k grid cells: far above the floor
}

// The five boxes as a dataset: box0..box2 in val, box3 and box4 in train.
std::string boxes_dataset(const std::string& dir) {
  const auto shapes = boxes();
  std::vector<DatasetEntry> entries;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const Mesh n = normalize_mesh(shapes[i]);
    DatasetEntry e;
    e.name = "box" + std::to_string(i) + ".obj";
    e.group = e.name;
    e.source = "test";
    e.split = i < 3 ? Split::kVal : Split::kTrain;
    for (const Vec3& v : n.vertices) e.vertices.insert(e.vertices.end(), {float(v[0]), float(v[1]), float(v[2])});
    for (const Tri& f : n.faces) e.triangles.insert(e.triangles.end(), f.begin(), f.end());
    for (int32_t t : face_rows(canonicalize(shapes[i]))) e.tokens.push_back(uint16_t(t));
    e.input_faces = uint32_t(n.faces.size());
    entries.push_back(std::move(e));
  }
  write_dataset(dir + "/data.ifds", entries, 7, "{}");
  return dir + "/data.ifds";
}

TEST(EvalCli, DatasetSplitAsReference) {
  const std::string dir = test::temp_dir();
  const auto shapes = boxes();
  boxes_dataset(dir);
  for (size_t i = 0; i < shapes.size(); ++i) test::write_obj(dir + "/samples/s" + std::to_string(i) + ".obj", shapes[i]);
  for (const std::string geometry : {"tokens", "float"}) {
    const auto r = test::run_iflame("eval --samples '" + dir + "/samples' --reference '" + dir +
                                    "/data.ifds' --points 128 --reference-geometry " + geometry + " --json '" + dir +
                                    "/eval.json'");
    ASSERT_EQ(r.code, 0) << r.out;
    const auto j = read_json(dir + "/eval.json");
    EXPECT_EQ(j["references"]["inputs"], 3) << "the val split";
    EXPECT_EQ(j["metrics"]["samples"], 5);
    EXPECT_DOUBLE_EQ(j["metrics"]["cov"].get<double>(), 1.0) << geometry;
  }
  const auto train = test::run_iflame("eval --samples '" + dir + "/samples' --reference '" + dir +
                                      "/data.ifds' --split train --limit 1 --points 64 --json '" + dir + "/t.json'");
  ASSERT_EQ(train.code, 0) << train.out;
  EXPECT_EQ(read_json(dir + "/t.json")["references"]["inputs"], 1);
  EXPECT_EQ(read_json(dir + "/t.json")["samples"]["inputs"], 1);
}

// The ceiling of the metrics: training meshes scored as if generated, as many as references.
TEST(EvalCli, DatasetSplitAsSamplesWithARandomSubset) {
  const std::string dir = test::temp_dir();
  const std::string data = boxes_dataset(dir);
  const auto r = test::run_iflame("eval --samples '" + data + "' --samples-split val --reference '" + data +
                                  "' --split train --limit 2 --subset random --seed 5 --points 64 --json '" + dir +
                                  "/e.json'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("val split, a random 2"), std::string::npos) << r.out;
  const auto j = read_json(dir + "/e.json");
  EXPECT_EQ(j["metrics"]["samples"], 2);
  EXPECT_EQ(j["metrics"]["references"], 2);
  EXPECT_EQ(j["settings"]["subset"], "random");
  // Face-count histograms in bins of 50: every box has 12 faces.
  EXPECT_EQ(j["samples"]["face_histogram"]["bin"], 50);
  EXPECT_EQ(j["samples"]["face_histogram"]["counts"], nlohmann::json::array({2}));
}

TEST(EvalCli, NearestTrainingMeshOfEachSampleAndItsPicture) {
  const std::string dir = test::temp_dir();
  const std::string data = boxes_dataset(dir);
  const auto shapes = boxes();
  test::write_obj(dir + "/samples/a.obj", shapes[3]);  // copies training box3
  test::write_obj(dir + "/samples/b.obj", shapes[0]);  // a validation shape: not in train
  test::write_text(dir + "/samples/summary.json",
                   R"({"samples": [{"index": 0, "finished": "eos"}, {"index": 1, "finished": "max_faces"}]})");
  const auto r = test::run_iflame("eval --samples '" + dir + "/samples' --reference '" + data + "' --nearest '" + data +
                                  "' --nearest-image '" + dir + "/n.png' --points 256 --json '" + dir + "/e.json'");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("novelty"), std::string::npos) << r.out;
  const auto j = read_json(dir + "/e.json");
  const auto& near = j["nearest"]["samples"];
  ASSERT_EQ(near.size(), 2u);
  EXPECT_EQ(near[0]["sample"], "a.obj");
  EXPECT_EQ(near[0]["nearest"], "box3.obj");
  EXPECT_LT(near[0]["chamfer"].get<double>(), 0.005);  // a copy: only the sampling floor
  EXPECT_GT(near[1]["chamfer"].get<double>(), near[0]["chamfer"].get<double>() * 3);
  EXPECT_EQ(j["nearest"]["pool_meshes"], 2);  // the train split
  EXPECT_EQ(j["samples"]["finished"]["eos"], 1);
  EXPECT_EQ(j["samples"]["finished"]["max_faces"], 1);
  EXPECT_TRUE(std::ifstream(dir + "/n.png").good());
  // --nearest takes a dataset; --nearest-image needs --nearest.
  EXPECT_EQ(test::run_iflame("eval --samples '" + dir + "/samples' --reference '" + data + "' --nearest '" + dir +
                             "/samples'").code, 1);
  EXPECT_EQ(test::run_iflame("eval --samples '" + dir + "/samples' --reference '" + data + "' --nearest-image x.png").code,
            1);
}

TEST(EvalCli, UsageErrors) {
  const std::string dir = test::temp_dir();
  EXPECT_NE(test::run_iflame("eval").code, 0);
  EXPECT_NE(test::run_iflame("eval --samples '" + dir + "'").code, 0);
  const auto r = test::run_iflame("eval --samples '" + dir + "' --reference '" + dir + "'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("no mesh files"), std::string::npos) << r.out;
  EXPECT_EQ(test::run_iflame("eval --help").code, 0);
}

}  // namespace
}  // namespace iflame
