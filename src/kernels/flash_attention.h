// Fused causal attention for the CPU (flash-style) on raw buffers: per head, blocks of 64
// queries against blocks of 64 keys with an online softmax; the score block lives in a
// thread-local buffer, so there is never a T x T matrix and no tensor temporary. The backward
// recomputes the scores from the saved log-sum-exp (FlashAttention-2's algorithm). No LibTorch
// here: kernels.cpp wraps these as an autograd function and pads the inputs.
//
// float runs AVX-512 code when the CPU has it (kernels/cpu_isa.h) and D is a multiple of 16 up to
// 128, AVX2 + FMA code on CPUs with only those (D up to 64); everything else (double, for the
// gradient checks; other CPUs) runs portable C++ with the same blocking. Arithmetic is in S throughout; exp on the AVX-512 path is Cephes' polynomial
// (about 1 ulp). bfloat16 operands have their own entry points (forward_bf16, backward_bf16)
// for CPUs with AVX512-BF16.
#pragma once
#include <cstdint>

namespace iflame::flash {

constexpr int64_t kBlock = 64;  // queries per query block and keys per key block

// `heads` independent (batch x head) slices of T positions and D features. T must be a
// multiple of kBlock; callers pad with zeros at the end (padded keys come after every real
// query, so causality hides them; padded queries are dropped). Zero-padding D to a multiple
// of 16 changes no dot product and gives zero outputs there.
struct Dims {
  int64_t heads = 0, T = 0, D = 0;
};

// q (heads, T, D), already multiplied by the softmax scale; kt (heads, D, T): the keys
// transposed; v (heads, T, D). Writes out (heads, T, D) = softmax(q k^T, causal) v and
// lse (heads, T), each query's log-sum-exp of its scores.
template <typename S>
void forward(const Dims& dims, const S* q, const S* kt, const S* v, S* out, S* lse);

// Gradients of forward's out for dout (heads, T, D). k (heads, T, D) and kt its transpose;
// vt (heads, D, T); lse from forward; delta (heads, T) = rowsum(dout * out). dq is the
// gradient with respect to the scaled q (the caller multiplies it by the scale). Overwrites
// dq, dk, dv (heads, T, D).
template <typename S>
void backward(const Dims& dims, const S* q, const S* k, const S* kt, const S* vt, const S* dout, const S* lse,
              const S* delta, S* dq, S* dk, S* dv);

// Whether float inputs with D features take the AVX-512 path on this CPU now.
bool uses_avx512(int64_t D);
// Whether they take the AVX2 + FMA path (CPUs without AVX-512; D a multiple of 16 up to 64).
bool uses_avx2(int64_t D);

// bfloat16 inputs on CPUs with AVX512-BF16: the products run on VDPBF16PS (pairs of bf16
// products summed into float32, twice the multiply-adds per instruction of FMA) with the
// probabilities and score gradients rounded to bf16 before their products, as bf16
// FlashAttention does; the softmax and every sum stay float32. The operands come in the
// layouts VDPBF16PS reads, each (heads, ...) and zero-padded like Dims says:
//   rows:           (heads, T, D)        q and dout as they are
//   feature pairs:  (heads, D/2, T, 2)   element (p, t, e) = x[t][2p + e]
//   position pairs: (heads, T/2, D, 2)   element (m, d, e) = x[2m + e][d]
struct Bf16Operands {
  const uint16_t* q = nullptr;               // rows (not scaled)
  const uint16_t* k_features = nullptr;      // feature pairs
  const uint16_t* v_positions = nullptr;     // position pairs
  // The backward's, besides the three above:
  const uint16_t* q_positions = nullptr;     // position pairs
  const uint16_t* k_positions = nullptr;     // position pairs
  const uint16_t* v_features = nullptr;      // feature pairs
  const uint16_t* dout = nullptr;            // rows
  const uint16_t* dout_positions = nullptr;  // position pairs
};

// Whether bf16 inputs with D features (padded) can take the VDPBF16PS path on this CPU now.
bool uses_bf16_dot(int64_t D);

// As forward, with the softmax scale applied to the float32 scores; out and lse in float32.
void forward_bf16(const Dims& dims, float scale, const Bf16Operands& in, float* out, float* lse);

// As backward: dq is Sum ds k (the caller multiplies it by the scale, as for backward); dk and
// dv are the gradients of the unscaled k and v.
void backward_bf16(const Dims& dims, float scale, const Bf16Operands& in, const float* lse, const float* delta,
                   float* dq, float* dk, float* dv);

}  // namespace iflame::flash
