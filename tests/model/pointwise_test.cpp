// The fused rotary embedding and SwiGLU gate against their composite forms, forward and
// backward, for float32 and bfloat16, on every instruction set this CPU has, at widths that are
// and are not multiples of the kernels' 16 lanes, and at any thread count.
#include "model/pointwise.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "kernels/kernel_test_util.h"

namespace iflame {
namespace {

using torch::Tensor;

// The largest difference relative to b's largest magnitude.
double max_rel(const Tensor& a, const Tensor& b) {
  const Tensor af = a.to(torch::kDouble), bf = b.to(torch::kDouble);
  return ((af - bf).abs().max() / bf.abs().max().clamp_min(1e-30)).item<double>();
}

struct RopeResult {
  Tensor y, dx;
};

// x (B, T, H, D); the composite form works on the attention layout, as the model did before.
RopeResult rope(bool fused, const Tensor& x0, const Tensor& cos, const Tensor& sin, const Tensor& g) {
  Tensor x = x0.clone().requires_grad_(true);
  Tensor y = fused ? kernels::rope_heads(x, cos, sin) : kernels::rope_reference(x.transpose(1, 2), cos, sin);
  y.backward(g);
  return {y.detach(), x.grad()};
}

struct GateResult {
  Tensor y, da, db;
};

GateResult gate(bool fused, const Tensor& a0, const Tensor& b0, const Tensor& g) {
  Tensor a = a0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
  Tensor y = fused ? kernels::swiglu_gate(a, b) : torch::silu(a) * b;
  y.backward(g);
  return {y.detach(), a.grad(), b.grad()};
}

// float32: rounding order only; bfloat16: the composite rounds after every op, the kernel once.
double tolerance(torch::ScalarType dtype) { return dtype == torch::kFloat ? 1e-5 : 2e-2; }

TEST(Pointwise, RopeMatchesTheCompositeFormForwardAndBackward) {
  torch::manual_seed(6);
  const std::vector<std::vector<int64_t>> shapes = {{2, 7, 3, 32}, {1, 5, 2, 12}, {3, 130, 4, 64}, {1, 1, 1, 2}};
  for (const auto isa : isas()) {
    IsaScope scope(isa);
    for (const auto& shape : shapes) {
      const int64_t T = shape[1], D = shape[3];
      const Tensor x = torch::randn(shape) * 2, theta = torch::rand({T, D / 2}) * 6;
      const Tensor cos = theta.cos(), sin = theta.sin(), g = torch::randn({shape[0], shape[2], T, D});
      for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
        const RopeResult a = rope(true, x.to(dtype), cos, sin, g.to(dtype)), b = rope(false, x.to(dtype), cos, sin, g.to(dtype));
        ASSERT_EQ(a.y.sizes(), b.y.sizes());
        ASSERT_EQ(a.y.scalar_type(), dtype);
        ASSERT_EQ(a.dx.sizes(), x.sizes());
        EXPECT_LT(max_rel(a.y, b.y), tolerance(dtype)) << decode::isa_name(isa) << " D=" << D;
        EXPECT_LT(max_rel(a.dx, b.dx), tolerance(dtype)) << decode::isa_name(isa) << " D=" << D;
      }
      // The rotation moved the values: a kernel that copied its input would fail above.
      EXPECT_GT(max_rel(rope(true, x, cos, sin, g).y, x.transpose(1, 2)), 0.1);
    }
  }
}

TEST(Pointwise, SwiGluGateMatchesTheCompositeFormForwardAndBackward) {
  torch::manual_seed(7);
  const std::vector<std::vector<int64_t>> shapes = {{2, 7, 341}, {1000, 64}, {3, 5}, {1, 17}};
  for (const auto isa : isas()) {
    IsaScope scope(isa);
    for (const auto& shape : shapes) {
      // Large |a| too: the sigmoid's exp must saturate, not overflow into NaN.
      const Tensor a = torch::randn(shape) * 4, b = torch::randn(shape), g = torch::randn(shape);
      a.view(-1)[0] = 120.0, a.view(-1)[a.numel() - 1] = -120.0;
      for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
        const GateResult f = gate(true, a.to(dtype), b.to(dtype), g.to(dtype));
        const GateResult c = gate(false, a.to(dtype), b.to(dtype), g.to(dtype));
        ASSERT_EQ(f.y.scalar_type(), dtype);
        EXPECT_LT(max_rel(f.y, c.y), tolerance(dtype)) << decode::isa_name(isa) << " " << shape.back();
        EXPECT_LT(max_rel(f.da, c.da), tolerance(dtype)) << decode::isa_name(isa) << " " << shape.back();
        EXPECT_LT(max_rel(f.db, c.db), tolerance(dtype)) << decode::isa_name(isa) << " " << shape.back();
        EXPECT_FALSE(torch::isnan(f.da).any().item<bool>());
      }
    }
  }
}

TEST(Pointwise, SameBitsAtAnyThreadCount) {
  torch::manual_seed(8);
  const Tensor x = torch::randn({3, 300, 4, 32}), theta = torch::rand({300, 16});
  const Tensor a = torch::randn({300, 341}), b = torch::randn({300, 341});
  const int threads = at::get_num_threads();
  std::vector<Tensor> runs[2];
  for (int i = 0; i < 2; ++i) {
    at::set_num_threads(i == 0 ? 1 : 4);
    runs[i] = {kernels::rope_heads(x, theta.cos(), theta.sin()), kernels::swiglu_gate(a, b)};
  }
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(runs[0][0], runs[1][0]));
  EXPECT_TRUE(torch::equal(runs[0][1], runs[1][1]));
}

TEST(Pointwise, OtherInputsTakeTheCompositeForm) {
  torch::manual_seed(9);
  const Tensor theta = torch::rand({5, 4});
  const Tensor strided = torch::randn({2, 3, 5, 8}).transpose(1, 2);  // (2, 5, 3, 8), not contiguous
  EXPECT_TRUE(torch::equal(kernels::rope_heads(strided, theta.cos(), theta.sin()),
                           kernels::rope_reference(strided.transpose(1, 2), theta.cos(), theta.sin())));
  const Tensor d = torch::randn({4, 16}, torch::kDouble), e = torch::randn({4, 16}, torch::kDouble);
  EXPECT_TRUE(torch::equal(kernels::swiglu_gate(d, e), torch::silu(d) * e));
}

}  // namespace
}  // namespace iflame
