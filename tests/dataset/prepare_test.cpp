// `prepare`: collection, filters, dedup, group split, corrupt files, determinism, the report.
#include "dataset/prepare.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "dataset/dataset_test_util.h"
#include "mesh/load.h"
#include "test_paths.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::grid_mesh;
using test::random_mesh;
using test::write_obj;
using test::write_text;

PrepareOptions options_for(const std::string& dir, std::vector<std::string> inputs) {
  PrepareOptions o;
  o.inputs = std::move(inputs);
  o.out = dir + "/out/data.ifds";
  o.jobs = 2;
  o.progress = 0;
  return o;
}

std::map<std::string, DatasetMesh> by_name(const DatasetReader& r) {
  std::map<std::string, DatasetMesh> out;
  for (size_t i = 0; i < r.size(); ++i) out[std::string(r[i].name)] = r[i];
  return out;
}

// The skipped file entries of a report, by name.
std::map<std::string, json> skipped_by_name(const json& report) {
  std::map<std::string, json> out;
  for (const json& s : report.at("skipped_files")) out[s.at("name").get<std::string>()] = s;
  return out;
}

TEST(PrepareNames, GroupKeys) {
  EXPECT_EQ(group_key("shapenet/02691156/abc/models/model_normalized.obj", SplitBy::kDir), "shapenet/02691156/abc/models");
  EXPECT_EQ(group_key("mg/units/archmage/models/archmage_attack.g3d", SplitBy::kDir), "mg/units/archmage/models");
  EXPECT_EQ(group_key("flat/chair.obj", SplitBy::kDir), "flat/chair.obj");  // directly in its root: own group
  EXPECT_EQ(group_key("obj/mg__units__archmage__archmage_walk.obj", SplitBy::kDir), "obj/mg/units/archmage");
  EXPECT_EQ(group_key("mg/units/archmage/models/archmage_attack.g3d", SplitBy::kFile),
            "mg/units/archmage/models/archmage_attack.g3d");
  EXPECT_EQ(group_key("mg/units/archmage/models/archmage_attack.g3d", SplitBy::kStemPrefix),
            "mg/units/archmage/models/archmage");
  EXPECT_EQ(group_key("mg/units/archmage/models/Archmage2.g3d", SplitBy::kStemPrefix), "mg/units/archmage/models/archmage");
  EXPECT_EQ(group_key("flat/tree01.obj", SplitBy::kStemPrefix), "flat/tree");
  EXPECT_EQ(group_key("obj/mg__units__archmage__archmage_walk.obj", SplitBy::kStemPrefix), "obj/mg/units/archmage/archmage");
  // "__" only means a flattened folder in a flat folder, not deeper down.
  EXPECT_EQ(group_key("stk/library/fireworks/gfx_explosion__a_0.spm", SplitBy::kDir), "stk/library/fireworks");
  EXPECT_EQ(group_key("stk/library/fireworks/gfx_explosion__a_0.spm", SplitBy::kStemPrefix), "stk/library/fireworks/gfx");
  EXPECT_EQ(stem_prefix("archmage_attack"), "archmage");
  EXPECT_EQ(stem_prefix("Tree01"), "tree");
  EXPECT_EQ(stem_prefix("horse-walk"), "horse");
  EXPECT_EQ(stem_prefix("01_x"), "01_x");
  EXPECT_EQ(stem_prefix("stone"), "stone");
}

TEST(PrepareSplit, StableHashAndFractionRoughlyRespected) {
  // FNV-1a test vectors, then the fixed split of a few keys (must never change: datasets and
  // reports written today must split the same way tomorrow, on any platform).
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
  for (double fraction : {0.05, 0.2, 0.5}) {
    size_t val = 0;
    const size_t n = 20000;
    for (size_t i = 0; i < n; ++i) val += split_for_group("group/" + std::to_string(i), fraction) == Split::kVal;
    const double got = double(val) / double(n);
    EXPECT_NEAR(got, fraction, 0.01) << "fraction " << fraction;
  }
  EXPECT_EQ(split_for_group("anything", 0.0), Split::kTrain);
  EXPECT_EQ(split_for_group("anything", 1.0), Split::kVal);
}

