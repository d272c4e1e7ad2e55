#include "model/cache.h"

#include "util/error.h"

namespace iflame {

HybridCache::HybridCache(const ModelConfig& config, int64_t batch, int64_t max_tokens, torch::Device device,
                         torch::ScalarType kv_dtype)
    : batch_(batch), max_tokens_(max_tokens), kv_dtype_(kv_dtype) {
  if (max_tokens <= 0 || max_tokens % 9 != 0) throw Error("cache length must be a positive multiple of 9");
  const int64_t H = config.heads, D = config.head_dim(), E = config.dim;
  auto kv_opts = torch::dtype(kv_dtype).device(device);
  auto f32 = torch::dtype(torch::kFloat).device(device);
  for (int64_t i = 0; i < config.num_layers(); ++i) {
    LayerCache layer;
    layer.kind = config.block_kind(i);
    layer.resolution = config.stage_of(i).resolution;
    if (layer.kind == AttnKind::Full) {
      const int64_t capacity = config.stage_of(i).positions(max_tokens);
      layer.k = torch::empty({batch, H, capacity, D}, kv_opts);
      layer.v = torch::empty({batch, H, capacity, D}, kv_opts);
    } else {
      layer.state = torch::zeros({batch, H, D, D}, f32);
    }
    layers.push_back(std::move(layer));
  }
  if (config.arch == Arch::IFlame) {
    a_ring = torch::zeros({batch, 3, E}, f32);
    b_ring = torch::zeros({batch, 3, E}, f32);
    latest_c = torch::zeros({batch, E}, f32);
    latest_d = torch::zeros({batch, E}, f32);
  }
}

static int64_t tensor_bytes(const torch::Tensor& t) { return t.defined() ? t.numel() * t.element_size() : 0; }

int64_t HybridCache::kv_bytes() const {
  int64_t n = 0;
  for (const auto& l : layers) n += tensor_bytes(l.k) + tensor_bytes(l.v);
  return n;
}

int64_t HybridCache::state_bytes() const {
  int64_t n = 0;
  for (const auto& l : layers) n += tensor_bytes(l.state);
  return n + tensor_bytes(a_ring) + tensor_bytes(b_ring) + tensor_bytes(latest_c) + tensor_bytes(latest_d);
}

int64_t HybridCache::bytes() const { return kv_bytes() + state_bytes(); }

void HybridCache::keep_rows(const torch::Tensor& rows) {
  auto sel = [&](torch::Tensor& t) {
    if (t.defined()) t = t.index_select(0, rows.to(t.device()));
  };
  const torch::Tensor kept = rows.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t* index = kept.data_ptr<int64_t>();
  for (auto& l : layers) {
    // K/V: copy only the filled positions (the rest stays untouched, uninitialized memory).
    for (torch::Tensor* t : {&l.k, &l.v}) {
      if (!t->defined()) continue;
      torch::Tensor out = torch::empty({kept.numel(), t->size(1), t->size(2), t->size(3)}, t->options());
      for (int64_t i = 0; i < kept.numel(); ++i) {
        out[i].narrow(1, 0, l.length).copy_((*t)[index[i]].narrow(1, 0, l.length));
      }
      *t = out;
    }
    sel(l.state);
  }
  sel(a_ring);
  sel(b_ring);
  sel(latest_c);
  sel(latest_d);
  batch_ = rows.numel();
}

void HybridCache::copy_row_from(const HybridCache& src, int64_t src_row, int64_t dst_row) {
  if (src.layers.size() != layers.size() || src.max_tokens() > max_tokens_) {
    throw Error("copy_row_from: the source cache is of another model or longer than this one");
  }
  if (src_row < 0 || src_row >= src.batch() || dst_row < 0 || dst_row >= batch_) throw Error("copy_row_from: row out of range");
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerCache& from = src.layers[i];
    LayerCache& to = layers[i];
    if (from.k.defined()) {
      to.k[dst_row].narrow(1, 0, from.length).copy_(from.k[src_row].narrow(1, 0, from.length));
      to.v[dst_row].narrow(1, 0, from.length).copy_(from.v[src_row].narrow(1, 0, from.length));
      to.length = std::max(to.length, from.length);
    }
    if (from.state.defined()) to.state[dst_row].copy_(from.state[src_row]);
  }
  for (auto [to, from] : {std::pair{&a_ring, &src.a_ring}, {&b_ring, &src.b_ring}, {&latest_c, &src.latest_c}, {&latest_d, &src.latest_d}}) {
    if (to->defined()) (*to)[dst_row].copy_((*from)[src_row]);
  }
}

void HybridCache::reset() {
  position = 0;
  for (auto& l : layers) {
    l.length = 0;
    if (l.state.defined()) l.state.zero_();
  }
  for (torch::Tensor* t : {&a_ring, &b_ring, &latest_c, &latest_d}) {
    if (t->defined()) t->zero_();
  }
}

}  // namespace iflame
