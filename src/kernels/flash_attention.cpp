#include "kernels/flash_attention.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/simd.h"
#include "kernels/cpu_isa.h"

namespace iflame::flash {

namespace {

constexpr int64_t kB = kBlock;
constexpr int kMaxVectors = 8;  // D <= 128 on the AVX-512 path

// Keys a query row of a block may see: all kB, or on the diagonal block only keys <= itself.
IFLAME_INLINE int64_t visible_keys(int64_t row, bool diagonal) { return diagonal ? row + 1 : kB; }

// ---------------------------------------------------------------------------------------
// Portable blocks (double, and float on CPUs without AVX-512). A block is kB rows; a score
// block is kB x kB, row-major.

// c = a bt: a is kB rows of D, bt is D rows of stride ldb (the block's first key at column 0).
template <typename S>
void scores_generic(const S* a, const S* bt, int64_t ldb, int64_t D, S* c) {
  for (int64_t i = 0; i < kB; ++i) {
    S* ci = c + i * kB;
    std::fill(ci, ci + kB, S(0));
    for (int64_t d = 0; d < D; ++d) {
      const S x = a[i * D + d];
      const S* b = bt + d * ldb;
      for (int64_t j = 0; j < kB; ++j) ci[j] += x * b[j];
    }
  }
}

// c += p b: p is a score block, b and c are kB rows of D.
template <typename S>
void add_ab_generic(const S* p, const S* b, int64_t D, S* c) {
  for (int64_t i = 0; i < kB; ++i)
    for (int64_t j = 0; j < kB; ++j) {
      const S x = p[i * kB + j];
      for (int64_t d = 0; d < D; ++d) c[i * D + d] += x * b[j * D + d];
    }
}

// c += p^T b: row j of c gains sum_i p[i][j] b[i].
template <typename S>
void add_atb_generic(const S* p, const S* b, int64_t D, S* c) {
  for (int64_t i = 0; i < kB; ++i)
    for (int64_t j = 0; j < kB; ++j) {
      const S x = p[i * kB + j];
      for (int64_t d = 0; d < D; ++d) c[j * D + d] += x * b[i * D + d];
    }
}

// One key block of the forward's online softmax: s holds the block's scores and becomes the
// probabilities (0 where masked) relative to the new running max m; l (sums) and o (the
// kB x D weighted sums so far) are rescaled to that max.
template <typename S>
void online_softmax_generic(S* s, bool diagonal, S* m, S* l, S* o, int64_t D) {
  for (int64_t i = 0; i < kB; ++i) {
    S* row = s + i * kB;
    const int64_t n = visible_keys(i, diagonal);
    S mx = m[i];
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, row[j]);
    const S corr = std::exp(m[i] - mx);  // 0 on the first block (m = -inf)
    S sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += (row[j] = std::exp(row[j] - mx));
    std::fill(row + n, row + kB, S(0));
    l[i] = l[i] * corr + sum;
    m[i] = mx;
    for (int64_t d = 0; d < D; ++d) o[i * D + d] *= corr;
  }
}

// s (scores) -> probabilities exp(s - lse), 0 where masked.
template <typename S>
void probabilities_generic(S* s, bool diagonal, const S* lse) {
  for (int64_t i = 0; i < kB; ++i) {
    S* row = s + i * kB;
    const int64_t n = visible_keys(i, diagonal);
    for (int64_t j = 0; j < n; ++j) row[j] = std::exp(row[j] - lse[i]);
    std::fill(row + n, row + kB, S(0));
  }
}

// dp (dout v^T) -> ds = p * (dp - delta).
template <typename S>
void score_grads_generic(const S* p, const S* delta, S* dp) {
  for (int64_t i = 0; i < kB; ++i)
    for (int64_t j = 0; j < kB; ++j) dp[i * kB + j] = p[i * kB + j] * (dp[i * kB + j] - delta[i]);
}

// ---------------------------------------------------------------------------------------
// AVX-512 blocks for float, D = 16 * ND.

// The __m512 accumulator arrays are fully unrolled, and GCC 12's _mm512_reduce_* start from an
// undefined vector: neither is a real uninitialized read.
IFLAME_AVX512_WARNINGS_OFF

// Rows per register tile of the (kB x D) products: R * ND accumulators of 32 registers.
constexpr int tile_rows(int nd) { return nd <= 2 ? 8 : nd <= 4 ? 4 : 2; }

using simd::exp256;
using simd::exp512;

// Lanes [16 v, 16 v + 16) of a row that sees `n` keys.
IFLAME_AVX512 IFLAME_INLINE __mmask16 visible_lanes(int64_t n, int v) {
  const int64_t c = n - 16 * v;
  return c >= 16 ? __mmask16(0xFFFF) : c <= 0 ? __mmask16(0) : __mmask16((1u << c) - 1u);
}

// c = a bt, 4 rows x 64 keys (16 accumulators) per tile.
IFLAME_AVX512 void scores_avx512(const float* a, const float* bt, int64_t ldb, int64_t D, float* c) {
  static_assert(kB == 64, "the score tile is 4 vectors wide");
  for (int64_t i = 0; i < kB; i += 4) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; ++r)
      for (int n = 0; n < 4; ++n) acc[r][n] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; ++d) {
      const float* b = bt + d * ldb;
      const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), b2 = _mm512_loadu_ps(b + 32),
                   b3 = _mm512_loadu_ps(b + 48);
      for (int r = 0; r < 4; ++r) {
        const __m512 x = _mm512_set1_ps(a[(i + r) * D + d]);
        acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(x, b2, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(x, b3, acc[r][3]);
      }
    }
    for (int r = 0; r < 4; ++r)
      for (int n = 0; n < 4; ++n) _mm512_storeu_ps(c + (i + r) * kB + 16 * n, acc[r][n]);
  }
}

