#include "kernels/decode.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/pointwise.h"
#include "kernels/simd.h"

namespace iflame::decode {

namespace {

// Below this many multiply-adds a kernel runs on the calling thread: an OpenMP region costs
// a few microseconds, more when the machine is busy.
constexpr double kParallelWork = 1 << 17;

IFLAME_INLINE float to_float(float x) { return x; }
IFLAME_INLINE float to_float(uint16_t h) { return from_bf16(h); }

// W[r, k] of a panel (see PackedMatrix): k-major float32, or input pairs in bfloat16.
IFLAME_INLINE float panel_weight(const float* panel, int64_t k, int r) { return panel[k * 16 + r]; }
IFLAME_INLINE float panel_weight(const uint16_t* panel, int64_t k, int r) {
  return from_bf16(panel[((k >> 1) * 16 + r) * 2 + (k & 1)]);
}
// Values of one panel (its stride in the packed storage): K x 16, with K rounded up to even for
// bfloat16 pairs.
IFLAME_INLINE int64_t panel_size(const float*, int64_t K) { return K * 16; }
IFLAME_INLINE int64_t panel_size(const uint16_t*, int64_t K) { return (K + 1) / 2 * 32; }

// ---------------------------------------------------------------------------------------
// Portable bodies. Always inlined, so that the AVX-512 wrappers below get them vectorized
// for AVX-512 and the generic ones for the baseline ISA.

template <typename W>
IFLAME_INLINE void panels_body(const float* x, int64_t B, int64_t ldx, const W* data, const PackedMatrix& w,
                               int64_t pb, int64_t pe, float* y, int64_t ldy, bool accumulate) {
  const int64_t K = w.cols;
  for (int64_t p = pb; p < pe; ++p) {
    const W* panel = data + p * panel_size(data, K);
    const int valid = w.valid[size_t(p)];
    const float* bias = w.bias.data() + p * 16;
    for (int64_t b = 0; b < B; ++b) {
      float acc[16] = {};
      const float* xr = x + b * ldx;
      for (int64_t k = 0; k < K; ++k) {
        const float xv = xr[k];
        for (int r = 0; r < 16; ++r) acc[r] += panel_weight(panel, k, r) * xv;
      }
      float* out = y + b * ldy + p * 16;
      for (int r = 0; r < valid; ++r) out[r] = (accumulate ? out[r] : 0.0f) + (acc[r] + bias[r]);
    }
  }
}

IFLAME_INLINE void rmsnorm_body(const float* x, const float* w, int64_t B, int64_t E, float eps, float* y) {
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = x + b * E;
    float ss = 0;
    for (int64_t e = 0; e < E; ++e) ss += xr[e] * xr[e];
    const float r = 1.0f / std::sqrt(ss / float(E) + eps);
    float* yr = y + b * E;
    for (int64_t e = 0; e < E; ++e) yr[e] = (xr[e] * r) * w[e];
  }
}

IFLAME_INLINE void rope_body(float* x, int64_t B, int64_t H, int64_t D, int64_t ld, const float* cos, const float* sin) {
  const int64_t half = D / 2;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      float* x1 = x + b * ld + h * D;
      float* x2 = x1 + half;
      for (int64_t j = 0; j < half; ++j) {
        const float a = x1[j], c = x2[j];
        x1[j] = a * cos[j] + c * sin[j];
        x2[j] = c * cos[j] - a * sin[j];
      }
    }
  }
}

IFLAME_INLINE void store_row_body(const float* x, void* dst, bool bf16, int64_t n) {
  if (!bf16) {
    std::memcpy(dst, x, size_t(n) * sizeof(float));
    return;
  }
  uint16_t* out = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, &x[i], sizeof bits);
    const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    out[i] = (bits & 0x7fffffffu) > 0x7f800000u ? uint16_t(0x7fc0) : uint16_t(rounded);
  }
}

IFLAME_INLINE void linear_step_body(const float* q, const float* k, const float* v, float decay, float* S, int64_t D,
                                    float* out) {
  for (int64_t i = 0; i < D; ++i) {
    float* row = S + i * D;
    const float ki = k[i];
    for (int64_t j = 0; j < D; ++j) row[j] = row[j] * decay + ki * v[j];
  }
  for (int64_t j = 0; j < D; ++j) out[j] = 0;
  for (int64_t i = 0; i < D; ++i) {
    const float* row = S + i * D;
    const float qi = q[i];
    for (int64_t j = 0; j < D; ++j) out[j] += qi * row[j];
  }
}

