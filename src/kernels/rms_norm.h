// RMSNorm over rows of E values on raw buffers, forward and backward, float32 or bfloat16 rows
// with float32 weights and sums: the CPU kernels behind kernels::rms_norm (model/rms_norm.h),
// which wraps them as an autograd function. Rows run in parallel (at::parallel_for).
#pragma once
#include <c10/util/BFloat16.h>

#include <cstdint>

namespace iflame::rms {

// y[r] = x[r] * inv[r] * w with inv[r] = 1 / sqrt(mean(x[r]^2) + eps), for rows x (rows, E).
template <class T>
void forward_rows(const T* x, const float* w, T* y, float* inv, int64_t rows, int64_t E, float eps);

// The gradients for g = dL/dy: dx (rows, E) and dw (E), from forward's inv. dw is summed in a
// fixed order, so it does not depend on which thread ran which rows.
template <class T>
void backward_rows(const T* x, const float* w, const T* g, const float* inv, T* dx, float* dw, int64_t rows, int64_t E);

}  // namespace iflame::rms
