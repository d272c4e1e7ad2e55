#include "train/distributed.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

// c10d's Gloo group is compiled only with USE_C10D_GLOO (as LibTorch itself was); the Gloo
// headers it includes come from libgloo-dev.
#if __has_include(<gloo/config.h>)
#define IFLAME_HAVE_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(IFLAME_WITH_NCCL)  // CUDA builds: configure with -DCMAKE_CXX_FLAGS=-DIFLAME_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "util/error.h"

extern char** environ;

namespace iflame {

using torch::Tensor;

namespace {

// Waiting for every rank to join (multi-host starts can be slow), at most.
constexpr int64_t kMaxStoreTimeoutS = 10 * 60;

void check_timeout(int64_t timeout_s) {
  if (timeout_s < 1 || timeout_s > 7 * 24 * 3600) {
    throw Error("IFLAME_DIST_TIMEOUT must be 1 to 604800 seconds, got " + std::to_string(timeout_s));
  }
}

std::chrono::milliseconds store_timeout(int64_t timeout_s) {
  return std::chrono::milliseconds(1000 * std::min(timeout_s, kMaxStoreTimeoutS));
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end) throw Error(std::string("environment variable ") + name + " must be an integer, got '" + v + "'");
  return x;
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

void DistOptions::read_environment() {
  rank = env_int("RANK", rank);
  world_size = env_int("WORLD_SIZE", world_size);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) master_addr = a;
  master_port = env_int("MASTER_PORT", master_port);
  local_world_size = env_int("LOCAL_WORLD_SIZE", local_world_size);
  local_rank = env_int("LOCAL_RANK", local_rank);
  store_served_by_launcher = env_int("IFLAME_STORE_SERVED_BY_LAUNCHER", store_served_by_launcher ? 1 : 0) != 0;
  timeout_s = env_int("IFLAME_DIST_TIMEOUT", timeout_s);
}

void DistOptions::validate() const {
  if (world_size < 1) throw Error("world size must be at least 1, got " + std::to_string(world_size));
  if (rank < 0 || rank >= world_size) {
    throw Error("rank " + std::to_string(rank) + " is outside 0.." + std::to_string(world_size - 1));
  }
  check_timeout(timeout_s);
  if (master_port < 0 || master_port > 65535) throw Error("master port " + std::to_string(master_port) + " is not a port");
  if (local_world_size < 1) throw Error("LOCAL_WORLD_SIZE must be at least 1");
  if (local_rank >= local_world_size) {
    throw Error("LOCAL_RANK " + std::to_string(local_rank) + " is outside 0.." + std::to_string(local_world_size - 1));
  }
}

int64_t worker_threads(int64_t threads, int64_t local_world_size) {
  if (threads <= 0) threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  return std::max<int64_t>(1, threads / std::max<int64_t>(local_world_size, 1));
}

// ---------------------------------------------------------------------------------------

struct Distributed::Group {
  c10::intrusive_ptr<c10d::Store> store;
#ifdef IFLAME_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#ifdef IFLAME_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif

  // Runs `f(process_group)` on whichever backend this group uses (their common base class
  // differs between LibTorch versions, so it is never named).
  template <typename F>
  void with(F&& f) {
#ifdef IFLAME_WITH_NCCL
    if (nccl) return f(*nccl);
#endif
#ifdef IFLAME_HAVE_GLOO
    if (gloo) return f(*gloo);
#endif
    throw Error("distributed: no process group");
  }
};

Distributed::Distributed(const DistOptions& options) : options_(options) {
  options_.validate();
  if (!options_.distributed()) return;
  group_ = std::make_unique<Group>();
  c10d::TCPStoreOptions so;
  so.port = uint16_t(options_.master_port);
  so.isServer = options_.rank == 0 && !options_.store_served_by_launcher;
  so.numWorkers = size_t(options_.world_size);
  so.waitWorkers = false;  // the process group's rendezvous waits for every rank
  so.timeout = store_timeout(options_.timeout_s);
  try {
    group_->store = c10::make_intrusive<c10d::TCPStore>(options_.master_addr, so);
  } catch (const std::exception& e) {
    throw Error("distributed: rank " + std::to_string(options_.rank) + " cannot reach the store at " +
                options_.master_addr + ":" + std::to_string(options_.master_port) + ": " + e.what());
  }
  try {
    if (options_.cuda) {
#ifdef IFLAME_WITH_NCCL
      // The collectives' timeout, as Gloo's below (Options::timeout in LibTorch 1.13 and 2.x).
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = std::chrono::milliseconds(1000 * options_.timeout_s);
      group_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(group_->store, int(options_.rank),
                                                                int(options_.world_size), no);
      return;
#else
      throw Error("distributed: CUDA tensors need NCCL; rebuild with -DCMAKE_CXX_FLAGS=-DIFLAME_WITH_NCCL");
#endif
    }
#ifdef IFLAME_HAVE_GLOO
    auto go = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(1000 * options_.timeout_s));
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (is_loopback(options_.master_addr)) {
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    go->threads = 2;
    group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, int(options_.rank),
                                                              int(options_.world_size), go);
#else
    throw Error("distributed: this build has no Gloo (install libgloo-dev and rebuild)");
#endif
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("distributed: rank " + std::to_string(options_.rank) + " could not join the process group: " + e.what());
  }
}

