// The fused RMSNorm against the composite form, forward and backward, for float32 and bfloat16,
// row widths that are and are not multiples of the kernel's 16 lanes, and any thread count.
#include "model/rms_norm.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

namespace iflame {
namespace {

using torch::Tensor;

struct Result {
  Tensor y, dx, dw;
};

Result run(bool fused, const Tensor& x0, const Tensor& w0, const Tensor& g) {
  Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
  Tensor y = fused ? kernels::rms_norm(x, w, 1e-5) : kernels::rms_norm_reference(x, w, 1e-5);
  y.backward(g);
  return {y.detach(), x.grad(), w.grad()};
}

double max_rel(const Tensor& a, const Tensor& b) {
  const Tensor af = a.to(torch::kDouble), bf = b.to(torch::kDouble);
  return ((af - bf).abs().max() / bf.abs().max().clamp_min(1e-30)).item<double>();
}

TEST(RmsNorm, FusedMatchesTheCompositeFormForwardAndBackward) {
  torch::manual_seed(3);
  const std::vector<std::vector<int64_t>> shapes = {{1, 1, 8}, {2, 7, 128}, {3, 130}, {1000, 64}, {5, 3, 17}};
  for (const auto& shape : shapes) {
    const int64_t E = shape.back();
    const Tensor x = torch::randn(shape) * 3, w = torch::rand({E}) + 0.5, g = torch::randn(shape);
    for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
      const Result a = run(true, x.to(dtype), w, g.to(dtype)), b = run(false, x.to(dtype), w, g.to(dtype));
      ASSERT_EQ(a.y.scalar_type(), dtype);
      ASSERT_EQ(a.dx.scalar_type(), dtype);
      ASSERT_EQ(a.dw.scalar_type(), torch::kFloat);
      // float32: summation order only; bfloat16: one rounding of the output (2^-8 relative).
      const double tol = dtype == torch::kFloat ? 1e-5 : 1e-2;
      EXPECT_LT(max_rel(a.y, b.y), tol) << shape.size() << " " << E;
      EXPECT_LT(max_rel(a.dx, b.dx), tol) << E;
      EXPECT_LT(max_rel(a.dw, b.dw), dtype == torch::kFloat ? 1e-5 : 2e-2) << E;
    }
  }
}

TEST(RmsNorm, SameBitsAtAnyThreadCount) {
  torch::manual_seed(4);
  const Tensor x = torch::randn({777, 128}), w = torch::rand({128}), g = torch::randn({777, 128});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const Result one = run(true, x, w, g);
  at::set_num_threads(4);
  const Result four = run(true, x, w, g);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one.y, four.y));
  EXPECT_TRUE(torch::equal(one.dx, four.dx));
  EXPECT_TRUE(torch::equal(one.dw, four.dw));
}

TEST(RmsNorm, OtherInputsTakeTheCompositeForm) {
  torch::manual_seed(5);
  const Tensor w = torch::rand({16});
  const Tensor strided = torch::randn({16, 8}).t();  // (8, 16), not contiguous
  EXPECT_TRUE(torch::equal(kernels::rms_norm(strided, w, 1e-5), kernels::rms_norm_reference(strided, w, 1e-5)));
  const Tensor d = torch::randn({4, 16}, torch::kDouble);
  EXPECT_TRUE(torch::equal(kernels::rms_norm(d, w, 1e-5), kernels::rms_norm_reference(d, w, 1e-5)));
}

}  // namespace
}  // namespace iflame
