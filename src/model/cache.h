// The hybrid cache of iFlame's cached decoder (spec section 3), after llama.cpp's hybrid
// memory: K/V for the full-attention layers, each at its own resolution (token, vertex or face
// positions), a D x D float32 state per head for the linear-attention layers, and the small
// hourglass ring buffers (stage A outputs of the current vertex, stage B outputs of the current
// face, the latest C and D outputs). Memory only: how the decoders step through it is
// generate/'s (generate/decode_cache.h).
#pragma once
#include <vector>

#include "model/config.h"
#include "model/torch_compat.h"

namespace iflame {

struct LayerCache {
  AttnKind kind = AttnKind::Linear;
  int64_t resolution = 1;  // 1 token, 3 vertex, 9 face positions per entry
  // Full attention: (B, H, capacity, D), the first `length` positions valid.
  torch::Tensor k, v;
  int64_t length = 0;
  // Linear attention: S_h (B, H, D, D) in float32 (the reference keeps fp16 and drifts).
  torch::Tensor state;
};

class HybridCache {
 public:
  // Allocates everything for `batch` sequences of up to `max_tokens` tokens (a multiple of 9)
  // up front, so that bytes() is exactly what decoding holds. K/V are left uninitialized
  // (only the first `length` positions are ever read), so untouched capacity costs no pages.
  HybridCache(const ModelConfig& config, int64_t batch, int64_t max_tokens, torch::Device device,
              torch::ScalarType kv_dtype = torch::kFloat);

  int64_t batch() const { return batch_; }
  int64_t max_tokens() const { return max_tokens_; }
  torch::ScalarType kv_dtype() const { return kv_dtype_; }
  int64_t position = 0;  // tokens consumed so far (the same for every sequence in the batch)

  std::vector<LayerCache> layers;  // one per block, in IFlameModelImpl::named_blocks() order
  torch::Tensor a_ring;    // (B, 3, E): stage A outputs of the current vertex
  torch::Tensor b_ring;    // (B, 3, E): stage B outputs of the current face
  torch::Tensor latest_c;  // (B, E): the last face-level output (zeros before the first face)
  torch::Tensor latest_d;  // (B, E): the last vertex-level output (zeros before the first vertex)

  // Bytes held: K/V of full layers, linear states, ring buffers (and their sum).
  int64_t kv_bytes() const;
  int64_t state_bytes() const;
  int64_t bytes() const;

  // Keeps only the batch rows in `rows` (int64 indices), freeing the others' memory:
  // finished sequences give their slot back.
  void keep_rows(const torch::Tensor& rows);
  // Clears every sequence (position 0) without reallocating.
  void reset();
  // Copies sequence `src_row` of `src` (a cache of the same model, up to this one's length) into
  // row `dst_row`: its filled K/V positions, linear states and ring buffers. Continuous batching
  // prefills a request on its own and then places it in a free slot of the running batch.
  void copy_row_from(const HybridCache& src, int64_t src_row, int64_t dst_row);

 private:
  int64_t batch_, max_tokens_;
  torch::ScalarType kv_dtype_;
};

}  // namespace iflame
