// The CPU's (or GPU's) measured matmul rate: the denominator of MFU, measured by the trainer at
// start and by `iflame bench matmul`. Torch-free header.
#pragma once
#include <cstdint>
#include <string>

namespace iflame {

// Matmul rate: torch::matmul of (m x k) @ (k x n) (batched when batch > 1), best of `reps`.
struct MatmulResult {
  std::string name;
  int64_t batch, m, k, n;
  std::string dtype;  // "bf16" | "fp32"
  double best_gflops = 0, mean_gflops = 0;
};
// With `transposed_b`, b is the transpose of a contiguous (n x k) tensor (as q k^T is).
MatmulResult measure_matmul(const std::string& name, int64_t batch, int64_t m, int64_t k, int64_t n, bool bf16,
                            int64_t reps, bool transposed_b = false);

}  // namespace iflame