Distributed::~Distributed() = default;

const char* Distributed::backend() const {
  if (!group_) return "none";
#ifdef IFLAME_WITH_NCCL
  if (group_->nccl) return "nccl";
#endif
  return "gloo";
}

void Distributed::all_reduce_sum(Tensor& t) {
  if (!group_) return;
  std::vector<Tensor> ts{t};
  c10d::AllreduceOptions o;
  o.reduceOp = c10d::ReduceOp::SUM;
  group_->with([&](auto& pg) { pg.allreduce(ts, o)->wait(); });
}

void Distributed::broadcast(Tensor& t, int64_t root) {
  if (!group_) return;
  std::vector<Tensor> ts{t};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  group_->with([&](auto& pg) { pg.broadcast(ts, o)->wait(); });
}

void Distributed::barrier() {
  if (!group_) return;
  group_->with([&](auto& pg) { pg.barrier()->wait(); });
}

namespace {

// Consecutive runs of tensors of one dtype and device, about `bucket_bytes` each.
std::vector<std::vector<size_t>> make_buckets(const std::vector<Tensor>& ts, int64_t bucket_bytes) {
  std::vector<std::vector<size_t>> buckets;
  int64_t bytes = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const int64_t b = ts[i].numel() * int64_t(ts[i].element_size());
    const bool fits = !buckets.empty() && bytes + b <= bucket_bytes &&
                      ts[buckets.back().front()].scalar_type() == ts[i].scalar_type() &&
                      ts[buckets.back().front()].device() == ts[i].device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(i);
    bytes += b;
  }
  return buckets;
}

}  // namespace

void Distributed::broadcast_coalesced(const std::vector<Tensor>& tensors, int64_t bucket_bytes) {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  for (const auto& bucket : make_buckets(tensors, bucket_bytes)) {
    std::vector<Tensor> parts;
    for (size_t i : bucket) parts.push_back(tensors[i].detach().reshape({-1}));
    Tensor flat = torch::cat(parts);  // (sum numel,)
    broadcast(flat);
    int64_t off = 0;
    for (size_t i : bucket) {
      const int64_t n = tensors[i].numel();
      tensors[i].detach().copy_(flat.narrow(0, off, n).view(tensors[i].sizes()));
      off += n;
    }
  }
}

void Distributed::all_reduce_gradients(const std::vector<Tensor>& params, int64_t bucket_bytes) {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  // Which parameters have a gradient on some rank (a rank whose shard of a step was empty
  // ran no backward at all).
  Tensor defined = torch::zeros({int64_t(params.size())}, torch::kFloat);
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i].grad().defined()) defined[int64_t(i)] = 1.0f;
  }
  all_reduce_sum(defined);
  auto def = defined.accessor<float, 1>();
  std::vector<Tensor> grads;
  std::vector<size_t> owner;
  for (size_t i = 0; i < params.size(); ++i) {
    if (def[int64_t(i)] == 0) continue;
    Tensor p = params[i];
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
    owner.push_back(i);
  }
  for (const auto& bucket : make_buckets(grads, bucket_bytes)) {
    std::vector<Tensor> parts;
    for (size_t j : bucket) parts.push_back(grads[j].reshape({-1}));
    Tensor flat = torch::cat(parts);  // (sum numel,)
    all_reduce_sum(flat);
    int64_t off = 0;
    for (size_t j : bucket) {
      const int64_t n = grads[j].numel();
      grads[j].copy_(flat.narrow(0, off, n).view(grads[j].sizes()));
      off += n;
    }
  }
}

// ---------------------------------------------------------------------------------------
// The local launcher.

