// CPU kernels of the fused decoder (generate/fast_decode.cpp), on raw float buffers: products
// with weights packed in panels of 16 output rows, RMSNorm, RoPE, SiLU gating, single-query
// attention over a K/V cache, the linear-attention state update. One decode step of the `ref`
// model at batch 1 runs ~100 of these instead of ~1000 LibTorch ops; at batch 1 decoding is
// bound by memory bandwidth (every weight is read once per token), hence bf16 weight storage.
//
// AVX-512 versions are chosen at run time when the CPU has AVX-512F/BW/DQ/VL; portable C++
// otherwise (and in tests, to check one against the other). Weights and K/V may be stored as
// bfloat16. Arithmetic is float32, except that on CPUs with AVX512-BF16 the products with
// bfloat16 weights round the activations to bfloat16 and use VDPBF16PS (pairs of bf16
// products summed into float32, twice the multiply-adds per instruction of FMA), as bf16
// autocast does for its matmuls.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "kernels/cpu_isa.h"

namespace iflame::decode {

// The instruction set the kernels use (kernels/cpu_isa.h), under the names the decoder's callers
// and tests know.
using cpu::Isa;
using cpu::active_isa;
using cpu::detected_isa;
using cpu::isa_name;
using cpu::set_isa;

// bfloat16 <-> float32: round to nearest even (NaN stays NaN), as torch's conversion.
uint16_t to_bf16(float x);
inline float from_bf16(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}

// A 64-byte aligned array (one AVX-512 vector per cache line).
template <typename T>
class AlignedArray {
 public:
  AlignedArray() = default;
  explicit AlignedArray(size_t n) : n_(n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes > 0 ? bytes : 64));
    if (!data_) throw std::bad_alloc();
  }
  AlignedArray(AlignedArray&& o) noexcept : data_(o.data_), n_(o.n_) { o.data_ = nullptr, o.n_ = 0; }
  AlignedArray& operator=(AlignedArray&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(n_, o.n_);
    return *this;
  }
  AlignedArray(const AlignedArray&) = delete;
  AlignedArray& operator=(const AlignedArray&) = delete;
  ~AlignedArray() { std::free(data_); }
  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  T* data_ = nullptr;
  size_t n_ = 0;
};

// Rows of a weight matrix W (PyTorch's [out, in] layout) packed for y = x W^T + b: panel p holds
// rows [16p, 16p + 16) as K x 16 values (k-major), so one vector load gives 16 outputs' weights
// for one input. bfloat16 panels hold pairs of inputs instead: ceil(K/2) x 16 x 2 values, the
// layout VDPBF16PS reads (lane r of a 64-byte load is W[r, k], W[r, k + 1]; an odd K ends with a
// zero). Several matrices with the same K can share one packed matrix (fused q/k/v, fused
// SwiGLU gate/up): each part starts at a multiple of 16 ("padded" output numbering).
struct MatrixPart {
  const float* weight;  // rows x cols, row-major
  int64_t rows;
  const float* bias;    // rows values, or null
};

struct PackedMatrix {
  int64_t cols = 0;               // K
  int64_t padded_rows = 0;        // 16 x panels
  bool bf16 = false;
  AlignedArray<float> f32;        // panels x K x 16 (float32 storage)
  AlignedArray<uint16_t> b16;     // panels x ceil(K/2) x 16 x 2 (bfloat16 storage, input pairs)
  std::vector<float> bias;        // padded_rows, zero where a row has none
  std::vector<int32_t> valid;     // per panel: its real rows (16, or fewer at the end of a part)
  std::vector<int64_t> offsets;   // per part: its first row in padded numbering

  int64_t panels() const { return padded_rows / 16; }
  int64_t bytes() const { return int64_t(f32.size() * sizeof(float) + b16.size() * sizeof(uint16_t)); }
};
PackedMatrix pack_matrix(const std::vector<MatrixPart>& parts, int64_t cols, bool bf16);

// y[b * ldy + n] = (accumulate ? y[...] : 0) + sum_k x[b * ldx + k] W[n, k] + bias[n] for b < B
// and every real row n (padded numbering; padding rows are never written). Parallel over
// panels (at::parallel_for) when the work is large enough. With bfloat16 weights on
// Isa::Avx512Bf16, x is rounded to bfloat16 first (see the top of this file).
void matmul(const float* x, int64_t B, int64_t ldx, const PackedMatrix& w, float* y, int64_t ldy, bool accumulate);

// y = x * rsqrt(mean(x^2) + eps) * w per row of E values (y may be x).
void rmsnorm(const float* x, const float* w, int64_t B, int64_t E, float eps, float* y);
// Half-truncated RoPE in place on B rows of H heads of D values (row stride ld):
// x1 = x[:D/2], x2 = x[D/2:]; y1 = x1 cos + x2 sin, y2 = x2 cos - x1 sin. cos/sin: D/2 values.
void rope(float* x, int64_t B, int64_t H, int64_t D, int64_t ld, const float* cos, const float* sin);
// y[i] = silu(a[i]) * b[i] (y may be a).
void silu_mul(const float* a, const float* b, float* y, int64_t n);
// x[i] = exp(x[i]) (the vectorized exp the kernels use; exposed for tests).
void exp_inplace(float* x, int64_t n);

// Appends one position: dst[0..n) = x (float32 or bfloat16 storage).
void store_row(const float* x, void* dst, bool bf16, int64_t n);
// One query against `len` cached positions of one head (rows of D values, float32 or bfloat16):
// out = softmax(scale * K q) V. `scratch` holds at least `len` floats.
void attend(const float* q, const void* k, const void* v, bool bf16, int64_t len, int64_t D, float scale,
            float* scratch, float* out);
// Full attention of B query rows of H heads over a K/V cache of shape (batch, H, cap, D) in
// float32 or bfloat16 storage. Row b is the cache's row rows[b] at position pos[b] (< cap):
// its k and v are stored there, then each head's query attends to positions 0..pos[b].
// qkv: (B, 3E) q | k | v with E = H * D, RoPE applied; out: (B, E). The (row, head) pairs run
// in parallel (at::parallel_for) when the work is large enough.
void attend_rows(const float* qkv, int64_t B, int64_t H, int64_t D, const int64_t* rows, const int64_t* pos,
                 void* k_cache, void* v_cache, bool bf16, int64_t cap, float* out);
// Linear attention, one head: S <- decay S + k^T v (D x D, float32), out = q S.
void linear_step(const float* q, const float* k, const float* v, float decay, float* S, int64_t D, float* out);

}  // namespace iflame::decode
