// Attention kernels against their naive definitions, and hand-written backward passes against
// finite differences in float64.
#include "model/kernels.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "kernels/flash_attention.h"
#include "model/model_test_util.h"
#include "kernels/cpu_isa.h"

namespace iflame {
namespace {

using torch::Tensor;

int64_t round_up16(int64_t n) { return (n + 15) / 16 * 16; }

std::array<Tensor, 3> random_qkv(int64_t B, int64_t H, int64_t T, int64_t D, torch::ScalarType dtype, uint64_t seed) {
  torch::manual_seed(seed);
  auto opts = torch::dtype(dtype);
  return {torch::randn({B, H, T, D}, opts), torch::randn({B, H, T, D}, opts), torch::randn({B, H, T, D}, opts)};
}

TEST(Kernels, TiledCausalAttentionEqualsNaive) {
  // Lengths below, at, and not divisible by the tile.
  for (int64_t T : {1, 7, 16, 33, 100}) {
    SCOPED_TRACE(T);
    auto [q, k, v] = random_qkv(2, 3, T, 8, torch::kFloat, 1 + T);
    Tensor expected = kernels::causal_attention_naive(q, k, v);
    EXPECT_LE(test::max_abs_diff(kernels::causal_attention_tiled(q, k, v, 16), expected), 1e-5);
    EXPECT_LE(test::max_abs_diff(kernels::causal_attention_tiled(q, k, v, 5), expected), 1e-5);
    // Several key blocks per query tile (the online softmax across blocks).
    EXPECT_LE(test::max_abs_diff(kernels::causal_attention_tiled(q, k, v, 4, 8), expected), 1e-5);
    EXPECT_LE(test::max_abs_diff(kernels::causal_attention_tiled(q, k, v, 5, 5), expected), 1e-5);
  }
}

TEST(Kernels, TiledCausalAttentionBf16CloseToFloat) {
  // bf16 inputs: matmuls in bf16, statistics in float; close to the float result.
  auto [q, k, v] = random_qkv(1, 2, 300, 16, torch::kFloat, 5);
  Tensor expected = kernels::causal_attention_naive(q, k, v);
  Tensor got = kernels::causal_attention_tiled(q.to(torch::kBFloat16), k.to(torch::kBFloat16), v.to(torch::kBFloat16), 64, 128);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  EXPECT_LE(test::max_abs_diff(got.to(torch::kFloat), expected), 5e-2);
}

// The instruction sets this CPU can run the flash kernel with (generic first).
std::vector<cpu::Isa> flash_isas() {
  std::vector<cpu::Isa> out = {cpu::Isa::Generic};
  if (cpu::detected_isa() >= cpu::Isa::Avx2) out.push_back(cpu::Isa::Avx2);
  if (cpu::detected_isa() >= cpu::Isa::Avx512) out.push_back(cpu::Isa::Avx512);
  if (cpu::detected_isa() >= cpu::Isa::Avx512Bf16) out.push_back(cpu::Isa::Avx512Bf16);
  return out;
}

struct IsaScope {
  explicit IsaScope(cpu::Isa isa) { cpu::set_isa(isa); }
  ~IsaScope() { cpu::set_isa(cpu::detected_isa()); }
};

// Output and gradients of attention `fn` for upstream gradient g.
template <typename Fn>
std::array<Tensor, 4> forward_backward(Fn fn, const std::array<Tensor, 3>& qkv, const Tensor& g) {
  Tensor q = qkv[0].clone().requires_grad_(), k = qkv[1].clone().requires_grad_(), v = qkv[2].clone().requires_grad_();
  Tensor out = fn(q, k, v);
  (out.to(g.scalar_type()) * g).sum().backward();
  return {out.detach(), q.grad(), k.grad(), v.grad()};
}

TEST(Kernels, FlashCausalAttentionEqualsNaiveForwardAndBackward) {
  // Lengths below, at and across the 64-position block; D below, at and between the 16-wide
  // vectors (padded inside), and D = 32 as in `ref`.
  for (cpu::Isa isa : flash_isas()) {
    IsaScope scope(isa);
    for (int64_t T : {1, 7, 64, 65, 130, 200}) {
      for (int64_t D : {8, 16, 32, 40}) {
        SCOPED_TRACE(std::string(cpu::isa_name(isa)) + " T=" + std::to_string(T) + " D=" + std::to_string(D));
        EXPECT_EQ(flash::uses_avx512(round_up16(D)), isa >= cpu::Isa::Avx512);
        EXPECT_EQ(flash::uses_avx2(round_up16(D)), isa == cpu::Isa::Avx2);
        auto qkv = random_qkv(2, 3, T, D, torch::kFloat, 11 + T + D);
        Tensor g = torch::randn({2, 3, T, D});
        auto expected = forward_backward(kernels::causal_attention_naive, qkv, g);
        auto got = forward_backward(kernels::causal_attention_flash, qkv, g);
        EXPECT_LE(test::max_abs_diff(got[0], expected[0]), 1e-5);
        for (size_t i = 1; i < 4; ++i) EXPECT_LE(test::max_abs_diff(got[i], expected[i]), 1e-4) << "gradient " << i;
      }
    }
  }
}

TEST(Kernels, FlashBf16InputsMatchFloatOnTheSameValues) {
  // bf16 inputs (VDPBF16PS products with bf16 probabilities where the CPU has AVX512-BF16, float
  // arithmetic otherwise) against the naive kernel in float on the same bf16 values. A wrong
  // pair layout gives errors of order 1.
  for (cpu::Isa isa : flash_isas()) {
    IsaScope scope(isa);
    for (int64_t T : {7, 64, 130, 200}) {
      for (int64_t D : {16, 32, 40}) {
        SCOPED_TRACE(std::string(cpu::isa_name(isa)) + " T=" + std::to_string(T) + " D=" + std::to_string(D));
        EXPECT_EQ(flash::uses_bf16_dot(round_up16(D)), isa == cpu::Isa::Avx512Bf16);
        auto qkv = random_qkv(2, 3, T, D, torch::kBFloat16, 31 + T + D);
        Tensor g = torch::randn({2, 3, T, D}).to(torch::kBFloat16).to(torch::kFloat);
        auto expected = forward_backward(kernels::causal_attention_naive,
                                         {qkv[0].to(torch::kFloat), qkv[1].to(torch::kFloat), qkv[2].to(torch::kFloat)}, g);
        auto got = forward_backward(kernels::causal_attention_flash, qkv, g);
        EXPECT_EQ(got[0].scalar_type(), torch::kBFloat16);
        EXPECT_EQ(got[1].scalar_type(), torch::kBFloat16);
        for (size_t i = 0; i < 4; ++i) {
          const double scale = expected[i].abs().max().item<double>();
          EXPECT_LE(test::max_abs_diff(got[i].to(torch::kFloat), expected[i]), 0.02 * scale) << "output/gradient " << i;
        }
      }
    }
  }
}

TEST(Kernels, FlashCausalAttentionBf16CloseToFloat) {
  // bf16 in and out, float arithmetic inside: only the rounding of inputs and outputs differs.
  auto qkv = random_qkv(1, 2, 300, 32, torch::kFloat, 5);
  Tensor expected = kernels::causal_attention_naive(qkv[0], qkv[1], qkv[2]);
  Tensor got = kernels::causal_attention_flash(qkv[0].to(torch::kBFloat16), qkv[1].to(torch::kBFloat16),
                                               qkv[2].to(torch::kBFloat16));
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  EXPECT_LE(test::max_abs_diff(got.to(torch::kFloat), expected), 3e-2);
}

TEST(Kernels, FlashTakesNonContiguousViews) {
  // The model hands over (B, T, H, D) projections transposed to (B, H, T, D).
  torch::manual_seed(12);
  std::array<Tensor, 3> qkv;
  for (auto& x : qkv) x = torch::randn({2, 70, 3, 16}).transpose(1, 2);
  ASSERT_FALSE(qkv[0].is_contiguous());
  Tensor g = torch::randn({2, 3, 70, 16});
  auto expected = forward_backward(kernels::causal_attention_naive, qkv, g);
  auto got = forward_backward(kernels::causal_attention_flash, qkv, g);
  for (size_t i = 0; i < 4; ++i) EXPECT_LE(test::max_abs_diff(got[i], expected[i]), 1e-4) << i;
}

TEST(Kernels, FlashRejectsMismatchedShapes) {
  auto qkv = random_qkv(1, 2, 10, 8, torch::kFloat, 4);
  EXPECT_THROW(kernels::causal_attention_flash(qkv[0], qkv[1].narrow(2, 0, 9), qkv[2]), c10::Error);
  EXPECT_THROW(kernels::causal_attention_flash(qkv[0][0], qkv[1][0], qkv[2][0]), c10::Error);
}

TEST(Kernels, FlashBackwardSameWithMoreThreadsThanHeads) {
  // One head on 1 and on 4 threads: with more threads than heads the key blocks of a head are
  // split over workers with their own dq, summed at the end.
  auto qkv = random_qkv(1, 1, 300, 16, torch::kFloat, 9);
  Tensor g = torch::randn({1, 1, 300, 16});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  auto one = forward_backward(kernels::causal_attention_flash, qkv, g);
  at::set_num_threads(4);
  auto four = forward_backward(kernels::causal_attention_flash, qkv, g);
  at::set_num_threads(threads);
  auto expected = forward_backward(kernels::causal_attention_naive, qkv, g);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_LE(test::max_abs_diff(one[i], four[i]), 1e-5) << i;
    EXPECT_LE(test::max_abs_diff(four[i], expected[i]), 1e-4) << i;
  }
}

TEST(Kernels, LinearAttentionChunkedEqualsNaiveAndRecurrent) {
  for (int64_t T : {1, 9, 64, 70, 131}) {
    SCOPED_TRACE(T);
    auto [q, k, v] = random_qkv(2, 4, T, 8, torch::kDouble, 100 + T);
    Tensor slopes = kernels::alibi_slopes(4);
    Tensor naive = kernels::linear_attention_naive(q, k, v, slopes);
    Tensor recurrent = kernels::linear_attention_recurrent(q, k, v, slopes);
    EXPECT_LE(test::max_abs_diff(naive, recurrent), 1e-10);
    for (int64_t chunk : {1, 8, 16, 64}) {
      EXPECT_LE(test::max_abs_diff(kernels::linear_attention_chunked(q, k, v, slopes, chunk), naive), 1e-10) << chunk;
    }
  }
}

// Central finite differences of sum(f(q,k,v) * w) against autograd, float64.
template <typename Fn>
void check_gradients(Fn fn, int64_t T, int64_t D) {
  auto [q, k, v] = random_qkv(1, 2, T, D, torch::kDouble, 7);
  Tensor w = torch::randn({1, 2, T, D}, torch::kDouble);
  std::array<Tensor, 3> inputs = {q.requires_grad_(), k.requires_grad_(), v.requires_grad_()};
  (fn(inputs[0], inputs[1], inputs[2]) * w).sum().backward();
  const double eps = 1e-6;
  torch::NoGradGuard no_grad;
  for (int which = 0; which < 3; ++which) {
    Tensor analytic = inputs[size_t(which)].grad();
    ASSERT_TRUE(analytic.defined());
    Tensor flat = inputs[size_t(which)].view(-1);
    Tensor numeric = torch::zeros_like(flat);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double x0 = flat[i].item<double>();
      flat[i] = x0 + eps;
      const double up = Tensor((fn(inputs[0], inputs[1], inputs[2]) * w).sum()).item<double>();
      flat[i] = x0 - eps;
      const double down = Tensor((fn(inputs[0], inputs[1], inputs[2]) * w).sum()).item<double>();
      flat[i] = x0;
      numeric[i] = (up - down) / (2 * eps);
    }
    EXPECT_LE(test::max_abs_diff(analytic.view(-1), numeric), 1e-6) << "input " << which;
  }
}