template <typename T>
void attend_generic(const float* q, const T* k, const T* v, int64_t len, int64_t D, float scale, float* s, float* out) {
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < len; ++t) {
    float acc = 0;
    for (int64_t d = 0; d < D; ++d) acc += q[d] * to_float(k[t * D + d]);
    s[t] = acc * scale;
    mx = std::max(mx, s[t]);
  }
  float total = 0;
  for (int64_t t = 0; t < len; ++t) total += (s[t] = std::exp(s[t] - mx));
  for (int64_t d = 0; d < D; ++d) out[d] = 0;
  for (int64_t t = 0; t < len; ++t) {
    for (int64_t d = 0; d < D; ++d) out[d] += s[t] * to_float(v[t * D + d]);
  }
  const float inv = 1.0f / total;
  for (int64_t d = 0; d < D; ++d) out[d] *= inv;
}

// ---------------------------------------------------------------------------------------
// AVX-512.

IFLAME_AVX512_WARNINGS_OFF

using simd::load16;
using simd::exp512;

IFLAME_AVX512 IFLAME_INLINE __mmask16 tail_mask(int64_t n) { return __mmask16((1u << n) - 1u); }

// The end of a tile: y = (accumulate ? y : 0) + c + bias for the panels' real rows.
template <int NP, int BB>
IFLAME_AVX512 IFLAME_INLINE void store_tile(const __m512 (&c)[NP][BB], const PackedMatrix& w, int64_t p0, float* y,
                                            int64_t ldy, bool accumulate) {
  for (int p = 0; p < NP; ++p) {
    const int64_t n0 = (p0 + p) * 16;
    const __mmask16 m = tail_mask(w.valid[size_t(p0 + p)]);
    const __m512 bias = _mm512_loadu_ps(w.bias.data() + n0);
    for (int b = 0; b < BB; ++b) {
      float* out = y + b * ldy + n0;
      __m512 v = _mm512_add_ps(c[p][b], bias);
      if (accumulate) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, out), v);
      _mm512_mask_storeu_ps(out, m, v);
    }
  }
}

// NP panels (16 outputs each) x BB batch rows of accumulators, all in registers.
// x: float32 rows (ldx apart); xp: the same rows as bfloat16 pairs (ldp pairs apart, for
// tile_dpbf16 only).
struct TileArgs {
  const float* x;
  int64_t ldx;
  const uint32_t* xp;
  int64_t ldp;
};

// float32 weights.
template <int NP, int BB>
IFLAME_AVX512 void tile_f32(const TileArgs& a, const float* data, const PackedMatrix& w, int64_t p0, float* y,
                            int64_t ldy, bool accumulate) {
  const int64_t K = w.cols;
  __m512 c[NP][BB];
  for (int p = 0; p < NP; ++p) {
    for (int b = 0; b < BB; ++b) c[p][b] = _mm512_setzero_ps();
  }
  const float* wp[NP];
  for (int p = 0; p < NP; ++p) wp[p] = data + (p0 + p) * panel_size(data, K);
  for (int64_t k = 0; k < K; ++k) {
    __m512 wv[NP];
    for (int p = 0; p < NP; ++p) wv[p] = _mm512_loadu_ps(wp[p] + k * 16);
    for (int b = 0; b < BB; ++b) {
      const __m512 xv = _mm512_set1_ps(a.x[b * a.ldx + k]);
      for (int p = 0; p < NP; ++p) c[p][b] = _mm512_fmadd_ps(wv[p], xv, c[p][b]);
    }
  }
  store_tile<NP, BB>(c, w, p0, y, ldy, accumulate);
}

