#include "model/kernels.h"

#include <cmath>

#include "kernels/flash_attention.h"

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

namespace {

// The decay factors of the chunked form for chunks of C positions and N chunks, per head:
//   intra (1,H,1,C,C): exp(-s (i-j)) for j <= i inside a chunk, else 0
//   key   (1,H,1,C,1): exp(-s (C-1-j)), key j's decay to the end of its chunk
//   query (1,H,1,C,1): exp(-s (i+1)), the state's decay from the chunk start to query i
//   chunk (1,H,N,N):   exp(-s C (n-1-m)) for m < n, else 0 (state of chunk m entering chunk n)
struct ChunkDecays {
  Tensor intra, key, query, chunk;
};

ChunkDecays chunk_decays(const Tensor& slopes, int64_t C, int64_t N, const torch::TensorOptions& opts) {
  const int64_t H = slopes.size(0);
  Tensor s = slopes.to(opts).view({1, H, 1, 1, 1});
  Tensor pos = torch::arange(C, opts);
  Tensor n_idx = torch::arange(N, opts);
  Tensor gap = n_idx.view({N, 1}) - 1 - n_idx.view({1, N});  // n-1-m
  Tensor chunk = torch::exp(-slopes.to(opts).view({H, 1, 1}) * double(C) * gap.clamp_min(0));
  return {decay_matrix(slopes, C, opts).view({1, H, 1, C, C}),
          torch::exp(-s * (double(C - 1) - pos).view({1, 1, 1, C, 1})),
          torch::exp(-s * (pos + 1).view({1, 1, 1, C, 1})),
          chunk.masked_fill(gap.lt(0), 0).view({1, H, N, N})};
}

// (B,H,T,D) -> (B,H,N,C,D), zero-padded at the end to whole chunks. Zero keys/values there
// change nothing before T.
Tensor to_chunks(const Tensor& x, int64_t C, int64_t N) {
  const int64_t T = x.size(2), padded = N * C;
  Tensor p = padded == T ? x : F::pad(x, F::PadFuncOptions({0, 0, 0, padded - T}));
  return p.reshape({x.size(0), x.size(1), N, C, x.size(3)});
}

Tensor from_chunks(const Tensor& x, int64_t T) {
  Tensor out = x.reshape({x.size(0), x.size(1), x.size(2) * x.size(3), x.size(4)});
  return out.size(2) == T ? out : out.narrow(2, 0, T);
}

// States entering each chunk: S_n = sum_{m<n} chunk[n,m] kv_m as one (N x N) matmul per head.
Tensor chunk_prefix(const Tensor& chunk_decay, const Tensor& kv) {  // kv (B,H,N,D,Dv)
  const int64_t B = kv.size(0), H = kv.size(1), N = kv.size(2), D = kv.size(3), Dv = kv.size(4);
  return torch::matmul(chunk_decay, kv.reshape({B, H, N, D * Dv})).view({B, H, N, D, Dv});
}

}  // namespace

Tensor linear_attention_chunked(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slopes,
                                int64_t chunk) {
  const int64_t T = q.size(2), N = (T + chunk - 1) / chunk;
  Tensor qc = to_chunks(q, chunk, N), kc = to_chunks(k, chunk, N), vc = to_chunks(v, chunk, N);
  const ChunkDecays d = chunk_decays(slopes, chunk, N, q.options());
  // Intra-chunk: (q k^T ⊙ decay) v within each chunk.
  Tensor intra = torch::matmul(torch::matmul(qc, kc.transpose(-2, -1)) * d.intra, vc);  // (B,H,N,C,Dv)
  // Per-chunk state contribution sum_j exp(-s (C-1-j)) k_j^T v_j, then the states entering
  // each chunk, then the inter-chunk term exp(-s (i+1)) q_i S_n.
  Tensor states = chunk_prefix(d.chunk, torch::matmul((kc * d.key).transpose(-2, -1), vc));
  Tensor inter = torch::matmul(qc * d.query, states);
  return from_chunks(intra + inter, T);
}

