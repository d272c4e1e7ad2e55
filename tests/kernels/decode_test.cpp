// The fused decoder's kernels (kernels/decode.h), each against a plain reference or the model's
// own layers, on every instruction set this CPU has.
#include "kernels/decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kernels/kernel_test_util.h"
#include "model/layers.h"
#include "model/pointwise.h"
#include "model/model_test_util.h"

namespace iflame {
namespace {

using torch::Tensor;

TEST(DecodeKernels, MatmulMatchesPlainSumsForOddShapesAndBothStorages) {
  std::mt19937 rng(1);
  const int64_t K = 37;  // odd: the last bfloat16 pair is half padding
  const int64_t rows[2] = {21, 40};  // two parts: padded to 32 + 48 rows
  auto w0 = random_vector(size_t(rows[0] * K), rng), w1 = random_vector(size_t(rows[1] * K), rng);
  auto b1 = random_vector(size_t(rows[1]), rng);
  for (decode::Isa isa : isas()) {
    IsaScope scope(isa);
    for (bool bf16 : {false, true}) {
      const auto m = decode::pack_matrix({{w0.data(), rows[0], nullptr}, {w1.data(), rows[1], b1.data()}}, K, bf16);
      ASSERT_EQ(m.padded_rows, 80);
      ASSERT_EQ(m.offsets, (std::vector<int64_t>{0, 32}));
      for (int64_t B : {1, 5, 7, 13}) {
        SCOPED_TRACE(std::string(decode::isa_name(isa)) + (bf16 ? " bf16" : " fp32") + " B=" + std::to_string(B));
        const int64_t ldx = K + 3, ldy = 90;
        auto x = random_vector(size_t(B * ldx), rng);
        std::vector<float> y(size_t(B * ldy), 7.0f), y_acc = y;
        decode::matmul(x.data(), B, ldx, m, y.data(), ldy, false);
        decode::matmul(x.data(), B, ldx, m, y_acc.data(), ldy, true);
        for (int64_t b = 0; b < B; ++b) {
          for (int part = 0; part < 2; ++part) {
            const float* w = part == 0 ? w0.data() : w1.data();
            for (int64_t r = 0; r < rows[part]; ++r) {
              double want = part == 1 ? b1[size_t(r)] : 0.0;
              for (int64_t k = 0; k < K; ++k) {
                const float wk = bf16 ? decode::from_bf16(decode::to_bf16(w[r * K + k])) : w[r * K + k];
                // VDPBF16PS takes x rounded to bfloat16 too.
                const float xk = x[size_t(b * ldx + k)];
                const bool round_x = bf16 && isa == decode::Isa::Avx512Bf16;
                want += double(round_x ? decode::from_bf16(decode::to_bf16(xk)) : xk) * double(wk);
              }
              const size_t at = size_t(b * ldy + m.offsets[size_t(part)] + r);
              EXPECT_NEAR(y[at], want, 1e-4) << b << " " << part << " " << r;
              EXPECT_NEAR(y_acc[at], want + 7.0, 1e-4);
            }
          }
          // Padding rows (21..31 and 80..89) are never written.
          for (int64_t n : {21, 31, 80, 89}) EXPECT_EQ(y[size_t(b * ldy + n)], 7.0f) << n;
        }
      }
    }
  }
}

TEST(DecodeKernels, AttendIsSoftmaxOfScaledScoresOverCachedValues) {
  std::mt19937 rng(2);
  for (decode::Isa isa : isas()) {
    IsaScope scope(isa);
    for (int64_t D : {8, 16, 32, 48, 64, 96, 128}) {
      for (int64_t len : {1, 2, 17, 33, 100}) {
        for (bool bf16 : {false, true}) {
          SCOPED_TRACE(std::string(decode::isa_name(isa)) + " D=" + std::to_string(D) + " len=" + std::to_string(len));
          auto q = random_vector(size_t(D), rng, 0.5f);
          auto k = random_vector(size_t(len * D), rng), v = random_vector(size_t(len * D), rng);
          std::vector<uint16_t> k16(k.size()), v16(v.size());
          for (size_t i = 0; i < k.size(); ++i) {
            k16[i] = decode::to_bf16(k[i]), v16[i] = decode::to_bf16(v[i]);
            if (bf16) k[i] = decode::from_bf16(k16[i]), v[i] = decode::from_bf16(v16[i]);
          }
          std::vector<float> scratch(static_cast<size_t>(len)), out(static_cast<size_t>(D));
          const float scale = 0.3f;
          decode::attend(q.data(), bf16 ? static_cast<const void*>(k16.data()) : k.data(),
                         bf16 ? static_cast<const void*>(v16.data()) : v.data(), bf16, len, D, scale, scratch.data(),
                         out.data());
          std::vector<double> s(static_cast<size_t>(len));
          double mx = -1e300, total = 0;
          for (int64_t t = 0; t < len; ++t) {
            double acc = 0;
            for (int64_t d = 0; d < D; ++d) acc += double(q[size_t(d)]) * k[size_t(t * D + d)];
            s[size_t(t)] = acc * scale;
            mx = std::max(mx, s[size_t(t)]);
          }
          for (auto& x : s) total += (x = std::exp(x - mx));
          for (int64_t d = 0; d < D; ++d) {
            double want = 0;
            for (int64_t t = 0; t < len; ++t) want += s[size_t(t)] * v[size_t(t * D + d)];
            EXPECT_NEAR(out[size_t(d)], want / total, 1e-5) << d;
          }
        }
      }
    }
  }
}

TEST(DecodeKernels, VectorExpIsWithinTwoUlps) {
  std::vector<float> x;
  for (float v = -87.0f; v <= 88.0f; v += 0.0137f) x.push_back(v);
  for (decode::Isa isa : isas()) {
    IsaScope scope(isa);
    std::vector<float> y = x;
    decode::exp_inplace(y.data(), int64_t(y.size()));
    double worst = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = std::exp(double(x[i]));
      worst = std::max(worst, std::abs(y[i] - want) / want);
    }
    EXPECT_LT(worst, 2.5e-7) << decode::isa_name(isa);
  }
}

TEST(DecodeKernels, NormRopeAndSiluMatchTheModelLayers) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  const int64_t B = 3, H = 4, D = 16, E = H * D;
  RMSNorm norm(E, 1e-5);
  norm->weight.uniform_(0.5, 1.5);
  Tensor x = torch::randn({B, E});
  const RopeTable rope = RopeTable::make(10, D, 1024.0, torch::kCPU);
  Tensor a = torch::randn({B, 37}), g = torch::randn({B, 37});
  for (decode::Isa isa : isas()) {
    IsaScope scope(isa);
    Tensor y = torch::empty_like(x);
    decode::rmsnorm(x.data_ptr<float>(), norm->weight.data_ptr<float>(), B, E, 1e-5f, y.data_ptr<float>());
    EXPECT_LE(test::max_abs_diff(y, norm(x)), 1e-6);
    Tensor r = x.clone();
    decode::rope(r.data_ptr<float>(), B, H, D, E, rope.cos[7].data_ptr<float>(), rope.sin[7].data_ptr<float>());
    Tensor want = kernels::rope_reference(x.view({B, 1, H, D}).transpose(1, 2), rope.cos.narrow(0, 7, 1), rope.sin.narrow(0, 7, 1));
    EXPECT_LE(test::max_abs_diff(r, want.transpose(1, 2).reshape({B, E})), 1e-6);
    Tensor s = torch::empty_like(a);
    decode::silu_mul(a.data_ptr<float>(), g.data_ptr<float>(), s.data_ptr<float>(), a.numel());
    EXPECT_LE(test::max_abs_diff(s, torch::silu(a) * g), 1e-6);
  }
}

}  // namespace
}  // namespace iflame
