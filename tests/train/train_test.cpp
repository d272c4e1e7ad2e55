// The trainer: optimizers, schedule, config parsing, and that a resumed run (also after
// SIGKILL) continues the exact loss curve of an uninterrupted one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "dataset/format.h"
#include "model/model_test_util.h"
#include "test_paths.h"
#include "train/checkpoint.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

using torch::Tensor;
using test::losses;
using test::make_dataset;

TrainConfig small_config(const std::string& data, const std::string& out) { return test::quick_config(data, out, 6, 3, 3); }

TEST(Train, ResumeContinuesTheExactLossCurve) {
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir);
  TrainConfig full = small_config(data, dir + "/full");
  train(full, RunStart::kFresh);
  TrainConfig part = small_config(data, dir + "/part");
  part.train_steps = 6;
  // Stop after 3 steps by training a run whose schedule is the same but which we cut short:
  // run 6 steps once with save_every 3, delete the last checkpoint and the tail of the log.
  train(part, RunStart::kFresh);
  std::filesystem::remove_all(dir + "/part/step-00000006");
  {
    auto all = losses(dir + "/part/log.jsonl");
    ASSERT_EQ(all.size(), 6u);
  }
  std::filesystem::remove(dir + "/part/log.jsonl");
  train(part, RunStart::kResume);  // resumes at step 3
  const auto a = losses(dir + "/full/log.jsonl");
  const auto b = losses(dir + "/part/log.jsonl");
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(a[3 + i], b[i]) << "step " << 4 + i;
}

TEST(Train, LossFallsOnASmallDataset) {
  const std::string dir = test::temp_dir();
  TrainConfig c = small_config(make_dataset(dir), dir + "/run");
  c.train_steps = 30;
  c.optim_lr = 1e-2;
  c.data_augment = false;
  c.out_save_every = 100;
  c.eval_every = 100;
  train(c, RunStart::kFresh);
  const auto l = losses(dir + "/run/log.jsonl");
  ASSERT_EQ(l.size(), 30u);
  EXPECT_LT((l[27] + l[28] + l[29]) / 3, (l[0] + l[1] + l[2]) / 3 - 0.5);
}

TEST(Train, LogsThroughputAndMfu) {
  const std::string dir = test::temp_dir();
  TrainConfig c = small_config(make_dataset(dir), dir + "/run");
  c.train_steps = 2;
  c.train_peak_gflops = 50;
  train(c, RunStart::kFresh);
  std::ifstream in(dir + "/run/log.jsonl");
  std::string line;
  int steps = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    if (j.contains("event")) {
      EXPECT_EQ(j.at("peak_gflops").get<double>(), 50.0);
      continue;
    }
    if (!j.contains("mfu")) continue;
    ++steps;
    // FLOPs of the step's batches (analytic, bench/flops.cpp) over its time, over the peak.
    EXPECT_GT(j.at("gflops").get<double>(), 0.0);
    EXPECT_NEAR(j.at("mfu").get<double>(), j.at("gflops").get<double>() / 50.0, 1e-12);
  }
  EXPECT_EQ(steps, 2);
}

TEST(Train, CheckpointsAreCompleteOrAbsent) {
  const std::string dir = test::temp_dir();
  TrainConfig c = small_config(make_dataset(dir), dir + "/run");
  c.out_keep_last = 1;
  train(c, RunStart::kFresh);
  // Only the newest step folder remains, with its completion marker; a half-written one
  // (no state.json) is never picked.
  EXPECT_EQ(latest_checkpoint(dir + "/run"), dir + "/run/step-00000006");
  EXPECT_FALSE(std::filesystem::exists(dir + "/run/step-00000003"));
  std::filesystem::create_directories(dir + "/run/step-00000009");
  EXPECT_EQ(latest_checkpoint(dir + "/run"), dir + "/run/step-00000006");
  EXPECT_TRUE(std::filesystem::exists(dir + "/run/best/model.safetensors"));
}

TEST(Train, ConfigRejectsUnknownKeysAndBadValues) {
  TrainConfig c;
  EXPECT_THROW(c.set("optim.lrr", "1"), Error);
  EXPECT_THROW(c.set("optim.lr", "fast"), Error);
  EXPECT_THROW(c.set("train.precision", "fp8"), Error);
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"optim.lr", "-1"}, {"optim.lr", "nan"}, {"optim.lr", "0"}, {"optim.warmup", "1.5"},
           {"optim.grad_clip", "-1"}, {"data.max_faces", "0"}, {"train.threads", "-2"}, {"eval.every", "-1"},
           {"out.keep_last", "0"}, {"out.keep_every", "-5"}, {"model.dim", "1000000"}, {"data.batch_tokens", "99999999999"},
           {"model.blocks_per_stage", "0"}}) {
    TrainConfig fresh;
    try {
      fresh.set(key, value);
      ADD_FAILURE() << key << " = " << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  }
  const std::string dir = test::temp_dir();
  std::ofstream(dir + "/c.txt") << "# comment\noptim.lr = 0.5\nmodel.preset = small\n";
  c = TrainConfig();
  c.load_file(dir + "/c.txt");
  EXPECT_EQ(c.optim_lr, 0.5);
  EXPECT_EQ(c.model_config().dim, 256);
  // The printed config loads back to the same config.
  std::ofstream(dir + "/d.txt") << c.to_text();
  TrainConfig d;
  d.load_file(dir + "/d.txt");
  EXPECT_EQ(d.to_text(), c.to_text());
  std::ofstream(dir + "/e.txt") << "nonsense line\n";
  EXPECT_THROW(d.load_file(dir + "/e.txt"), Error);
}

