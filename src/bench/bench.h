// Benchmarks of the model on this machine (`iflame bench ...`). Torch-free header (the CLI
// includes it without LibTorch's headers).
//
//   (FLOP counts live in model/flops.h, the matmul rate in train/matmul_rate.h: the trainer
//   reports MFU with them, and it sits below the benchmarks)
//   train      one configuration's training steps, run in-process by a child (`--child`)
//   process    re-executing the binary as an isolated child and reading its peak memory
//
// Peak memory of a configuration is only meaningful in a fresh process, so the parent
// (`iflame bench train`) spawns one child per (arch, faces) and one idle child per arch that
// only builds the model; "activation" memory = child peak - idle peak.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/flops.h"
#include "train/matmul_rate.h"

namespace iflame::bench {

// ---------------------------------------------------------------------------------------
// One training configuration, run in this process (the child side of `bench train`).
struct TrainSpec {
  std::string size = "ref";
  Arch arch = Arch::IFlame;
  int64_t faces = 800;
  int64_t batch = 1;
  int64_t steps = 3;
  int64_t warmup = 1;
  bool bf16 = true;
  int64_t dim = 0, heads = 0;  // width and heads instead of the preset's (0: the preset's)
  // The step after forward + loss + backward: "adamw" (torch's AdamW), "muon" (iflame train's
  // optimizer: gradient clipping, then Muon for matrices + AdamW for the rest) or "none".
  std::string optimizer = "adamw";
  int64_t threads = 0;    // <= 0: every hardware thread
  bool idle = false;      // only build the model (the memory baseline)
  bool profile = false;   // also time each block kind's parts in isolation
  Recompute recompute = Recompute::None;  // blocks that recompute their activations in backward
  bool glibc_malloc = false;  // leave glibc's malloc settings (default: keep_freed_memory(), as training does)
  uint64_t seed = 1;

  int64_t tokens() const { return (faces + 2) * 9; }  // 9 BOS + 9 per face + 9 EOS
  ModelConfig model() const;  // the preset of `size` and `arch`, with dim and heads applied
};

// Runs the configuration and returns one JSON object (see docs/benchmarks.md for the fields).
nlohmann::json run_train(const TrainSpec& spec);
// The arguments (after the executable) that make `iflame bench train --child ...` run `spec`.
std::vector<std::string> child_arguments(const TrainSpec& spec);

// Rough peak resident memory of a configuration in bytes (model, gradients, optimizer state,
// activations), calibrated on measurements; used to skip what clearly cannot fit.
double estimate_peak_bytes(const ModelConfig& config, const TrainSpec& spec);

// ---------------------------------------------------------------------------------------
// Processes and machine facts.
struct ChildResult {
  bool ok = false;                // exited 0 and printed a JSON line
  nlohmann::json json;            // the child's last JSON line
  std::string error;              // why not ok ("killed by signal 9 (out of memory?)", ...)
  int64_t rusage_maxrss_kb = 0;   // wait4's ru_maxrss (includes the parent's peak at spawn time)
  double wall_s = 0;
};
// Runs `exe args...` with stdout captured (stderr passes through), `env` added to the
// environment (an empty value removes the variable); kills it after `timeout_s` (0: no limit).
ChildResult run_child(const std::string& exe, const std::vector<std::string>& args,
                      const std::map<std::string, std::string>& env, double timeout_s);
std::string self_executable();

int64_t hardware_threads();
int64_t current_rss_kb();    // VmRSS
int64_t peak_rss_kb();       // VmHWM
int64_t available_memory_kb();  // MemAvailable
int64_t total_memory_kb();      // MemTotal
std::string cpu_model();
std::string load_average();    // "/proc/loadavg" 1, 5 and 15 minute values

std::string libtorch_version();
// Threads for LibTorch (intra-op) and OpenMP; interop pinned to 1.
void set_threads(int64_t threads);

// The environment of a benchmark child: `threads` for OpenMP / OpenBLAS / MKL, OMP_WAIT_POLICY
// from `omp_wait` ("passive" | "active").
std::map<std::string, std::string> child_environment(int64_t threads, const std::string& omp_wait);
// Makes this process the out-of-memory killer's first choice, so that a configuration that
// does not fit takes down the benchmark child and nothing else on a shared machine.
void prefer_oom_kill();

// `iflame bench paper` (paper.cpp): the paper's five comparisons (spec section 5) of iFlame vs
// full and linear in one run: a Markdown table with the paper's numbers next to ours and a PNG.
int run_paper_command(int argc, char** argv);

// `iflame bench attention` (attention.cpp): the causal full-attention kernels alone, forward and
// backward, side by side.
int run_attention_command(int argc, char** argv);

}  // namespace iflame::bench
