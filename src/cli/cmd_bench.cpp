// iflame bench COMMAND: dispatches to the benchmarks (src/bench/, one file per benchmark).
#include <algorithm>
#include <cstdio>
#include <string>

#include "bench/bench.h"
#include "cli/commands.h"
#include "util/error.h"

namespace iflame::cli {

namespace {

// One row per benchmark: its name, what it measures, its command (src/bench/).
struct Benchmark {
  const char* name;
  const char* what;
  int (*run)(int argc, char** argv);
};
const Benchmark kBenchmarks[] = {
    {"train", "training throughput, peak memory and MFU of iFlame vs the full/linear baselines", bench::run_train_command},
    {"decode", "cached decoding: cache bytes per sequence and tokens/s of iFlame vs the baselines",
     bench::run_decode_command},
    {"matmul", "this CPU's bf16 / fp32 matmul rate (the MFU denominator)", bench::run_matmul_command},
    {"attention", "the causal full-attention kernels alone (flash, tiled, naive), forward and backward",
     bench::run_attention_command},
    {"chamfer", "the pairwise Chamfer matrix of `iflame eval` (per SIMD kernel)", bench::run_chamfer_command},
    {"serve", "`iflame serve` under 1..64 concurrent clients vs `iflame sample --batch 16`", bench::run_serve_command},
    {"paper", "the paper's five comparisons (throughput, cache, training speed and memory, quality)",
     bench::run_paper_command},
};

}  // namespace

int run_bench(int argc, char** argv) {
  std::string usage = "usage: iflame bench COMMAND [options]   (iflame bench COMMAND --help for details)\n\ncommands:\n";
  std::string names;
  for (const Benchmark& b : kBenchmarks) {
    usage += "  " + std::string(b.name) + std::string(std::max<size_t>(11 - std::string(b.name).size(), 1), ' ') + b.what + "\n";
    names += (names.empty() ? "" : ", ") + std::string(b.name);
  }
  if (argc < 1 || std::string(argv[0]) == "--help" || std::string(argv[0]) == "-h") {
    std::printf("%s", usage.c_str());
    return argc < 1 ? 2 : 0;
  }
  const std::string sub = argv[0];
  for (const Benchmark& b : kBenchmarks) {
    if (sub == b.name) return b.run(argc - 1, argv + 1);
  }
  throw Error("bench: unknown benchmark '" + sub + "' (expected one of " + names + ")");
}

}  // namespace iflame::cli