TEST(Kernels, TiledCausalAttentionBackwardMatchesFiniteDifferences) {
  check_gradients([](const Tensor& q, const Tensor& k, const Tensor& v) { return kernels::causal_attention_tiled(q, k, v, 4); },
                  11, 4);
  check_gradients([](const Tensor& q, const Tensor& k, const Tensor& v) { return kernels::causal_attention_tiled(q, k, v, 3, 6); },
                  11, 4);
}

TEST(Kernels, FlashCausalAttentionBackwardMatchesFiniteDifferences) {
  // 70 positions: two query blocks and two key blocks, the second one partly padding.
  check_gradients(kernels::causal_attention_flash, 70, 4);
}

TEST(Kernels, TiledBackwardEqualsNaiveBackward) {
  auto [q, k, v] = random_qkv(2, 2, 45, 8, torch::kFloat, 3);
  Tensor g = torch::randn({2, 2, 45, 8});
  std::vector<Tensor> grads[2];
  for (int pass = 0; pass < 2; ++pass) {
    Tensor qq = q.clone().requires_grad_(), kk = k.clone().requires_grad_(), vv = v.clone().requires_grad_();
    Tensor out = pass == 0 ? kernels::causal_attention_naive(qq, kk, vv) : kernels::causal_attention_tiled(qq, kk, vv, 16, 32);
    (out * g).sum().backward();
    grads[pass] = {qq.grad(), kk.grad(), vv.grad()};
  }
  for (int i = 0; i < 3; ++i) EXPECT_LE(test::max_abs_diff(grads[0][size_t(i)], grads[1][size_t(i)]), 1e-4) << i;
}

