// `iflame sample` as a user runs it: options out of range, what ended each sample, the grid
// order, sampling defaults from a model's metadata, and finding the default model.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "generate/sampler.h"
#include "io/safetensors.h"
#include "mesh/load.h"
#include "test_paths.h"

namespace iflame {
namespace {

using nlohmann::json;

std::string reference_weights() { return test::reference_dir() + "/weights.safetensors"; }

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Sets an environment variable for one scope (the CLI runs as a child and inherits it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_, old_.c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

// Options out of range, each with the option its error must name.
std::vector<std::pair<std::string, std::string>> out_of_range_options() {
  return {
      {"--temperature -1", "--temperature"}, {"--temperature 0", "--temperature"},
      {"--temperature nan", "--temperature"}, {"--temperature inf", "--temperature"},
      {"--top-p 1.5", "--top-p"},            {"--top-p 0", "--top-p"},
      {"--top-p -0.1", "--top-p"},           {"--top-k -1", "--top-k"},
      {"--min-p 1", "--min-p"},              {"--min-p -0.01", "--min-p"},
      {"--min-p nan", "--min-p"},
      {"--top-k 100000", "--top-k"},         {"--max-faces 0", "--max-faces"},
      {"--max-faces 100000000", "--max-faces"}, {"--n 0", "--n"},
      {"--batch -2", "--batch"},             {"--max-new-tokens -1", "--max-new-tokens"},
      {"--seed -1", "--seed"},               {"--threads -1", "--threads"},
      {"--n 99999999999999999999999", "--n"}, {"--greedy --temperature -2", "--temperature"},
  };
}

TEST(SampleCommand, RejectsEveryOutOfRangeOptionNamingIt) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const std::string base = "sample --weights " + reference_weights() + " --no-previews --threads 1 --out " +
                           test::temp_dir() + " ";
  const auto cases = out_of_range_options();
  for (const auto& [args, name] : cases) {
    const auto run = test::run_iflame(base + args);
    EXPECT_EQ(run.code, 1) << args << "\n" << run.out;
    EXPECT_NE(run.out.find(name), std::string::npos) << args << "\n" << run.out;
    EXPECT_EQ(run.out.find("sample_000"), std::string::npos) << args << ": generated anyway\n" << run.out;
  }
}

TEST(SampleCommand, SummarySaysWhatEndedEachSampleInIndexOrder) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const std::string dir = test::temp_dir();
  const auto run = test::run_iflame("sample --weights " + reference_weights() +
                                    " --n 5 --batch 2 --max-faces 3 --threads 1 --out " + dir);
  ASSERT_EQ(run.code, 0) << run.out;
  const json summary = read_json(dir + "/summary.json");
  ASSERT_EQ(summary.at("samples").size(), 5u);
  int64_t counted = 0;
  for (size_t i = 0; i < 5; ++i) {
    const json& s = summary.at("samples")[i];
    EXPECT_EQ(s.at("index"), int64_t(i));
    EXPECT_FALSE(s.contains("ended_with_eos"));
    const std::string finished = s.at("finished");
    ASSERT_TRUE(finished == "eos" || finished == "max_faces") << finished;
    // The cap closes a sequence after exactly max_faces rows; the model's EOS may come earlier.
    if (finished == "max_faces") {
      EXPECT_EQ(s.at("new_tokens"), 3 * 9) << i;
    } else {
      EXPECT_LE(s.at("new_tokens"), 3 * 9) << i;
    }
  }
  for (const auto& [name, count] : summary.at("finished").items()) counted += count.get<int64_t>();
  EXPECT_EQ(counted, 5);
  EXPECT_TRUE(std::ifstream(dir + "/grid.png").good());
}

TEST(SampleCommand, FormatListWritesEachFileAndGlbLoadsBack) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const std::string dir = test::temp_dir();
  const auto run = test::run_iflame("sample --weights " + reference_weights() +
                                    " --n 2 --max-faces 4 --threads 1 --no-previews --format glb,obj --out " + dir);
  ASSERT_EQ(run.code, 0) << run.out;
  for (const char* name : {"sample_000", "sample_001"}) {
    const Mesh obj = load_mesh(dir + "/" + name + ".obj");
    const Mesh glb = load_mesh(dir + "/" + name + ".glb");  // through assimp's glTF importer
    EXPECT_EQ(glb.faces.size(), obj.faces.size()) << name;
    EXPECT_FALSE(std::ifstream(dir + "/" + name + ".ply").good());
  }
  EXPECT_EQ(read_json(dir + "/summary.json").at("samples")[0].at("file"), "sample_000.glb");
  const auto bad = test::run_iflame("sample --weights " + reference_weights() + " --format obj,stl --out " + dir + "/x");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("'stl'"), std::string::npos) << bad.out;
}