// c += p b (kB rows of D = 16 ND); with `transposed`, c += p^T b.
template <int ND, bool transposed>
IFLAME_AVX512 void add_products_avx512(const float* p, const float* b, float* c) {
  constexpr int R = tile_rows(ND);
  constexpr int64_t D = 16 * ND;
  for (int64_t i = 0; i < kB; i += R) {
    __m512 acc[R][ND];
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND; ++n) acc[r][n] = _mm512_loadu_ps(c + (i + r) * D + 16 * n);
    for (int64_t j = 0; j < kB; ++j) {
      __m512 bv[ND];
      for (int n = 0; n < ND; ++n) bv[n] = _mm512_loadu_ps(b + j * D + 16 * n);
      for (int r = 0; r < R; ++r) {
        const __m512 x = _mm512_set1_ps(transposed ? p[j * kB + i + r] : p[(i + r) * kB + j]);
        for (int n = 0; n < ND; ++n) acc[r][n] = _mm512_fmadd_ps(x, bv[n], acc[r][n]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND; ++n) _mm512_storeu_ps(c + (i + r) * D + 16 * n, acc[r][n]);
  }
}

IFLAME_AVX512 void online_softmax_avx512(float* s, bool diagonal, float* m, float* l, float* o, int64_t D) {
  for (int64_t i = 0; i < kB; ++i) {
    float* row = s + i * kB;
    const int64_t n = visible_keys(i, diagonal);
    __m512 mx = _mm512_set1_ps(m[i]);
    for (int v = 0; v < 4; ++v) mx = _mm512_mask_max_ps(mx, visible_lanes(n, v), mx, _mm512_loadu_ps(row + 16 * v));
    const float row_max = _mm512_reduce_max_ps(mx);
    const float corr = std::exp(m[i] - row_max);  // 0 on the first block (m = -inf)
    const __m512 mv = _mm512_set1_ps(row_max);
    __m512 sum = _mm512_setzero_ps();
    for (int v = 0; v < 4; ++v) {
      const __m512 e =
          _mm512_maskz_mov_ps(visible_lanes(n, v), exp512(_mm512_sub_ps(_mm512_loadu_ps(row + 16 * v), mv)));
      _mm512_storeu_ps(row + 16 * v, e);
      sum = _mm512_add_ps(sum, e);
    }
    l[i] = l[i] * corr + _mm512_reduce_add_ps(sum);
    m[i] = row_max;
    const __m512 cv = _mm512_set1_ps(corr);
    for (int64_t d = 0; d < D; d += 16) _mm512_storeu_ps(o + i * D + d, _mm512_mul_ps(cv, _mm512_loadu_ps(o + i * D + d)));
  }
}

IFLAME_AVX512 void probabilities_avx512(float* s, bool diagonal, const float* lse) {
  for (int64_t i = 0; i < kB; ++i) {
    float* row = s + i * kB;
    const int64_t n = visible_keys(i, diagonal);
    const __m512 lv = _mm512_set1_ps(lse[i]);
    for (int v = 0; v < 4; ++v)
      _mm512_storeu_ps(row + 16 * v, _mm512_maskz_mov_ps(visible_lanes(n, v),
                                                         exp512(_mm512_sub_ps(_mm512_loadu_ps(row + 16 * v), lv))));
  }
}

IFLAME_AVX512 void score_grads_avx512(const float* p, const float* delta, float* dp) {
  for (int64_t i = 0; i < kB; ++i) {
    const __m512 dv = _mm512_set1_ps(delta[i]);
    for (int64_t j = 0; j < kB; j += 16) {
      const __m512 g = _mm512_sub_ps(_mm512_loadu_ps(dp + i * kB + j), dv);
      _mm512_storeu_ps(dp + i * kB + j, _mm512_mul_ps(_mm512_loadu_ps(p + i * kB + j), g));
    }
  }
}

// ---------------------------------------------------------------------------------------
// AVX2 + FMA blocks for float, D = 8 ND8 <= 64 (16 ymm registers: tiles keep accumulators
// and operands under that).

IFLAME_AVX2 IFLAME_INLINE float hmax256(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}

IFLAME_AVX2 IFLAME_INLINE float hsum256(__m256 v) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_add_ss(m, _mm_shuffle_ps(m, m, 1)));
}

