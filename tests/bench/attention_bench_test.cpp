// `iflame bench attention` in this process: one round of every kernel on a small shape gives a
// row each with positive timings, and bad options are errors that name the option.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

int run(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return bench::run_attention_command(int(argv.size()), argv.data());
}

TEST(BenchAttention, OneRoundOfEveryKernel) {
  const std::string out = test::temp_dir() + "/bench_attention.json";
  ASSERT_EQ(run({"--tokens", "70,130", "--heads", "2", "--head-dim", "8", "--kernels", "flash,flash-avx512,flash-avx2,flash-generic,tiled,naive",
                 "--reps", "1", "--dtype", "fp32", "--format", "json", "--out", out}),
            0);
  std::ifstream f(out);
  const auto j = nlohmann::json::parse(f);
  ASSERT_EQ(j["rows"].size(), 12u);
  for (const auto& row : j["rows"]) {
    EXPECT_GT(row["fwd_ms"].get<double>(), 0.0);
    EXPECT_GT(row["bwd_ms"].get<double>(), 0.0);
    EXPECT_GT(row["fwd_gflops"].get<double>(), 0.0);
  }
  EXPECT_EQ(j["rows"][0]["kernel"], "flash");
  EXPECT_EQ(j["rows"][0]["tokens"], 70);
  EXPECT_DOUBLE_EQ(j["rows"][0]["speed_vs_first"].get<double>(), 1.0);
  EXPECT_EQ(j["rows"][11]["kernel"], "naive");
  EXPECT_EQ(j["rows"][11]["tokens"], 130);
}

TEST(BenchAttention, BadOptionsAreErrors) {
  EXPECT_THROW(run({"--kernels", "fast"}), Error);
  EXPECT_THROW(run({"--dtype", "fp16"}), Error);
  EXPECT_THROW(run({"--tokens", "0"}), Error);
}

}  // namespace
}  // namespace iflame
