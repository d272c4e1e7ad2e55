// The hourglass is written once (ModelConfig::stages() and its decode schedule): change the
// stage pattern or the blocks per stage, and the forward, both decoders, the cache and the FLOP
// counter all follow. The expected layout is spelled out here by hand, independently of it.
#include <gtest/gtest.h>

#include "generate/decode_test_util.h"
#include "model/flops.h"
#include "model/model_test_util.h"

namespace iflame {
namespace {

using torch::Tensor;

// Stages A, B, C1, C2, D, E run at 1, 3, 9, 9, 3, 1 tokens per position.
constexpr int64_t kResolution[6] = {1, 3, 9, 9, 3, 1};

AttnKind expected_kind(const ModelConfig& c, int64_t block) {
  const int64_t in_stage = block % c.blocks_per_stage;
  return c.stage_pattern[size_t(in_stage) % c.stage_pattern.size()] == 'F' ? AttnKind::Full : AttnKind::Linear;
}

TEST(Hourglass, EveryConsumerFollowsTheStagePatternAndDepth) {
  const std::vector<std::pair<int64_t, std::string>> layouts = {{4, "LLLF"}, {4, "FLLL"}, {4, "LFFL"}, {2, "FF"},
                                                                 {2, "LL"},   {3, "LF"},   {1, "F"}};
  const int64_t L = 54;  // six faces
  for (const auto& [per_stage, pattern] : layouts) {
    SCOPED_TRACE(std::to_string(per_stage) + " x " + pattern);
    ModelConfig c = model_preset("tiny");
    c.blocks_per_stage = per_stage;
    c.stage_pattern = pattern;
    torch::manual_seed(11);
    IFlameModel model(c);
    model->eval();

    // The model's blocks and the cache: kind and resolution of every block, K/V sized to it.
    const auto blocks = model->named_blocks();
    DecodeCache cache(c, 2, L, torch::kCPU);
    ASSERT_EQ(int64_t(blocks.size()), 6 * per_stage);
    ASSERT_EQ(cache.layers.size(), blocks.size());
    double full_forward = 0, linear_decode = 0;
    for (int64_t i = 0; i < 6 * per_stage; ++i) {
      const AttnKind kind = expected_kind(c, i);
      const int64_t resolution = kResolution[i / per_stage];
      EXPECT_EQ(blocks[size_t(i)].second->attn->kind, kind) << i;
      EXPECT_EQ(cache.layers[size_t(i)].kind, kind) << i;
      EXPECT_EQ(cache.layers[size_t(i)].resolution, resolution) << i;
      if (kind == AttnKind::Full) {
        EXPECT_EQ(cache.layers[size_t(i)].k.size(2), L / resolution) << i;
        full_forward += full_attention_flops(L / resolution, c.dim);
      } else {
        EXPECT_TRUE(cache.layers[size_t(i)].state.defined()) << i;
        EXPECT_FALSE(cache.layers[size_t(i)].k.defined()) << i;
        linear_decode += double(L / resolution) * 4.0 * double(c.dim * c.head_dim());
      }
    }

    // The FLOP counter: training's full attention at each block's resolution, and decoding the
    // whole sequence token by token runs each stage position once (the same dense FLOPs).
    const FlopCount train = train_flops(c, L, 1);
    double linear_forward = 0;
    for (int64_t i = 0; i < 6 * per_stage; ++i) {
      if (expected_kind(c, i) == AttnKind::Linear) linear_forward += linear_attention_flops(L / kResolution[i / per_stage], c.heads, c.head_dim());
    }
    EXPECT_DOUBLE_EQ(train.attention_forward, full_forward + linear_forward);
    const FlopCount decode = decode_flops(c, 0, L);
    EXPECT_DOUBLE_EQ(decode.dense_forward, train.dense_forward);
    EXPECT_DOUBLE_EQ(decode.attention_forward, full_forward + linear_decode);

    // The forward against both decoders.
    Tensor tokens = torch::randint(0, 129, {2, L}, torch::kLong);
    Tensor parallel;
    {
      torch::NoGradGuard no_grad;
      parallel = model->forward(tokens);
    }
    EXPECT_LE(test::max_abs_diff(test::decode_all(*model, tokens, DecodePath::Torch), parallel), 1e-4);
    EXPECT_LE(test::max_abs_diff(test::decode_all(*model, tokens, DecodePath::Auto), parallel), 1e-4);
  }
}

TEST(Hourglass, TheDecodeScheduleRunsEachStageOncePerPosition) {
  for (const StageSpec& stage : model_preset("tiny").stages()) {
    SCOPED_TRACE(stage.name);
    std::vector<int64_t> ran;
    for (int64_t p = 0; p < 36; ++p) {
      if (stage.runs_at(p)) ran.push_back(stage.position_of(p));
    }
    ASSERT_EQ(int64_t(ran.size()), 36 / stage.resolution);
    for (size_t j = 0; j < ran.size(); ++j) EXPECT_EQ(ran[j], int64_t(j));  // each position once, in order
  }
  const auto baseline = model_preset("tiny", Arch::Full).stages();
  ASSERT_EQ(baseline.size(), 1u);
  EXPECT_EQ(baseline[0].blocks, 24);
  EXPECT_TRUE(baseline[0].runs_at(0));
}

}  // namespace
}  // namespace iflame