// All-ones in the lanes [8 v, 8 v + 8) of a row that sees `n` keys.
IFLAME_AVX2 IFLAME_INLINE __m256 visible_lanes256(int64_t n, int v) {
  const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmp_ps(_mm256_add_ps(lane, _mm256_set1_ps(float(8 * v))), _mm256_set1_ps(float(n)), _CMP_LT_OQ);
}

// c = a bt: 2 rows x 32 keys (8 accumulators) per tile.
IFLAME_AVX2 void scores_avx2(const float* a, const float* bt, int64_t ldb, int64_t D, float* c) {
  for (int64_t i = 0; i < kB; i += 2) {
    for (int64_t j0 = 0; j0 < kB; j0 += 32) {
      __m256 acc[2][4];
      for (int r = 0; r < 2; ++r)
        for (int n = 0; n < 4; ++n) acc[r][n] = _mm256_setzero_ps();
      for (int64_t d = 0; d < D; ++d) {
        const float* b = bt + d * ldb + j0;
        __m256 bv[4];
        for (int n = 0; n < 4; ++n) bv[n] = _mm256_loadu_ps(b + 8 * n);
        for (int r = 0; r < 2; ++r) {
          const __m256 x = _mm256_broadcast_ss(a + (i + r) * D + d);
          for (int n = 0; n < 4; ++n) acc[r][n] = _mm256_fmadd_ps(x, bv[n], acc[r][n]);
        }
      }
      for (int r = 0; r < 2; ++r)
        for (int n = 0; n < 4; ++n) _mm256_storeu_ps(c + (i + r) * kB + j0 + 8 * n, acc[r][n]);
    }
  }
}