// bfloat16 input pairs, float32 arithmetic: as 16 32-bit lanes, a 64-byte load holds
// (W[r, k], W[r, k + 1]); shifting left by 16 gives W[:, k] as float32, masking the low half
// gives W[:, k + 1] (two instructions for 32 weights; two widening loads would take six).
template <int NP, int BB>
IFLAME_AVX512 void tile_pairs(const TileArgs& a, const uint16_t* data, const PackedMatrix& w, int64_t p0, float* y,
                              int64_t ldy, bool accumulate) {
  const int64_t K = w.cols, pairs = (K + 1) / 2;
  __m512 c[NP][BB];
  for (int p = 0; p < NP; ++p) {
    for (int b = 0; b < BB; ++b) c[p][b] = _mm512_setzero_ps();
  }
  const uint16_t* wp[NP];
  for (int p = 0; p < NP; ++p) wp[p] = data + (p0 + p) * panel_size(data, K);
  const __m512i high = _mm512_set1_epi32(int(0xffff0000u));
  for (int64_t j = 0; j < pairs; ++j) {
    __m512 even[NP], odd[NP];
    for (int p = 0; p < NP; ++p) {
      const __m512i raw = _mm512_loadu_si512(wp[p] + j * 32);
      even[p] = _mm512_castsi512_ps(_mm512_slli_epi32(raw, 16));
      odd[p] = _mm512_castsi512_ps(_mm512_and_si512(raw, high));
    }
    const bool has_odd = 2 * j + 1 < K;
    for (int b = 0; b < BB; ++b) {
      const float* xr = a.x + b * a.ldx + 2 * j;
      const __m512 x0 = _mm512_set1_ps(xr[0]);
      const __m512 x1 = _mm512_set1_ps(has_odd ? xr[1] : 0.0f);
      for (int p = 0; p < NP; ++p) c[p][b] = _mm512_fmadd_ps(odd[p], x1, _mm512_fmadd_ps(even[p], x0, c[p][b]));
    }
  }
  store_tile<NP, BB>(c, w, p0, y, ldy, accumulate);
}

// bfloat16 input pairs times bfloat16-rounded x: VDPBF16PS adds both products of a pair.
template <int NP, int BB>
IFLAME_AVX512BF16 void tile_dpbf16(const TileArgs& a, const uint16_t* data, const PackedMatrix& w, int64_t p0, float* y,
                                   int64_t ldy, bool accumulate) {
  const int64_t pairs = (w.cols + 1) / 2;
  __m512 c[NP][BB];
  for (int p = 0; p < NP; ++p) {
    for (int b = 0; b < BB; ++b) c[p][b] = _mm512_setzero_ps();
  }
  const uint16_t* wp[NP];
  for (int p = 0; p < NP; ++p) wp[p] = data + (p0 + p) * panel_size(data, w.cols);
  for (int64_t j = 0; j < pairs; ++j) {
    __m512bh wv[NP];
    for (int p = 0; p < NP; ++p) wv[p] = (__m512bh)_mm512_loadu_si512(wp[p] + j * 32);
    for (int b = 0; b < BB; ++b) {
      const __m512bh xv = (__m512bh)_mm512_set1_epi32(int(a.xp[b * a.ldp + j]));
      for (int p = 0; p < NP; ++p) c[p][b] = _mm512_dpbf16_ps(c[p][b], wv[p], xv);
    }
  }
  store_tile<NP, BB>(c, w, p0, y, ldy, accumulate);
}

// x rows (ldx apart) -> bfloat16 (round to nearest even), ldp uint32 pairs per row, the last
// pair of an odd K padded with zero.
IFLAME_AVX512BF16 void to_bf16_pairs(const float* x, int64_t B, int64_t ldx, int64_t K, uint32_t* xp, int64_t ldp) {
  for (int64_t b = 0; b < B; ++b) {
    uint16_t* out = reinterpret_cast<uint16_t*>(xp + b * ldp);
    const float* xr = x + b * ldx;
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(xr + k)));
    }
    for (; k < K; ++k) out[k] = to_bf16(xr[k]);
    if (K % 2) out[K] = 0;
  }
}

constexpr int kTileBatch = 6;  // NP = 4 panels x 6 rows: 24 accumulators + 5 operands of 32 registers

// The three tile families, as types for the driver below.
struct F32Tiles {
  template <int NP, int BB>
  static void run(const TileArgs& a, const float* data, const PackedMatrix& w, int64_t p0, float* y, int64_t ldy, bool acc) {
    tile_f32<NP, BB>(a, data, w, p0, y, ldy, acc);
  }
};
struct PairTiles {
  template <int NP, int BB>
  static void run(const TileArgs& a, const uint16_t* data, const PackedMatrix& w, int64_t p0, float* y, int64_t ldy,
                  bool acc) {
    tile_pairs<NP, BB>(a, data, w, p0, y, ldy, acc);
  }
};
struct DpBf16Tiles {
  template <int NP, int BB>
  static void run(const TileArgs& a, const uint16_t* data, const PackedMatrix& w, int64_t p0, float* y, int64_t ldy,
                  bool acc) {
    tile_dpbf16<NP, BB>(a, data, w, p0, y, ldy, acc);
  }
};

