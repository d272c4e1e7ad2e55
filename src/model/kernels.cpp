#include "model/kernels.h"

#include <cmath>

namespace iflame::kernels {

using torch::Tensor;
namespace F = torch::nn::functional;

torch::Tensor alibi_slopes(int64_t heads) {
  std::vector<float> s(static_cast<size_t>(heads));
  for (int64_t h = 0; h < heads; ++h) s[size_t(h)] = float(std::pow(2.0, -8.0 * double(h + 1) / double(heads)));
  return torch::tensor(s);
}

Tensor causal_attention_naive(const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t T = q.size(2), S = k.size(2);
  Tensor scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(q.size(-1)));  // (B,H,T,S)
  // Bottom-right aligned causal mask: query t sees keys <= t + (S - T).
  Tensor mask = torch::ones({T, S}, torch::dtype(torch::kBool).device(q.device())).triu(S - T + 1);
  scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(scores, -1), v);
}

// (T, T) matrix exp(-s (t-u)) for u <= t, else 0, per head: (H, T, T).
static Tensor decay_matrix(const Tensor& slopes, int64_t T, const torch::TensorOptions& opts) {
  Tensor idx = torch::arange(T, opts);
  Tensor diff = idx.unsqueeze(1) - idx.unsqueeze(0);                  // (T, T): t - u
  Tensor decay = torch::exp(-slopes.to(opts).view({-1, 1, 1}) * diff.clamp_min(0));  // (H, T, T)
  return decay.masked_fill(diff.lt(0), 0);
}

Tensor linear_attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slopes) {
  const int64_t T = q.size(2);
  Tensor scores = torch::matmul(q, k.transpose(-2, -1));  // (B,H,T,T)
  return torch::matmul(scores * decay_matrix(slopes, T, q.options()), v);
}

Tensor linear_attention_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slopes) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  Tensor decay = torch::exp(-slopes.to(q.options())).view({1, H, 1, 1});
  Tensor state = torch::zeros({B, H, D, v.size(3)}, q.options());  // S_h: (D, Dv)
  std::vector<Tensor> out;
  out.reserve(size_t(T));
  for (int64_t t = 0; t < T; ++t) {
    Tensor kt = k.select(2, t).unsqueeze(-1);  // (B,H,D,1)
    Tensor vt = v.select(2, t).unsqueeze(-2);  // (B,H,1,Dv)
    state = decay * state + torch::matmul(kt, vt);
    out.push_back(torch::matmul(q.select(2, t).unsqueeze(-2), state).squeeze(-2));  // (B,H,Dv)
  }
  return torch::stack(out, 2);
}

Tensor linear_attention_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slopes,
                                int64_t chunk) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Dv = v.size(3);
  const int64_t N = (T + chunk - 1) / chunk, padded = N * chunk;
  auto pad = [&](const Tensor& x) { return padded == T ? x : F::pad(x, F::PadFuncOptions({0, 0, 0, padded - T})); };
  // Zero padding at the end changes nothing before T (keys/values there are zero).
  Tensor qc = pad(q).view({B, H, N, chunk, D});
  Tensor kc = pad(k).view({B, H, N, chunk, D});
  Tensor vc = pad(v).view({B, H, N, chunk, Dv});
  auto opts = q.options();
  Tensor s = slopes.to(opts).view({1, H, 1, 1, 1});
  Tensor pos = torch::arange(chunk, opts);  // position inside the chunk

  // Intra-chunk: (q k^T ⊙ decay) v within each chunk.
  Tensor intra_decay = decay_matrix(slopes, chunk, opts).view({1, H, 1, chunk, chunk});
  Tensor intra = torch::matmul(torch::matmul(qc, kc.transpose(-2, -1)) * intra_decay, vc);  // (B,H,N,C,Dv)

  // Per-chunk state contribution: sum_j exp(-s (C-1-j)) k_j^T v_j  -> (B,H,N,D,Dv).
  Tensor k_decay = torch::exp(-s * (double(chunk - 1) - pos).view({1, 1, 1, chunk, 1}));
  Tensor kv = torch::matmul((kc * k_decay).transpose(-2, -1), vc);
  // State entering chunk n: sum_{m<n} exp(-s C (n-1-m)) kv_m, as one (N x N) matmul per head.
  Tensor n_idx = torch::arange(N, opts);
  Tensor gap = n_idx.view({N, 1}) - 1 - n_idx.view({1, N});  // n-1-m
  Tensor chunk_decay = torch::exp(-slopes.to(opts).view({H, 1, 1}) * double(chunk) * gap.clamp_min(0));
  chunk_decay = chunk_decay.masked_fill(gap.lt(0), 0).view({1, H, N, N});  // (1,H,N,N)
  Tensor states = torch::matmul(chunk_decay, kv.reshape({B, H, N, D * Dv})).view({B, H, N, D, Dv});
  // Inter-chunk: exp(-s (i+1)) q_i S_n.
  Tensor q_decay = torch::exp(-s * (pos + 1).view({1, 1, 1, chunk, 1}));
  Tensor inter = torch::matmul(qc * q_decay, states);
  Tensor out = (intra + inter).view({B, H, padded, Dv});
  return padded == T ? out : out.narrow(2, 0, T);
}

// ---------------------------------------------------------------------------------------
// Tiled causal attention (flash-style) as a custom autograd function.