// c += p b (kB rows of D = 8 ND8); with `transposed`, c += p^T b.
template <int ND8, bool transposed>
IFLAME_AVX2 void add_products_avx2(const float* p, const float* b, float* c) {
  constexpr int R = ND8 <= 2 ? 4 : ND8 <= 4 ? 2 : 1;
  constexpr int64_t D = 8 * ND8;
  for (int64_t i = 0; i < kB; i += R) {
    __m256 acc[R][ND8];
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND8; ++n) acc[r][n] = _mm256_loadu_ps(c + (i + r) * D + 8 * n);
    for (int64_t j = 0; j < kB; ++j) {
      __m256 bv[ND8];
      for (int n = 0; n < ND8; ++n) bv[n] = _mm256_loadu_ps(b + j * D + 8 * n);
      for (int r = 0; r < R; ++r) {
        const __m256 x = _mm256_broadcast_ss(transposed ? p + j * kB + i + r : p + (i + r) * kB + j);
        for (int n = 0; n < ND8; ++n) acc[r][n] = _mm256_fmadd_ps(x, bv[n], acc[r][n]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND8; ++n) _mm256_storeu_ps(c + (i + r) * D + 8 * n, acc[r][n]);
  }
}

IFLAME_AVX2 void online_softmax_avx2(float* s, bool diagonal, float* m, float* l, float* o, int64_t D) {
  const __m256 minus_inf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < kB; ++i) {
    float* row = s + i * kB;
    const int64_t n = visible_keys(i, diagonal);
    __m256 mx = _mm256_set1_ps(m[i]);
    for (int v = 0; v < kB / 8; ++v)
      mx = _mm256_max_ps(mx, _mm256_blendv_ps(minus_inf, _mm256_loadu_ps(row + 8 * v), visible_lanes256(n, v)));
    const float row_max = hmax256(mx);
    const float corr = std::exp(m[i] - row_max);  // 0 on the first block (m = -inf)
    const __m256 mv = _mm256_set1_ps(row_max);
    __m256 sum = _mm256_setzero_ps();
    for (int v = 0; v < kB / 8; ++v) {
      const __m256 e =
          _mm256_and_ps(visible_lanes256(n, v), exp256(_mm256_sub_ps(_mm256_loadu_ps(row + 8 * v), mv)));
      _mm256_storeu_ps(row + 8 * v, e);
      sum = _mm256_add_ps(sum, e);
    }
    l[i] = l[i] * corr + hsum256(sum);
    m[i] = row_max;
    const __m256 cv = _mm256_set1_ps(corr);
    for (int64_t d = 0; d < D; d += 8) _mm256_storeu_ps(o + i * D + d, _mm256_mul_ps(cv, _mm256_loadu_ps(o + i * D + d)));
  }
}

IFLAME_AVX2 void probabilities_avx2(float* s, bool diagonal, const float* lse) {
  for (int64_t i = 0; i < kB; ++i) {
    float* row = s + i * kB;
    const int64_t n = visible_keys(i, diagonal);
    const __m256 lv = _mm256_set1_ps(lse[i]);
    for (int v = 0; v < kB / 8; ++v)
      _mm256_storeu_ps(row + 8 * v, _mm256_and_ps(visible_lanes256(n, v),
                                                  exp256(_mm256_sub_ps(_mm256_loadu_ps(row + 8 * v), lv))));
  }
}

IFLAME_AVX2 void score_grads_avx2(const float* p, const float* delta, float* dp) {
  for (int64_t i = 0; i < kB; ++i) {
    const __m256 dv = _mm256_set1_ps(delta[i]);
    for (int64_t j = 0; j < kB; j += 8) {
      const __m256 g = _mm256_sub_ps(_mm256_loadu_ps(dp + i * kB + j), dv);
      _mm256_storeu_ps(dp + i * kB + j, _mm256_mul_ps(_mm256_loadu_ps(p + i * kB + j), g));
    }
  }
}

// ---------------------------------------------------------------------------------------
// AVX512-BF16 blocks for bf16 operands (see Bf16Operands for the layouts), D = 16 ND.

// One bf16 pair (32 bits) broadcast to every lane.
IFLAME_AVX512BF16 IFLAME_INLINE __m512bh broadcast_pair(const uint16_t* p) {
  int32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return (__m512bh)_mm512_set1_epi32(bits);
}

// c = scale * a b: a is kB rows of D (bf16), fp is the key block's feature pairs (row p of
// them is at fp + p * 2T), 4 rows x 64 keys (16 accumulators) per tile.
IFLAME_AVX512BF16 void scores_dot(const uint16_t* a, const uint16_t* fp, int64_t T, int64_t D, float scale, float* c) {
  const __m512 sv = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < kB; i += 4) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; ++r)
      for (int n = 0; n < 4; ++n) acc[r][n] = _mm512_setzero_ps();
    for (int64_t p = 0; p < D / 2; ++p) {
      const uint16_t* b = fp + p * 2 * T;
      __m512bh bv[4];
      for (int n = 0; n < 4; ++n) bv[n] = (__m512bh)_mm512_loadu_si512(b + 32 * n);
      for (int r = 0; r < 4; ++r) {
        const __m512bh x = broadcast_pair(a + (i + r) * D + 2 * p);
        for (int n = 0; n < 4; ++n) acc[r][n] = _mm512_dpbf16_ps(acc[r][n], x, bv[n]);
      }
    }
    for (int r = 0; r < 4; ++r)
      for (int n = 0; n < 4; ++n) _mm512_storeu_ps(c + (i + r) * kB + 16 * n, _mm512_mul_ps(sv, acc[r][n]));
  }
}