TEST(Prepare, KeepsMeshesAndStoresBothForms) {
  const std::string dir = test::temp_dir();
  const Mesh a = grid_mesh(3, 1), b = random_mesh(2);
  write_obj(dir + "/in/a/one.obj", a);
  write_obj(dir + "/in/b/two.obj", b);
  write_text(dir + "/in/readme.md", "not a mesh");
  PrepareOptions o = options_for(dir, {dir + "/in"});
  const PrepareResult res = prepare_dataset(o);
  EXPECT_EQ(res.found, 2u);
  EXPECT_EQ(res.kept, 2u);
  DatasetReader r(o.out);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_NO_THROW(r.verify());
  const auto m = by_name(r);
  ASSERT_TRUE(m.count("in/a/one.obj"));
  const DatasetMesh one = m.at("in/a/one.obj");
  EXPECT_EQ(one.group, "in/a");
  EXPECT_EQ(one.source, "in");
  EXPECT_EQ(one.input_faces, a.faces.size());
  // Tokens = the canonical face rows of the loaded mesh.
  const std::vector<int32_t> rows = face_rows(canonicalize(load_mesh(dir + "/in/a/one.obj")));
  EXPECT_EQ(std::vector<int32_t>(one.tokens, one.tokens + one.num_tokens()), rows);
  // Geometry = normalize_mesh output in float32.
  const Mesh norm = normalize_mesh(load_mesh(dir + "/in/a/one.obj"));
  ASSERT_EQ(one.num_vertices, norm.vertices.size());
  for (size_t i = 0; i < norm.vertices.size(); ++i) {
    for (int k = 0; k < 3; ++k) EXPECT_EQ(one.vertices[3 * i + k], float(norm.vertices[i][k]));
  }
  EXPECT_EQ(one.num_triangles, a.faces.size());
  // Re-canonicalizing the stored float geometry gives the stored rows back (what validation
  // would otherwise recompute).
  EXPECT_EQ(face_rows(canonicalize(one.to_mesh())), rows);
  // Report basics.
  const json& rep = res.report;
  EXPECT_EQ(rep.at("kept").at("total"), 2);
  EXPECT_EQ(rep.at("skipped").at("total"), 0);
  EXPECT_EQ(rep.at("sources").at("in").at("kept"), 2);
  EXPECT_TRUE(fs::exists(o.out + ".report.json"));
  EXPECT_EQ(json::parse(read_file_text(o.out + ".report.json")).at("kept").at("total"), 2);
  EXPECT_NE(res.summary.find("2 kept"), std::string::npos) << res.summary;
}

TEST(Prepare, DeterministicBytesAcrossRunsAndJobCounts) {
  const std::string dir = test::temp_dir();
  for (int i = 0; i < 30; ++i) write_obj(dir + "/in/g" + std::to_string(i % 7) + "/m" + std::to_string(i) + ".obj", random_mesh(100 + i, 4 + i % 9));
  write_text(dir + "/in/g1/broken.obj", "v 1 2\nf 1 2 3\n");
  PrepareOptions o = options_for(dir, {dir + "/in"});
  o.val_fraction = 0.3;
  o.jobs = 1;
  o.out = dir + "/a.ifds";
  prepare_dataset(o);
  o.jobs = 4;
  o.out = dir + "/b.ifds";
  prepare_dataset(o);
  EXPECT_EQ(read_file_bytes(dir + "/a.ifds"), read_file_bytes(dir + "/b.ifds"));
  o.out = dir + "/c.ifds";
  prepare_dataset(o);
  EXPECT_EQ(read_file_bytes(dir + "/b.ifds"), read_file_bytes(dir + "/c.ifds"));
}

TEST(Prepare, SplitKeepsGroupsTogether) {
  const std::string dir = test::temp_dir();
  const int groups = 120;
  for (int g = 0; g < groups; ++g) {
    for (int k = 0; k < 2; ++k) write_obj(dir + "/in/obj" + std::to_string(g) + "/part" + std::to_string(k) + ".obj", random_mesh(g * 10 + k + 1));
  }
  PrepareOptions o = options_for(dir, {dir + "/in"});
  o.val_fraction = 0.25;
  const PrepareResult res = prepare_dataset(o);
  ASSERT_EQ(res.kept, size_t(2 * groups));
  DatasetReader r(o.out);
  std::map<std::string, std::set<Split>> splits;
  for (size_t i = 0; i < r.size(); ++i) splits[std::string(r[i].group)].insert(r[i].split);
  ASSERT_EQ(splits.size(), size_t(groups));
  size_t val_groups = 0;
  for (const auto& [group, s] : splits) {
    EXPECT_EQ(s.size(), 1u) << group << " straddles the split";
    val_groups += s.count(Split::kVal);
    EXPECT_EQ(*s.begin(), split_for_group(group, 0.25));
  }
  EXPECT_GT(val_groups, size_t(groups * 0.12));
  EXPECT_LT(val_groups, size_t(groups * 0.40));
  EXPECT_EQ(res.report.at("groups").at("val"), val_groups);
  EXPECT_EQ(r.num_val(), 2 * val_groups);

  // --split-by file: one group per file.
  o.split_by = SplitBy::kFile;
  prepare_dataset(o);
  DatasetReader rf(o.out);
  for (size_t i = 0; i < rf.size(); ++i) EXPECT_EQ(rf[i].group, rf[i].name);
}

