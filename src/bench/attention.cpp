// `iflame bench attention`: the causal full-attention kernels alone, forward and backward, side
// by side in one process (interleaved repetitions, best of each), at the shapes the model runs.
#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "kernels/threads.h"
#include "model/kernels.h"
#include "util/args.h"
#include "kernels/cpu_isa.h"
#include "util/error.h"
#include "util/measure.h"
#include "util/memory.h"
#include "util/report.h"

namespace iflame::bench {

namespace {

using torch::Tensor;

// Runs `kernel` once forward and once backward; returns their milliseconds.
std::pair<double, double> time_kernel(const std::string& kernel, const std::array<Tensor, 3>& qkv, const Tensor& grad) {
  Tensor q = qkv[0].detach().requires_grad_(), k = qkv[1].detach().requires_grad_(),
         v = qkv[2].detach().requires_grad_();
  const cpu::Isa isa = cpu::active_isa();
  if (kernel == "flash-generic") cpu::set_isa(cpu::Isa::Generic);
  if (kernel == "flash-avx512") cpu::set_isa(std::min(isa, cpu::Isa::Avx512));
  if (kernel == "flash-avx2") cpu::set_isa(std::min(isa, cpu::Isa::Avx2));
  const auto t0 = std::chrono::steady_clock::now();
  Tensor out = kernel == "tiled"   ? kernels::causal_attention_tiled(q, k, v)
               : kernel == "naive" ? kernels::causal_attention_naive(q, k, v)
                                   : kernels::causal_attention_flash(q, k, v);
  const double fwd = ms_since(t0);
  const auto t1 = std::chrono::steady_clock::now();
  out.backward(grad);
  const double bwd = ms_since(t1);
  cpu::set_isa(isa);
  return {fwd, bwd};
}

}  // namespace

int run_attention_command(int argc, char** argv) {
  std::string tokens = "7218", kernels_arg = "flash,tiled", dtype = "bf16", format = "md", out_path;
  int64_t batch = 1, heads = 16, head_dim = 32, reps = 3, threads = 0, seed = 1;
  ArgParser args("bench attention",
                 "Times causal full attention alone, forward and backward, for each kernel, side by side in one\n"
                 "process: --reps interleaved rounds, the best of each kept. Defaults: the `ref` model's token\n"
                 "level at 800 faces (B = 1, H = 16, D = 32, T = 7218). GFLOP/s count the multiply-adds of the\n"
                 "causal half (forward 4 B H D T(T+1)/2; backward 2.5 times that). Freed memory stays in the\n"
                 "heap, as in `iflame train`.");
  args.option("tokens", &tokens, "sequence lengths T, comma-separated")
      .option("batch", &batch, "B")
      .option("heads", &heads, "H")
      .option("head-dim", &head_dim, "D")
      .option("dtype", &dtype, "bf16 | fp32 (the inputs' dtype; bf16 is what autocast gives the kernel)")
      .option("kernels", &kernels_arg,
              "comma-separated: flash (the fused CPU kernel, best instruction set: bf16 inputs use VDPBF16PS\n"
              "where the CPU has AVX512-BF16), flash-avx512 (at most AVX-512: float arithmetic), flash-avx2 (at\n"
              "most AVX2 + FMA), flash-generic (its portable C++), tiled (tensor ops), naive (materializes T x T)")
      .option("reps", &reps, "rounds")
      .option("threads", &threads, "LibTorch threads (0: every CPU)")
      .option("seed", &seed, "random seed for q, k, v")
      .option("format", &format, "md | json (one line)")
      .option("out", &out_path, "also write the output to this file");
  if (!args.parse(argc, argv)) return 0;
  if (dtype != "bf16" && dtype != "fp32") throw Error("bench attention: --dtype must be bf16 or fp32");
  if (format != "md" && format != "json") throw Error("bench attention: --format must be md or json");
  if (batch < 1 || heads < 1 || head_dim < 1 || reps < 1) {
    throw Error("bench attention: --batch, --heads, --head-dim and --reps must be >= 1");
  }
  const std::vector<int64_t> lengths = int_list(tokens, "--tokens", 1);
  const std::vector<std::string> kernel_list = split_commas(kernels_arg);
  for (const auto& k : kernel_list) {
    if (k != "flash" && k != "flash-avx512" && k != "flash-avx2" && k != "flash-generic" && k != "tiled" &&
        k != "naive") {
      throw Error("bench attention: unknown kernel '" + k +
                  "' (expected flash, flash-avx512, flash-avx2, flash-generic, tiled or naive)");
    }
  }
  if (kernel_list.empty()) throw Error("bench attention: --kernels names no kernel");
  if (threads <= 0) threads = hardware_threads();
  set_compute_threads(threads);
  keep_freed_memory();  // as in training, so that no kernel pays page faults for its temporaries
  const auto type = dtype == "bf16" ? torch::kBFloat16 : torch::kFloat;

  nlohmann::json rows = nlohmann::json::array();
  std::vector<std::vector<std::string>> table;
  for (int64_t T : lengths) {
    torch::manual_seed(uint64_t(seed));
    std::array<Tensor, 3> qkv;
    for (auto& x : qkv) x = torch::randn({batch, heads, T, head_dim}).to(type);
    const Tensor grad = torch::randn({batch, heads, T, head_dim}).to(type);
    const double fwd_flops = 4.0 * double(batch * heads * head_dim) * double(T) * double(T + 1) / 2.0;
    std::vector<std::pair<double, double>> best(kernel_list.size(), {std::numeric_limits<double>::infinity(),
                                                                     std::numeric_limits<double>::infinity()});
    for (int64_t r = 0; r < reps; ++r) {
      for (size_t i = 0; i < kernel_list.size(); ++i) {
        const auto [fwd, bwd] = time_kernel(kernel_list[i], qkv, grad);
        best[i] = {std::min(best[i].first, fwd), std::min(best[i].second, bwd)};
      }
    }
    const double base = best[0].first + best[0].second;
    for (size_t i = 0; i < kernel_list.size(); ++i) {
      const auto [fwd, bwd] = best[i];
      const double fwd_gflops = fwd_flops / fwd * 1e-6, bwd_gflops = 2.5 * fwd_flops / bwd * 1e-6;
      rows.push_back({{"tokens", T}, {"kernel", kernel_list[i]}, {"dtype", dtype}, {"fwd_ms", fwd}, {"bwd_ms", bwd},
                      {"fwd_gflops", fwd_gflops}, {"bwd_gflops", bwd_gflops}, {"speed_vs_first", base / (fwd + bwd)}});
      table.push_back({std::to_string(T), kernel_list[i], dtype, fmt("%.1f", fwd), fmt("%.1f", bwd), fmt("%.1f", fwd + bwd),
                       fmt("%.1f", fwd_gflops), fmt("%.1f", bwd_gflops), fmt("%.2fx", base / (fwd + bwd))});
    }
  }

  const std::string isa = cpu::isa_name(cpu::active_isa());
  std::string text;
  if (format == "json") {
    nlohmann::json j = {{"cpu", cpu_model()}, {"threads", threads}, {"libtorch", libtorch_version()}, {"isa", isa},
                        {"batch", batch}, {"heads", heads}, {"head_dim", head_dim}, {"reps", reps}, {"rows", rows}};
    text = j.dump() + "\n";
  } else {
    text = "iflame bench attention: " + cpu_model() + ", " + std::to_string(threads) + " threads, LibTorch " +
           libtorch_version() + ", " + today() + "\nB = " + std::to_string(batch) + ", H = " + std::to_string(heads) +
           ", D = " + std::to_string(head_dim) + ", causal, best of " + std::to_string(reps) +
           " interleaved rounds; flash kernel instruction set: " + isa + "\n\n" +
           markdown_table({"tokens", "kernel", "dtype", "fwd ms", "bwd ms", "fwd+bwd ms", "fwd GFLOP/s", "bwd GFLOP/s",
                           "speed vs " + kernel_list[0]},
                          table);
  }
  emit(text, out_path);
  return 0;
}

}  // namespace iflame::bench