// A score block (kB x kB float) rounded to bf16 rows.
IFLAME_AVX512BF16 void to_bf16_rows(const float* s, uint16_t* out) {
  for (int64_t i = 0; i < kB * kB; i += 32) {
    // cvtne2ps(a, b) puts b's 16 values first.
    _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + i + 16), _mm512_loadu_ps(s + i)));
  }
}

// A score block rounded to bf16 pairs of rows: out[(m kB + j) 2 + e] = s[2m + e][j].
IFLAME_AVX512BF16 void to_bf16_row_pairs(const float* s, uint16_t* out) {
  for (int64_t m = 0; m < kB / 2; ++m) {
    for (int64_t j = 0; j < kB; j += 16) {
      const __m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + 2 * m * kB + j)));
      const __m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + (2 * m + 1) * kB + j)));
      _mm512_storeu_si512(out + (m * kB + j) * 2, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
    }
  }
}

// c += p b: p16 is a score block's bf16 rows, b the key block's position pairs (kB/2 x D x 2).
template <int ND>
IFLAME_AVX512BF16 void add_ab_dot(const uint16_t* p16, const uint16_t* b, float* c) {
  constexpr int R = tile_rows(ND);
  constexpr int64_t D = 16 * ND;
  for (int64_t i = 0; i < kB; i += R) {
    __m512 acc[R][ND];
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND; ++n) acc[r][n] = _mm512_loadu_ps(c + (i + r) * D + 16 * n);
    for (int64_t m = 0; m < kB / 2; ++m) {
      __m512bh bv[ND];
      for (int n = 0; n < ND; ++n) bv[n] = (__m512bh)_mm512_loadu_si512(b + (m * D + 16 * n) * 2);
      for (int r = 0; r < R; ++r) {
        const __m512bh x = broadcast_pair(p16 + (i + r) * kB + 2 * m);
        for (int n = 0; n < ND; ++n) acc[r][n] = _mm512_dpbf16_ps(acc[r][n], x, bv[n]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND; ++n) _mm512_storeu_ps(c + (i + r) * D + 16 * n, acc[r][n]);
  }
}

// c += p^T b: pp is a score block's bf16 row pairs (to_bf16_row_pairs), b the query block's
// position pairs (kB/2 x D x 2); row j of c gains sum_i p[i][j] b[i].
template <int ND>
IFLAME_AVX512BF16 void add_atb_dot(const uint16_t* pp, const uint16_t* b, float* c) {
  constexpr int R = tile_rows(ND);
  constexpr int64_t D = 16 * ND;
  for (int64_t j = 0; j < kB; j += R) {
    __m512 acc[R][ND];
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND; ++n) acc[r][n] = _mm512_loadu_ps(c + (j + r) * D + 16 * n);
    for (int64_t m = 0; m < kB / 2; ++m) {
      __m512bh bv[ND];
      for (int n = 0; n < ND; ++n) bv[n] = (__m512bh)_mm512_loadu_si512(b + (m * D + 16 * n) * 2);
      for (int r = 0; r < R; ++r) {
        const __m512bh x = broadcast_pair(pp + (m * kB + j + r) * 2);
        for (int n = 0; n < ND; ++n) acc[r][n] = _mm512_dpbf16_ps(acc[r][n], x, bv[n]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int n = 0; n < ND; ++n) _mm512_storeu_ps(c + (j + r) * D + 16 * n, acc[r][n]);
  }
}

IFLAME_AVX512_WARNINGS_ON

// The (kB x D) products of the bf16 path for D = 16 ND.
struct DotProducts {
  void (*add_ab)(const uint16_t*, const uint16_t*, float*);
  void (*add_atb)(const uint16_t*, const uint16_t*, float*);
};

template <int ND>
DotProducts dot_products_fixed() {
  return {add_ab_dot<ND>, add_atb_dot<ND>};
}

DotProducts dot_products(int64_t D) {
  switch (D / 16) {
    case 1: return dot_products_fixed<1>();
    case 2: return dot_products_fixed<2>();
    case 3: return dot_products_fixed<3>();
    case 4: return dot_products_fixed<4>();
    case 5: return dot_products_fixed<5>();
    case 6: return dot_products_fixed<6>();
    case 7: return dot_products_fixed<7>();
    default: return dot_products_fixed<8>();
  }
}

// ---------------------------------------------------------------------------------------
// The blocks a head's loops call, bound once per call to the portable or the AVX-512 ones.

template <typename S>
struct Blocks {
  void (*scores)(const S*, const S*, int64_t, int64_t, S*);
  void (*add_ab)(const S*, const S*, int64_t, S*);
  void (*add_atb)(const S*, const S*, int64_t, S*);
  void (*online_softmax)(S*, bool, S*, S*, S*, int64_t);
  void (*probabilities)(S*, bool, const S*);
  void (*score_grads)(const S*, const S*, S*);
};

template <typename S>
Blocks<S> generic_blocks() {
  return {scores_generic<S>,         add_ab_generic<S>,        add_atb_generic<S>,
          online_softmax_generic<S>, probabilities_generic<S>, score_grads_generic<S>};
}

// The (kB x D) products for D = 16 ND, behind the portable signature (D is implied).
template <int ND, bool transposed>
void add_products_fixed(const float* p, const float* b, int64_t, float* c) {
  add_products_avx512<ND, transposed>(p, b, c);
}

template <int ND>
Blocks<float> avx512_blocks() {
  return {scores_avx512,         add_products_fixed<ND, false>, add_products_fixed<ND, true>,
          online_softmax_avx512, probabilities_avx512,          score_grads_avx512};
}

bool avx512_fits(int64_t D) { return D % 16 == 0 && D > 0 && D / 16 <= kMaxVectors; }
bool avx2_fits(int64_t D) { return D % 16 == 0 && D > 0 && D <= 64; }

template <int ND8, bool transposed>
void add_products_fixed_avx2(const float* p, const float* b, int64_t, float* c) {
  add_products_avx2<ND8, transposed>(p, b, c);
}

template <int ND8>
Blocks<float> avx2_blocks() {
  return {scores_avx2,         add_products_fixed_avx2<ND8, false>, add_products_fixed_avx2<ND8, true>,
          online_softmax_avx2, probabilities_avx2,                  score_grads_avx2};
}

template <typename S>
Blocks<S> blocks_for(int64_t) {
  return generic_blocks<S>();
}

template <>
Blocks<float> blocks_for<float>(int64_t D) {
  if (uses_avx2(D)) {
    switch (D / 16) {
      case 1: return avx2_blocks<2>();
      case 2: return avx2_blocks<4>();
      case 3: return avx2_blocks<6>();
      default: return avx2_blocks<8>();
    }
  }
  if (!uses_avx512(D)) return generic_blocks<float>();
  switch (D / 16) {
    case 1: return avx512_blocks<1>();
    case 2: return avx512_blocks<2>();
    case 3: return avx512_blocks<3>();
    case 4: return avx512_blocks<4>();
    case 5: return avx512_blocks<5>();
    case 6: return avx512_blocks<6>();
    case 7: return avx512_blocks<7>();
    default: return avx512_blocks<8>();
  }
}

// Query blocks in an order whose every stretch holds about as much causal work as any other
// (0, n-1, 1, n-2, ...): at::parallel_for gives each thread one contiguous range.
int64_t zigzag(int64_t i, int64_t n) { return i % 2 == 0 ? i / 2 : n - 1 - i / 2; }

}  // namespace

bool uses_avx512(int64_t D) { return cpu::active_isa() >= cpu::Isa::Avx512 && avx512_fits(D); }
bool uses_avx2(int64_t D) { return cpu::active_isa() == cpu::Isa::Avx2 && avx2_fits(D); }

namespace {

// The forward's loop, shared by every arithmetic: at::parallel_for over (head, query block),
// the online-softmax state (running max m, sum l, weighted sums o) per query block, and the
// normalization at the end. make_step() is called once per worker and returns
// step(h, qb, kb, m, l, o), which folds key block kb into the state of query block qb of head h
// using scratch of its own.
template <typename S, typename MakeStep>
void forward_loop(const Dims& dims, S* out, S* lse, MakeStep make_step) {
  const int64_t T = dims.T, D = dims.D, nb = T / kB;
  at::parallel_for(0, dims.heads * nb, 1, [&](int64_t begin, int64_t end) {
    auto step = make_step();
    std::vector<S> o(static_cast<size_t>(kB * D)), m(static_cast<size_t>(kB)), l(static_cast<size_t>(kB));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t h = item / nb, qb = zigzag(item % nb, nb);
      std::fill(o.begin(), o.end(), S(0));
      std::fill(m.begin(), m.end(), -std::numeric_limits<S>::infinity());
      std::fill(l.begin(), l.end(), S(0));
      for (int64_t kb = 0; kb <= qb; ++kb) step(h, qb, kb, m.data(), l.data(), o.data());
      S* oh = out + (h * T + qb * kB) * D;
      for (int64_t i = 0; i < kB; ++i) {
        const S inv = S(1) / l[size_t(i)];
        for (int64_t d = 0; d < D; ++d) oh[i * D + d] = o[size_t(i * D + d)] * inv;
        lse[h * T + qb * kB + i] = m[size_t(i)] + std::log(l[size_t(i)]);
      }
    }
  });
}

// The backward's loop, shared by every arithmetic. A head's key blocks write only their own
// rows of dk and dv, but every query row of dq. With fewer heads than threads each head's key
// blocks are split over `groups` workers, each with its own dq (summed at the end), so the
// result never depends on the schedule. make_step() is called once per worker and returns
// step(h, qb, kb, dq_rows, dk_acc, dv_acc), which adds query block qb's share of key block kb's
// gradients to dk_acc and dv_acc and key block kb's share of qb's to dq_rows. dk is stored as
// dk_scale * dk_acc.
template <typename S, typename MakeStep>
void backward_loop(const Dims& dims, S dk_scale, S* dq, S* dk, S* dv, MakeStep make_step) {
  const int64_t heads = dims.heads, T = dims.T, D = dims.D, nb = T / kB, HTD = heads * T * D;
  const int64_t groups = std::min<int64_t>(nb, std::max<int64_t>(1, (at::get_num_threads() + heads - 1) / heads));
  std::vector<S> partial(size_t(groups > 1 ? groups * HTD : 0));
  std::fill(dq, dq + HTD, S(0));
  at::parallel_for(0, heads * groups, 1, [&](int64_t begin, int64_t end) {
    auto step = make_step();
    std::vector<S> dk_acc(static_cast<size_t>(kB * D)), dv_acc(static_cast<size_t>(kB * D));
    for (int64_t item = begin; item < end; ++item) {
      const int64_t h = item / groups, g = item % groups;
      const int64_t off = h * T * D;  // this head's (T x D) values
      S* dqh = groups > 1 ? partial.data() + g * HTD + off : dq + off;
      for (int64_t kb = g; kb < nb; kb += groups) {
        std::fill(dk_acc.begin(), dk_acc.end(), S(0));
        std::fill(dv_acc.begin(), dv_acc.end(), S(0));
        for (int64_t qb = kb; qb < nb; ++qb) step(h, qb, kb, dqh + qb * kB * D, dk_acc.data(), dv_acc.data());
        S* dkb = dk + off + kb * kB * D;
        for (int64_t i = 0; i < kB * D; ++i) dkb[i] = dk_scale * dk_acc[size_t(i)];
        std::copy(dv_acc.begin(), dv_acc.end(), dv + off + kb * kB * D);
      }
    }
  });
  if (groups > 1) {
    at::parallel_for(0, HTD, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t i = begin; i < end; ++i) dq[i] += partial[size_t(g * HTD + i)];
    });
  }
}

}  // namespace