namespace {

// Softmax statistics and gradients accumulate in float32, or float64 for float64 inputs.
torch::ScalarType accumulation_type(const Tensor& x) {
  return x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// One (query tile, key tile) score block with the causal mask applied where the tiles overlap.
Tensor tile_scores(const Tensor& qi, const Tensor& kj, int64_t q0, int64_t k0, double scale) {
  Tensor s = torch::matmul(qi, kj.transpose(-2, -1)) * scale;  // (B,H,tq,tk)
  const int64_t tq = qi.size(2), tk = kj.size(2);
  if (k0 + tk - 1 > q0) {  // some key in this tile is after some query: mask u > t
    Tensor t = torch::arange(q0, q0 + tq, torch::dtype(torch::kLong).device(qi.device())).view({tq, 1});
    Tensor u = torch::arange(k0, k0 + tk, torch::dtype(torch::kLong).device(qi.device())).view({1, tk});
    s = s.masked_fill(u > t, -std::numeric_limits<float>::infinity());
  }
  return s;
}

class TiledCausalAttention : public torch::autograd::Function<TiledCausalAttention> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                        int64_t tile) {
    const int64_t T = q.size(2);
    const double scale = 1.0 / std::sqrt(double(q.size(3)));
    const auto acc_dtype = accumulation_type(q);
    Tensor out = torch::empty_like(q);
    Tensor lse = torch::empty({q.size(0), q.size(1), T}, q.options().dtype(acc_dtype));  // log-sum-exp
    for (int64_t q0 = 0; q0 < T; q0 += tile) {
      const int64_t tq = std::min(tile, T - q0);
      Tensor qi = q.narrow(2, q0, tq);
      Tensor m, l, acc;  // running max (B,H,tq,1), normalizer, weighted sum (B,H,tq,D)
      for (int64_t k0 = 0; k0 < q0 + tq; k0 += tile) {
        const int64_t tk = std::min(tile, T - k0);
        Tensor s = tile_scores(qi, k.narrow(2, k0, tk), q0, k0, scale).to(acc_dtype);
        Tensor m_new = m.defined() ? torch::maximum(m, std::get<0>(s.max(-1, true))) : std::get<0>(s.max(-1, true));
        Tensor p = torch::exp(s - m_new);
        Tensor pv = torch::matmul(p.to(v.scalar_type()), v.narrow(2, k0, tk)).to(acc_dtype);
        if (!m.defined()) {
          l = p.sum(-1, true);
          acc = pv;
        } else {
          Tensor corr = torch::exp(m - m_new);
          l = l * corr + p.sum(-1, true);
          acc = acc * corr + pv;
        }
        m = m_new;
      }
      out.narrow(2, q0, tq).copy_(acc / l);
      lse.narrow(2, q0, tq).copy_((m + torch::log(l)).squeeze(-1));
    }
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["tile"] = tile;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const int64_t tile = ctx->saved_data["tile"].toInt();
    const int64_t T = q.size(2);
    const double scale = 1.0 / std::sqrt(double(q.size(3)));
    const auto acc_dtype = accumulation_type(q);
    Tensor dout = grads[0].contiguous();
    Tensor dq = torch::zeros_like(q, q.options().dtype(acc_dtype));
    Tensor dk = torch::zeros_like(k, k.options().dtype(acc_dtype));
    Tensor dv = torch::zeros_like(v, v.options().dtype(acc_dtype));
    Tensor delta = (dout.to(acc_dtype) * out.to(acc_dtype)).sum(-1, true);  // (B,H,T,1)
    for (int64_t q0 = 0; q0 < T; q0 += tile) {
      const int64_t tq = std::min(tile, T - q0);
      Tensor qi = q.narrow(2, q0, tq), doi = dout.narrow(2, q0, tq).to(acc_dtype);
      Tensor lse_i = lse.narrow(2, q0, tq).unsqueeze(-1), delta_i = delta.narrow(2, q0, tq);
      Tensor dqi = dq.narrow(2, q0, tq);
      for (int64_t k0 = 0; k0 < q0 + tq; k0 += tile) {
        const int64_t tk = std::min(tile, T - k0);
        Tensor kj = k.narrow(2, k0, tk), vj = v.narrow(2, k0, tk);
        Tensor p = torch::exp(tile_scores(qi, kj, q0, k0, scale).to(acc_dtype) - lse_i);  // (B,H,tq,tk)
        dv.narrow(2, k0, tk).add_(torch::matmul(p.transpose(-2, -1), doi));
        Tensor dp = torch::matmul(doi, vj.to(acc_dtype).transpose(-2, -1));
        Tensor ds = p * (dp - delta_i) * scale;
        dqi.add_(torch::matmul(ds, kj.to(acc_dtype)));
        dk.narrow(2, k0, tk).add_(torch::matmul(ds.transpose(-2, -1), qi.to(acc_dtype)));
      }
    }
    return {dq.to(q.scalar_type()), dk.to(k.scalar_type()), dv.to(v.scalar_type()), Tensor()};
  }
};

}  // namespace

Tensor causal_attention_tiled(const Tensor& q, const Tensor& k, const Tensor& v, int64_t tile) {
  return TiledCausalAttention::apply(q.contiguous(), k.contiguous(), v.contiguous(), tile);
}

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
#if IFLAME_TORCH_AT_LEAST(2, 0)
  if (q.is_cuda()) return compat::sdpa_causal(q, k, v);
#endif
  return causal_attention_tiled(q, k, v);
}

Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slopes) {
  return linear_attention_chunked(q, k, v, slopes);
}

}  // namespace iflame::kernels
