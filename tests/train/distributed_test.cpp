// Data-parallel training: the c10d collectives (two ranks as threads of this process), that
// two worker processes train exactly what one process trains (also across a resume), and
// that a dying worker stops the whole run with a message naming its rank.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "model/model_test_util.h"
#include "model/weights.h"
#include "test_paths.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/distributed.h"
#include "train/train_test_util.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

using torch::Tensor;

// A port nobody listens on right now (the kernel's pick, released again).
int64_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Runs `body(group)` as `world` ranks, one thread each, rank 0 serving the store (the
// multi-host set-up); rethrows the first failure.
void run_ranks(int64_t world, const std::function<void(Distributed&)>& body) {
  const int64_t port = free_port();
  ASSERT_GT(port, 0);
  std::vector<std::thread> threads;
  std::vector<std::string> errors(static_cast<size_t>(world));
  for (int64_t r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        DistOptions o;
        o.rank = r;
        o.world_size = world;
        o.master_port = port;
        o.timeout_s = 30;  // a hung collective fails the test in seconds
        Distributed group(o);
        body(group);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int64_t r = 0; r < world; ++r) EXPECT_EQ(errors[size_t(r)], "") << "rank " << r;
}

TEST(TrainDistributed, CollectivesSumAndBroadcastInBuckets) {
  std::vector<std::vector<Tensor>> grads_after(2), broadcast_after(2);
  std::vector<int64_t> sums(2);
  run_ranks(2, [&](Distributed& g) {
    const int64_t r = g.rank();
    EXPECT_EQ(g.world_size(), 2);
    // a: a gradient on both ranks; b: only on rank 1 (rank 0 had an empty shard); c: none.
    Tensor a = torch::zeros({3, 4}, torch::requires_grad()), b = torch::zeros({300}, torch::requires_grad()),
           c = torch::zeros({5}, torch::requires_grad());
    a.mutable_grad() = torch::full({3, 4}, double(r + 1));
    if (r == 1) b.mutable_grad() = torch::arange(300, torch::kFloat);
    g.all_reduce_gradients({a, b, c}, /*bucket_bytes=*/256);  // several buckets
    grads_after[size_t(r)] = {a.grad(), b.grad(), c.grad()};
    Tensor n = torch::tensor({r + 10}, torch::kLong);
    g.all_reduce_sum(n);
    sums[size_t(r)] = n.item<int64_t>();
    std::vector<Tensor> ts = {torch::full({7}, double(r)), torch::full({2, 90}, double(5 * r + 1))};
    g.broadcast_coalesced(ts, /*bucket_bytes=*/64);
    broadcast_after[size_t(r)] = ts;
    g.barrier();
  });
  for (size_t r = 0; r < 2; ++r) {
    ASSERT_EQ(grads_after[r].size(), 3u);
    EXPECT_TRUE(grads_after[r][0].equal(torch::full({3, 4}, 3.0))) << r;
    ASSERT_TRUE(grads_after[r][1].defined()) << r;
    EXPECT_TRUE(grads_after[r][1].equal(torch::arange(300, torch::kFloat))) << r;
    EXPECT_FALSE(grads_after[r][2].defined()) << r;
    EXPECT_EQ(sums[r], 21);
    EXPECT_TRUE(broadcast_after[r][0].equal(torch::zeros({7}))) << r;
    EXPECT_TRUE(broadcast_after[r][1].equal(torch::ones({2, 90}))) << r;
  }
}

TEST(TrainDistributed, ShardsSplitEveryPlannedBatch) {
  const std::string dir = test::temp_dir();
  DatasetReader data(test::make_dataset(dir));
  const auto idx = data.indices(Split::kTrain);
  BatchPlanOptions plan{4000, 8, 200};
  plan.noise = {0.2, 0.2};  // the inserted rows are the same in a shard as in the whole batch
  BatchStream whole(data, idx, plan, false, 3);
  std::vector<std::unique_ptr<BatchStream>> shards;
  for (int64_t r = 0; r < 3; ++r) shards.push_back(std::make_unique<BatchStream>(data, idx, plan, false, 3, DataPosition{}, r, 3));
  for (int i = 0; i < 7; ++i) {
    const TokenBatch w = whole.next();
    EXPECT_FALSE(w.inputs.equal(w.targets)) << "batch " << i;
    int64_t row = 0;
    for (auto& s : shards) {
      const TokenBatch part = s->next();
      EXPECT_EQ(s->position().batch, whole.position().batch);
      if (part.inputs.numel() == 0) continue;
      // The shard's rows are the whole batch's rows, padded to the shard's own longest.
      auto expect = [&](const Tensor& t) { return t.narrow(0, row, part.inputs.size(0)).narrow(1, 0, part.inputs.size(1)); };
      EXPECT_TRUE(part.inputs.equal(expect(w.inputs))) << "batch " << i;
      EXPECT_TRUE(part.targets.equal(expect(w.targets))) << "batch " << i;
      row += part.inputs.size(0);
    }
    EXPECT_EQ(row, w.inputs.size(0)) << "batch " << i;
  }
  EXPECT_THROW(BatchStream(data, idx, plan, false, 3, DataPosition{}, 3, 3), Error);
}

TEST(TrainDistributed, ThreadsAreSharedByTheWorkersOfAHost) {
  EXPECT_EQ(worker_threads(2, 2), 1);
  EXPECT_EQ(worker_threads(1, 2), 1);
  EXPECT_EQ(worker_threads(16, 4), 4);
  EXPECT_GE(worker_threads(0, 1), 1);
  DistOptions o;
  o.rank = 2;
  o.world_size = 2;
  EXPECT_THROW(o.validate(), Error);
  o.rank = 1;
  o.local_world_size = 2;
  o.local_rank = 2;  // LOCAL_RANK past the host's workers
  EXPECT_THROW(o.validate(), Error);
}

std::map<std::string, Tensor> weights_of(const std::string& path) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : read_safetensors(path).tensors) out[name] = to_torch(t);
  return out;
}