template <typename S>
void forward(const Dims& dims, const S* q, const S* kt, const S* v, S* out, S* lse) {
  const int64_t T = dims.T, D = dims.D;
  const Blocks<S> blk = blocks_for<S>(D);
  forward_loop(dims, out, lse, [&] {
    return [&, s = std::vector<S>(static_cast<size_t>(kB * kB))](int64_t h, int64_t qb, int64_t kb, S* m, S* l,
                                                                   S* o) mutable {
      blk.scores(q + (h * T + qb * kB) * D, kt + h * D * T + kb * kB, T, D, s.data());
      blk.online_softmax(s.data(), kb == qb, m, l, o, D);
      blk.add_ab(s.data(), v + (h * T + kb * kB) * D, D, o);
    };
  });
}

template <typename S>
void backward(const Dims& dims, const S* q, const S* k, const S* kt, const S* vt, const S* dout, const S* lse,
              const S* delta, S* dq, S* dk, S* dv) {
  const int64_t T = dims.T, D = dims.D;
  const Blocks<S> blk = blocks_for<S>(D);
  backward_loop(dims, S(1), dq, dk, dv, [&] {
    return [&, p = std::vector<S>(static_cast<size_t>(kB * kB)), ds = std::vector<S>(static_cast<size_t>(kB * kB))](
               int64_t h, int64_t qb, int64_t kb, S* dq_rows, S* dk_acc, S* dv_acc) mutable {
      const int64_t rows = (h * T + qb * kB) * D;  // this query block's (kB x D) rows
      blk.scores(q + rows, kt + h * D * T + kb * kB, T, D, p.data());
      blk.probabilities(p.data(), qb == kb, lse + h * T + qb * kB);
      blk.scores(dout + rows, vt + h * D * T + kb * kB, T, D, ds.data());
      blk.add_atb(p.data(), dout + rows, D, dv_acc);  // dv += p^T dout
      blk.score_grads(p.data(), delta + h * T + qb * kB, ds.data());
      blk.add_atb(ds.data(), q + rows, D, dk_acc);                          // dk += ds^T q
      blk.add_ab(ds.data(), k + (h * T + kb * kB) * D, D, dq_rows);          // dq += ds k
    };
  });
}

