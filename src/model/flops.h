// Analytic FLOP counts of a training step: the numerator of MFU (nanoGPT keeps its
// estimate_mfu next to the model too). Torch-free.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace iflame {

// FLOP counting. Convention (stated in docs/benchmarks.md):
//  * dense layers (q/k/v/out projections, SwiGLU, output head): 2 * weights * tokens forward,
//    x3 for forward + backward (input gradient + weight gradient);
//  * full attention: QK^T and PV over the causal pairs only, 4 * E * T(T+1)/2 forward; the
//    tiled kernel's backward recomputes the scores, so forward + backward = x3.5 (executed
//    FLOPs, not the x3 "model FLOPs" convention of PaLM);
//  * linear attention: the chunked kernel's matmuls as it executes them (chunk 64, the length
//    padded to whole chunks), x3 for forward + backward (plain autograd);
//  * norms, RoPE, softmax, SiLU, residuals, resampling, embedding and the loss: not counted.
inline constexpr double kDenseTrainFactor = 3.0;
inline constexpr double kFullAttentionTrainFactor = 3.5;
inline constexpr double kLinearAttentionTrainFactor = 3.0;
// The chunk length kernels::linear_attention uses (kernels.h default).
inline constexpr int64_t kLinearAttentionChunk = 64;

// Weights of one block's matmuls: q, k, v, out (E x E each) and SwiGLU (3 x E x hidden).
int64_t block_matmul_weights(const ModelConfig& config);
// Forward FLOPs of the attention kernels for one sequence of T positions (all heads).
double full_attention_flops(int64_t T, int64_t dim);
double linear_attention_flops(int64_t T, int64_t heads, int64_t head_dim, int64_t chunk = kLinearAttentionChunk);

struct FlopCount {
  double dense_forward = 0;      // projections, SwiGLU, head
  double attention_forward = 0;  // attention kernels
  double train = 0;              // forward + backward with the factors above
  double forward() const { return dense_forward + attention_forward; }
};
// One training step on `batch` sequences of `length` tokens (iFlame pads to a multiple of 9).
FlopCount train_flops(const ModelConfig& config, int64_t length, int64_t batch);

// Decoding tokens [from, to) one at a time with the cache, forward only (train = 0). Each token
// runs the stages its position completes (StageSpec::runs_at): full attention reads the
// stage's positions so far, linear attention updates and reads its D x D state per head.
// Over a whole sequence of whole faces the dense and full-attention counts equal the forward's.
FlopCount decode_flops(const ModelConfig& config, int64_t from, int64_t to);

// The resolutions a model runs its blocks at: (positions T, attention kind, number of blocks).
struct BlockGroup {
  int64_t positions;
  AttnKind kind;
  int64_t count;
};
std::vector<BlockGroup> block_groups(const ModelConfig& config, int64_t length);

}  // namespace iflame
