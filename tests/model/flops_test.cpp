// The FLOP counter (model/flops.h) against hand counts and the model's own weights.
#include "model/flops.h"

#include <gtest/gtest.h>

#include "model/model.h"

namespace iflame {
namespace {

ModelConfig trivial(Arch arch) {
  ModelConfig c = model_preset("tiny", arch);
  c.dim = 8, c.heads = 2, c.ffn_hidden = 16, c.baseline_layers = 1, c.blocks_per_stage = 1, c.stage_pattern = "F";
  return c;
}

TEST(Flops, OneFullLayerByHand) {
  // E = 8, hidden 16, V = 132, T = 9, one full-attention layer:
  //   dense  2 * 9 * (4 * 8 * 8 + 3 * 8 * 16) + head 2 * 9 * 8 * 132 = 11520 + 19008
  //   attn   4 * 8 * (9 * 10 / 2) = 1440 (causal pairs)
  //   train  3 * 30528 + 3.5 * 1440
  const auto f = train_flops(trivial(Arch::Full), 9, 1);
  EXPECT_DOUBLE_EQ(f.dense_forward, 30528.0);
  EXPECT_DOUBLE_EQ(f.attention_forward, 1440.0);
  EXPECT_DOUBLE_EQ(f.train, 3.0 * 30528.0 + 3.5 * 1440.0);
  EXPECT_DOUBLE_EQ(train_flops(trivial(Arch::Full), 9, 3).train, 3.0 * f.train);
}

TEST(Flops, LinearAttentionChunksByHand) {
  // T = 9 pads to one chunk of 64; per head (D = 4): 4*64*64*4 + 2*64*16 + 2*1*1*16 + 2*64*16.
  const double per_head = 4.0 * 64 * 64 * 4 + 2.0 * 64 * 16 + 2.0 * 16 + 2.0 * 64 * 16;
  EXPECT_DOUBLE_EQ(linear_attention_flops(9, 2, 4), 2 * per_head);
  // Two chunks: the carry matmul is N x N = 2 x 2.
  EXPECT_DOUBLE_EQ(linear_attention_flops(128, 1, 4),
                   4.0 * 128 * 64 * 4 + 2.0 * 128 * 16 + 2.0 * 4 * 16 + 2.0 * 128 * 16);
}

TEST(Flops, IFlameHourglassResolutions) {
  // One block per stage at L, L/3, L/9, L/9, L/3, L: groups merge same (T, kind).
  const auto groups = block_groups(trivial(Arch::IFlame), 27);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].positions, 27);
  EXPECT_EQ(groups[0].count, 2);
  EXPECT_EQ(groups[1].positions, 9);
  EXPECT_EQ(groups[2].positions, 3);
  EXPECT_EQ(groups[2].count, 2);
  const auto f = train_flops(trivial(Arch::IFlame), 27, 1);
  const double W = 4 * 64 + 3 * 8 * 16;
  EXPECT_DOUBLE_EQ(f.dense_forward, 2.0 * W * 2 * (27 + 9 + 3) + 2.0 * 8 * 132 * 27);
  EXPECT_DOUBLE_EQ(f.attention_forward, 2 * (full_attention_flops(27, 8) + full_attention_flops(9, 8) +
                                             full_attention_flops(3, 8)));
}

TEST(Flops, DenseWeightsMatchTheModel) {
  // The counter's matmul weights are exactly the model's 2-D weights other than the embedding.
  for (Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
    const ModelConfig c = model_preset("tiny", arch);
    IFlameModel model(c);
    int64_t weights = 0;
    for (const auto& p : model->named_parameters()) {
      if (p.value().dim() == 2 && p.key() != "embedding.weight") weights += p.value().numel();
    }
    EXPECT_EQ(weights, block_matmul_weights(c) * c.num_layers() + c.dim * c.vocab) << arch_name(arch);
  }
}

}  // namespace
}  // namespace iflame