bool uses_bf16_dot(int64_t D) { return cpu::active_isa() >= cpu::Isa::Avx512Bf16 && avx512_fits(D); }

void forward_bf16(const Dims& dims, float scale, const Bf16Operands& in, float* out, float* lse) {
  const int64_t T = dims.T, D = dims.D;
  const DotProducts dot = dot_products(D);
  forward_loop(dims, out, lse, [&] {
    return [&, s = std::vector<float>(static_cast<size_t>(kB * kB)),
            s16 = std::vector<uint16_t>(static_cast<size_t>(kB * kB))](int64_t h, int64_t qb, int64_t kb, float* m,
                                                                       float* l, float* o) mutable {
      scores_dot(in.q + (h * T + qb * kB) * D, in.k_features + h * D * T + kb * kB * 2, T, D, scale, s.data());
      online_softmax_avx512(s.data(), kb == qb, m, l, o, D);
      to_bf16_rows(s.data(), s16.data());
      dot.add_ab(s16.data(), in.v_positions + (h * T + kb * kB) * D, o);
    };
  });
}

void backward_bf16(const Dims& dims, float scale, const Bf16Operands& in, const float* lse, const float* delta,
                   float* dq, float* dk, float* dv) {
  const int64_t T = dims.T, D = dims.D;
  const DotProducts dot = dot_products(D);
  // dk += ds^T q with q unscaled: the loop stores scale * dk_acc.
  backward_loop(dims, scale, dq, dk, dv, [&] {
    return [&, p = std::vector<float>(static_cast<size_t>(kB * kB)),
            ds = std::vector<float>(static_cast<size_t>(kB * kB)),
            b16 = std::vector<uint16_t>(static_cast<size_t>(kB * kB))](int64_t h, int64_t qb, int64_t kb,
                                                                       float* dq_rows, float* dk_acc,
                                                                       float* dv_acc) mutable {
      const int64_t off = h * T * D;          // this head's (T x D) values in every layout
      const int64_t rows = off + qb * kB * D;  // the query block, in rows and in position pairs
      scores_dot(in.q + rows, in.k_features + off + kb * kB * 2, T, D, scale, p.data());
      probabilities_avx512(p.data(), qb == kb, lse + h * T + qb * kB);
      scores_dot(in.dout + rows, in.v_features + off + kb * kB * 2, T, D, 1.0f, ds.data());
      to_bf16_row_pairs(p.data(), b16.data());
      dot.add_atb(b16.data(), in.dout_positions + rows, dv_acc);  // dv += p^T dout
      score_grads_avx512(p.data(), delta + h * T + qb * kB, ds.data());
      to_bf16_row_pairs(ds.data(), b16.data());
      dot.add_atb(b16.data(), in.q_positions + rows, dk_acc);  // dk += ds^T q
      to_bf16_rows(ds.data(), b16.data());
      dot.add_ab(b16.data(), in.k_positions + off + kb * kB * D, dq_rows);  // dq += ds k
    };
  });
}

template void forward<float>(const Dims&, const float*, const float*, const float*, float*, float*);
template void forward<double>(const Dims&, const double*, const double*, const double*, double*, double*);
template void backward<float>(const Dims&, const float*, const float*, const float*, const float*, const float*,
                              const float*, const float*, float*, float*, float*);
template void backward<double>(const Dims&, const double*, const double*, const double*, const double*,
                               const double*, const double*, const double*, double*, double*, double*);

}  // namespace iflame::flash