TEST(Prepare, DropsExactDuplicatesKeepingTheFirst) {
  const std::string dir = test::temp_dir();
  const Mesh m = grid_mesh(4, 7);
  Mesh moved = m;  // scaled and shifted: identical after normalization and quantization
  for (Vec3& v : moved.vertices) v = {v[0] * 3 + 10, v[1] * 3 - 2, v[2] * 3 + 1};
  write_obj(dir + "/in/a/orig.obj", m);
  write_obj(dir + "/in/b/copy.obj", m);
  write_obj(dir + "/in/c/moved.obj", moved);
  write_obj(dir + "/in/d/other.obj", grid_mesh(4, 8));
  PrepareOptions o = options_for(dir, {dir + "/in"});
  const PrepareResult res = prepare_dataset(o);
  EXPECT_EQ(res.kept, 2u);
  const auto skipped = skipped_by_name(res.report);
  ASSERT_EQ(skipped.size(), 2u);
  for (const char* name : {"in/b/copy.obj", "in/c/moved.obj"}) {
    ASSERT_TRUE(skipped.count(name)) << name;
    EXPECT_EQ(skipped.at(name).at("reason"), "duplicate");
    EXPECT_EQ(skipped.at(name).at("duplicate_of"), "in/a/orig.obj");
  }
  EXPECT_EQ(res.report.at("skipped").at("duplicate"), 2);
  const DatasetReader reader(o.out);
  const auto kept = by_name(reader);
  EXPECT_TRUE(kept.count("in/a/orig.obj"));
  EXPECT_TRUE(kept.count("in/d/other.obj"));
}

TEST(Prepare, FiltersByCanonicalFaceCount) {
  const std::string dir = test::temp_dir();
  write_obj(dir + "/in/small/m.obj", grid_mesh(1, 1));    // 2 faces
  write_obj(dir + "/in/medium/m.obj", grid_mesh(3, 2));   // 18 faces
  write_obj(dir + "/in/large/m.obj", grid_mesh(10, 3));   // 200 faces
  // Collapses entirely: the unreferenced corners span the box, the triangle is tiny.
  write_text(dir + "/in/collapse/m.obj",
             "v 0 0 0\nv 1 1 1\nv 0.5 0.5 0.5\nv 0.500001 0.5 0.5\nv 0.5 0.500001 0.5\nf 3 4 5\n");
  PrepareOptions o = options_for(dir, {dir + "/in"});
  o.min_faces = 5;
  o.max_faces = 100;
  const PrepareResult res = prepare_dataset(o);
  EXPECT_EQ(res.kept, 1u);
  const auto skipped = skipped_by_name(res.report);
  EXPECT_EQ(skipped.at("in/small/m.obj").at("reason"), "too_few_faces");
  EXPECT_EQ(skipped.at("in/large/m.obj").at("reason"), "too_many_faces");
  EXPECT_NE(skipped.at("in/large/m.obj").at("detail").get<std::string>().find("200 faces"), std::string::npos);
  EXPECT_EQ(skipped.at("in/collapse/m.obj").at("reason"), "too_few_faces");
  EXPECT_NE(skipped.at("in/collapse/m.obj").at("detail").get<std::string>().find("no faces after quantization"),
            std::string::npos);
  DatasetReader r(o.out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].name, "in/medium/m.obj");
  EXPECT_EQ(r[0].num_faces, 18u);
  // Histogram and token stats describe the kept mesh.
  EXPECT_EQ(res.report.at("faces").at("max"), 18);
  EXPECT_EQ(res.report.at("tokens").at("max"), (18 + 2) * 9);
  EXPECT_EQ(res.report.at("face_histogram").at("bins").at(0).at("count"), 1);

  // The boundaries are inclusive.
  o.min_faces = 18;
  o.max_faces = 18;
  EXPECT_EQ(prepare_dataset(o).kept, 1u);
}

