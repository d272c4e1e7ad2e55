// Analytic FLOP counts of a training step (convention in flops.h).
#include "model/flops.h"

#include <algorithm>

namespace iflame {

int64_t block_matmul_weights(const ModelConfig& c) { return 4 * c.dim * c.dim + 3 * c.dim * c.hidden(); }

double full_attention_flops(int64_t T, int64_t dim) {
  // QK^T and PV: 2 matmuls x 2 FLOPs per multiply-add x D per pair, over H heads (H * D = E),
  // for the T(T+1)/2 causal (query, key) pairs.
  return 4.0 * double(dim) * double(T) * double(T + 1) / 2.0;
}

double linear_attention_flops(int64_t T, int64_t heads, int64_t head_dim, int64_t chunk) {
  const double N = double((T + chunk - 1) / chunk), P = N * double(chunk), C = double(chunk), D = double(head_dim);
  const double intra = 2.0 * P * C * D * 2.0;  // (q k^T) within chunks, then x v
  const double states = 2.0 * P * D * D;       // per-chunk k^T v
  const double carry = 2.0 * N * N * D * D;    // decay-weighted prefix over chunk states (N x N matmul)
  const double inter = 2.0 * P * D * D;        // q S
  return double(heads) * (intra + states + carry + inter);
}

std::vector<BlockGroup> block_groups(const ModelConfig& c, int64_t length) {
  std::vector<BlockGroup> groups;
  auto add = [&](int64_t T, AttnKind kind, int64_t n) {
    for (auto& g : groups) {
      if (g.positions == T && g.kind == kind) {
        g.count += n;
        return;
      }
    }
    groups.push_back({T, kind, n});
  };
  // Baselines run at the given length; iFlame pads it to whole faces.
  const int64_t L = c.arch == Arch::IFlame ? (length + 8) / 9 * 9 : length;
  for (int64_t i = 0; i < c.num_layers(); ++i) add(c.stage_of(i).positions(L), c.block_kind(i), 1);
  return groups;
}

FlopCount train_flops(const ModelConfig& c, int64_t length, int64_t batch) {
  FlopCount f;
  const double B = double(batch), W = double(block_matmul_weights(c));
  double full = 0, linear = 0;
  for (const auto& g : block_groups(c, length)) {
    f.dense_forward += 2.0 * W * double(g.positions) * double(g.count) * B;
    if (g.kind == AttnKind::Full) {
      full += full_attention_flops(g.positions, c.dim) * double(g.count) * B;
    } else {
      linear += linear_attention_flops(g.positions, c.heads, c.head_dim()) * double(g.count) * B;
    }
  }
  // The head runs on the unpadded length.
  f.dense_forward += 2.0 * double(c.dim) * double(c.vocab) * double(length) * B;
  f.attention_forward = full + linear;
  f.train = kDenseTrainFactor * f.dense_forward + kFullAttentionTrainFactor * full + kLinearAttentionTrainFactor * linear;
  return f;
}

FlopCount decode_flops(const ModelConfig& c, int64_t from, int64_t to) {
  FlopCount f;
  const double W = double(block_matmul_weights(c)), E = double(c.dim);
  for (const StageSpec& stage : c.stages()) {
    int64_t full = 0;
    for (int64_t i = stage.first_block; i < stage.first_block + stage.blocks; ++i) full += c.block_kind(i) == AttnKind::Full;
    const double linear = double(stage.blocks - full);
    for (int64_t p = from; p < to; ++p) {
      if (!stage.runs_at(p)) continue;
      f.dense_forward += 2.0 * W * double(stage.blocks);
      // Full: q.k and p.v over the keys so far; linear: k^T v into the state, then q S.
      f.attention_forward += double(full) * 4.0 * E * double(stage.position_of(p) + 1) + linear * 4.0 * E * double(c.head_dim());
    }
  }
  f.dense_forward += 2.0 * E * double(c.vocab) * double(std::max<int64_t>(to - from, 0));  // the head, every token
  return f;
}

}  // namespace iflame