namespace {

volatile sig_atomic_t g_forward_signal = 0;
void on_signal(int sig) { g_forward_signal = sig; }

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    std::string s = "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    if (sig == SIGKILL) s += ", out of memory?";
    return s;
  }
  return "ended with status " + std::to_string(status);
}

std::string self_exe() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error("/proc/self/exe", "cannot find this executable to start the workers");
  return std::string(buf, size_t(n));
}

}  // namespace

int launch_local_workers(int64_t nproc, const std::vector<std::string>& args, const std::string& master_addr) {
  if (nproc < 1) throw Error("--nproc must be at least 1");
  // The launcher serves the store on a port the kernel picks, so concurrent runs never collide.
  c10d::TCPStoreOptions so;
  so.port = 0;
  so.isServer = true;
  so.waitWorkers = false;
  const int64_t timeout_s = env_int("IFLAME_DIST_TIMEOUT", DistOptions{}.timeout_s);
  check_timeout(timeout_s);
  so.timeout = store_timeout(timeout_s);
  auto store = c10::make_intrusive<c10d::TCPStore>(master_addr, so);
  const int port = store->getPort();
  if (port <= 0) throw Error("distributed: the launcher could not open a port for the store");
  const std::string exe = self_exe();

  // Everything the children need is built before fork (only exec after it).
  std::vector<std::string> base_env;
  const char* overridden[] = {"RANK=", "WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT=", "LOCAL_RANK=",
                              "LOCAL_WORLD_SIZE=", "IFLAME_STORE_SERVED_BY_LAUNCHER="};
  for (char** e = ::environ; *e; ++e) {
    bool skip = false;
    for (const char* o : overridden) skip = skip || std::strncmp(*e, o, std::strlen(o)) == 0;
    if (!skip) base_env.emplace_back(*e);
  }
  std::vector<std::string> argv_s{exe};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: waitpid returns to forward the signal
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);

  const pid_t launcher = ::getpid();
  std::map<pid_t, int64_t> running;  // pid -> rank
  for (int64_t r = 0; r < nproc; ++r) {
    std::vector<std::string> env_s = base_env;
    env_s.push_back("RANK=" + std::to_string(r));
    env_s.push_back("LOCAL_RANK=" + std::to_string(r));
    env_s.push_back("WORLD_SIZE=" + std::to_string(nproc));
    env_s.push_back("LOCAL_WORLD_SIZE=" + std::to_string(nproc));
    env_s.push_back("MASTER_ADDR=" + master_addr);
    env_s.push_back("MASTER_PORT=" + std::to_string(port));
    env_s.push_back("IFLAME_STORE_SERVED_BY_LAUNCHER=1");
    std::vector<char*> envp;
    for (auto& s : env_s) envp.push_back(s.data());
    envp.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (const auto& [p, rank] : running) ::kill(p, SIGKILL);
      throw Error(std::string("distributed: fork failed: ") + std::strerror(errno));
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a launcher killed with -9 takes its workers along
      if (::getppid() != launcher) _exit(125);
      ::execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    running[pid] = r;
  }

  std::vector<std::string> failures;
  bool stopping = false;
  auto stop_all = [&](int sig) {
    for (const auto& [p, rank] : running) ::kill(p, sig);
  };
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (!running.empty()) {
    if (g_forward_signal) {
      const int sig = g_forward_signal;
      g_forward_signal = 0;
      if (!stopping) failures.push_back("the launcher got signal " + std::to_string(sig));
      stopping = true;
      stop_all(sig);
      deadline = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(10));
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: nothing left
    }
    if (pid == 0) {  // stopping: poll until the workers are gone, then force it
      if (std::chrono::steady_clock::now() > deadline) {
        stop_all(SIGKILL);
        deadline = std::chrono::steady_clock::time_point::max();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const int64_t rank = it->second;
    running.erase(it);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) continue;
    // Workers the launcher stopped itself are not failures of their own.
    const bool stopped_by_us = stopping && WIFSIGNALED(status) && (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL);
    if (!stopped_by_us) failures.push_back("rank " + std::to_string(rank) + " (pid " + std::to_string(pid) + ") " + describe_status(status));
    if (!stopping) {
      std::fprintf(stderr, "train: worker %s; stopping the other workers\n", failures.back().c_str());
      stopping = true;
      stop_all(SIGTERM);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (failures.empty()) return 0;
  std::string msg = failures.front();
  for (size_t i = 1; i < failures.size(); ++i) msg += "; then " + failures[i];
  std::fprintf(stderr, "train: data-parallel run of %lld workers failed: %s\n", (long long)nproc, msg.c_str());
  return 1;
}

}  // namespace iflame
