// Building blocks of iFlame (spec section 2): RMSNorm, half-truncated RoPE, SwiGLU, the two
// attention kinds, and the pre-norm block. Module and parameter names follow the reference's
// state dict exactly (`attn.q_proj.weight`, `feed_forward.proj1.bias`, `norm1.weight`, ...).
#pragma once
#include <map>
#include <string>

#include "model/config.h"
#include "model/torch_compat.h"

namespace iflame {

struct LayerCache;  // model/cache.h

// Activations recorded by name during a forward (for per-block parity tests); may be null.
using Trace = std::map<std::string, torch::Tensor>;

// x * rsqrt(mean(x^2) + eps) * w, computed in float32 whatever the input dtype, no bias.
struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// cos/sin tables (T, D/2) for positions [0, T): f_j = (1/base)^(j / (D/4 - 1)) for j < D/4,
// 0 above (half the dimensions are not rotated). Computed in float32 as the reference.
struct RopeTable {
  torch::Tensor cos, sin;
  static RopeTable make(int64_t positions, int64_t head_dim, double base, const torch::Device& device);
  static torch::Tensor frequencies(int64_t head_dim, double base);  // (D/2,)
};

struct SwiGLUImpl : torch::nn::Module {
  SwiGLUImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);  // proj3(silu(proj1 x) * proj2 x)
  torch::nn::Linear proj1{nullptr}, proj2{nullptr}, proj3{nullptr};
};
TORCH_MODULE(SwiGLU);

// Multi-head attention of either kind. Full: causal softmax. Linear: decayed sum with fixed
// per-head ALiBi slopes, then RMSNorm over the concatenated heads. RoPE on q and k in both.
struct AttentionImpl : torch::nn::Module {
  AttentionImpl(const ModelConfig& config, AttnKind kind);
  // x: (B, T, E); cos/sin: (T, D/2) for these T positions -> (B, T, E). With `capture`
  // (a prefill), K/V (full) or the final D x D state (linear) are written into it.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        LayerCache* capture = nullptr);
  // One new position: x (B, 1, E), cos/sin (1, D/2) of that position; reads and updates `cache`.
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, LayerCache& cache);
  // Projections with RoPE: q, k, v as (B, H, T, D).
  std::array<torch::Tensor, 3> project(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
  // Heads (B, H, T, D) -> output (B, T, E): concat (+ RMSNorm for linear) and out_proj.
  torch::Tensor merge_heads(const torch::Tensor& heads_out);

  AttnKind kind;
  int64_t heads, head_dim;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
  RMSNorm rms_norm{nullptr};  // linear attention only
  torch::Tensor slopes;       // (H,) buffer, not saved
};
TORCH_MODULE(Attention);

// Pre-norm block: x += Attn(RMSNorm1(x)); x += SwiGLU(RMSNorm2(x)).
struct BlockImpl : torch::nn::Module {
  BlockImpl(const ModelConfig& config, AttnKind kind);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        Trace* trace = nullptr, const std::string& name = "", LayerCache* capture = nullptr);
  torch::Tensor step(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin, LayerCache& cache);
  RMSNorm norm1{nullptr}, norm2{nullptr};
  Attention attn{nullptr};
  SwiGLU feed_forward{nullptr};
};
TORCH_MODULE(Block);

}  // namespace iflame
