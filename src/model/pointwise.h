// Rotary embeddings and SwiGLU's gate as autograd functions over fused CPU kernels
// (kernels/pointwise.h): one pass forward and one backward instead of LibTorch's several. Other
// devices and dtypes take the composite form, which is also the reference for tests.
#pragma once
#include "model/torch_compat.h"

namespace iflame::kernels {

// The rotary embedding of x (B, T, H, D), the projection's layout, returned as (B, H, T, D), the
// attention kernels' layout: for the halves x1, x2 of each head, (x1 c + x2 s, x2 c - x1 s) with
// c, s the rows of cos, sin (T, D/2) float32.
torch::Tensor rope_heads(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
// The composite form, on x already in the attention layout (B, H, T, D), as the reference
// writes it (cos and sin cast to x's dtype first).
torch::Tensor rope_reference(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// silu(a) * b (SwiGLU's gate), for a and b of one shape.
torch::Tensor swiglu_gate(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace iflame::kernels