// Largest difference between two checkpoints' weights (they must hold the same names).
double max_weight_diff(const std::string& a, const std::string& b) {
  auto wa = weights_of(a), wb = weights_of(b);
  EXPECT_EQ(wa.size(), wb.size());
  double d = 0;
  for (const auto& [name, t] : wa) {
    if (!wb.count(name)) {
      ADD_FAILURE() << name << " missing";
      continue;
    }
    d = std::max(d, test::max_abs_diff(t, wb[name]));
  }
  return d;
}

// Two workers with per-rank micro-batches of 4 sequences train the same weights as one process
// with micro-batches of 8 (the same global batches), also when the two-worker run is resumed.
TEST(TrainDistributedSlow, TwoWorkersTrainWhatOneProcessTrains) {
  if (!std::filesystem::exists(test::iflame_binary())) GTEST_SKIP() << "no iflame binary";
  const std::string dir = test::temp_dir();
  const std::string data = test::make_dataset(dir);
  // One thread per process (several threads on shared cores make OpenMP crawl).
  auto train_args = [&](const std::string& out, int threads) {
    return "train --preset ci --data '" + data + "' --set out.dir='" + out +
           "' --set train.steps=6 --set out.save_every=3 --set eval.every=3 --set train.precision=fp32"
           " --set data.batch_size=8 --set data.batch_tokens=4000 --set optim.accum=2 --set train.peak_gflops=100"
           " --set train.threads=" + std::to_string(threads);
  };
  const auto one = test::run_iflame(train_args(dir + "/one", 1));
  ASSERT_EQ(one.code, 0) << one.out;
  const auto two = test::run_iflame(train_args(dir + "/two", 2) + " --nproc 2");
  ASSERT_EQ(two.code, 0) << two.out;
  EXPECT_NE(two.out.find("workers       = 2 (gloo), 1 threads each"), std::string::npos) << two.out;
  // Only rank 0 prints: one "done" line.
  EXPECT_EQ(two.out.find("train: done"), two.out.rfind("train: done")) << two.out;

  const auto la = test::losses(dir + "/one/log.jsonl"), lb = test::losses(dir + "/two/log.jsonl");
  ASSERT_EQ(la.size(), 6u);
  ASSERT_EQ(lb.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(la[i], lb[i], 1e-5 * std::abs(la[i])) << "step " << i + 1;
  EXPECT_LT(max_weight_diff(dir + "/one/step-00000006/model.safetensors", dir + "/two/step-00000006/model.safetensors"),
            1e-4);

  // Resume the two-worker run from step 3: rank 0 loads, the others receive its state.
  std::filesystem::remove_all(dir + "/two/step-00000006");
  const auto resumed = test::run_iflame(train_args(dir + "/two", 2) + " --nproc 2 --resume");
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("resumed from"), std::string::npos) << resumed.out;
  const auto lr = test::losses(dir + "/two/log.jsonl");
  ASSERT_EQ(lr.size(), 9u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(la[3 + i], lr[6 + i], 1e-5 * std::abs(la[3 + i])) << "step " << 4 + i;
  EXPECT_LT(max_weight_diff(dir + "/one/step-00000006/model.safetensors", dir + "/two/step-00000006/model.safetensors"),
            1e-4);

  // A new run from step 3's weights at step 3 of the schedule: rank 0 reads the file, the
  // others receive the weights and where the learning-rate ramp began.
  auto init_args = [&](const std::string& out, int threads) {
    return train_args(out, threads) + " --set train.init='" + dir +
           "/one/step-00000003/model.safetensors' --set train.init_step=3 --set optim.rewarmup=2";
  };
  const auto one_init = test::run_iflame(init_args(dir + "/one-init", 1));
  ASSERT_EQ(one_init.code, 0) << one_init.out;
  const auto two_init = test::run_iflame(init_args(dir + "/two-init", 2) + " --nproc 2");
  ASSERT_EQ(two_init.code, 0) << two_init.out;
  const auto ia = test::losses(dir + "/one-init/log.jsonl"), ib = test::losses(dir + "/two-init/log.jsonl");
  ASSERT_EQ(ia.size(), 3u);
  ASSERT_EQ(ib.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(ia[i], ib[i], 1e-5 * std::abs(ia[i])) << "step " << 4 + i;
  EXPECT_LT(max_weight_diff(dir + "/one-init/step-00000006/model.safetensors",
                            dir + "/two-init/step-00000006/model.safetensors"),
            1e-4);
}

// The pids of `parent`'s children.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(pid_t(std::stol(name)));
  }
  return out;
}

