// `iflame bench decode`: the cache-bytes table against hand counts, one real child run, and the
// command end to end on the tiny model.
#include "bench/decode.h"

#include <gtest/gtest.h>

#include "bench/bench.h"
#include "test_paths.h"

namespace iflame {
namespace {

TEST(DecodeBench, CacheBytesPerSequenceByHand) {
  const int64_t L = 9 * 102;  // 100 faces + BOS and EOS rows
  // ref: E = 512, H = 16, D = 32; iFlame's full layers: 2 at L, 2 at L/3, 2 at L/9.
  const auto [kv, state] = bench::cache_bytes_per_sequence(model_preset("ref"), L, /*bf16_kv=*/false);
  EXPECT_EQ(kv, 2 * 512 * 4 * (2 * L + 2 * L / 3 + 2 * L / 9));
  EXPECT_EQ(state, 18 * 16 * 32 * 32 * 4 + 6 * 512 * 4 + 2 * 512 * 4);  // 18 linear states, 2 rings of 3, 2 latest
  const auto full = bench::cache_bytes_per_sequence(model_preset("ref", Arch::Full), L, /*bf16_kv=*/true);
  EXPECT_EQ(full.first, 2 * 512 * 2 * 24 * L);
  EXPECT_EQ(full.second, 0);
}

TEST(DecodeBench, TinyChildRunReturnsJson) {
  bench::DecodeSpec spec;
  spec.size = "tiny";
  spec.arch = Arch::IFlame;
  spec.faces = 3;
  spec.batch = 2;
  spec.tokens = 18;
  spec.warmup = 9;
  spec.threads = 1;
  spec.count_ops = true;
  const auto r = bench::run_child(test::iflame_binary(), bench::decode_child_arguments(spec),
                                  {{"OMP_NUM_THREADS", "1"}}, 120);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.json.at("context_tokens"), 36);
  EXPECT_EQ(r.json.at("step_ms").size(), 18u);
  EXPECT_GT(r.json.at("tokens_per_s").get<double>(), 0.0);
  EXPECT_GT(r.json.at("ops_per_step").get<double>(), 0.0);
  EXPECT_EQ(r.json.at("kv_bytes"), bench::cache_bytes_per_sequence(model_preset("tiny"), 63, false).first * 2);
}

TEST(DecodeBench, GenerateModeRunsWholeGenerations) {
  bench::DecodeSpec spec;
  spec.size = "tiny";
  spec.arch = Arch::IFlame;
  spec.faces = 4;
  spec.batch = 3;
  spec.threads = 1;
  spec.generate = true;
  const auto r = bench::run_child(test::iflame_binary(), bench::decode_child_arguments(spec),
                                  {{"OMP_NUM_THREADS", "1"}}, 120);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.json.at("mode"), "generate");
  // Every sequence runs to faces + 1 rows whatever it samples: 45 steps, 3 x 45 tokens.
  EXPECT_EQ(r.json.at("tokens"), 45);
  EXPECT_EQ(r.json.at("new_tokens"), 135);
  EXPECT_EQ(r.json.at("context_tokens"), 54);
  EXPECT_GT(r.json.at("tokens_per_s").get<double>(), 0.0);
  EXPECT_EQ(r.json.at("kv_bytes"), bench::cache_bytes_per_sequence(model_preset("tiny"), 54, false).first * 3);
}

TEST(DecodeBench, CommandPrintsBothTablesAndTheRatio) {
  const auto run = test::run_iflame(
      "bench decode --size tiny --archs iflame,full --faces 2 --batch 1 --tokens 9 --warmup 0 --threads 1 "
      "--cache-faces 4000");
  ASSERT_EQ(run.code, 0) << run.out;
  EXPECT_NE(run.out.find("holds exactly (8.31x less)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("iflame / full at 2 faces, batch 1: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("| linear |"), std::string::npos) << run.out;
  const auto gen = test::run_iflame(
      "bench decode --size tiny --mode generate --archs iflame,full --faces 3 --batch 2 --threads 1 --cache-faces 10");
  ASSERT_EQ(gen.code, 0) << gen.out;
  EXPECT_NE(gen.out.find("Generation throughput from scratch"), std::string::npos) << gen.out;
  EXPECT_NE(gen.out.find(" 9-45 |"), std::string::npos) << gen.out;
  EXPECT_NE(gen.out.find("iflame / full at 3 faces, batch 2: "), std::string::npos) << gen.out;
  const auto bad = test::run_iflame("bench decode --size tiny --tokens 10");
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_NE(bad.out.find("multiple of 9"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace iflame
