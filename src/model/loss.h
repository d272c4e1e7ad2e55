// The training objective of the reference (spec section 4) and teacher-forced metrics.
#pragma once
#include "model/torch_compat.h"

namespace iflame {

struct LossStats {
  torch::Tensor loss;       // scalar, mean cross-entropy over non-PAD targets (differentiable)
  int64_t targets = 0;      // number of non-PAD targets
  int64_t correct = 0;      // argmax == target (token accuracy numerator)
  int64_t faces = 0;        // complete target rows (9 non-PAD targets)
  int64_t faces_correct = 0;  // rows whose 9 tokens are all right (strict face accuracy)
};

// Cross-entropy of logits[:, 8:-1] against tokens[:, 9:] with PAD ignored and EOS included.
// logits: (B, L, V) float, tokens: (B, L) int64, L a multiple of 9: the model's input tokens, or
// targets aligned with them that hold PAD where a position is not scored (train/data.h). With `metrics`, also
// counts token and strict face accuracy (extra work: argmax over V).
LossStats sequence_loss(const torch::Tensor& logits, const torch::Tensor& tokens, int64_t pad_token,
                        bool metrics = true);

// Unlikelihood (Welleck et al. 2019, "Neural text degeneration with unlikelihood training") of
// the tokens `unlikely` lists: the sum over its (N, 2) rows (b L + t, v) of -log(1 - p_v), p the
// softmax at position t - 1, the one that predicts token t. logits (B, L, V); t >= 9.
torch::Tensor unlikelihood_sum(const torch::Tensor& logits, const torch::Tensor& unlikely);

}  // namespace iflame
