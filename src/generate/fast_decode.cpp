#include "generate/fast_decode.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "kernels/decode.h"
#include "util/error.h"

namespace iflame {

using torch::Tensor;
namespace dk = decode;

namespace {

// One block's weights in decode layout.
struct PackedBlock {
  AttnKind kind = AttnKind::Linear;
  std::vector<float> norm1, norm2, attn_norm;  // attn_norm: linear attention only
  dk::PackedMatrix qkv;   // q | k | v: 3E rows, K = E
  dk::PackedMatrix out;   // E rows
  dk::PackedMatrix up;    // proj1 | proj2, each hidden rows padded to 16, with biases
  dk::PackedMatrix down;  // proj3: E rows, K = hidden, with bias
  std::vector<float> decay;  // exp(-s_h) per head (linear attention)
};

struct DecodeWeights {
  bool bf16 = false;
  int64_t E = 0, H = 0, D = 0, hidden = 0, hidden_padded = 0, V = 0;
  float eps = 1e-5f;
  float w0 = 1, w1 = 1;          // skip_weights2
  std::vector<float> embedding;  // V x E
  std::vector<float> norm;
  std::vector<PackedBlock> blocks;  // named_blocks() order
  std::vector<StageSpec> stages;    // the model's config.stages(): which blocks run at each token
  dk::PackedMatrix head;            // float32 whatever the precision (132 rows: cheap, exact argmax)
  int64_t bytes = 0;
};

// (data pointer, version) of every parameter and buffer: changes when a weight is changed in
// place (version counter) or moved (pointer).
using Fingerprint = std::vector<std::pair<const void*, int64_t>>;

std::vector<Tensor> watched_tensors(const IFlameModelImpl& model) {
  std::vector<Tensor> out = model.parameters();
  for (const auto& b : model.buffers()) out.push_back(b);
  return out;
}

Fingerprint fingerprint(const std::vector<Tensor>& tensors) {
  Fingerprint f;
  f.reserve(tensors.size());
  for (const auto& t : tensors) f.emplace_back(t.data_ptr(), t.is_inference() ? 0 : t._version());
  return f;
}

Tensor cpu_float(const Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat).contiguous(); }

std::vector<float> to_vector(const Tensor& t) {
  Tensor c = cpu_float(t);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

std::shared_ptr<const DecodeWeights> build_weights(const IFlameModelImpl& model, bool bf16) {
  torch::NoGradGuard no_grad;
  const ModelConfig& cfg = model.config;
  auto w = std::make_shared<DecodeWeights>();
  w->bf16 = bf16;
  w->E = cfg.dim, w->H = cfg.heads, w->D = cfg.head_dim(), w->hidden = cfg.hidden(), w->V = cfg.vocab;
  w->hidden_padded = (w->hidden + 15) / 16 * 16;
  w->eps = float(cfg.rms_eps);
  w->stages = cfg.stages();
  w->embedding = to_vector(model.embedding->weight);
  w->norm = to_vector(model.norm->weight);
  if (cfg.arch == Arch::IFlame) {
    const std::vector<float> sw = to_vector(model.skip_weights2);
    w->w0 = sw[0], w->w1 = sw[1];
  }
  const int64_t E = w->E;
  for (const auto& [name, block] : model.named_blocks()) {
    PackedBlock pb;
    const auto& attn = block->attn;
    pb.kind = attn->kind;
    pb.norm1 = to_vector(block->norm1->weight);
    pb.norm2 = to_vector(block->norm2->weight);
    const Tensor q = cpu_float(attn->q_proj->weight), k = cpu_float(attn->k_proj->weight),
                 v = cpu_float(attn->v_proj->weight), o = cpu_float(attn->out_proj->weight);
    pb.qkv = dk::pack_matrix({{q.data_ptr<float>(), E, nullptr}, {k.data_ptr<float>(), E, nullptr},
                              {v.data_ptr<float>(), E, nullptr}},
                             E, bf16);
    pb.out = dk::pack_matrix({{o.data_ptr<float>(), E, nullptr}}, E, bf16);
    const auto& ff = block->feed_forward;
    const Tensor w1 = cpu_float(ff->proj1->weight), b1 = cpu_float(ff->proj1->bias), w2 = cpu_float(ff->proj2->weight),
                 b2 = cpu_float(ff->proj2->bias), w3 = cpu_float(ff->proj3->weight), b3 = cpu_float(ff->proj3->bias);
    pb.up = dk::pack_matrix({{w1.data_ptr<float>(), w->hidden, b1.data_ptr<float>()},
                             {w2.data_ptr<float>(), w->hidden, b2.data_ptr<float>()}},
                            E, bf16);
    pb.down = dk::pack_matrix({{w3.data_ptr<float>(), E, b3.data_ptr<float>()}}, w->hidden, bf16);
    if (pb.kind == AttnKind::Linear) {
      pb.attn_norm = to_vector(attn->rms_norm->weight);
      pb.decay = to_vector(torch::exp(-attn->slopes));  // the per-op path's float32 decay, bit for bit
    }
    w->bytes += pb.qkv.bytes() + pb.out.bytes() + pb.up.bytes() + pb.down.bytes();
    w->blocks.push_back(std::move(pb));
  }
  const Tensor head = cpu_float(model.output_proj->weight), head_bias = cpu_float(model.output_proj->bias);
  w->head = dk::pack_matrix({{head.data_ptr<float>(), w->V, head_bias.data_ptr<float>()}}, E, false);
  w->bytes += w->head.bytes();
  return w;
}

// Packed weights per (model, precision), while the model lives (weak reference to its owner).
struct RegistryEntry {
  std::weak_ptr<torch::nn::Module> owner;
  const IFlameModelImpl* model;
  bool bf16;
  Fingerprint fp;
  std::shared_ptr<const DecodeWeights> weights;
};
std::mutex g_registry_mutex;
std::vector<RegistryEntry> g_registry;

std::shared_ptr<const DecodeWeights> weights_for(const IFlameModelImpl& model, bool bf16, const Fingerprint& fp) {
  std::weak_ptr<const torch::nn::Module> owner = model.weak_from_this();
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  g_registry.erase(std::remove_if(g_registry.begin(), g_registry.end(), [](const RegistryEntry& e) { return e.owner.expired(); }),
                   g_registry.end());
  for (auto& e : g_registry) {
    if (e.model != &model || e.bf16 != bf16) continue;
    if (e.fp != fp) {
      e.weights = nullptr;  // free the stale copy before packing the new one
      e.weights = build_weights(model, bf16);
      e.fp = fp;
    }
    return e.weights;
  }
  auto w = build_weights(model, bf16);
  if (!owner.expired()) {
    g_registry.push_back({std::const_pointer_cast<torch::nn::Module>(owner.lock()), &model, bf16, fp, w});
  }
  return w;
}

}  // namespace

// The fused decoder's per-cache state: the packed weights in use and scratch buffers.
struct FastDecodeState {
  const IFlameModelImpl* model = nullptr;
  std::vector<Tensor> watched;  // the model's parameters and buffers
  Fingerprint fp;
  std::shared_ptr<const DecodeWeights> weights;
  int64_t batch = -1;
  std::vector<float> xa, xb, xc, h, qkv, o, up;            // (B, ...) activations