// The arguments for batch rows from b0 on.
inline TileArgs rows_from(const TileArgs& a, int64_t b0) {
  return {a.x + b0 * a.ldx, a.ldx, a.xp ? a.xp + b0 * a.ldp : nullptr, a.ldp};
}

template <typename Tiles, int NP, typename W>
void tile_rows(int64_t bb, const TileArgs& a, const W* data, const PackedMatrix& w, int64_t p0, float* y, int64_t ldy,
               bool acc) {
  switch (bb) {
    case 1: return Tiles::template run<NP, 1>(a, data, w, p0, y, ldy, acc);
    case 2: return Tiles::template run<NP, 2>(a, data, w, p0, y, ldy, acc);
    case 3: return Tiles::template run<NP, 3>(a, data, w, p0, y, ldy, acc);
    case 4: return Tiles::template run<NP, 4>(a, data, w, p0, y, ldy, acc);
    case 5: return Tiles::template run<NP, 5>(a, data, w, p0, y, ldy, acc);
    default: return Tiles::template run<NP, 6>(a, data, w, p0, y, ldy, acc);
  }
}

// Panels [pb, pe) for B batch rows: 4-panel tiles over groups of up to kTileBatch rows.
template <typename Tiles, typename W>
void panels_avx512(const TileArgs& a, int64_t B, const W* data, const PackedMatrix& w, int64_t pb, int64_t pe, float* y,
                   int64_t ldy, bool accumulate) {
  int64_t p = pb;
  if (B <= 2) {
    // Memory-bound: more panels (independent streams) in flight per pass over K.
    for (; p + 8 <= pe; p += 8) {
      if (B == 1) Tiles::template run<8, 1>(a, data, w, p, y, ldy, accumulate);
      else Tiles::template run<8, 2>(a, data, w, p, y, ldy, accumulate);
    }
  }
  for (; p + 4 <= pe; p += 4) {
    for (int64_t b0 = 0; b0 < B; b0 += kTileBatch) {
      tile_rows<Tiles, 4>(std::min<int64_t>(kTileBatch, B - b0), rows_from(a, b0), data, w, p, y + b0 * ldy, ldy,
                          accumulate);
    }
  }
  for (; p < pe; ++p) {
    for (int64_t b0 = 0; b0 < B; b0 += kTileBatch) {
      tile_rows<Tiles, 1>(std::min<int64_t>(kTileBatch, B - b0), rows_from(a, b0), data, w, p, y + b0 * ldy, ldy,
                          accumulate);
    }
  }
}

// r[i] = sum of the 16 lanes of a[i], for 16 vectors at once (a transpose-and-add tree:
// 45 instructions instead of 16 horizontal sums of ~8 each).
IFLAME_AVX512 IFLAME_INLINE __m512 sum16(const __m512* a) {
  __m512 v[8], w[4];
  for (int j = 0; j < 8; ++j) {  // per 128-bit lane: [a0+a2, b0+b2, a1+a3, b1+b3]
    v[j] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * j], a[2 * j + 1]), _mm512_unpackhi_ps(a[2 * j], a[2 * j + 1]));
  }
  for (int j = 0; j < 4; ++j) {  // per 128-bit lane: the lane's sums of vectors 4j .. 4j+3
    w[j] = _mm512_add_ps(_mm512_shuffle_ps(v[2 * j], v[2 * j + 1], 0x44), _mm512_shuffle_ps(v[2 * j], v[2 * j + 1], 0xEE));
  }
  // Add the four 128-bit lanes: lane j of the result holds vectors 4j .. 4j+3.
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], 0x88), _mm512_shuffle_f32x4(w[0], w[1], 0xDD));
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(w[2], w[3], 0x88), _mm512_shuffle_f32x4(w[2], w[3], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, 0x88), _mm512_shuffle_f32x4(s01, s23, 0xDD));
}