TEST(Prepare, CorruptFilesAreSkippedAndReported) {
  const std::string dir = test::temp_dir();
  for (int i = 0; i < 5; ++i) write_obj(dir + "/in/good" + std::to_string(i) + "/m.obj", random_mesh(500 + i));
  write_text(dir + "/in/bad/empty.obj", "");
  write_text(dir + "/in/bad/garbage.obj", std::string("\x01\x02\x00\xff garbage \x00\x7f", 16));
  write_text(dir + "/in/bad/nan.obj", "v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n");
  write_text(dir + "/in/bad/index.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n");
  write_text(dir + "/in/bad/point.obj", "v 1 1 1\nv 1 1 1\nv 1 1 1\nf 1 2 3\n");
  write_text(dir + "/in/bad/garbage.ply", "ply\nformat ascii 1.0\nelement vertex 5\nend_header\n1 2\n");
  write_text(dir + "/in/bad/garbage.pmd", std::string("PSMD\x03\x00\x00\x00\xff\xff", 10));
  write_text(dir + "/in/bad/garbage.glb", std::string("glTF\x02\x00\x00\x00 nonsense", 17));
  write_text(dir + "/in/bad/crash.md3", test::md3_bytes(true));  // segfaults Debian's assimp 5.2.5
  PrepareOptions o = options_for(dir, {dir + "/in"});
  const PrepareResult res = prepare_dataset(o);
  EXPECT_EQ(res.found, 14u);
  EXPECT_EQ(res.kept, 5u);
  const auto skipped = skipped_by_name(res.report);
  ASSERT_EQ(skipped.size(), 9u);
  EXPECT_EQ(skipped.at("in/bad/empty.obj").at("reason"), "zero_size");
  EXPECT_EQ(skipped.at("in/bad/point.obj").at("reason"), "zero_size");
  for (const char* name : {"in/bad/garbage.obj", "in/bad/nan.obj", "in/bad/index.obj", "in/bad/garbage.ply",
                           "in/bad/garbage.pmd", "in/bad/garbage.glb", "in/bad/crash.md3"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(skipped.count(name));
    EXPECT_EQ(skipped.at(name).at("reason"), "unreadable");
    EXPECT_FALSE(skipped.at(name).at("detail").get<std::string>().empty());
    EXPECT_EQ(skipped.at(name).at("file"), dir + "/in/bad/" + fs::path(name).filename().string());
  }
  EXPECT_NE(skipped.at("in/bad/nan.obj").at("detail").get<std::string>().find("non-finite"), std::string::npos);
  EXPECT_EQ(res.report.at("skipped").at("unreadable"), 7);
  EXPECT_EQ(res.report.at("skipped").at("zero_size"), 2);
  EXPECT_EQ(DatasetReader(o.out).size(), 5u);
}

TEST(Prepare, ListsDirectFilesAndSources) {
  const std::string dir = test::temp_dir();
  write_obj(dir + "/shapenet/02691156/aaa/models/model_normalized.obj", random_mesh(1));
  write_obj(dir + "/shapenet/02691156/bbb/models/model_normalized.obj", random_mesh(2));
  write_obj(dir + "/shapenet/03001627/ccc/models/model_normalized.obj", random_mesh(3));
  write_obj(dir + "/flat/mg__units__archer__archer_walk.obj", random_mesh(4));
  write_obj(dir + "/flat/deeper/gfx__not_a_prefix.obj", random_mesh(8));
  write_obj(dir + "/single/thing.obj", random_mesh(5));
  write_obj(dir + "/listed/x/one.obj", random_mesh(6));
  write_obj(dir + "/listed/y/two.weird", random_mesh(7));  // listed files are taken whatever the extension
  write_text(dir + "/listed/files.lst", "# a comment\n\nx/one.obj\n  y/two.weird  \r\n");
  PrepareOptions o = options_for(dir, {dir + "/shapenet", dir + "/flat", dir + "/single/thing.obj", dir + "/listed/files.lst"});
  // The same folder again through a second input must not count twice.
  o.inputs.push_back(dir + "/shapenet/03001627");
  const PrepareResult res = prepare_dataset(o);
  EXPECT_EQ(res.found, 8u);
  EXPECT_EQ(res.kept, 7u);  // two.weird: unknown format
  const DatasetReader reader(o.out);
  const auto m = by_name(reader);
  ASSERT_TRUE(m.count("shapenet/02691156/aaa/models/model_normalized.obj"));
  EXPECT_EQ(m.at("shapenet/02691156/aaa/models/model_normalized.obj").group, "shapenet/02691156/aaa/models");
  EXPECT_EQ(m.at("shapenet/02691156/aaa/models/model_normalized.obj").source, "shapenet");
  ASSERT_TRUE(m.count("flat/mg__units__archer__archer_walk.obj"));
  EXPECT_EQ(m.at("flat/mg__units__archer__archer_walk.obj").source, "mg");
  EXPECT_EQ(m.at("flat/mg__units__archer__archer_walk.obj").group, "flat/mg/units/archer");
  ASSERT_TRUE(m.count("flat/deeper/gfx__not_a_prefix.obj"));
  EXPECT_EQ(m.at("flat/deeper/gfx__not_a_prefix.obj").source, "flat");
  EXPECT_EQ(m.at("flat/deeper/gfx__not_a_prefix.obj").group, "flat/deeper");
  ASSERT_TRUE(m.count("single/thing.obj"));
  ASSERT_TRUE(m.count("listed/x/one.obj"));
  EXPECT_EQ(m.at("listed/x/one.obj").group, "listed/x");
  EXPECT_EQ(skipped_by_name(res.report).at("listed/y/two.weird").at("reason"), "unreadable");
  const json& inputs = res.report.at("inputs");
  ASSERT_EQ(inputs.size(), 5u);
  EXPECT_EQ(inputs[0].at("kind"), "dir");
  EXPECT_EQ(inputs[2].at("kind"), "file");
  EXPECT_EQ(inputs[3].at("kind"), "list");
  EXPECT_EQ(inputs[3].at("files"), 2);
  EXPECT_FALSE(res.report.at("warnings").empty());  // the overlapping input
  EXPECT_EQ(res.report.at("sources").at("shapenet").at("kept"), 3);
}

TEST(Prepare, RotatesZUpRoots) {
  const std::string dir = test::temp_dir();
  // Tall along z: a Z-up object. After rotation it is tall along y.
  Mesh m;
  m.vertices = {{0, 0, 0}, {0.2, 0, 0}, {0, 0.1, 0}, {0, 0, 1}};
  m.faces = {{0, 1, 2}, {0, 1, 3}, {0, 2, 3}, {1, 2, 3}};
  write_obj(dir + "/zup/a/m.obj", m);
  write_obj(dir + "/yup/a/m.obj", m);
  PrepareOptions o = options_for(dir, {dir + "/zup", dir + "/yup"});
  o.z_up = {dir + "/zup"};
  ASSERT_EQ(prepare_dataset(o).kept, 2u);
  const DatasetReader reader(o.out);
  const auto got = by_name(reader);
  auto extent = [](const DatasetMesh& d, int axis) {
    float lo = 1e9f, hi = -1e9f;
    for (size_t i = 0; i < d.num_vertices; ++i) {
      lo = std::min(lo, d.vertices[3 * i + axis]);
      hi = std::max(hi, d.vertices[3 * i + axis]);
    }
    return hi - lo;
  };
  const DatasetMesh z = got.at("zup/a/m.obj"), y = got.at("yup/a/m.obj");
  EXPECT_FLOAT_EQ(extent(y, 2), 1.0f);
  EXPECT_FLOAT_EQ(extent(z, 1), 1.0f);
  EXPECT_FLOAT_EQ(extent(z, 2), 0.1f);
  // (x, y, z) -> (x, z, -y): vertex 2 (0, 0.1, 0) ends at z = -0.1 relative to vertex 0.
  EXPECT_NEAR(z.vertices[3 * 2 + 2] - z.vertices[2], -0.1f, 1e-6);
}

TEST(Prepare, BadOptionsAndMissingInputsAreErrors) {
  const std::string dir = test::temp_dir();
  write_obj(dir + "/in/a.obj", random_mesh(1));
  PrepareOptions o = options_for(dir, {dir + "/missing"});
  EXPECT_THROW(prepare_dataset(o), Error);
  o = options_for(dir, {dir + "/in"});
  o.val_fraction = 1.5;
  EXPECT_THROW(prepare_dataset(o), Error);
  o = options_for(dir, {dir + "/in"});
  o.bits = 16;
  EXPECT_THROW(prepare_dataset(o), Error);
  fs::create_directories(dir + "/nothing");
  o = options_for(dir, {dir + "/nothing"});
  EXPECT_THROW(prepare_dataset(o), Error);
  EXPECT_THROW(parse_split_by("folder"), Error);
}

}  // namespace
}  // namespace iflame