TEST(SampleCommand, ModelMetadataSetsDefaultsThatOptionsOverride) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const std::string dir = test::temp_dir();
  SafetensorsFile file = read_safetensors(reference_weights());
  file.metadata["sample.max-faces"] = "2";
  file.metadata["sample.temperature"] = "0.7";
  file.metadata["sample.min-p"] = "0.05";
  file.metadata["sample.escape-loops"] = "true";
  write_safetensors(file, dir + "/with-defaults.safetensors");
  const std::string base = "sample --weights " + dir + "/with-defaults.safetensors --n 2 --no-previews --threads 1 ";

  const auto defaults = test::run_iflame(base + "--out " + dir + "/a");
  ASSERT_EQ(defaults.code, 0) << defaults.out;
  const std::string applied = "defaults from the model's metadata: --temperature --min-p --max-faces --escape-loops";
  EXPECT_NE(defaults.out.find(applied), std::string::npos) << defaults.out;
  const json summary = read_json(dir + "/a/summary.json");
  for (const json& s : summary.at("samples")) EXPECT_LE(s.at("faces"), 2);
  EXPECT_EQ(summary.at("sampling").at("temperature"), 0.7);
  EXPECT_EQ(summary.at("sampling").at("min_p"), 0.05);
  EXPECT_EQ(summary.at("sampling").at("max_faces"), 2);
  EXPECT_EQ(summary.at("sampling").at("escape_loops"), true);

  const auto given =
      test::run_iflame(base + "--max-faces 4 --temperature 1 --min-p 0 --escape-loops=false --out " + dir + "/b");
  ASSERT_EQ(given.code, 0) << given.out;
  EXPECT_EQ(given.out.find("defaults from the model's metadata"), std::string::npos) << given.out;
  const json given_summary = read_json(dir + "/b/summary.json");
  EXPECT_EQ(given_summary.at("sampling").at("min_p"), 0.0);
  EXPECT_EQ(given_summary.at("sampling").at("escape_loops"), false);

  file.metadata["sample.max-faces"] = "lots";
  write_safetensors(file, dir + "/bad.safetensors");
  const auto bad = test::run_iflame("sample --weights " + dir + "/bad.safetensors --no-previews --out " + dir + "/c");
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("sample.max-faces"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("bad.safetensors"), std::string::npos) << bad.out;
}

// Each row of sampling_switches() is a flag of `iflame sample` (listed in --help, turned off by
// --NAME=false) and a metadata default sample.NAME, recorded in summary.json by its field name.
TEST(SampleCommand, EverySamplingSwitchIsAFlagAndAMetadataDefault) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const std::string dir = test::temp_dir();
  SafetensorsFile file = read_safetensors(reference_weights());
  std::string all_off;
  for (const SamplingSwitch& rule : sampling_switches()) {
    file.metadata[std::string("sample.") + rule.option] = "true";
    all_off += std::string(" --") + rule.option + "=false";
  }
  write_safetensors(file, dir + "/switches.safetensors");
  const std::string base = "sample --weights " + dir + "/switches.safetensors --n 1 --max-faces 3 --no-previews --threads 1 ";
  const auto help = test::run_iflame("sample --help");
  const auto on = test::run_iflame(base + "--out " + dir + "/on");
  ASSERT_EQ(on.code, 0) << on.out;
  const auto off = test::run_iflame(base + all_off + " --out " + dir + "/off");
  ASSERT_EQ(off.code, 0) << off.out;
  const json on_sampling = read_json(dir + "/on/summary.json").at("sampling");
  const json off_sampling = read_json(dir + "/off/summary.json").at("sampling");
  for (const SamplingSwitch& rule : sampling_switches()) {
    EXPECT_NE(help.out.find(std::string("--") + rule.option + "\n"), std::string::npos) << rule.option;
    EXPECT_NE(help.out.find(std::string("sample.") + rule.option), std::string::npos) << rule.option;
    EXPECT_EQ(on_sampling.at(rule.field), true) << rule.field;
    EXPECT_EQ(off_sampling.at(rule.field), false) << rule.field;
  }
}

// A second run into the same --out is refused and leaves the first's files; with --overwrite
// it replaces them, leaving none of the earlier run's and nothing else touched.
TEST(SampleCommand, AnOutFolderWithEarlierSamplesIsRefusedUnlessOverwrite) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  namespace fs = std::filesystem;
  const std::string dir = test::temp_dir();
  const std::string base = "sample --weights " + reference_weights() + " --max-faces 3 --threads 1 --out " + dir;
  ASSERT_EQ(test::run_iflame(base + " --n 3").code, 0);
  ASSERT_TRUE(fs::exists(dir + "/sample_002.obj"));
  std::ofstream(dir + "/notes.txt") << "mine";
  const auto refused = test::run_iflame(base + " --n 1");
  EXPECT_EQ(refused.code, 1) << refused.out;
  EXPECT_NE(refused.out.find(dir), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("--overwrite"), std::string::npos) << refused.out;
  EXPECT_TRUE(fs::exists(dir + "/sample_002.obj"));
  const auto replaced = test::run_iflame(base + " --n 1 --overwrite");
  ASSERT_EQ(replaced.code, 0) << replaced.out;
  EXPECT_TRUE(fs::exists(dir + "/sample_000.obj"));
  EXPECT_FALSE(fs::exists(dir + "/sample_002.obj"));
  EXPECT_FALSE(fs::exists(dir + "/sample_002.png"));
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
  EXPECT_EQ(read_json(dir + "/summary.json")["samples"].size(), 1u);
}