  void resize(int64_t B, const DecodeWeights& w) {
    if (B == batch) return;
    batch = B;
    for (auto* v : {&xa, &xb, &xc, &h, &o}) v->assign(size_t(B * w.E), 0.0f);
    qkv.assign(size_t(B * 3 * w.E), 0.0f);
    up.assign(size_t(B * 2 * w.hidden_padded), 0.0f);
  }
};

namespace {

FastDecodeState& ensure_state(IFlameModelImpl& model, DecodeCache& cache) {
  const bool bf16 = cache.kv_dtype() == torch::kBFloat16;
  auto& st = cache.fast;
  if (!st || st->model != &model) {
    st = std::make_shared<FastDecodeState>();
    st->model = &model;
    st->watched = watched_tensors(model);
  }
  Fingerprint fp = fingerprint(st->watched);
  if (!st->weights || st->weights->bf16 != bf16 || fp != st->fp) {
    st->weights = nullptr;
    st->weights = weights_for(model, bf16, fp);
    st->fp = std::move(fp);
  }
  return *st;
}

// One block on B rows of x (B, E), in place. Row i is the cache's row rows[i] at this block's
// position pos[i] (a token, vertex or face index): rows may sit at different positions.
void block_step(const PackedBlock& blk, const DecodeWeights& w, LayerCache& layer, float* x, int64_t B,
                const int64_t* rows, const int64_t* pos, const float* cos0, const float* sin0, FastDecodeState& st,
                bool kv_bf16) {
  const int64_t E = w.E, H = w.H, D = w.D, E3 = 3 * E, ldu = 2 * w.hidden_padded, half = D / 2;
  float* h = st.h.data();
  float* qkv = st.qkv.data();
  float* o = st.o.data();
  float* up = st.up.data();
  dk::rmsnorm(x, blk.norm1.data(), B, E, w.eps, h);
  dk::matmul(h, B, E, blk.qkv, qkv, E3, false);  // (B, 3E): q | k | v
  for (int64_t b = 0; b < B; ++b) {
    const float* cos = cos0 + pos[b] * half;
    const float* sin = sin0 + pos[b] * half;
    dk::rope(qkv + b * E3, 1, H, D, E3, cos, sin);
    dk::rope(qkv + b * E3 + E, 1, H, D, E3, cos, sin);
  }
  if (blk.kind == AttnKind::Full) {
    const int64_t cap = layer.k.size(2);
    for (int64_t b = 0; b < B; ++b) {
      if (pos[b] >= cap) throw Error("decode: the K/V cache is full (" + std::to_string(cap) + " positions)");
      layer.length = std::max(layer.length, pos[b] + 1);
    }
    dk::attend_rows(qkv, B, H, D, rows, pos, layer.k.data_ptr(), layer.v.data_ptr(), kv_bf16, cap, o);
  } else {
    float* S = layer.state.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t hh = 0; hh < H; ++hh) {
        const float* q = qkv + b * E3 + hh * D;
        dk::linear_step(q, q + E, q + 2 * E, blk.decay[size_t(hh)], S + (rows[b] * H + hh) * D * D, D, o + b * E + hh * D);
      }
    }
    dk::rmsnorm(o, blk.attn_norm.data(), B, E, w.eps, o);
  }
  dk::matmul(o, B, E, blk.out, x, E, true);  // x += attn
  dk::rmsnorm(x, blk.norm2.data(), B, E, w.eps, h);
  dk::matmul(h, B, E, blk.up, up, ldu, false);  // (B, 2 x hidden padded): gate | up
  for (int64_t b = 0; b < B; ++b) dk::silu_mul(up + b * ldu, up + b * ldu + w.hidden_padded, up + b * ldu, w.hidden);
  dk::matmul(up, B, ldu, blk.down, x, E, true);  // x += SwiGLU
}