bool environment_has(pid_t pid, const std::string& entry) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ");
  std::string s;
  while (std::getline(in, s, '\0')) {
    if (s == entry) return true;
  }
  return false;
}

TEST(TrainDistributedSlow, ADyingWorkerStopsTheRunAndIsNamed) {
  if (!std::filesystem::exists(test::iflame_binary())) GTEST_SKIP() << "no iflame binary";
  const std::string dir = test::temp_dir();
  const std::string data = test::make_dataset(dir);
  const std::string out = dir + "/run", err = dir + "/stderr.txt";
  std::vector<std::string> args = {test::iflame_binary(), "train", "--nproc", "2", "--preset", "ci", "--data", data,
                                   "--set", "out.dir=" + out, "--set", "train.steps=100000", "--set",
                                   "train.precision=fp32", "--set", "train.threads=2", "--set", "train.peak_gflops=100",
                                   "--set", "eval.every=0", "--set", "out.save_every=2"};
  const pid_t launcher = fork();
  if (launcher == 0) {
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    if (!freopen(err.c_str(), "w", stderr)) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Wait until both workers train (rank 0 has written a checkpoint), then kill rank 1.
  pid_t rank1 = 0, rank0 = 0;
  for (int i = 0; i < 6000 && latest_checkpoint(out).empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (pid_t p : children_of(launcher)) {
    if (environment_has(p, "RANK=1")) rank1 = p;
    if (environment_has(p, "RANK=0")) rank0 = p;
  }
  ASSERT_GT(rank1, 0);
  ASSERT_GT(rank0, 0);
  kill(rank1, SIGKILL);
  int status = 0;
  pid_t waited = 0;
  for (int i = 0; i < 3000 && (waited = waitpid(launcher, &status, WNOHANG)) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (waited != launcher) {
    kill(launcher, SIGKILL);
    waitpid(launcher, &status, 0);
    FAIL() << "the launcher did not stop within 30 s";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  const std::string message = read_file_text(err);
  EXPECT_NE(message.find("rank 1 (pid " + std::to_string(rank1) + ") was killed by signal 9"), std::string::npos)
      << message;
  EXPECT_NE(message.find("data-parallel run of 2 workers failed"), std::string::npos) << message;
  EXPECT_NE(kill(rank0, 0), 0) << "rank 0 outlived the launcher";

  // --resume continues the run from its last checkpoint, two steps further.
  const std::string ckpt = latest_checkpoint(out);
  ASSERT_FALSE(ckpt.empty());
  const int64_t step = std::stoll(ckpt.substr(ckpt.rfind("step-") + 5));
  std::string resume = "train --nproc 2 --resume";
  for (size_t i = 2; i < args.size(); ++i) {
    resume += " '" + (args[i] == "train.steps=100000" ? "train.steps=" + std::to_string(step + 2) : args[i]) + "'";
  }
  const auto resumed = test::run_iflame(resume);
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("resumed from " + ckpt), std::string::npos) << resumed.out;
  EXPECT_TRUE(std::filesystem::exists(out + "/step-" + std::string(8 - std::to_string(step + 2).size(), '0') +
                                      std::to_string(step + 2) + "/state.json"));

  // Flags that contradict --nproc are usage errors.
  const auto bad = test::run_iflame("train --nproc 2 --rank 1 --data '" + data + "'");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("--nproc starts its own ranks"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace iflame
