#include "kernels/rms_norm.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/simd.h"

namespace iflame::rms {

namespace {

// Rows per parallel task: enough that a task is tens of microseconds at E = 128.
constexpr int64_t kGrain = 64;

using simd::to_float;

// Sums in kLanes independent partial sums, so that the compiler vectorizes the loop (a single
// running float sum may not be reordered).
constexpr int64_t kLanes = 16;

template <class T>
float sum_of_squares(const T* x, int64_t E) {
  float lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= E; j += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) {
      const float v = to_float(x[j + k]);
      lane[k] += v * v;
    }
  }
  float sum = 0;
  for (; j < E; ++j) sum += to_float(x[j]) * to_float(x[j]);
  for (int64_t k = 0; k < kLanes; ++k) sum += lane[k];
  return sum;
}

// sum_j g[j] * w[j] * x[j] (the row's dot product of the backward, before the row's scale).
template <class T>
float weighted_dot(const T* g, const float* w, const T* x, int64_t E) {
  float lane[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= E; j += kLanes) {
    for (int64_t k = 0; k < kLanes; ++k) lane[k] += to_float(g[j + k]) * w[j + k] * to_float(x[j + k]);
  }
  float sum = 0;
  for (; j < E; ++j) sum += to_float(g[j]) * w[j] * to_float(x[j]);
  for (int64_t k = 0; k < kLanes; ++k) sum += lane[k];
  return sum;
}

}  // namespace

// y[r] = x[r] * inv[r] * w; inv[r] = 1 / sqrt(mean(x[r]^2) + eps).
template <class T>
void forward_rows(const T* x, const float* w, T* y, float* inv, int64_t rows, int64_t E, float eps) {
  at::parallel_for(0, rows, kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * E;
      const float ir = 1.0f / std::sqrt(sum_of_squares(xr, E) / float(E) + eps);
      inv[r] = ir;
      T* yr = y + r * E;
      for (int64_t j = 0; j < E; ++j) yr[j] = T((to_float(xr[j]) * ir) * w[j]);
    }
  });
}

// With u = x * inv and gw = g * w: dx = inv * (gw - u * mean(gw * u)), dw = sum over rows of g * u.
// dw is summed per task into its own row of `partial`, then over tasks in a fixed order, so the
// result does not depend on which thread ran which rows.
template <class T>
void backward_rows(const T* x, const float* w, const T* g, const float* inv, T* dx, float* dw, int64_t rows,
                   int64_t E) {
  const int64_t tasks = std::max<int64_t>(1, (rows + kGrain - 1) / kGrain);
  std::vector<float> partial(size_t(tasks * E), 0.0f);
  at::parallel_for(0, tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* pw = partial.data() + t * E;
      for (int64_t r = t * kGrain; r < std::min(rows, (t + 1) * kGrain); ++r) {
        const T *xr = x + r * E, *gr = g + r * E;
        const float ir = inv[r];
        const float dot = weighted_dot(gr, w, xr, E) * ir / float(E);  // mean(g * w * u)
        T* dr = dx + r * E;
        for (int64_t j = 0; j < E; ++j) {
          const float gv = to_float(gr[j]), u = to_float(xr[j]) * ir;
          pw[j] += gv * u;
          dr[j] = T(ir * (gv * w[j] - u * dot));
        }
      }
    }
  });
  for (int64_t j = 0; j < E; ++j) dw[j] = 0;
  for (int64_t t = 0; t < tasks; ++t) {
    for (int64_t j = 0; j < E; ++j) dw[j] += partial[size_t(t * E + j)];
  }
}

template void forward_rows<float>(const float*, const float*, float*, float*, int64_t, int64_t, float);
template void forward_rows<c10::BFloat16>(const c10::BFloat16*, const float*, c10::BFloat16*, float*, int64_t, int64_t,
                                          float);
template void backward_rows<float>(const float*, const float*, const float*, const float*, float*, float*, int64_t,
                                   int64_t);
template void backward_rows<c10::BFloat16>(const c10::BFloat16*, const float*, const c10::BFloat16*, const float*,
                                           c10::BFloat16*, float*, int64_t, int64_t);

}  // namespace iflame::rms
