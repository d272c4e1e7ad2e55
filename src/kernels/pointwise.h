// The elementwise parts of a transformer block as CPU kernels on raw buffers, forward and
// backward: rotary embeddings and SwiGLU's gate. Values are float32 or bfloat16, arithmetic is
// float32, and each output is rounded once. At small widths each of these was several LibTorch
// passes over the activations forward and more backward (model/pointwise.h wraps them as
// autograd functions). Rows run in parallel (at::parallel_for); AVX-512 where the CPU has it.
#pragma once
#include <c10/util/BFloat16.h>

#include <cstdint>

namespace iflame::pointwise {

// Shapes of a rotary embedding: x is (B, T, H, D) (the projection's layout), y is (B, H, T, D)
// (the attention kernels' layout), cos and sin are (T, D/2) float32.
struct RopeDims {
  int64_t B, T, H, D;
};

// y1 = x1 cos + x2 sin, y2 = x2 cos - x1 sin for the halves x1, x2 of each head's D values.
template <class Scalar>
void rope_forward(const Scalar* x, const float* cos, const float* sin, Scalar* y, const RopeDims& dims);
// The gradient: dx1 = dy1 cos - dy2 sin, dx2 = dy1 sin + dy2 cos, dy (B, H, T, D) into dx (B, T, H, D).
template <class Scalar>
void rope_backward(const Scalar* dy, const float* cos, const float* sin, Scalar* dx, const RopeDims& dims);

// y = silu(a) b over n values.
template <class Scalar>
void swiglu_forward(const Scalar* a, const Scalar* b, Scalar* y, int64_t n);
// da = dy b silu'(a), db = dy silu(a), with silu'(a) = s (1 + a (1 - s)) and s = sigmoid(a).
template <class Scalar>
void swiglu_backward(const Scalar* a, const Scalar* b, const Scalar* dy, Scalar* da, Scalar* db, int64_t n);

}  // namespace iflame::pointwise