TEST(Kernels, ChunkedLinearAttentionBackwardMatchesFiniteDifferences) {
  Tensor slopes = kernels::alibi_slopes(2).to(torch::kDouble);
  check_gradients(
      [&](const Tensor& q, const Tensor& k, const Tensor& v) { return kernels::linear_attention_chunked(q, k, v, slopes, 4); },
      10, 4);
}

TEST(Kernels, FusedLinearAttentionBackwardMatchesFiniteDifferences) {
  Tensor slopes = kernels::alibi_slopes(2).to(torch::kDouble);
  for (int64_t chunk : {1, 4, 16}) {
    SCOPED_TRACE(chunk);
    check_gradients(
        [&](const Tensor& q, const Tensor& k, const Tensor& v) { return kernels::linear_attention_fused(q, k, v, slopes, chunk); },
        10, 4);
  }
}

TEST(Kernels, FusedLinearAttentionEqualsChunkedForwardAndBackward) {
  for (int64_t T : {1, 63, 64, 150}) {
    SCOPED_TRACE(T);
    auto [q, k, v] = random_qkv(2, 4, T, 8, torch::kFloat, 200 + T);
    Tensor slopes = kernels::alibi_slopes(4);
    Tensor g = torch::randn({2, 4, T, 8});
    std::vector<Tensor> outs, grads[2];
    for (int pass = 0; pass < 2; ++pass) {
      Tensor qq = q.clone().requires_grad_(), kk = k.clone().requires_grad_(), vv = v.clone().requires_grad_();
      Tensor out = pass == 0 ? kernels::linear_attention_chunked(qq, kk, vv, slopes, 64)
                             : kernels::linear_attention_fused(qq, kk, vv, slopes, 64);
      (out * g).sum().backward();
      outs.push_back(out.detach());
      grads[pass] = {qq.grad(), kk.grad(), vv.grad()};
    }
    EXPECT_EQ(test::max_abs_diff(outs[0], outs[1]), 0.0);  // the same forward, bit for bit
    for (int i = 0; i < 3; ++i) EXPECT_LE(test::max_abs_diff(grads[0][size_t(i)], grads[1][size_t(i)]), 1e-4) << i;
  }
}

TEST(Kernels, AlibiSlopes) {
  Tensor s = kernels::alibi_slopes(16);
  EXPECT_FLOAT_EQ(s[0].item<float>(), std::pow(2.0f, -0.5f));
  EXPECT_FLOAT_EQ(s[15].item<float>(), std::pow(2.0f, -8.0f));
}

}  // namespace
}  // namespace iflame
