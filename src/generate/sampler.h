// Token sampling: temperature, top-k, top-p (nucleus), greedy; grammar constraints that keep
// every output decodable; per-sequence seeded generators so results don't depend on batching.
#pragma once
#include <cstdint>
#include <vector>

#include "model/torch_compat.h"
#include "tokenizer/tokenizer.h"

namespace iflame {

struct SamplingOptions {
  double temperature = 1.0;  // the reference's defaults
  int64_t top_k = 50;        // 0 = off
  double top_p = 0.95;       // 1 = off
  bool greedy = false;       // argmax (ignores the three above)
  bool constraints = true;   // grammar: coordinates inside a row, EOS only at a row start
};

// Counts of how often the unconstrained model would have broken the grammar.
struct RuleStats {
  int64_t steps = 0;
  int64_t argmax_violations = 0;     // the raw argmax was a disallowed token
  double disallowed_mass = 0;        // summed probability of disallowed tokens (mean = / steps)
};

// Boolean mask (V,) of tokens allowed at sequence index `t` (the index of the token being
// produced): coordinates always; EOS only at a row start (t % 9 == 0); never PAD or BOS.
torch::Tensor allowed_tokens(int64_t t, const TokenizerConfig& tokenizer, int64_t vocab);

// Picks one token per row of `logits` (B, V) for sequence index `t`. `generators` has one
// generator per row (row i always uses its own, whatever the batch). Updates `stats`.
torch::Tensor sample_tokens(const torch::Tensor& logits, int64_t t, const SamplingOptions& options,
                            const TokenizerConfig& tokenizer, std::vector<at::Generator>& generators,
                            RuleStats* stats = nullptr);

// A CPU generator seeded for sample `index` of a run with seed `seed`.
at::Generator make_generator(uint64_t seed, uint64_t index);

}  // namespace iflame