template <typename T>
IFLAME_AVX512 void attend_avx512(const float* q, const T* k, const T* v, int64_t len, int64_t D, float scale, float* s,
                                 float* out) {
  const int nd = int(D / 16);  // 1..4
  __m512 qv[4];
  for (int c = 0; c < nd; ++c) qv[c] = _mm512_loadu_ps(q + 16 * c);
  // Scores, 16 positions at a time (one horizontal sum for all 16), and their maximum.
  const __m512 sv = _mm512_set1_ps(scale);
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t t = 0;
  for (; t + 16 <= len; t += 16) {
    __m512 acc[16];
    for (int i = 0; i < 16; ++i) {
      const T* kt = k + (t + i) * D;
      acc[i] = _mm512_mul_ps(qv[0], load16(kt));
      for (int c = 1; c < nd; ++c) acc[i] = _mm512_fmadd_ps(qv[c], load16(kt + 16 * c), acc[i]);
    }
    const __m512 scores = _mm512_mul_ps(sum16(acc), sv);
    _mm512_storeu_ps(s + t, scores);
    mx = _mm512_max_ps(mx, scores);
  }
  for (int64_t u = t; u < len; ++u) {
    const T* kt = k + u * D;
    __m512 acc = _mm512_mul_ps(qv[0], load16(kt));
    for (int c = 1; c < nd; ++c) acc = _mm512_fmadd_ps(qv[c], load16(kt + 16 * c), acc);
    s[u] = _mm512_reduce_add_ps(acc) * scale;
  }
  if (t < len) mx = _mm512_mask_max_ps(mx, tail_mask(len - t), mx, _mm512_maskz_loadu_ps(tail_mask(len - t), s + t));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  // exp(s - max) and the sum.
  __m512 sum = _mm512_setzero_ps();
  for (t = 0; t + 16 <= len; t += 16) {
    const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + t), m));
    _mm512_storeu_ps(s + t, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (t < len) {
    const __mmask16 tm = tail_mask(len - t);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tm, s + t), m));
    _mm512_mask_storeu_ps(s + t, tm, e);
    sum = _mm512_mask_add_ps(sum, tm, sum, e);
  }
  const float total = _mm512_reduce_add_ps(sum);
  // sum_t p_t v_t, two independent accumulator sets.
  __m512 o0[4], o1[4];
  for (int c = 0; c < nd; ++c) o0[c] = o1[c] = _mm512_setzero_ps();
  for (t = 0; t + 2 <= len; t += 2) {
    const __m512 p0 = _mm512_set1_ps(s[t]), p1 = _mm512_set1_ps(s[t + 1]);
    const T* v0 = v + t * D;
    for (int c = 0; c < nd; ++c) {
      o0[c] = _mm512_fmadd_ps(p0, load16(v0 + 16 * c), o0[c]);
      o1[c] = _mm512_fmadd_ps(p1, load16(v0 + D + 16 * c), o1[c]);
    }
  }
  if (t < len) {
    const __m512 p0 = _mm512_set1_ps(s[t]);
    for (int c = 0; c < nd; ++c) o0[c] = _mm512_fmadd_ps(p0, load16(v + t * D + 16 * c), o0[c]);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / total);
  for (int c = 0; c < nd; ++c) _mm512_storeu_ps(out + 16 * c, _mm512_mul_ps(_mm512_add_ps(o0[c], o1[c]), inv));
}

IFLAME_AVX512 void rmsnorm_avx512(const float* x, const float* w, int64_t B, int64_t E, float eps, float* y) {
  for (int64_t b = 0; b < B; ++b) {
    const float* xr = x + b * E;
    float* yr = y + b * E;
    __m512 acc = _mm512_setzero_ps();
    int64_t e = 0;
    for (; e + 16 <= E; e += 16) {
      const __m512 v = _mm512_loadu_ps(xr + e);
      acc = _mm512_fmadd_ps(v, v, acc);
    }
    if (e < E) {
      const __m512 v = _mm512_maskz_loadu_ps(tail_mask(E - e), xr + e);
      acc = _mm512_fmadd_ps(v, v, acc);
    }
    const __m512 r = _mm512_set1_ps(1.0f / std::sqrt(_mm512_reduce_add_ps(acc) / float(E) + eps));
    for (e = 0; e + 16 <= E; e += 16) {
      _mm512_storeu_ps(yr + e, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(xr + e), r), _mm512_loadu_ps(w + e)));
    }
    if (e < E) {
      const __mmask16 m = tail_mask(E - e);
      _mm512_mask_storeu_ps(yr + e, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + e), r), _mm512_maskz_loadu_ps(m, w + e)));
    }
  }
}