// dst (n, E): row i = mean of the 3 ring entries of cache row rows[i] (ring: (batch, 3, E)).
void ring_mean(const float* ring, const std::vector<int64_t>& rows, int64_t E, float* dst) {
  for (size_t i = 0; i < rows.size(); ++i) {
    const float* r = ring + rows[i] * 3 * E;
    for (int64_t e = 0; e < E; ++e) dst[int64_t(i) * E + e] = (r[e] + r[E + e] + r[2 * E + e]) / 3.0f;
  }
}

// ring[rows[i], slot[i]] = x[i] (x: (n, E)).
void ring_put(float* ring, const std::vector<int64_t>& rows, const std::vector<int64_t>& slot, const float* x, int64_t E) {
  for (size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(ring + (rows[i] * 3 + slot[i]) * E, x + int64_t(i) * E, size_t(E) * sizeof(float));
  }
}

// Cache rows, each with its position at one stage (token, vertex or face index).
struct RowSet {
  std::vector<int64_t> rows, pos;
};

}  // namespace

bool fast_decode_supported(const IFlameModelImpl& model) {
  const Tensor& w = model.output_proj->weight;
  return w.device().is_cpu() && w.scalar_type() == torch::kFloat;
}

bool fast_decode_supported(const IFlameModelImpl& model, const DecodeCache& cache) {
  if (cache.path != DecodePath::Auto) return false;
  if (cache.kv_dtype() != torch::kFloat && cache.kv_dtype() != torch::kBFloat16) return false;
  if (!fast_decode_supported(model)) return false;
  for (const auto& l : cache.layers) {
    const Tensor& t = l.kind == AttnKind::Full ? l.k : l.state;
    if (!t.device().is_cpu() || !t.is_contiguous()) return false;
  }
  return true;
}

