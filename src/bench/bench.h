// Benchmarks on this machine (`iflame bench ...`): their own library (iflame_bench), above
// everything they measure and below the CLI. Torch-free header (the CLI includes it without
// LibTorch's headers).
//
//   (FLOP counts live in model/flops.h, the matmul rate in train/matmul_rate.h: the trainer
//   reports MFU with them, and it sits below the benchmarks)
//   train.cpp    one configuration's training steps, run in-process by a child (`--child`)
//   process.cpp  re-executing the binary as an isolated child, reading its JSON and peak memory
//
// Peak memory of a configuration is only meaningful in a fresh process, so the parent
// (`iflame bench train`) spawns one child per (arch, faces) and one idle child per arch that
// only builds the model; "activation" memory = child peak - idle peak.
#pragma once
#include <cstdint>
#include <functional>
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

// The environment of a benchmark child: `threads` for OpenMP / OpenBLAS / MKL, OMP_WAIT_POLICY
// from `omp_wait` ("passive" | "active").
std::map<std::string, std::string> child_environment(int64_t threads, const std::string& omp_wait);
// Makes this process the out-of-memory killer's first choice, so that a configuration that
// does not fit takes down the benchmark child and nothing else on a shared machine.
void prefer_oom_kill();
// The child side of every benchmark that runs its configurations in child processes: prefers
// the OOM killer, runs `measure` and prints its JSON as one line on stdout (run_child's
// ChildResult::json), or {"error": ...} and returns 1 when it throws.
int run_as_child(const std::function<nlohmann::json()>& measure);

// The machine a benchmark ran on, for its JSON output: CPU, CPUs, threads used, memory,
// LibTorch, date.
nlohmann::json machine_facts(int64_t threads);

// ---------------------------------------------------------------------------------------
// The commands, one file each: `iflame bench NAME` (src/cli/cmd_bench.cpp dispatches).
int run_train_command(int argc, char** argv);      // train_command.cpp: training speed, memory, MFU
int run_decode_command(int argc, char** argv);     // decode.cpp: cache bytes and decoding speed
int run_matmul_command(int argc, char** argv);     // matmul.cpp: the MFU denominator
int run_attention_command(int argc, char** argv);  // attention.cpp: the causal attention kernels alone
int run_chamfer_command(int argc, char** argv);    // chamfer.cpp: the Chamfer matrix of `iflame eval`
int run_serve_command(int argc, char** argv);      // serve.cpp: `iflame serve` under concurrent clients
int run_paper_command(int argc, char** argv);      // paper.cpp: the paper's five comparisons

}  // namespace iflame::bench