TEST(Train, RecomputeIsNoneLinearOrAll) {
  TrainConfig c;
  EXPECT_EQ(c.train_recompute, "none");
  c.set("train.recompute", "linear");
  EXPECT_NE(c.to_text().find("train.recompute = linear"), std::string::npos);
  EXPECT_THROW(c.set("train.recompute", "some"), Error);
}

TEST(Train, DeviceIsCpuOrAnExistingGpu) {
  TrainConfig c;
  EXPECT_EQ(c.train_device, "cpu");
  c.set("train.device", "cuda:1");
  EXPECT_EQ(c.train_device, "cuda:1");
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda1", "CPU"}) {
    TrainConfig d;
    EXPECT_THROW(d.set("train.device", bad), Error) << bad;
  }
  EXPECT_EQ(training_device("cpu", 3), torch::Device(torch::kCPU));
  if (!torch::cuda::is_available()) {
    // A CPU-only machine says so instead of failing inside LibTorch.
    try {
      training_device("cuda", 0);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA is not available"), std::string::npos) << e.what();
    }
  } else {
    // Worker i of a host takes GPU i; an index past the last GPU is an error.
    EXPECT_EQ(training_device("cuda", 0), torch::Device(torch::kCUDA, 0));
    const int64_t n = int64_t(torch::cuda::device_count());
    EXPECT_THROW(training_device("cuda:" + std::to_string(n), 0), Error);
    EXPECT_THROW(training_device("cuda", n), Error);
  }
}

TEST(Optim, NewtonSchulzOrthogonalizes) {
  torch::manual_seed(0);
  Tensor g = torch::randn({32, 64});
  Tensor x = newton_schulz5(g);
  Tensor s = torch::linalg_svdvals(x);
  // The quintic iteration drives singular values into roughly [0.7, 1.2] (Muon's design).
  EXPECT_GT(s.min().item<double>(), 0.5);
  EXPECT_LT(s.max().item<double>(), 1.3);
  EXPECT_EQ(newton_schulz5(torch::randn({64, 32})).sizes(), (torch::IntArrayRef{64, 32}));
}

TEST(Optim, MuonTakesMatricesAdamWTakesTheHeadAndVectors) {
  Tensor w = torch::randn({8, 4}, torch::requires_grad()), b = torch::randn({8}, torch::requires_grad());
  Tensor head = torch::randn({8, 4}, torch::requires_grad());
  Optimizer opt({{"blocks.0.w", w}, {"blocks.0.b", b}, {"output_proj.weight", head}}, OptimizerOptions{});
  EXPECT_TRUE(opt.uses_muon("blocks.0.w"));
  EXPECT_FALSE(opt.uses_muon("blocks.0.b"));
  EXPECT_FALSE(opt.uses_muon("output_proj.weight"));
  (w.sum() + b.sum() + head.sum()).backward();
  Tensor before = w.detach().clone();
  opt.step(1e-2);
  EXPECT_GT(test::max_abs_diff(before, w.detach()), 0.0);
  auto state = opt.state();
  EXPECT_EQ(state.count("blocks.0.w.momentum"), 1u);
  EXPECT_EQ(state.count("output_proj.weight.exp_avg_sq"), 1u);
}

TEST(Optim, WarmupThenCosine) {
  EXPECT_NEAR(scheduled_lr(0, 100, 10, 1.0), 0.1, 1e-12);
  EXPECT_NEAR(scheduled_lr(9, 100, 10, 1.0), 1.0, 1e-12);
  EXPECT_NEAR(scheduled_lr(55, 100, 10, 1.0), 0.5, 1e-12);
  EXPECT_NEAR(scheduled_lr(100, 100, 10, 1.0), 0.0, 1e-12);
}

// The CLI run killed with SIGKILL mid-training resumes and ends on the same losses.
TEST(TrainSlow, KilledRunResumesFromItsLastCheckpoint) {
  if (!std::filesystem::exists(test::iflame_binary())) GTEST_SKIP() << "no iflame binary";
  const std::string dir = test::temp_dir();
  const std::string data = make_dataset(dir, 40);
  auto args = [&](const std::string& out) {
    return std::vector<std::string>{test::iflame_binary(), "train", "--preset", "ci", "--data", data, "--set",
                                    "out.dir=" + out, "--set", "train.steps=12", "--set", "out.save_every=2", "--set",
                                    "train.precision=fp32", "--set", "train.threads=1", "--set", "data.batch_tokens=1200"};
  };
  auto run = [&](std::vector<std::string> a, bool kill_after_checkpoint) {
    pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(s.data());
      argv.push_back(nullptr);
      freopen("/dev/null", "w", stderr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (kill_after_checkpoint) {
      const std::string out = a[7].substr(8);
      for (int i = 0; i < 6000 && latest_checkpoint(out).find("step-00000004") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      kill(pid, SIGKILL);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  };
  ASSERT_EQ(run(args(dir + "/full"), false), 0);
  run(args(dir + "/killed"), true);
  ASSERT_FALSE(latest_checkpoint(dir + "/killed").empty());
  auto resumed = args(dir + "/killed");
  resumed.push_back("--resume");
  ASSERT_EQ(run(resumed, false), 0);
  const auto a = losses(dir + "/full/log.jsonl");
  // The killed run's log holds its steps up to the kill and then the resumed steps again from
  // the checkpoint on: its last 12 - k entries must equal the uninterrupted run's tail.
  const auto b = losses(dir + "/killed/log.jsonl");
  ASSERT_EQ(a.size(), 12u);
  ASSERT_GE(b.size(), 12u);
  for (size_t i = 1; i <= 4; ++i) EXPECT_DOUBLE_EQ(a[a.size() - i], b[b.size() - i]) << i;
}

}  // namespace
}  // namespace iflame
