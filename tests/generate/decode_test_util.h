// Helpers of the decoder tests.
#pragma once
#include "generate/decoder.h"

namespace iflame::test {

// Cached logits of `tokens` (B, L) decoded on `path` from a 9-token prompt: (B, L, V).
inline torch::Tensor decode_all(IFlameModelImpl& model, const torch::Tensor& tokens, DecodePath path,
                                torch::ScalarType kv = torch::kFloat) {
  torch::NoGradGuard no_grad;
  const int64_t B = tokens.size(0), L = tokens.size(1);
  DecodeCache cache(model.config, B, (L + 8) / 9 * 9, torch::kCPU, kv);
  cache.path = path;
  std::vector<torch::Tensor> out = {prefill(model, cache, tokens.narrow(1, 0, 9))};
  for (int64_t p = 9; p < L; ++p) out.push_back(decode_step(model, cache, tokens.select(1, p)).unsqueeze(1));
  return torch::cat(out, 1);
}

}  // namespace iflame::test
