#include "train/matmul_rate.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "model/torch_compat.h"

namespace iflame {

using torch::Tensor;
using Clock = std::chrono::steady_clock;

MatmulResult measure_matmul(const std::string& name, int64_t batch, int64_t m, int64_t k, int64_t n, bool bf16,
                            int64_t reps, bool transposed_b) {
  auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
  std::vector<int64_t> a_shape = {m, k}, b_shape = {k, n};
  if (transposed_b) b_shape = {n, k};
  if (batch > 1) a_shape.insert(a_shape.begin(), batch), b_shape.insert(b_shape.begin(), batch);
  Tensor a = torch::randn(a_shape).to(dtype), b = torch::randn(b_shape).to(dtype);
  if (transposed_b) b = b.transpose(-2, -1);
  torch::NoGradGuard no_grad;
  Tensor c = torch::matmul(a, b);  // warm-up (and oneDNN primitive creation)
  // Small shapes repeat inside one timing so that each timing spans at least ~50 ms.
  auto t_cal = Clock::now();
  c = torch::matmul(a, b);
  const double one = std::chrono::duration<double>(Clock::now() - t_cal).count();
  const int64_t inner = std::max<int64_t>(1, int64_t(0.05 / std::max(one, 1e-7)));
  const double flops = 2.0 * double(batch) * double(m) * double(k) * double(n) * double(inner);
  MatmulResult r{name, batch, m, k, n, bf16 ? "bf16" : "fp32", 0, 0};
  double total_s = 0;
  for (int64_t i = 0; i < std::max<int64_t>(reps, 1); ++i) {
    auto t0 = Clock::now();
    for (int64_t j = 0; j < inner; ++j) c = torch::matmul(a, b);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    total_s += s;
    r.best_gflops = std::max(r.best_gflops, flops / s * 1e-9);
  }
  r.mean_gflops = flops * double(std::max<int64_t>(reps, 1)) / total_s * 1e-9;
  return r;
}

}  // namespace iflame
