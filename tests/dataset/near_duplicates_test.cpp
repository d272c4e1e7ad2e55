// Near-duplicate removal: the close pairs (blocked), the greedy pass, and `prepare` using both.
#include "dataset/near_duplicates.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "dataset/dataset_test_util.h"
#include "dataset/format.h"
#include "dataset/prepare.h"
#include "mesh/chamfer.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

using nlohmann::json;

// The surface of the box [0, sx] x [0, sy] x [0, sz], each side cut into n x n quads.
Mesh box_mesh(int n, double sx = 1, double sy = 1, double sz = 1) {
  Mesh m;
  auto quad = [&](Vec3 o, Vec3 u, Vec3 v) {
    const int32_t base = int32_t(m.vertices.size());
    for (int i = 0; i <= n; ++i) {
      for (int j = 0; j <= n; ++j) {
        const double a = double(i) / n, b = double(j) / n;
        m.vertices.push_back({(o[0] + a * u[0] + b * v[0]) * sx, (o[1] + a * u[1] + b * v[1]) * sy,
                              (o[2] + a * u[2] + b * v[2]) * sz});
      }
    }
    auto id = [&](int i, int j) { return base + int32_t(i * (n + 1) + j); };
    for (int i = 0; i < n; ++i) {
      for (int j = 0; j < n; ++j) {
        m.faces.push_back({id(i, j), id(i + 1, j), id(i + 1, j + 1)});
        m.faces.push_back({id(i, j), id(i + 1, j + 1), id(i, j + 1)});
      }
    }
  };
  quad({0, 0, 0}, {1, 0, 0}, {0, 1, 0});
  quad({0, 0, 1}, {0, 1, 0}, {1, 0, 0});
  quad({0, 0, 0}, {0, 0, 1}, {1, 0, 0});
  quad({0, 1, 0}, {1, 0, 0}, {0, 0, 1});
  quad({0, 0, 0}, {0, 1, 0}, {0, 0, 1});
  quad({1, 0, 0}, {0, 0, 1}, {0, 1, 0});
  return m;
}

PointCloud random_cloud(uint64_t seed, float shift) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  PointCloud c(64);
  for (auto& p : c) p = {u(rng) + shift, u(rng), u(rng)};
  return c;
}

TEST(NearDuplicates, ClosePairsAreTheSameForAnyBlockSize) {
  std::vector<PointCloud> clouds;
  for (uint64_t s = 0; s < 7; ++s) clouds.push_back(random_cloud(s % 3, float(s / 3) * 0.004f));
  NearDuplicateOptions o;
  o.max_excess = 1e-3;
  o.block = 256;
  const auto whole = close_pairs(clouds, {}, o);
  const DistanceMatrix d = self_chamfer(clouds);
  size_t expected = 0;
  for (size_t i = 0; i < clouds.size(); ++i) {
    for (size_t j = i + 1; j < clouds.size(); ++j) expected += d.at(i, j) < o.max_excess;
  }
  ASSERT_GT(expected, 0u);
  ASSERT_LT(expected, 21u);  // some pairs are far apart
  ASSERT_EQ(whole.size(), expected);
  for (size_t block : {size_t(1), size_t(2), size_t(3)}) {
    o.block = block;
    const auto blocked = close_pairs(clouds, {}, o);
    ASSERT_EQ(blocked.size(), whole.size()) << "block " << block;
    for (size_t k = 0; k < whole.size(); ++k) {
      EXPECT_EQ(blocked[k].i, whole[k].i);
      EXPECT_EQ(blocked[k].j, whole[k].j);
      EXPECT_LT(blocked[k].i, blocked[k].j);
      EXPECT_NEAR(blocked[k].distance, d.at(blocked[k].i, blocked[k].j), 1e-9);
    }
  }
  // Floors move the threshold: with every floor at 1 every pair's excess is below it.
  const std::vector<double> floors(clouds.size(), 1.0);
  const auto with_floors = close_pairs(clouds, floors, o);
  EXPECT_EQ(with_floors.size(), 21u);
  for (const ClosePair& p : with_floors) EXPECT_NEAR(p.excess, p.distance - 1.0, 1e-12);
  EXPECT_THROW(close_pairs(clouds, {1.0}, o), Error);
  o.max_excess = 0;
  EXPECT_THROW(close_pairs(clouds, {}, o), Error);
}