namespace {

// The chunked linear attention as a custom autograd function: the same forward, and a
// backward that recomputes the chunk products from q, k, v instead of keeping them. Plain
// autograd keeps ~9 (T x D)-sized tensors per layer alive until the backward; this keeps none
// beyond its inputs (which the projections keep anyway).
class ChunkedLinearAttention : public torch::autograd::Function<ChunkedLinearAttention> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                        const Tensor& slopes, int64_t chunk) {
    ctx->save_for_backward({q, k, v, slopes});
    ctx->saved_data["chunk"] = chunk;
    return linear_attention_chunked(q, k, v, slopes, chunk);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &q = saved[0], &k = saved[1], &v = saved[2], &slopes = saved[3];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const int64_t T = q.size(2), N = (T + chunk - 1) / chunk;
    Tensor qc = to_chunks(q, chunk, N), kc = to_chunks(k, chunk, N), vc = to_chunks(v, chunk, N);
    Tensor doc = to_chunks(grads[0].to(q.scalar_type()), chunk, N);  // (B,H,N,C,Dv)
    const ChunkDecays d = chunk_decays(slopes, chunk, N, q.options());

    // Intra: out_i = sum_j A_ij v_j with A = (q k^T) ⊙ decay.
    Tensor a = torch::matmul(qc, kc.transpose(-2, -1)) * d.intra;          // (B,H,N,C,C)
    Tensor dv = torch::matmul(a.transpose(-2, -1), doc);                   // (B,H,N,C,Dv)
    Tensor da = torch::matmul(doc, vc.transpose(-2, -1)) * d.intra;        // (B,H,N,C,C)
    Tensor dq = torch::matmul(da, kc);                                     // (B,H,N,C,D)
    Tensor dk = torch::matmul(da.transpose(-2, -1), qc);                   // (B,H,N,C,D)

