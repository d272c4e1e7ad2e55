// The benchmark's memory estimate, and one real child run of `iflame bench train --child` (tiny
// model, one face) that must return parsable JSON with the FLOP counter's count.
#include "bench/bench.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "model/model.h"
#include "test_paths.h"

namespace iflame {
namespace {

TEST(BenchMemoryEstimate, KeptHeapAddsOneRerunBlockWhenRecomputing) {
  // With freed memory kept, a block re-run in the backward is counted twice (fresh heap for
  // its activations); nothing changes without recomputation.
  bench::TrainSpec spec;
  spec.size = "tiny";
  spec.faces = 100;
  const ModelConfig cfg = model_preset("tiny", Arch::IFlame);
  for (Recompute r : {Recompute::None, Recompute::Linear}) {
    spec.recompute = r;
    spec.glibc_malloc = true;
    const double glibc = bench::estimate_peak_bytes(cfg, spec);
    spec.glibc_malloc = false;
    const double kept = bench::estimate_peak_bytes(cfg, spec);
    if (r == Recompute::None) EXPECT_EQ(kept, glibc);
    else EXPECT_GT(kept, glibc);
  }
}

TEST(BenchChild, TinyTrainRunReturnsJson) {
  bench::TrainSpec spec;
  spec.size = "tiny";
  spec.arch = Arch::IFlame;
  spec.faces = 1;
  spec.steps = 2;
  spec.warmup = 1;
  spec.threads = 1;
  const auto r = bench::run_child(test::iflame_binary(), bench::child_arguments(spec),
                                  {{"OMP_WAIT_POLICY", "PASSIVE"}, {"OMP_NUM_THREADS", "1"}}, 120);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.json.at("arch"), "iflame");
  EXPECT_EQ(r.json.at("tokens"), 27);
  EXPECT_EQ(r.json.at("step_ms").size(), 2u);
  EXPECT_GT(r.json.at("mean_ms").get<double>(), 0.0);
  EXPECT_GT(r.json.at("peak_rss_kb").get<double>(), 0.0);
  EXPECT_GT(r.rusage_maxrss_kb, 0);
  const double loss = r.json.at("loss");
  EXPECT_GT(loss, 3.0);  // about ln(132) = 4.9 at initialization
  EXPECT_LT(loss, 7.0);
  EXPECT_DOUBLE_EQ(r.json.at("flops_per_step").get<double>(),
                   train_flops(model_preset("tiny", Arch::IFlame), 27, 1).train);
}

TEST(BenchChild, EnvironmentOverridesAndEmptyValuesRemove) {
  ::setenv("IFLAME_TEST_INHERITED", "parent", 1);
  ::setenv("IFLAME_TEST_REMOVED", "parent", 1);
  const auto r = bench::run_child(
      "/bin/sh",
      {"-c", R"(printf '{"inherited":"%s","removed":"%s","added":"%s"}\n' "${IFLAME_TEST_INHERITED-unset}" )"
             R"("${IFLAME_TEST_REMOVED-unset}" "${IFLAME_TEST_ADDED-unset}")"},
      {{"IFLAME_TEST_REMOVED", ""}, {"IFLAME_TEST_ADDED", "child"}}, 60);
  ::unsetenv("IFLAME_TEST_INHERITED");
  ::unsetenv("IFLAME_TEST_REMOVED");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.json.at("inherited"), "parent");
  EXPECT_EQ(r.json.at("removed"), "unset");
  EXPECT_EQ(r.json.at("added"), "child");
}

TEST(BenchCommands, OutOfRangeOptionsAreRefusedNamingThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bench train --timeout -1", "--timeout"},     {"bench train --peak-gflops -5", "--peak-gflops"},
      {"bench train --max-mem-mb -1", "--max-mem-mb"}, {"bench train --threads -1", "--threads"},
      {"bench train --steps 0", "--steps"},          {"bench decode --threads -2", "--threads"},
      {"bench decode --timeout -3", "--timeout"},    {"bench decode --seed -1", "--seed"},
      {"bench paper --lr -1", "--lr"},               {"bench paper --quality-steps -1", "--quality-steps"},
      {"bench nope", "train, decode, matmul"},
  };
  for (const auto& [args, name] : cases) {
    const auto run = test::run_iflame(args);
    EXPECT_EQ(run.code, 1) << args << "\n" << run.out;
    EXPECT_NE(run.out.find(name), std::string::npos) << args << "\n" << run.out;
  }
}

TEST(BenchChild, FailuresAreReportedNotThrown) {
  const auto r = bench::run_child(test::iflame_binary(), {"bench-does-not-exist"}, {}, 60);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("exited with status"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace iflame