IFLAME_AVX512 void exp_avx512(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, exp512(_mm512_loadu_ps(x + i)));
  if (i < n) _mm512_mask_storeu_ps(x + i, tail_mask(n - i), exp512(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i)));
}

// The portable bodies compiled for AVX-512.
IFLAME_AVX512 void rope_avx512(float* x, int64_t B, int64_t H, int64_t D, int64_t ld, const float* c, const float* s) {
  rope_body(x, B, H, D, ld, c, s);
}
IFLAME_AVX512 void store_row_avx512(const float* x, void* dst, bool bf16, int64_t n) { store_row_body(x, dst, bf16, n); }
IFLAME_AVX512 void linear_step_avx512(const float* q, const float* k, const float* v, float decay, float* S, int64_t D,
                                      float* out) {
  linear_step_body(q, k, v, decay, S, D, out);
}

IFLAME_AVX512_WARNINGS_ON

using cpu::avx512;

}  // namespace

// ---------------------------------------------------------------------------------------

uint16_t to_bf16(float x) {
  uint16_t h;
  store_row_body(&x, &h, true, 1);
  return h;
}

PackedMatrix pack_matrix(const std::vector<MatrixPart>& parts, int64_t cols, bool bf16) {
  PackedMatrix m;
  m.cols = cols;
  m.bf16 = bf16;
  for (const auto& part : parts) {
    m.offsets.push_back(m.padded_rows);
    m.padded_rows += (part.rows + 15) / 16 * 16;
  }
  const int64_t pairs = (cols + 1) / 2;
  const size_t n = size_t(m.padded_rows * (bf16 ? 2 * pairs : cols));
  if (bf16) {
    m.b16 = AlignedArray<uint16_t>(n);
    std::fill(m.b16.data(), m.b16.data() + n, uint16_t(0));
  } else {
    m.f32 = AlignedArray<float>(n);
    std::fill(m.f32.data(), m.f32.data() + n, 0.0f);
  }
  m.bias.assign(size_t(m.padded_rows), 0.0f);
  for (size_t i = 0; i < parts.size(); ++i) {
    const MatrixPart& part = parts[i];
    const int64_t first_panel = m.offsets[i] / 16;
    for (int64_t row = 0; row < part.rows; ++row) {
      const int64_t panel = first_panel + row / 16, r = row % 16;
      const float* src = part.weight + row * cols;
      if (bf16) {
        uint16_t* dst = m.b16.data() + panel * panel_size(m.b16.data(), cols) + r * 2;
        for (int64_t k = 0; k < cols; ++k) dst[(k >> 1) * 32 + (k & 1)] = to_bf16(src[k]);
      } else {
        float* dst = m.f32.data() + panel * panel_size(m.f32.data(), cols) + r;
        for (int64_t k = 0; k < cols; ++k) dst[k * 16] = src[k];
      }
      if (part.bias) m.bias[size_t(m.offsets[i] + row)] = part.bias[row];
    }
    for (int64_t p = 0; p < (part.rows + 15) / 16; ++p) m.valid.push_back(int32_t(std::min<int64_t>(16, part.rows - 16 * p)));
  }
  return m;
}

void matmul(const float* x, int64_t B, int64_t ldx, const PackedMatrix& w, float* y, int64_t ldy, bool accumulate) {
  const int64_t panels = w.panels();
  const Isa isa = active_isa();
  TileArgs args{x, ldx, nullptr, 0};
  thread_local std::vector<uint32_t> pairs;  // x in bfloat16 for VDPBF16PS
  if (w.bf16 && isa == Isa::Avx512Bf16) {
    args.ldp = (w.cols + 1) / 2;
    if (pairs.size() < size_t(B * args.ldp)) pairs.resize(size_t(B * args.ldp));
    to_bf16_pairs(x, B, ldx, w.cols, pairs.data(), args.ldp);
    args.xp = pairs.data();
  }
  auto run = [&](int64_t pb, int64_t pe) {
    if (isa < Isa::Avx512) {
      if (w.bf16) panels_body(x, B, ldx, w.b16.data(), w, pb, pe, y, ldy, accumulate);
      else panels_body(x, B, ldx, w.f32.data(), w, pb, pe, y, ldy, accumulate);
    } else if (!w.bf16) {
      panels_avx512<F32Tiles>(args, B, w.f32.data(), w, pb, pe, y, ldy, accumulate);
    } else if (isa == Isa::Avx512Bf16) {
      panels_avx512<DpBf16Tiles>(args, B, w.b16.data(), w, pb, pe, y, ldy, accumulate);
    } else {
      panels_avx512<PairTiles>(args, B, w.b16.data(), w, pb, pe, y, ldy, accumulate);
    }
  };
  const int threads = at::get_num_threads();
  if (threads <= 1 || double(B) * double(w.padded_rows) * double(w.cols) < kParallelWork || at::in_parallel_region()) {
    run(0, panels);
    return;
  }
  // Chunks of whole 8-panel tiles, one per thread.
  const int64_t grain = (panels + 8 * threads - 1) / (8 * threads) * 8;
  at::parallel_for(0, panels, grain, run);
}