torch::Tensor fast_decode_rows(IFlameModelImpl& model, DecodeCache& cache, const std::vector<int64_t>& rows,
                               const std::vector<int64_t>& positions, const std::vector<int64_t>& tokens) {
  const int64_t B = int64_t(rows.size());
  if (positions.size() != rows.size() || tokens.size() != rows.size()) {
    throw Error("decode_rows: rows, positions and tokens differ in length");
  }
  FastDecodeState& st = ensure_state(model, cache);
  const DecodeWeights& w = *st.weights;
  st.resize(B, w);
  const bool kv_bf16 = cache.kv_dtype() == torch::kBFloat16;
  const int64_t E = w.E;
  // (T, D/2) float32 for the whole capacity at once (the table is rebuilt whenever it grows).
  const RopeTable& rope = model.rope(cache.max_tokens(), torch::kCPU);
  const float* cos0 = rope.cos.data_ptr<float>();
  const float* sin0 = rope.sin.data_ptr<float>();

  float* xa = st.xa.data();
  for (int64_t b = 0; b < B; ++b) {
    if (rows[b] < 0 || rows[b] >= cache.batch()) throw Error("decode_rows: row " + std::to_string(rows[b]) + " outside the cache");
    if (positions[b] < 0 || positions[b] >= cache.max_tokens()) {
      throw Error("decode_step: the cache holds " + std::to_string(cache.max_tokens()) + " tokens");
    }
    if (tokens[b] < 0 || tokens[b] >= w.V) throw Error("decode_step: token " + std::to_string(tokens[b]) + " outside the vocabulary");
    std::memcpy(xa + b * E, w.embedding.data() + tokens[b] * E, size_t(E) * sizeof(float));
  }
  dk::rmsnorm(xa, w.norm.data(), B, E, w.eps, xa);

  const std::vector<StageSpec>& stages = w.stages;
  auto run = [&](size_t s, float* x, const RowSet& set) {
    for (int64_t i = stages[s].first_block; i < stages[s].first_block + stages[s].blocks; ++i) {
      block_step(w.blocks[size_t(i)], w, cache.layers[size_t(i)], x, int64_t(set.rows.size()), set.rows.data(),
                 set.pos.data(), cos0, sin0, st, kv_bf16);
    }
  };
  const RowSet tokens_set{rows, positions};
  if (model.config.arch != Arch::IFlame) {
    run(0, xa, tokens_set);
  } else {
    float* a_ring = cache.a_ring.data_ptr<float>();
    float* b_ring = cache.b_ring.data_ptr<float>();
    float* latest_c = cache.latest_c.data_ptr<float>();
    float* latest_d = cache.latest_d.data_ptr<float>();
    // The rows whose token completes a vertex (stages B, D) and, of those, a face (C1, C2), each
    // at the position it completes; ring slots: the token within its vertex, the vertex within
    // its face.
    RowSet vertex_set, face_set;
    std::vector<int64_t> a_slot, b_slot;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t p = positions[b];
      a_slot.push_back(p % 3);
      if (!stages[kStageB].runs_at(p)) continue;
      vertex_set.rows.push_back(rows[b]);
      vertex_set.pos.push_back(stages[kStageB].position_of(p));
      b_slot.push_back(stages[kStageB].position_of(p) % 3);
      if (stages[kStageC1].runs_at(p)) {
        face_set.rows.push_back(rows[b]);
        face_set.pos.push_back(stages[kStageC1].position_of(p));
      }
    }
    run(kStageA, xa, tokens_set);
    ring_put(a_ring, rows, a_slot, xa, E);
    if (!vertex_set.rows.empty()) {
      float* xb = st.xb.data();
      ring_mean(a_ring, vertex_set.rows, E, xb);
      run(kStageB, xb, vertex_set);
      ring_put(b_ring, vertex_set.rows, b_slot, xb, E);
      if (!face_set.rows.empty()) {
        float* xc = st.xc.data();
        ring_mean(b_ring, face_set.rows, E, xc);
        run(kStageC1, xc, face_set);  // C1 + C2 on the face this token completes (before D)
        run(kStageC2, xc, face_set);
        for (size_t i = 0; i < face_set.rows.size(); ++i) {
          std::memcpy(latest_c + face_set.rows[i] * E, xc + int64_t(i) * E, size_t(E) * sizeof(float));
        }
      }
      // Vertex j sees face floor((j-2)/3): the latest C output.
      for (size_t i = 0; i < vertex_set.rows.size(); ++i) {
        const float* c = latest_c + vertex_set.rows[i] * E;
        float* x = xb + int64_t(i) * E;
        for (int64_t e = 0; e < E; ++e) x[e] = w.w0 * c[e] + x[e];
      }
      run(kStageD, xb, vertex_set);
      for (size_t i = 0; i < vertex_set.rows.size(); ++i) {
        std::memcpy(latest_d + vertex_set.rows[i] * E, xb + int64_t(i) * E, size_t(E) * sizeof(float));
      }
    }
    // Token p sees vertex floor((p-2)/3): the latest D output.
    for (int64_t b = 0; b < B; ++b) {
      const float* d = latest_d + rows[b] * E;
      for (int64_t e = 0; e < E; ++e) xa[b * E + e] = w.w1 * d[e] + xa[b * E + e];
    }
    run(kStageE, xa, tokens_set);
  }
  Tensor logits = torch::empty({B, w.V}, torch::kFloat);
  dk::matmul(xa, B, E, w.head, logits.data_ptr<float>(), w.V, false);
  return logits;
}

