// The fused decoder: whole decode steps against LibTorch's per-op Block::step path for every
// architecture, on every instruction set (its kernels: tests/kernels/decode_test.cpp).
#include "generate/fast_decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "generate/decoder.h"
#include "generate/decode_test_util.h"
#include "kernels/kernel_test_util.h"
#include "model/model_test_util.h"

namespace iflame {
namespace {

using torch::Tensor;

ModelConfig mixed_config(Arch arch) {
  ModelConfig c = model_preset("tiny", arch);
  c.baseline_layers = 4;
  c.stage_pattern = "LFLF";
  return c;
}

TEST(DecodeFast, MatchesThePerOpPathForEveryArchitectureOnBothInstructionSets) {
  for (Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
    torch::manual_seed(4);
    IFlameModel model(mixed_config(arch));
    model->eval();
    Tensor tokens = torch::randint(0, 129, {3, 63}, torch::kLong);
    const Tensor reference = test::decode_all(*model, tokens, DecodePath::Torch, torch::kFloat);
    for (decode::Isa isa : isas()) {
      IsaScope scope(isa);
      SCOPED_TRACE(std::string(arch_name(arch)) + " " + decode::isa_name(isa));
      EXPECT_LE(test::max_abs_diff(test::decode_all(*model, tokens, DecodePath::Auto, torch::kFloat), reference), 1e-4);
      // bf16 weights and K/V: close to fp32 relative to the logits' scale.
      const Tensor bf16 = test::decode_all(*model, tokens, DecodePath::Auto, torch::kBFloat16);
      EXPECT_LE(test::max_abs_diff(bf16, reference), 0.03 * reference.abs().max().item<double>());
    }
  }
}

TEST(DecodeFast, RepacksWhenAWeightChangesInPlace) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  IFlameModel model(mixed_config(Arch::IFlame));
  Tensor tokens = torch::randint(0, 129, {2, 27}, torch::kLong);
  const Tensor before = test::decode_all(*model, tokens, DecodePath::Auto, torch::kFloat);
  EXPECT_GT(fast_decode_weight_bytes(*model), 0);
  model->named_blocks()[5].second->feed_forward->proj3->bias.add_(0.5);  // stage B, in place
  const Tensor after = test::decode_all(*model, tokens, DecodePath::Auto, torch::kFloat);
  EXPECT_GT(test::max_abs_diff(after, before), 1e-3);
  EXPECT_LE(test::max_abs_diff(after, test::decode_all(*model, tokens, DecodePath::Torch, torch::kFloat)), 1e-4);
}

}  // namespace
}  // namespace iflame
