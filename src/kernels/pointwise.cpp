#include "kernels/pointwise.h"

#include <ATen/Parallel.h>

#include <cmath>

#include "kernels/cpu_isa.h"
#include "kernels/simd.h"

namespace iflame::pointwise {

namespace {

IFLAME_AVX512_WARNINGS_OFF

using simd::load16;
using simd::store16;

// Values per parallel task: tens of microseconds of work.
constexpr int64_t kGrain = 1 << 14;

using simd::to_float;
using cpu::avx512;

// One head row of a rotation: out1 = p1 c + p2 s, out2 = p2 c - p1 s, where (p1, p2) are the
// halves of `in` (sign = +1, the forward) or, with sign = -1, out1 = p1 c - p2 s and
// out2 = p2 c + p1 s (the backward: the inverse rotation).
template <class Scalar>
void rotate_row(const Scalar* in, const float* c, const float* s, Scalar* out, int64_t half, float sign,
                int64_t begin = 0) {
  for (int64_t j = begin; j < half; ++j) {
    const float p1 = to_float(in[j]), p2 = to_float(in[half + j]);
    out[j] = Scalar(p1 * c[j] + sign * p2 * s[j]);
    out[half + j] = Scalar(p2 * c[j] - sign * p1 * s[j]);
  }
}

template <class Scalar>
IFLAME_AVX512 void rotate_row_avx512(const Scalar* in, const float* c, const float* s, Scalar* out, int64_t half,
                                     float sign) {
  const __m512 sg = _mm512_set1_ps(sign);
  int64_t j = 0;
  for (; j + 16 <= half; j += 16) {
    const __m512 p1 = load16(in + j), p2 = load16(in + half + j);
    const __m512 cv = _mm512_loadu_ps(c + j), sv = _mm512_mul_ps(sg, _mm512_loadu_ps(s + j));
    store16(out + j, _mm512_fmadd_ps(p2, sv, _mm512_mul_ps(p1, cv)));
    store16(out + half + j, _mm512_fnmadd_ps(p1, sv, _mm512_mul_ps(p2, cv)));
  }
  rotate_row(in, c, s, out, half, sign, j);
}

// Every (b, t, h) row, in the layout pair (B, T, H, D) <-> (B, H, T, D).
template <class Scalar>
void rope_rows(const Scalar* src, bool src_is_bthd, const float* cos, const float* sin, Scalar* dst,
               const RopeDims& d, float sign) {
  const int64_t half = d.D / 2;
  const bool wide = avx512();
  at::parallel_for(0, d.B * d.T, std::max<int64_t>(1, kGrain / (d.H * d.D)), [&](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t b = bt / d.T, t = bt % d.T;
      for (int64_t h = 0; h < d.H; ++h) {
        const int64_t bthd = (bt * d.H + h) * d.D, bhtd = ((b * d.H + h) * d.T + t) * d.D;
        const Scalar* in = src + (src_is_bthd ? bthd : bhtd);
        Scalar* out = dst + (src_is_bthd ? bhtd : bthd);
        if (wide) {
          rotate_row_avx512(in, cos + t * half, sin + t * half, out, half, sign);
        } else {
          rotate_row(in, cos + t * half, sin + t * half, out, half, sign);
        }
      }
    }
  });
}

// silu(a) b and its gradient on float values.
struct Gate {
  float silu, dsilu;  // silu(a), d silu / da
};
inline Gate gate(float a) {
  const float s = 1.0f / (1.0f + std::exp(-a));
  return {a * s, s * (1.0f + a * (1.0f - s))};
}

IFLAME_AVX512 IFLAME_INLINE __m512 sigmoid16(__m512 a) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, simd::exp512(_mm512_sub_ps(_mm512_setzero_ps(), a))));
}

template <class Scalar>
IFLAME_AVX512 int64_t swiglu_forward_avx512(const Scalar* a, const Scalar* b, Scalar* y, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 av = load16(a + i);
    store16(y + i, _mm512_mul_ps(_mm512_mul_ps(av, sigmoid16(av)), load16(b + i)));
  }
  return i;
}

template <class Scalar>
IFLAME_AVX512 int64_t swiglu_backward_avx512(const Scalar* a, const Scalar* b, const Scalar* dy, Scalar* da,
                                             Scalar* db, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 av = load16(a + i), g = load16(dy + i), s = sigmoid16(av);
    const __m512 dsilu = _mm512_mul_ps(s, _mm512_fmadd_ps(av, _mm512_sub_ps(one, s), one));
    store16(da + i, _mm512_mul_ps(_mm512_mul_ps(g, load16(b + i)), dsilu));
    store16(db + i, _mm512_mul_ps(g, _mm512_mul_ps(av, s)));
  }
  return i;
}

}  // namespace

template <class Scalar>
void rope_forward(const Scalar* x, const float* cos, const float* sin, Scalar* y, const RopeDims& dims) {
  rope_rows(x, true, cos, sin, y, dims, 1.0f);
}

template <class Scalar>
void rope_backward(const Scalar* dy, const float* cos, const float* sin, Scalar* dx, const RopeDims& dims) {
  rope_rows(dy, false, cos, sin, dx, dims, -1.0f);
}

template <class Scalar>
void swiglu_forward(const Scalar* a, const Scalar* b, Scalar* y, int64_t n) {
  const bool wide = avx512();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin + (wide ? swiglu_forward_avx512(a + begin, b + begin, y + begin, end - begin) : 0);
    for (; i < end; ++i) y[i] = Scalar(gate(to_float(a[i])).silu * to_float(b[i]));
  });
}

template <class Scalar>
void swiglu_backward(const Scalar* a, const Scalar* b, const Scalar* dy, Scalar* da, Scalar* db, int64_t n) {
  const bool wide = avx512();
  at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    if (wide) i += swiglu_backward_avx512(a + begin, b + begin, dy + begin, da + begin, db + begin, end - begin);
    for (; i < end; ++i) {
      const Gate g = gate(to_float(a[i]));
      const float d = to_float(dy[i]);
      da[i] = Scalar(d * to_float(b[i]) * g.dsilu);
      db[i] = Scalar(d * g.silu);
    }
  });
}

#define IFLAME_POINTWISE(Scalar)                                                                                  \
  template void rope_forward<Scalar>(const Scalar*, const float*, const float*, Scalar*, const RopeDims&);      \
  template void rope_backward<Scalar>(const Scalar*, const float*, const float*, Scalar*, const RopeDims&);     \
  template void swiglu_forward<Scalar>(const Scalar*, const Scalar*, Scalar*, int64_t);                         \
  template void swiglu_backward<Scalar>(const Scalar*, const Scalar*, const Scalar*, Scalar*, Scalar*, int64_t);
IFLAME_POINTWISE(float)
IFLAME_POINTWISE(c10::BFloat16)
#undef IFLAME_POINTWISE

IFLAME_AVX512_WARNINGS_ON

}  // namespace iflame::pointwise