void rmsnorm(const float* x, const float* w, int64_t B, int64_t E, float eps, float* y) {
  if (avx512()) rmsnorm_avx512(x, w, B, E, eps, y);
  else rmsnorm_body(x, w, B, E, eps, y);
}

void rope(float* x, int64_t B, int64_t H, int64_t D, int64_t ld, const float* cos, const float* sin) {
  if (avx512()) rope_avx512(x, B, H, D, ld, cos, sin);
  else rope_body(x, B, H, D, ld, cos, sin);
}

void silu_mul(const float* a, const float* b, float* y, int64_t n) { pointwise::swiglu_forward(a, b, y, n); }

void exp_inplace(float* x, int64_t n) {
  if (avx512()) {
    exp_avx512(x, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

void store_row(const float* x, void* dst, bool bf16, int64_t n) {
  if (avx512()) store_row_avx512(x, dst, bf16, n);
  else store_row_body(x, dst, bf16, n);
}

void attend(const float* q, const void* k, const void* v, bool bf16, int64_t len, int64_t D, float scale, float* scratch,
            float* out) {
  if (avx512() && D % 16 == 0 && D <= 64) {
    if (bf16) {
      attend_avx512(q, static_cast<const uint16_t*>(k), static_cast<const uint16_t*>(v), len, D, scale, scratch, out);
    } else {
      attend_avx512(q, static_cast<const float*>(k), static_cast<const float*>(v), len, D, scale, scratch, out);
    }
    return;
  }
  if (bf16) {
    attend_generic(q, static_cast<const uint16_t*>(k), static_cast<const uint16_t*>(v), len, D, scale, scratch, out);
  } else {
    attend_generic(q, static_cast<const float*>(k), static_cast<const float*>(v), len, D, scale, scratch, out);
  }
}

void attend_rows(const float* qkv, int64_t B, int64_t H, int64_t D, const int64_t* rows, const int64_t* pos,
                 void* k_cache, void* v_cache, bool bf16, int64_t cap, float* out) {
  const int64_t E = H * D, E3 = 3 * E;
  const size_t elem = bf16 ? 2 : 4;
  char* kb = static_cast<char*>(k_cache);
  char* vb = static_cast<char*>(v_cache);
  double work = 0;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      const size_t at = size_t(((rows[b] * H + h) * cap + pos[b]) * D) * elem;
      store_row(qkv + b * E3 + E + h * D, kb + at, bf16, D);
      store_row(qkv + b * E3 + 2 * E + h * D, vb + at, bf16, D);
    }
    work += double(H) * double(pos[b] + 1) * double(D);
  }
  const float scale = float(1.0 / std::sqrt(double(D)));
  auto heads = [&](int64_t i0, int64_t i1) {
    thread_local std::vector<float> scores;  // one row of attention scores per thread
    if (int64_t(scores.size()) < cap) scores.resize(size_t(cap));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / H, h = i % H;
      const size_t base = size_t((rows[b] * H + h) * cap * D) * elem;
      attend(qkv + b * E3 + h * D, kb + base, vb + base, bf16, pos[b] + 1, D, scale, scores.data(), out + b * E + h * D);
    }
  };
  const int threads = at::get_num_threads();
  if (threads > 1 && work >= 65536.0) {
    at::parallel_for(0, B * H, (B * H + threads - 1) / threads, heads);
  } else {
    heads(0, B * H);
  }
}

void linear_step(const float* q, const float* k, const float* v, float decay, float* S, int64_t D, float* out) {
  if (avx512()) linear_step_avx512(q, k, v, decay, S, D, out);
  else linear_step_body(q, k, v, decay, S, D, out);
}

}  // namespace iflame::decode
