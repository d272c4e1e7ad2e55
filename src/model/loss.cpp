#include "model/loss.h"

namespace iflame {

LossStats sequence_loss(const torch::Tensor& logits, const torch::Tensor& tokens, int64_t pad_token, bool metrics) {
  const int64_t L = tokens.size(1), V = logits.size(2);
  // Position p predicts token p+1; the first 9 (BOS) targets are not scored.
  torch::Tensor pred = logits.narrow(1, 8, L - 9);  // (B, L-9, V)
  torch::Tensor target = tokens.narrow(1, 9, L - 9);  // (B, L-9)
  LossStats s;
  s.loss = torch::nn::functional::cross_entropy(
      pred.reshape({-1, V}).to(torch::kFloat), target.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(pad_token));
  if (!metrics) return s;
  torch::NoGradGuard no_grad;
  torch::Tensor valid = target.ne(pad_token);
  torch::Tensor hit = pred.argmax(-1).eq(target) & valid;
  s.targets = valid.sum().item<int64_t>();
  s.correct = hit.sum().item<int64_t>();
  // Rows of 9 targets (tokens 9k..9k+8 of the sequence): a face counts when all 9 are scored.
  const int64_t rows = (L - 9) / 9;
  torch::Tensor valid_rows = valid.narrow(1, 0, rows * 9).reshape({-1, rows, 9}).all(-1);
  torch::Tensor hit_rows = hit.narrow(1, 0, rows * 9).reshape({-1, rows, 9}).all(-1);
  s.faces = valid_rows.sum().item<int64_t>();
  s.faces_correct = (hit_rows & valid_rows).sum().item<int64_t>();
  return s;
}

torch::Tensor unlikelihood_sum(const torch::Tensor& logits, const torch::Tensor& unlikely) {
  const int64_t V = logits.size(2);
  if (unlikely.size(0) == 0) return torch::zeros({}, logits.options().dtype(torch::kFloat));
  torch::Tensor rows = unlikely.select(1, 0) - 1;                    // (N,) flat positions that predict
  torch::Tensor picked = logits.reshape({-1, V}).index_select(0, rows).to(torch::kFloat);  // (N, V)
  torch::Tensor log_p = torch::log_softmax(picked, -1).gather(1, unlikely.select(1, 1).unsqueeze(1)).squeeze(1);
  // -log(1 - p) = -log(-expm1(log p)); the clamp keeps a certain token (p = 1) finite.
  return -torch::log(-torch::expm1(log_p).clamp_max(-1e-6)).sum();
}

}  // namespace iflame
