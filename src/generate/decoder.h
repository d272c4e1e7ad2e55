// Cached decoding (spec section 3): prefill a prompt, then one token at a time, running each
// hourglass stage only when its resolution completes a position. Per token, iFlame evaluates
// 8 + 8/3 + 8/9 = 11.6 blocks on average instead of 24.
#pragma once
#include "generate/decode_cache.h"
#include "model/model.h"

namespace iflame {

// Runs the prompt (B, P) through the parallel forward and fills `cache` (P a multiple of 9,
// cache.position becomes P). Returns the logits (B, P, V).
torch::Tensor prefill(IFlameModelImpl& model, DecodeCache& cache, const torch::Tensor& prompt);

// Consumes one token per sequence, token: (B,) int64, at position cache.position, and returns
// the logits (B, V) for the next position.
torch::Tensor decode_step(IFlameModelImpl& model, DecodeCache& cache, const torch::Tensor& token);

// Teacher-forced cached logits for whole sequences (B, L): prefill of `prompt_tokens` (a
// multiple of 9), then one token at a time. Equals the parallel forward to fp32 rounding.
torch::Tensor cached_logits(IFlameModelImpl& model, const torch::Tensor& tokens, int64_t prompt_tokens = 9);

}  // namespace iflame
