// Activation recomputation: the same loss and gradients as keeping the activations, and a
// recomputed block really keeps nothing but its input.
#include "model/recompute.h"

#include <gtest/gtest.h>

#include "model/loss.h"
#include "model/model.h"
#include "model/model_test_util.h"
#include "util/error.h"

namespace iflame {
namespace {

using torch::Tensor;

// Loss and every parameter's gradient after one forward + backward under `policy`.
std::pair<double, std::vector<Tensor>> loss_and_grads(IFlameModel& model, const Tensor& tokens, Recompute policy,
                                                      bool bf16) {
  model->recompute = policy;
  model->zero_grad();
  Tensor logits;
  {
    compat::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, bf16);
    logits = model->forward(tokens);
  }
  Tensor loss = sequence_loss(logits, tokens, model->config.pad_token, /*metrics=*/false).loss;
  loss.backward();
  std::vector<Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(p.grad().defined() ? p.grad().clone() : Tensor());
  return {loss.item<double>(), grads};
}

Tensor random_tokens(int64_t B, int64_t L) {
  Tensor t = torch::randint(0, 129, {B, L}, torch::kLong);
  t.narrow(1, 0, 9).fill_(130);  // BOS rows
  return t;
}

TEST(Recompute, SameLossAndGradientsForEveryPolicyAndArch) {
  torch::manual_seed(0);
  for (Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
    ModelConfig cfg = model_preset("tiny", arch);
    if (arch != Arch::IFlame) cfg.baseline_layers = 4;
    IFlameModel model(cfg);
    model->train();
    const Tensor tokens = random_tokens(2, 9 * 7 + 4);  // not a multiple of 9: iFlame pads
    for (bool bf16 : {false, true}) {
      const auto [loss0, grads0] = loss_and_grads(model, tokens, Recompute::None, bf16);
      for (Recompute policy : {Recompute::Linear, Recompute::All}) {
        SCOPED_TRACE(std::string(arch_name(arch)) + " " + recompute_name(policy) + (bf16 ? " bf16" : " fp32"));
        const auto [loss, grads] = loss_and_grads(model, tokens, policy, bf16);
        EXPECT_NEAR(loss, loss0, 1e-6 * std::abs(loss0));
        ASSERT_EQ(grads.size(), grads0.size());
        size_t checked = 0;
        for (size_t i = 0; i < grads.size(); ++i) {
          ASSERT_EQ(grads[i].defined(), grads0[i].defined()) << i;
          if (!grads[i].defined()) continue;
          // The recomputed forward is the same computation: equal up to summation order.
          const double scale = grads0[i].abs().max().item<double>() + 1e-12;
          EXPECT_LE(test::max_abs_diff(grads[i], grads0[i]), (bf16 ? 1e-2 : 1e-5) * scale) << i;
          ++checked;
        }
        EXPECT_GT(checked, 10u);
      }
    }
  }
}

// A block that keeps its activations fails the backward when one of its weights changes in
// place after the forward (autograd's saved-tensor version check); a recomputed block kept
// nothing of its own and runs again with the new weight.
TEST(Recompute, RecomputedBlocksKeepOnlyTheirInput) {
  torch::manual_seed(1);
  IFlameModel model(model_preset("tiny", Arch::IFlame));
  model->train();
  const Tensor tokens = random_tokens(1, 27);
  const auto blocks = model->named_blocks();
  for (Recompute policy : {Recompute::None, Recompute::Linear, Recompute::All}) {
    for (AttnKind kind : {AttnKind::Linear, AttnKind::Full}) {
      SCOPED_TRACE(std::string(recompute_name(policy)) + (kind == AttnKind::Linear ? " linear block" : " full block"));
      model->recompute = policy;
      model->zero_grad();
      Tensor loss = sequence_loss(model->forward(tokens), tokens, model->config.pad_token, false).loss;
      BlockImpl* block = nullptr;
      for (const auto& [name, b] : blocks) {
        if (b->attn->kind == kind) block = b.ptr().get();
      }
      ASSERT_NE(block, nullptr);
      {
        torch::NoGradGuard no_grad;
        block->feed_forward->proj3->weight.mul_(1.5);
      }
      if (recomputes(policy, kind)) {
        EXPECT_NO_THROW(loss.backward());
      } else {
        EXPECT_THROW(loss.backward(), c10::Error);
      }
      torch::NoGradGuard no_grad;
      block->feed_forward->proj3->weight.div_(1.5);
    }
  }
}

TEST(Recompute, PolicyNames) {
  for (Recompute r : {Recompute::None, Recompute::Linear, Recompute::All}) {
    EXPECT_EQ(recompute_from_name(recompute_name(r)), r);
  }
  EXPECT_THROW(recompute_from_name("some"), Error);
  EXPECT_TRUE(recomputes(Recompute::Linear, AttnKind::Linear));
  EXPECT_FALSE(recomputes(Recompute::Linear, AttnKind::Full));
  EXPECT_TRUE(recomputes(Recompute::All, AttnKind::Full));
  EXPECT_FALSE(recomputes(Recompute::None, AttnKind::Linear));
}

}  // namespace
}  // namespace iflame