TEST(NearDuplicates, TheFloorOfASurfaceShrinksWithMorePoints) {
  const Mesh box = box_mesh(2);
  const double f512 = sampling_floor(sample_normalized(box, 512, 1), sample_normalized(box, 512, 2));
  const double f2048 = sampling_floor(sample_normalized(box, 2048, 1), sample_normalized(box, 2048, 2));
  EXPECT_GT(f512, 0.004);  // about 0.008: area 6 over 512 points
  EXPECT_LT(f512, 0.016);
  EXPECT_NEAR(f2048 / f512, 0.25, 0.08);  // the floor scales as area / points
}

TEST(NearDuplicates, GreedyKeepsNoCloseKeptPairAndNeverDropsAChain) {
  // 0 ~ 1 ~ 2 (a chain: 0 and 2 are far apart), 3 ~ 0, 4 alone.
  const std::vector<ClosePair> pairs = {{0, 1, 0.3, 0.2}, {1, 2, 0.3, 0.2}, {0, 3, 0.2, 0.1}, {1, 3, 0.1, 0.05}};
  const auto removed = greedy_near_duplicates(5, {0, 1, 2, 3, 4}, pairs);
  ASSERT_EQ(removed.size(), 2u);
  EXPECT_EQ(removed[0].index, 1u);
  EXPECT_EQ(removed[0].kept, 0u);
  EXPECT_EQ(removed[1].index, 3u);  // close to 0 (kept) and to 1 (removed): names 0
  EXPECT_EQ(removed[1].kept, 0u);
  EXPECT_DOUBLE_EQ(removed[1].distance, 0.2);
  EXPECT_DOUBLE_EQ(removed[1].excess, 0.1);

  // Another priority order keeps 1 and drops 0, 2 and 3, each naming 1.
  const auto other = greedy_near_duplicates(5, {1, 0, 2, 3, 4}, pairs);
  ASSERT_EQ(other.size(), 3u);
  for (const NearDuplicate& r : other) EXPECT_EQ(r.kept, 1u);

  EXPECT_THROW(greedy_near_duplicates(3, {0, 1}, {}), Error);
  EXPECT_THROW(greedy_near_duplicates(3, {0, 1, 1}, {}), Error);
  EXPECT_TRUE(greedy_near_duplicates(3, {2, 0, 1}, {}).empty());
  EXPECT_THROW(greedy_near_duplicates(3, {2, 0, 1}, {{0, 5, 0.1, 0.1}}), Error);
}

TEST(NearDuplicates, PrepareDropsLevelOfDetailCopiesAndKeepsTheFinest) {
  const std::string dir = test::temp_dir();
  test::write_obj(dir + "/in/a/box_lod0.obj", box_mesh(4));          // 192 faces: kept
  test::write_obj(dir + "/in/b/box_lod1.obj", box_mesh(2));          // 48 faces, same surface
  test::write_obj(dir + "/in/c/box_tall.obj", box_mesh(3, 1, 1.02, 1));  // 2% taller: still a copy
  test::write_obj(dir + "/in/d/slab.obj", box_mesh(3, 1, 0.1, 1));       // a different shape
  test::write_obj(dir + "/in/e/terrain.obj", test::grid_mesh(8, 3));
  PrepareOptions o;
  o.inputs = {dir + "/in"};
  o.out = dir + "/out/data.ifds";
  o.jobs = 2;
  o.progress = 0;

  const PrepareResult off = prepare_dataset(o);
  EXPECT_EQ(off.kept, 5u);

  o.near_dup = 0.001;  // the corpus default; the boxes' floors (~0.008 at 512 points) allow 0.4 x that
  const PrepareResult on = prepare_dataset(o);
  EXPECT_EQ(on.kept, 3u);
  EXPECT_EQ(on.report.at("skipped").at("near_duplicate"), 2);
  std::map<std::string, json> skipped;
  for (const json& s : on.report.at("skipped_files")) skipped[s.at("name").get<std::string>()] = s;
  for (const char* name : {"in/b/box_lod1.obj", "in/c/box_tall.obj"}) {
    ASSERT_TRUE(skipped.count(name)) << name;
    EXPECT_EQ(skipped.at(name).at("reason"), "near_duplicate");
    EXPECT_EQ(skipped.at(name).at("duplicate_of"), "in/a/box_lod0.obj");
  }
  const DatasetReader reader(o.out);
  ASSERT_EQ(reader.size(), 3u);
  EXPECT_EQ(on.report.at("options").at("near_dup"), 0.001);

  o.near_dup = -1;
  EXPECT_THROW(prepare_dataset(o), Error);
  o.near_dup = 1e-3;
  o.near_dup_points = 4;
  EXPECT_THROW(prepare_dataset(o), Error);
}

}  // namespace
}  // namespace iflame
