#include "generate/sampler.h"

#include <ATen/CPUGeneratorImpl.h>

#include <limits>

namespace iflame {

using torch::Tensor;

at::Generator make_generator(uint64_t seed, uint64_t index) {
  // splitmix64 of (seed, index): independent streams per sample.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return at::detail::createCPUGenerator(z ^ (z >> 31));
}

Tensor allowed_tokens(int64_t t, const TokenizerConfig& tokenizer, int64_t vocab) {
  Tensor mask = torch::zeros({vocab}, torch::kBool);
  mask.narrow(0, 0, tokenizer.quant_max() + 1).fill_(true);
  if (t % kTokensPerFace == 0) mask[tokenizer.eos()] = true;
  return mask;
}

Tensor sample_tokens(const Tensor& logits_in, int64_t t, const SamplingOptions& options, const TokenizerConfig& tokenizer,
                     std::vector<at::Generator>& generators, RuleStats* stats) {
  Tensor logits = logits_in.to(torch::kCPU, torch::kFloat);  // (B, V)
  const int64_t B = logits.size(0), V = logits.size(1);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  Tensor allowed = allowed_tokens(t, tokenizer, V);
  if (stats) {
    Tensor probs = torch::softmax(logits, -1);
    stats->steps += B;
    stats->argmax_violations += allowed.index_select(0, logits.argmax(-1)).logical_not().sum().item<int64_t>();
    stats->disallowed_mass += probs.masked_fill(allowed, 0).sum().item<double>();
  }
  if (options.constraints) logits = logits.masked_fill(allowed.logical_not(), neg_inf);
  if (options.greedy) return logits.argmax(-1);

  logits = logits / std::max(options.temperature, 1e-6);
  if (options.top_k > 0 && options.top_k < V) {
    Tensor kth = std::get<0>(logits.topk(options.top_k, -1)).narrow(1, options.top_k - 1, 1);  // (B, 1)
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (options.top_p < 1.0) {
    // Drop the tail of the sorted distribution whose cumulative mass before it exceeds top_p
    // (the most likely token always stays).
    auto [sorted, order] = logits.sort(-1, /*descending=*/true);
    Tensor cum = torch::softmax(sorted, -1).cumsum(-1);
    Tensor remove_sorted = (cum - torch::softmax(sorted, -1)) > options.top_p;
    Tensor remove = torch::zeros_like(remove_sorted).scatter(1, order, remove_sorted);
    logits = logits.masked_fill(remove, neg_inf);
  }
  Tensor probs = torch::softmax(logits, -1);
  Tensor out = torch::empty({B}, torch::kLong);
  for (int64_t i = 0; i < B; ++i) {
    out[i] = torch::multinomial(probs[i], 1, false, generators[size_t(i)]).item<int64_t>();
  }
  return out;
}

}  // namespace iflame