    // Inter: out_i = (q_i e_i) S_n, S_n = sum_{m<n} c_nm kv_m, kv_m = (k ⊙ key)^T v.
    Tensor kd = kc * d.key;
    Tensor states = chunk_prefix(d.chunk, torch::matmul(kd.transpose(-2, -1), vc));  // (B,H,N,D,Dv)
    dq.add_(torch::matmul(doc, states.transpose(-2, -1)) * d.query);
    Tensor ds = torch::matmul((qc * d.query).transpose(-2, -1), doc);               // (B,H,N,D,Dv)
    Tensor dkv = chunk_prefix(d.chunk.transpose(-2, -1), ds);                       // sum_{n>m} c_nm dS_n
    dk.add_(torch::matmul(vc, dkv.transpose(-2, -1)) * d.key);
    dv.add_(torch::matmul(kd, dkv));
    return {from_chunks(dq, T), from_chunks(dk, T), from_chunks(dv, T), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor linear_attention_fused(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slopes, int64_t chunk) {
  return ChunkedLinearAttention::apply(q, k, v, slopes, chunk);
}

// ---------------------------------------------------------------------------------------
// Tiled causal attention (flash-style) as a custom autograd function.

namespace {

// Softmax statistics and gradients accumulate in float32, or float64 for float64 inputs.
torch::ScalarType accumulation_type(const Tensor& x) {
  return x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// Keys per score block: whole multiples of the tile (0 = one tile). Measured on this CPU
// (bf16, 1 thread, B=1 H=16 T=7218 D=32, forward + backward): 256 keys 3.4 s, 512 3.1 s,
// 1024 19 s, 2048 24 s: blocks beyond a few MB fall out of cache and oneDNN's fast path.
int64_t key_block_size(int64_t tile, int64_t key_block) {
  return key_block > 0 ? std::max<int64_t>(1, key_block / tile) * tile : tile;
}

// Scores of queries [q0, q0+tq) (already scaled) against keys [k0, k0+tk) in float (or
// double), with the causal mask applied where the block reaches past the first query. Keys
// start at multiples of the tile and end at most at q0 + tq, so only the last tq columns
// can need masking.
Tensor block_scores(const Tensor& qi, const Tensor& kj, int64_t q0, int64_t k0, const Tensor& upper,
                    torch::ScalarType acc) {
  Tensor s = torch::matmul(qi, kj.transpose(-2, -1)).to(acc);  // (B,H,tq,tk)
  const int64_t tq = qi.size(2), tk = kj.size(2);
  if (k0 + tk > q0 + 1) {
    const int64_t first = q0 - k0;  // column of key q0
    s.narrow(-1, first, tk - first).masked_fill_(upper.narrow(0, 0, tq).narrow(1, 0, tk - first), -INFINITY);
  }
  return s;
}

class TiledCausalAttention : public torch::autograd::Function<TiledCausalAttention> {
 public:
  // Matmuls run in the inputs' dtype (bf16 on AMX under autocast); softmax statistics and
  // gradient sums in float32 (float64 for float64 inputs).
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v,
                        int64_t tile, int64_t key_block) {
    const int64_t T = q.size(2);
    const double scale = 1.0 / std::sqrt(double(q.size(3)));
    const auto acc = accumulation_type(q);
    const int64_t kb = key_block_size(tile, key_block);
    Tensor qs = q * scale;
    Tensor upper = torch::ones({tile, tile}, torch::dtype(torch::kBool).device(q.device())).triu(1);  // u > t
    Tensor out = torch::empty_like(q);
    Tensor lse = torch::empty({q.size(0), q.size(1), T}, q.options().dtype(acc));  // log-sum-exp
    for (int64_t q0 = 0; q0 < T; q0 += tile) {
      const int64_t tq = std::min(tile, T - q0), end = q0 + tq;
      Tensor qi = qs.narrow(2, q0, tq);
      Tensor m, l, o;  // running max (B,H,tq,1), normalizer, weighted sum (B,H,tq,D)
      for (int64_t k0 = 0; k0 < end; k0 += kb) {
        const int64_t tk = std::min(kb, end - k0);
        Tensor p = block_scores(qi, k.narrow(2, k0, tk), q0, k0, upper, acc);
        Tensor m_blk = std::get<0>(p.max(-1, true));
        Tensor m_new = m.defined() ? torch::maximum(m, m_blk) : m_blk;
        p.sub_(m_new).exp_();
        Tensor pv = torch::matmul(p.to(v.scalar_type()), v.narrow(2, k0, tk)).to(acc);
        if (!m.defined()) {
          l = p.sum(-1, true);
          o = pv;
        } else {
          Tensor corr = torch::exp(m - m_new);
          l = l * corr + p.sum(-1, true);
          o = o * corr + pv;
        }
        m = m_new;
      }
      out.narrow(2, q0, tq).copy_(o / l);
      lse.narrow(2, q0, tq).copy_((m + torch::log(l)).squeeze(-1));
    }
    ctx->save_for_backward({q, k, v, out, lse});
    ctx->saved_data["tile"] = tile;
    ctx->saved_data["key_block"] = kb;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const int64_t tile = ctx->saved_data["tile"].toInt(), kb = ctx->saved_data["key_block"].toInt();
    const int64_t T = q.size(2);
    const double scale = 1.0 / std::sqrt(double(q.size(3)));
    const auto acc = accumulation_type(q), mm = q.scalar_type();
    Tensor qs = q * scale;
    Tensor dout = grads[0].to(mm).contiguous();
    Tensor upper = torch::ones({tile, tile}, torch::dtype(torch::kBool).device(q.device())).triu(1);
    // dq accumulates ds k (scaled at the end); dk accumulates ds^T (q * scale).
    Tensor dq = torch::zeros_like(q, q.options().dtype(acc));
    Tensor dk = torch::zeros_like(k, k.options().dtype(acc));
    Tensor dv = torch::zeros_like(v, v.options().dtype(acc));
    Tensor delta = (dout.to(acc) * out.to(acc)).sum(-1, true);  // (B,H,T,1)
    for (int64_t q0 = 0; q0 < T; q0 += tile) {
      const int64_t tq = std::min(tile, T - q0), end = q0 + tq;
      Tensor qi = qs.narrow(2, q0, tq), doi = dout.narrow(2, q0, tq);
      Tensor lse_i = lse.narrow(2, q0, tq).unsqueeze(-1), delta_i = delta.narrow(2, q0, tq);
      Tensor dqi = dq.narrow(2, q0, tq);
      for (int64_t k0 = 0; k0 < end; k0 += kb) {
        const int64_t tk = std::min(kb, end - k0);
        Tensor kj = k.narrow(2, k0, tk), vj = v.narrow(2, k0, tk);
        Tensor p = block_scores(qi, kj, q0, k0, upper, acc).sub_(lse_i).exp_();  // (B,H,tq,tk)
        dv.narrow(2, k0, tk).add_(torch::matmul(p.to(mm).transpose(-2, -1), doi));
        Tensor ds = torch::matmul(doi, vj.transpose(-2, -1)).to(acc).sub_(delta_i).mul_(p).to(mm);
        dqi.add_(torch::matmul(ds, kj));
        dk.narrow(2, k0, tk).add_(torch::matmul(ds.transpose(-2, -1), qi));
      }
    }
    return {dq.mul_(scale).to(q.scalar_type()), dk.to(k.scalar_type()), dv.to(v.scalar_type()), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor causal_attention_tiled(const Tensor& q, const Tensor& k, const Tensor& v, int64_t tile, int64_t key_block) {
  return TiledCausalAttention::apply(q.contiguous(), k.contiguous(), v.contiguous(), tile, key_block);
}

// ---------------------------------------------------------------------------------------
// Flash attention (kernels/flash_attention.h) as a custom autograd function.

namespace {

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// (B,H,T,D) -> a new contiguous (B*H, Tp, Dp) tensor in dtype `acc`, zero-padded at the end of
// the positions and the features (see flash::Dims for why padding changes nothing).
Tensor padded_copy(const Tensor& x, int64_t Tp, int64_t Dp, torch::ScalarType acc) {
  Tensor y = x.to(acc, /*non_blocking=*/false, /*copy=*/true);
  if (Tp != x.size(2) || Dp != x.size(3)) y = F::pad(y, F::PadFuncOptions({0, Dp - x.size(3), 0, Tp - x.size(2)}));
  return y.reshape({-1, Tp, Dp}).contiguous();
}

// (B*H, Tp, Dp) -> (B, H, T, D) in dtype `type`.
Tensor unpadded(const Tensor& x, const Tensor& like, torch::ScalarType type) {
  return x.view({like.size(0), like.size(1), x.size(1), x.size(2)})
      .narrow(2, 0, like.size(2))
      .narrow(3, 0, like.size(3))
      .to(type)
      .contiguous();
}

// (B*H, Tp, Dp) -> (B*H, Dp, Tp).
Tensor transposed(const Tensor& x) { return x.transpose(1, 2).contiguous(); }

// Layouts of the bf16 path (flash::Bf16Operands) from (B*H, Tp, Dp) rows.
Tensor feature_pairs(const Tensor& rows) {  // (B*H, Dp/2, Tp, 2)
  return rows.view({rows.size(0), rows.size(1), rows.size(2) / 2, 2}).permute({0, 2, 1, 3}).contiguous();
}
Tensor position_pairs(const Tensor& rows) {  // (B*H, Tp/2, Dp, 2)
  return rows.view({rows.size(0), rows.size(1) / 2, 2, rows.size(2)}).transpose(2, 3).contiguous();
}
const uint16_t* bf16_data(const Tensor& x) { return reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>()); }

class FlashCausalAttention : public torch::autograd::Function<FlashCausalAttention> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& q, const Tensor& k, const Tensor& v) {
    const int64_t Tp = round_up(q.size(2), flash::kBlock), Dp = round_up(q.size(3), 16);
    const double scale = 1.0 / std::sqrt(double(q.size(3)));
    // bf16 inputs take the VDPBF16PS path where the CPU has it; everything else computes in
    // float32 (float64 for float64 inputs).
    const bool dot = q.scalar_type() == torch::kBFloat16 && k.scalar_type() == torch::kBFloat16 &&
                     v.scalar_type() == torch::kBFloat16 && flash::uses_bf16_dot(Dp);
    const auto acc = dot ? torch::kFloat : accumulation_type(q);
    const int64_t BH = q.size(0) * q.size(1);
    const flash::Dims dims{BH, Tp, Dp};
    Tensor out = torch::empty({BH, Tp, Dp}, q.options().dtype(acc)), lse = torch::empty({BH, Tp}, out.options());
    if (dot) {
      Tensor qr = padded_copy(q, Tp, Dp, torch::kBFloat16), kf = feature_pairs(padded_copy(k, Tp, Dp, torch::kBFloat16)),
             vp = position_pairs(padded_copy(v, Tp, Dp, torch::kBFloat16));
      flash::Bf16Operands in;
      in.q = bf16_data(qr), in.k_features = bf16_data(kf), in.v_positions = bf16_data(vp);
      flash::forward_bf16(dims, float(scale), in, out.data_ptr<float>(), lse.data_ptr<float>());
    } else {
      Tensor qs = padded_copy(q, Tp, Dp, acc).mul_(scale);
      Tensor kt = transposed(padded_copy(k, Tp, Dp, acc));
      Tensor vp = padded_copy(v, Tp, Dp, acc);
      AT_DISPATCH_FLOATING_TYPES(acc, "flash_forward", [&] {
        flash::forward<scalar_t>(dims, qs.data_ptr<scalar_t>(), kt.data_ptr<scalar_t>(), vp.data_ptr<scalar_t>(),
                                 out.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>());
      });
    }
    Tensor result = unpadded(out, q, q.scalar_type());
    ctx->save_for_backward({q, k, v, result, lse});
    ctx->saved_data["dot"] = dot;
    return result;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &q = saved[0], &k = saved[1], &v = saved[2], &out = saved[3], &lse = saved[4];
    const bool dot = ctx->saved_data["dot"].toBool();
    const int64_t Tp = lse.size(1), Dp = round_up(q.size(3), 16);
    const auto acc = lse.scalar_type();
    const double scale = 1.0 / std::sqrt(double(q.size(3)));
    const flash::Dims dims{lse.size(0), Tp, Dp};
    Tensor dq = torch::empty({dims.heads, Tp, Dp}, lse.options()), dk = torch::empty_like(dq), dv = torch::empty_like(dq);
    if (dot) {
      Tensor qr = padded_copy(q, Tp, Dp, torch::kBFloat16), kr = padded_copy(k, Tp, Dp, torch::kBFloat16),
             vr = padded_copy(v, Tp, Dp, torch::kBFloat16), dout = padded_copy(grads[0], Tp, Dp, torch::kBFloat16);
      Tensor delta = (dout.to(acc) * padded_copy(out, Tp, Dp, acc)).sum(-1);  // (B*H, Tp)
      Tensor kf = feature_pairs(kr), vf = feature_pairs(vr), qp = position_pairs(qr), kp = position_pairs(kr),
             dp = position_pairs(dout);
      flash::Bf16Operands in;
      in.q = bf16_data(qr), in.k_features = bf16_data(kf), in.q_positions = bf16_data(qp);
      in.k_positions = bf16_data(kp), in.v_features = bf16_data(vf), in.dout = bf16_data(dout);
      in.dout_positions = bf16_data(dp);
      flash::backward_bf16(dims, float(scale), in, lse.data_ptr<float>(), delta.data_ptr<float>(), dq.data_ptr<float>(),
                           dk.data_ptr<float>(), dv.data_ptr<float>());
    } else {
      Tensor qs = padded_copy(q, Tp, Dp, acc).mul_(scale);
      Tensor kp = padded_copy(k, Tp, Dp, acc), kt = transposed(kp);
      Tensor vt = transposed(padded_copy(v, Tp, Dp, acc));
      Tensor dout = padded_copy(grads[0], Tp, Dp, acc);
      Tensor delta = (dout * padded_copy(out, Tp, Dp, acc)).sum(-1);  // (B*H, Tp)
      AT_DISPATCH_FLOATING_TYPES(acc, "flash_backward", [&] {
        flash::backward<scalar_t>(dims, qs.data_ptr<scalar_t>(), kp.data_ptr<scalar_t>(), kt.data_ptr<scalar_t>(),
                                  vt.data_ptr<scalar_t>(), dout.data_ptr<scalar_t>(), lse.data_ptr<scalar_t>(),
                                  delta.data_ptr<scalar_t>(), dq.data_ptr<scalar_t>(), dk.data_ptr<scalar_t>(),
                                  dv.data_ptr<scalar_t>());
      });
    }
    dq.mul_(scale);
    return {unpadded(dq, q, q.scalar_type()), unpadded(dk, k, k.scalar_type()), unpadded(dv, v, v.scalar_type())};
  }
};

}  // namespace

Tensor causal_attention_flash(const Tensor& q, const Tensor& k, const Tensor& v) {
  TORCH_CHECK(q.is_cpu() && k.is_cpu() && v.is_cpu(), "causal_attention_flash: a CPU kernel, got tensors on ",
              q.device());
  TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
              "causal_attention_flash: q, k and v must all be (B, H, T, D), got ", q.sizes(), ", ", k.sizes(), " and ",
              v.sizes());
  return FlashCausalAttention::apply(q, k, v);
}

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
#if IFLAME_TORCH_AT_LEAST(2, 0)
  if (q.is_cuda()) return compat::sdpa_causal(q, k, v);
#endif
  if (q.is_cpu()) return causal_attention_flash(q, k, v);
  return causal_attention_tiled(q, k, v);  // other devices (CUDA without SDPA): tensor ops only
}

Tensor linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& slopes) {
  return linear_attention_fused(q, k, v, slopes);
}

}  // namespace iflame::kernels
