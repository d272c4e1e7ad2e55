#include "model/layers.h"

#include "model/cache.h"
#include "model/kernels.h"
#include "model/pointwise.h"
#include "model/rms_norm.h"

namespace iflame {

using torch::Tensor;

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

Tensor RMSNormImpl::forward(const Tensor& x) { return kernels::rms_norm(x, weight, eps); }

Tensor RopeTable::frequencies(int64_t head_dim, double base) {
  const int64_t quarter = head_dim / 4;
  // (1/base) ** linspace(0, 1, D/4) in float32, then D/4 zeros: the reference's buffer bit for bit.
  Tensor exponents = torch::linspace(0, 1, quarter, torch::kFloat);
  Tensor rotated = torch::pow(torch::full({}, float(1.0 / base), torch::kFloat), exponents);
  return torch::cat({rotated, torch::zeros({head_dim / 2 - quarter}, torch::kFloat)});
}

RopeTable RopeTable::make(int64_t positions, int64_t head_dim, double base, const torch::Device& device) {
  Tensor pos = torch::arange(positions, torch::kFloat);
  Tensor theta = torch::outer(pos, frequencies(head_dim, base));  // (T, D/2)
  return {theta.cos().to(device), theta.sin().to(device)};
}

SwiGLUImpl::SwiGLUImpl(int64_t dim, int64_t hidden) {
  proj1 = register_module("proj1", torch::nn::Linear(dim, hidden));
  proj2 = register_module("proj2", torch::nn::Linear(dim, hidden));
  proj3 = register_module("proj3", torch::nn::Linear(hidden, dim));
}

Tensor SwiGLUImpl::forward(const Tensor& x) { return proj3(kernels::swiglu_gate(proj1(x), proj2(x))); }

AttentionImpl::AttentionImpl(const ModelConfig& config, AttnKind kind_)
    : kind(kind_), heads(config.heads), head_dim(config.head_dim()) {
  const int64_t E = config.dim;
  auto linear = [&](const char* name) {
    return register_module(name, torch::nn::Linear(torch::nn::LinearOptions(E, E).bias(false)));
  };
  q_proj = linear("q_proj");
  k_proj = linear("k_proj");
  v_proj = linear("v_proj");
  out_proj = linear("out_proj");
  if (kind == AttnKind::Linear) {
    rms_norm = register_module("rms_norm", RMSNorm(E, config.rms_eps));
    slopes = register_buffer("slopes", kernels::alibi_slopes(heads));
  }
}

std::array<Tensor, 3> AttentionImpl::project(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t B = x.size(0), T = x.size(1);
  auto heads_of = [&](const Tensor& t) { return t.view({B, T, heads, head_dim}); };  // (B,T,H,D)
  return {kernels::rope_heads(heads_of(q_proj(x)), cos, sin), kernels::rope_heads(heads_of(k_proj(x)), cos, sin),
          heads_of(v_proj(x)).transpose(1, 2)};  // (B,H,T,D) each
}

Tensor AttentionImpl::merge_heads(const Tensor& o) {
  const int64_t B = o.size(0), T = o.size(2);
  Tensor merged = o.transpose(1, 2).reshape({B, T, heads * head_dim});  // (B,T,E)
  if (kind == AttnKind::Linear) merged = rms_norm(merged);
  return out_proj(merged);
}

Tensor AttentionImpl::forward(const Tensor& x, const Tensor& cos, const Tensor& sin, LayerCache* capture) {
  auto [q, k, v] = project(x, cos, sin);
  Tensor o = kind == AttnKind::Full ? kernels::causal_attention(q, k, v) : kernels::linear_attention(q, k, v, slopes);
  if (capture) {
    torch::NoGradGuard no_grad;
    const int64_t T = x.size(1);
    if (kind == AttnKind::Full) {
      TORCH_CHECK(T <= capture->k.size(2), "prompt longer than the cache");
      capture->k.narrow(2, 0, T).copy_(k);
      capture->v.narrow(2, 0, T).copy_(v);
      capture->length = T;
    } else {
      // S = sum_u exp(-s (T-1-u)) k_u^T v_u: the recurrent state after T steps, in float32.
      Tensor age = (double(T - 1) - torch::arange(T, torch::dtype(torch::kFloat).device(x.device())));
      Tensor decay = torch::exp(-slopes.view({-1, 1}) * age.view({1, T})).view({1, heads, T, 1});  // (1,H,T,1)
      capture->state.copy_(torch::matmul((k.to(torch::kFloat) * decay).transpose(-2, -1), v.to(torch::kFloat)));
    }
  }
  return merge_heads(o);
}

Tensor AttentionImpl::step(const Tensor& x, const Tensor& cos, const Tensor& sin, LayerCache& cache) {
  auto [q, k, v] = project(x, cos, sin);  // (B, H, 1, D)
  Tensor o;
  if (kind == AttnKind::Full) {
    TORCH_CHECK(cache.length < cache.k.size(2), "KV cache is full");
    cache.k.narrow(2, cache.length, 1).copy_(k);
    cache.v.narrow(2, cache.length, 1).copy_(v);
    ++cache.length;
    Tensor keys = cache.k.narrow(2, 0, cache.length), values = cache.v.narrow(2, 0, cache.length);
    Tensor scores = torch::matmul(q.to(keys.scalar_type()), keys.transpose(-2, -1)) / std::sqrt(double(head_dim));
    o = torch::matmul(torch::softmax(scores, -1), values).to(x.scalar_type());  // (B, H, 1, D)
  } else {
    // S <- exp(-s) S + k^T v;  o = q S  (float32 state whatever the activations' dtype).
    Tensor decay = torch::exp(-slopes).view({1, heads, 1, 1});
    cache.state.mul_(decay).add_(torch::matmul(k.to(torch::kFloat).transpose(-2, -1), v.to(torch::kFloat)));
    o = torch::matmul(q.to(torch::kFloat), cache.state).to(x.scalar_type());
  }
  return merge_heads(o);
}

BlockImpl::BlockImpl(const ModelConfig& config, AttnKind kind) {
  attn = register_module("attn", Attention(config, kind));
  feed_forward = register_module("feed_forward", SwiGLU(config.dim, config.hidden()));
  norm1 = register_module("norm1", RMSNorm(config.dim, config.rms_eps));
  norm2 = register_module("norm2", RMSNorm(config.dim, config.rms_eps));
}

Tensor BlockImpl::step(const Tensor& x, const Tensor& cos, const Tensor& sin, LayerCache& cache) {
  Tensor h = x + attn->step(norm1(x), cos, sin, cache);
  return h + feed_forward(norm2(h));
}

Tensor BlockImpl::forward(const Tensor& x, const Tensor& cos, const Tensor& sin, Trace* trace, const std::string& name,
                          LayerCache* capture) {
  Tensor a = attn->forward(norm1(x), cos, sin, capture);
  Tensor h = x + a;
  Tensor out = h + feed_forward(norm2(h));
  if (trace) {
    (*trace)[name + ".attn_out"] = a.detach();
    (*trace)[name + ".output"] = out.detach();
  }
  return out;
}

}  // namespace iflame
