// The cached decoder equals the parallel forward: against the reference's own cached logits,
// and for every architecture against our parallel forward.
#include "generate/decoder.h"

#include <gtest/gtest.h>

#include "model/model_test_util.h"
#include "model/weights.h"
#include "test_paths.h"

namespace iflame {
namespace {

using torch::Tensor;

TEST(Decoder, TeacherForcedLogitsMatchTheReferenceCachedPath) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  IFlameModel model = load_model(test::reference_dir() + "/weights.safetensors");
  model->eval();
  Tensor tokens = test::read_raw(test::reference_dir() + "/tokens.bin", test::reference_shape("tokens.bin"), torch::kLong);
  const auto shape = test::reference_shape("decode_logits.bin");
  Tensor expected = test::read_raw(test::reference_dir() + "/decode_logits.bin", shape, torch::kFloat);
  Tensor logits = cached_logits(*model, tokens.narrow(1, 0, shape[1]), 9);
  const double diff = test::max_abs_diff(logits, expected);
  std::printf("max abs diff cached vs reference cached logits: %.3g\n", diff);
  EXPECT_LE(diff, 1e-4);
  // And against our own parallel forward over every position of tokens.bin.
  torch::NoGradGuard no_grad;
  EXPECT_LE(test::max_abs_diff(cached_logits(*model, tokens, 9), model->forward(tokens)), 1e-4);
}

TEST(Decoder, EveryArchitectureMatchesItsParallelForwardFromAnyPrompt) {
  torch::NoGradGuard no_grad;
  for (Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
    SCOPED_TRACE(arch_name(arch));
    torch::manual_seed(5);
    ModelConfig c = model_preset("tiny", arch);
    c.baseline_layers = 6;
    c.stage_pattern = "LFLF";
    IFlameModel model(c);
    // Random weights give little signal through norms; scale the skip weights off 1.
    Tensor tokens = torch::randint(0, 129, {3, 90}, torch::kLong);
    Tensor parallel = model->forward(tokens);
    for (int64_t prompt : {9, 27, 45}) {
      EXPECT_LE(test::max_abs_diff(cached_logits(*model, tokens, prompt), parallel), 1e-4) << prompt;
    }
  }
}

TEST(Decoder, CacheHoldsKVOnlyForFullLayersAtTheirResolution) {
  const int64_t L = 36000;  // 4000 faces
  ModelConfig ifl = model_preset("ref");
  ModelConfig full = model_preset("ref", Arch::Full);
  DecodeCache a(ifl, 1, L, torch::kCPU, torch::kHalf), b(full, 1, L, torch::kCPU, torch::kHalf);
  const int64_t per_position = 2 * 512 * 2;  // K and V, E values each, fp16
  EXPECT_EQ(a.kv_bytes(), per_position * (2 * L + 2 * L / 3 + 2 * L / 9));
  EXPECT_EQ(b.kv_bytes(), per_position * 24 * L);
  EXPECT_NEAR(double(b.kv_bytes()) / double(a.kv_bytes()), 24.0 / (26.0 / 9.0), 1e-9);  // 8.3x
  DecodeCache lin(model_preset("ref", Arch::Linear), 1, L, torch::kCPU);
  EXPECT_EQ(lin.kv_bytes(), 0);
  EXPECT_EQ(lin.state_bytes(), 24 * 16 * 32 * 32 * 4);  // one fp32 D x D state per head per layer
}

TEST(Decoder, KeepRowsDropsFinishedSequences) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  IFlameModel model(model_preset("tiny"));
  Tensor tokens = torch::randint(0, 129, {3, 36}, torch::kLong);
  DecodeCache cache(model->config, 3, 36, torch::kCPU);
  prefill(*model, cache, tokens.narrow(1, 0, 18));
  cache.keep_rows(torch::tensor({0, 2}, torch::kLong));
  Tensor parallel = model->forward(tokens.index_select(0, torch::tensor({0, 2}, torch::kLong)));
  for (int64_t p = 18; p < 36; ++p) {
    Tensor step = decode_step(*model, cache, tokens.select(1, p).index_select(0, torch::tensor({0, 2}, torch::kLong)));
    EXPECT_LE(test::max_abs_diff(step, parallel.select(1, p)), 1e-4) << p;
  }
}

}  // namespace
}  // namespace iflame