torch::Tensor fast_decode_step(IFlameModelImpl& model, DecodeCache& cache, const torch::Tensor& token_in) {
  const int64_t p = cache.position;
  if (p >= cache.max_tokens()) throw Error("decode_step: the cache holds " + std::to_string(cache.max_tokens()) + " tokens");
  const Tensor token = token_in.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t B = token.numel();
  if (B != cache.batch()) throw Error("decode_step: " + std::to_string(B) + " tokens for a cache of batch " + std::to_string(cache.batch()));
  std::vector<int64_t> rows(static_cast<size_t>(B)), positions(static_cast<size_t>(B), p);
  for (int64_t b = 0; b < B; ++b) rows[size_t(b)] = b;
  const int64_t* tok = token.data_ptr<int64_t>();
  Tensor logits = fast_decode_rows(model, cache, rows, positions, std::vector<int64_t>(tok, tok + B));
  cache.position = p + 1;
  return logits;
}

int64_t fast_decode_weight_bytes(const IFlameModelImpl& model) {
  std::lock_guard<std::mutex> lock(g_registry_mutex);
  int64_t n = 0;
  for (const auto& e : g_registry) {
    if (e.model == &model && !e.owner.expired() && e.weights) n += e.weights->bytes;
  }
  return n;
}

}  // namespace iflame