// With no model anywhere, a bad option is still reported as itself, not as the missing model.
TEST(SampleCommand, OptionsAreCheckedBeforeTheModelIsLookedFor) {
  const std::string dir = test::temp_dir();
  ScopedEnv env("IFLAME_MODEL", dir + "/missing.safetensors");
  for (const auto& [args, name] : out_of_range_options()) {
    const auto run = test::run_iflame("sample --no-previews --out " + dir + " " + args);
    EXPECT_EQ(run.code, 1) << args << "\n" << run.out;
    EXPECT_NE(run.out.find(name), std::string::npos) << args << "\n" << run.out;
    EXPECT_EQ(run.out.find("missing.safetensors"), std::string::npos) << args << ": the model came first\n" << run.out;
  }
}

TEST(SampleCommand, AnEndlessWeightsPathIsRefusedNamingIt) {
  const std::string dir = test::temp_dir();
  const auto run = test::run_iflame("sample --n 1 --no-previews --weights /dev/zero --out " + dir + "/s");
  EXPECT_EQ(run.code, 1) << run.out;
  EXPECT_NE(run.out.find("/dev/zero: not a regular file"), std::string::npos) << run.out;
}

TEST(SampleCommand, FindsTheModelThroughIflameModelAndNamesWhereItLooked) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const std::string dir = test::temp_dir();
  {
    ScopedEnv env("IFLAME_MODEL", reference_weights());
    const auto run = test::run_iflame("sample --n 1 --max-faces 2 --no-previews --threads 1 --out " + dir);
    ASSERT_EQ(run.code, 0) << run.out;
    const std::string normal = std::filesystem::path(reference_weights()).lexically_normal().string();
    EXPECT_NE(run.out.find("the default model " + normal), std::string::npos) << run.out;
  }
  {
    ScopedEnv env("IFLAME_MODEL", dir + "/missing.safetensors");
    const auto run = test::run_iflame("sample --n 1 --out " + dir);
    EXPECT_EQ(run.code, 1) << run.out;
    EXPECT_NE(run.out.find(dir + "/missing.safetensors"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find("IFLAME_MODEL"), std::string::npos) << run.out;
  }
}

// The model in models/ (when the repository ships one): found without flags, its sampling
// defaults read from its metadata, and one mesh sampled from it.
TEST(SampleCommand, TheShippedModelSamplesWithItsOwnDefaults) {
  const std::string shipped = std::string(IFLAME_SOURCE_DIR) + "/models/iflame-default.safetensors";
  if (!std::filesystem::exists(shipped)) GTEST_SKIP() << "no model shipped in models/ yet";
  ::unsetenv("IFLAME_MODEL");
  const std::string dir = test::temp_dir();
  const auto run = test::run_iflame("sample --n 1 --max-faces 3 --no-previews --threads 1 --out " + dir);
  ASSERT_EQ(run.code, 0) << run.out;
  EXPECT_NE(run.out.find("the default model "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("defaults from the model's metadata"), std::string::npos) << run.out;
  const json summary = read_json(dir + "/summary.json");
  ASSERT_EQ(summary.at("samples").size(), 1u);
  EXPECT_LE(summary.at("samples")[0].at("faces").get<int64_t>(), 3);
}

// The shipped file's sample.* metadata is models/sampling-defaults.sh, entry for entry: a default
// changed in the script (and documented) reaches the model that users run.
TEST(SampleCommand, TheShippedModelCarriesTheScriptsSamplingDefaults) {
  const std::string source = std::string(IFLAME_SOURCE_DIR);
  const std::string shipped = source + "/models/iflame-default.safetensors";
  if (!std::filesystem::exists(shipped)) GTEST_SKIP() << "no model shipped in models/ yet";
  std::map<std::string, std::string> script;
  std::ifstream in(source + "/models/sampling-defaults.sh");
  ASSERT_TRUE(in.good());
  for (std::string line; std::getline(in, line);) {
    const size_t key = line.find_first_not_of(' ');
    if (key == std::string::npos || line.compare(key, 7, "sample.") != 0) continue;
    const size_t eq = line.find('=', key);
    ASSERT_NE(eq, std::string::npos) << line;
    script[line.substr(key, eq - key)] = line.substr(eq + 1);
  }
  EXPECT_GE(script.size(), 10u);
  std::map<std::string, std::string> metadata;
  for (const auto& [k, v] : read_safetensors(shipped).metadata) {
    if (k.rfind("sample.", 0) == 0) metadata[k] = v;
  }
  EXPECT_EQ(metadata, script);
}

}  // namespace
}  // namespace iflame
