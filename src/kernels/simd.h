// SIMD pieces shared by the hand-written CPU kernels (kernels/decode.cpp,
// kernels/flash_attention.cpp), which choose their instruction set at run time (kernels/cpu_isa.h).
// Functions marked IFLAME_AVX512 (IFLAME_AVX2) are compiled for AVX-512 (AVX2 + FMA) whatever
// the project's -march; helpers they call must carry the same attribute (or a subset) to be
// inlined.
#pragma once
#include <c10/util/BFloat16.h>
#include <immintrin.h>

#include <cstdint>

#define IFLAME_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define IFLAME_AVX2 __attribute__((target("avx2,fma")))
#define IFLAME_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#define IFLAME_INLINE inline __attribute__((always_inline))

// GCC 12's AVX-512 intrinsics start from an undefined vector (_mm512_undefined_ps(), also inside
// _mm512_reduce_*), which -W(maybe-)uninitialized misreports (GCC bug 105593): AVX-512 code sits
// between these two.
#if defined(__GNUC__) && !defined(__clang__)
#define IFLAME_AVX512_WARNINGS_OFF                                \
  _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
      _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define IFLAME_AVX512_WARNINGS_ON _Pragma("GCC diagnostic pop")
#else
#define IFLAME_AVX512_WARNINGS_OFF
#define IFLAME_AVX512_WARNINGS_ON
#endif

namespace iflame::simd {

// A float32 or bfloat16 value as a float (the scalar loops and tails of the kernels).
inline float to_float(float v) { return v; }
inline float to_float(c10::BFloat16 v) { return float(v); }

// exp with Cephes' expf polynomial (about 1 ulp), inputs clamped to +-88.38.
IFLAME_AVX512 IFLAME_INLINE __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-88.3762626647949f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// exp with Cephes' expf polynomial; inputs clamped to [-87.3, 88] so that 2^n stays a normal
// float built from its exponent bits.
IFLAME_AVX2 IFLAME_INLINE __m256 exp256(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// 16 values as floats, from float32 or bfloat16 (as c10::BFloat16 or its bits: a float's upper half).
IFLAME_AVX512 IFLAME_INLINE __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
IFLAME_AVX512 IFLAME_INLINE __m512 load16(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
IFLAME_AVX512 IFLAME_INLINE __m512 load16(const c10::BFloat16* p) { return load16(reinterpret_cast<const uint16_t*>(p)); }

// 16 floats stored as float32, or as bfloat16 rounded to nearest even (NaN stays a NaN), exactly
// as c10::BFloat16(float) rounds.
IFLAME_AVX512 IFLAME_INLINE void store16(float* p, __m512 v) { _mm512_storeu_ps(p, v); }
IFLAME_AVX512 IFLAME_INLINE void store16(c10::BFloat16* p, __m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  rounded = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_set1_epi32(0x7fc0));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(rounded));
}

}  // namespace iflame::simd
