// iflame bench matmul: this CPU's matmul rate with torch::matmul (the MFU denominator), square
// and at the shapes the `ref` model runs.
#include <algorithm>

#include "bench/bench.h"
#include "kernels/threads.h"
#include "util/args.h"
#include "util/error.h"
#include "util/report.h"

namespace iflame::bench {

using nlohmann::json;


int run_matmul_command(int argc, char** argv) {
  std::string sizes = "2048", shapes = "all", format = "md", out_path;
  int64_t reps = 5, threads = 0;
  ArgParser args("bench matmul",
                 "Measures this CPU's matmul rate with torch::matmul, best of --reps: square N x N x N in bf16\n"
                 "and fp32 (the MFU denominator of `bench train` is the best bf16 square rate), and the\n"
                 "shapes the `ref` model runs at 800 faces (projections, SwiGLU, attention tiles).");
  args.option("sizes", &sizes, "square sizes, comma-separated")
      .option("shapes", &shapes, "square | model | all")
      .option("reps", &reps, "timed repetitions per shape (after one warm-up)")
      .option("threads", &threads, "LibTorch threads (0: every CPU)")
      .option("format", &format, "md | json (one line)")
      .option("out", &out_path, "also write the output to this file");
  if (!args.parse(argc, argv)) return 0;
  if (shapes != "square" && shapes != "model" && shapes != "all") throw Error("--shapes must be square, model or all");
  if (format != "md" && format != "json") throw Error("--format must be md or json");
  if (threads <= 0) threads = hardware_threads();
  set_compute_threads(threads);

  std::vector<MatmulResult> results;
  double peak_bf16 = 0, peak_fp32 = 0;
  for (bool bf16 : {true, false}) {
    if (shapes != "model") {
      for (const int64_t n : int_list(sizes, "--sizes", 1)) {
        results.push_back(measure_matmul("square " + std::to_string(n), 1, n, n, n, bf16, reps));
        double& peak = bf16 ? peak_bf16 : peak_fp32;
        peak = std::max(peak, results.back().best_gflops);
      }
    }
    if (shapes != "square") {
      // ref (E = 512, hidden 1365, H = 16, D = 32) at 800 faces: 7218 tokens, attention tiles of 256.
      results.push_back(measure_matmul("q/k/v/out proj 7218x512x512", 1, 7218, 512, 512, bf16, reps));
      results.push_back(measure_matmul("SwiGLU up 7218x512x1365", 1, 7218, 512, 1365, bf16, reps));
      results.push_back(measure_matmul("SwiGLU down 7218x1365x512", 1, 7218, 1365, 512, bf16, reps));
      results.push_back(measure_matmul("attn tile QK^T 16x(256x32x256)", 16, 256, 32, 256, bf16, reps));
      results.push_back(measure_matmul("attn tile Q(K^T view) 16x(256x32x256)", 16, 256, 32, 256, bf16, reps, true));
      results.push_back(measure_matmul("attn tile PV 16x(256x256x32)", 16, 256, 256, 32, bf16, reps));
      results.push_back(measure_matmul("linear chunk Q(K^T view) 1808x(64x32x64)", 1808, 64, 32, 64, bf16, reps, true));
      results.push_back(measure_matmul("linear chunk (QK^T)V 1808x(64x64x32)", 1808, 64, 64, 32, bf16, reps));
    }
  }

  if (format == "json") {
    json rows = json::array();
    for (const auto& r : results) {
      rows.push_back({{"name", r.name}, {"batch", r.batch}, {"m", r.m}, {"k", r.k}, {"n", r.n}, {"dtype", r.dtype},
                      {"best_gflops", r.best_gflops}, {"mean_gflops", r.mean_gflops}});
    }
    json j = {{"machine", machine_facts(threads)}, {"reps", reps}, {"results", rows}};
    if (peak_bf16 > 0) j["peak_bf16_gflops"] = peak_bf16;
    if (peak_fp32 > 0) j["peak_fp32_gflops"] = peak_fp32;
    emit(j.dump() + "\n", out_path);
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : results) {
    rows.push_back({r.name, r.dtype, fmt("%.1f", r.best_gflops), fmt("%.1f", r.mean_gflops)});
  }
  std::string text = "iflame bench matmul: " + cpu_model() + ", " + std::to_string(threads) + " threads, LibTorch " +
                     libtorch_version() + ", " + today() + ", best/mean of " + std::to_string(reps) + "\n\n" +
                     markdown_table({"shape (batch x (m x k x n))", "dtype", "best GFLOP/s", "mean GFLOP/s"}, rows);
  emit(text, out_path);
  return 0;
}

}  // namespace iflame::bench
