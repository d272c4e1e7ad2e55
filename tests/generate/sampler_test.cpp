// Sampling and the generation loop: greedy parity with the reference, determinism, grammar.
#include "generate/generate.h"

#include <gtest/gtest.h>

#include "model/model_test_util.h"
#include "model/weights.h"
#include "test_paths.h"

namespace iflame {
namespace {

using torch::Tensor;

TEST(Sampler, GreedyReproducesTheReferenceTokens) {
  IFlameModel model = load_model(test::reference_dir() + "/weights.safetensors");
  model->eval();
  const auto shape = test::reference_shape("greedy.bin");
  Tensor expected = test::read_raw(test::reference_dir() + "/greedy.bin", shape, torch::kLong);
  GenerateOptions opts;
  opts.sampling.greedy = true;
  opts.sampling.constraints = false;
  opts.stop_at_eos = false;
  opts.max_new_tokens = shape[1] - 9;
  auto seqs = generate(*model, TokenizerConfig{}, opts);
  ASSERT_EQ(seqs.size(), 1u);
  std::vector<int64_t> want(expected.data_ptr<int64_t>(), expected.data_ptr<int64_t>() + expected.numel());
  EXPECT_EQ(seqs[0].tokens, want);
}

TEST(Sampler, SameSeedSameMeshesAtAnyBatchSize) {
  torch::manual_seed(0);
  IFlameModel model(model_preset("tiny"));
  model->eval();
  GenerateOptions opts;
  opts.count = 5;
  opts.max_faces = 4;
  opts.seed = 42;
  opts.batch = 5;
  auto a = generate(*model, TokenizerConfig{}, opts);
  opts.batch = 2;
  auto b = generate(*model, TokenizerConfig{}, opts);
  opts.seed = 43;
  auto c = generate(*model, TokenizerConfig{}, opts);
  bool any_different = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens) << i;
    any_different |= a[i].tokens != c[i].tokens;
  }
  EXPECT_TRUE(any_different);
}

TEST(Sampler, ConstrainedOutputsAlwaysFollowTheGrammarAndEndInAnEosRow) {
  torch::manual_seed(1);
  IFlameModel model(model_preset("tiny"));
  model->eval();
  GenerateOptions opts;
  opts.count = 6;
  opts.max_faces = 6;
  opts.sampling.temperature = 3.0;  // a random model at high temperature tries everything
  opts.sampling.top_k = 0;
  opts.sampling.top_p = 1.0;
  GenerateStats stats;
  auto seqs = generate(*model, TokenizerConfig{}, opts, &stats);
  const TokenizerConfig tk;
  for (const auto& s : seqs) {
    ASSERT_EQ(s.tokens.size() % 9, 0u);
    ASSERT_TRUE(s.ended_with_eos);
    for (size_t i = 9; i + 9 < s.tokens.size(); ++i) EXPECT_TRUE(tk.is_coordinate(s.tokens[i])) << i;
    for (size_t i = s.tokens.size() - 9; i < s.tokens.size(); ++i) EXPECT_EQ(s.tokens[i], tk.eos());
    EXPECT_LE(s.tokens.size(), size_t(9 * (opts.max_faces + 2)));
  }
  EXPECT_GT(stats.rules.steps, 0);
  EXPECT_GT(stats.rules.disallowed_mass, 0);  // a random model puts mass on PAD/BOS
}

TEST(Sampler, TopKOneIsGreedy) {
  Tensor logits = torch::randn({4, 132});
  std::vector<at::Generator> gens;
  for (int i = 0; i < 4; ++i) gens.push_back(make_generator(0, uint64_t(i)));
  SamplingOptions top1;
  top1.top_k = 1;
  SamplingOptions greedy;
  greedy.greedy = true;
  EXPECT_TRUE(torch::equal(sample_tokens(logits, 10, top1, {}, gens), sample_tokens(logits, 10, greedy, {}, gens)));
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Probabilities 0.5, 0.3, 0.2 (rest ~0): top-p 0.6 keeps the first two only.
  Tensor logits = torch::full({1, 132}, -1e9);
  logits[0][3] = std::log(0.5);
  logits[0][7] = std::log(0.3);
  logits[0][9] = std::log(0.2);
  SamplingOptions opts;
  opts.top_k = 0;
  opts.top_p = 0.6;
  std::vector<at::Generator> gens = {make_generator(1, 0)};
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sample_tokens(logits, 10, opts, {}, gens).item<int64_t>());
  EXPECT_EQ(seen, (std::set<int64_t>{3, 7}));
}

}  // namespace
}  // namespace iflame
