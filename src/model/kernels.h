// Attention kernels. Shapes: q, k, v are (B, H, T, D); outputs are (B, H, T, D).
// The *_naive versions materialize T x T and exist as the reference for tests.
#pragma once
#include "model/torch_compat.h"

namespace iflame::kernels {

// Causal softmax(q k^T / sqrt(D)) v.
torch::Tensor causal_attention_naive(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
// o_t = sum_{u<=t} exp(-slope_h (t-u)) (q_t . k_u) v_u; slopes: (H,).
torch::Tensor linear_attention_naive(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const torch::Tensor& slopes);
// Recurrent form (one position at a time, state S_h of D x D): the definition, for tests.
torch::Tensor linear_attention_recurrent(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         const torch::Tensor& slopes);

// Flash-style causal attention from tensor ops, so on any device: tiles of `tile` queries
// against blocks of `key_block` keys (a multiple of the tile; 0 = one tile) with an online
// softmax, never a T x T matrix; a custom autograd function whose backward recomputes the blocks
// from the saved log-sum-exp. Memory O(T * D) per head plus one score block.
torch::Tensor causal_attention_tiled(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     int64_t tile = 256, int64_t key_block = 0);

// Fused flash attention (kernels/flash_attention.h): the same result as the naive kernel from
// blocks of 64 queries x 64 keys with the softmax online, no tensor temporaries inside; a
// custom autograd function whose backward recomputes the scores from the saved log-sum-exp.
// Arithmetic in float32 (float64 for float64 inputs) whatever the input dtype; results in it.
torch::Tensor causal_attention_flash(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);

// Chunked linear attention with decay: exact intra-chunk masked matmul plus an inter-chunk
// state carried as one (N x N) decay-weighted prefix over the per-chunk D x D states. Memory
// O(T * chunk + chunks * D^2) per head; plain autograd (no T x T anywhere, forward or backward).
torch::Tensor linear_attention_chunked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                       const torch::Tensor& slopes, int64_t chunk = 64);

// The same as linear_attention_chunked, as a custom autograd function whose backward
// recomputes the chunk products from q, k, v (nothing else is kept for the backward).
torch::Tensor linear_attention_fused(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                     const torch::Tensor& slopes, int64_t chunk = 64);

// What the model calls: the fastest exact kernel for the device (the flash kernel on the CPU,
// SDPA on CUDA with LibTorch 2.x, the tiled kernel, made of tensor ops, on anything else).
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
torch::Tensor linear_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& slopes);

// Per-head decay slopes s_h = 2^(-8 (h+1) / H) (ALiBi), float32 (H,).
torch::Tensor alibi_slopes(int64_t heads);

}  // namespace iflame::kernels
