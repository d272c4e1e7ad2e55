#include "mesh/chamfer.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>

#include "util/error.h"
#include "util/parallel.h"
#include "util/progress.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IFLAME_X86 1
#endif

namespace iflame {

namespace {

// Padding points: coordinates 0 and |p|^2 = kFar, so they are never anyone's nearest point
// and (kFar + kFar stays finite) never produce NaN or Inf.
constexpr float kFar = 1e30f;
constexpr size_t kPad = 16;  // points per cloud are padded to a multiple of this (one AVX-512 vector)
constexpr size_t kAlign = 64;

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], FreeDeleter>;

AlignedFloats aligned_floats(size_t n) {
  const size_t bytes = std::max<size_t>((n * sizeof(float) + kAlign - 1) / kAlign * kAlign, kAlign);
  float* p = static_cast<float*>(std::aligned_alloc(kAlign, bytes));
  if (!p) throw std::bad_alloc();
  return AlignedFloats(p);
}

// Every cloud as four float blocks of `padded` values: x, y, z, |p|^2, 64-byte aligned.
class PackedClouds {
 public:
  explicit PackedClouds(const std::vector<PointCloud>& clouds) {
    size_t total = 0;
    for (size_t c = 0; c < clouds.size(); ++c) {
      if (clouds[c].empty()) throw Error("point cloud " + std::to_string(c) + " is empty; the Chamfer distance needs points");
      count_.push_back(clouds[c].size());
      padded_.push_back((clouds[c].size() + kPad - 1) / kPad * kPad);
      offset_.push_back(total);
      total += 4 * padded_.back();
    }
    data_ = aligned_floats(total);
    for (size_t c = 0; c < clouds.size(); ++c) {
      float* x = data_.get() + offset_[c];
      const size_t n = padded_[c];
      for (size_t i = 0; i < n; ++i) {
        if (i < count_[c]) {
          const Point3f& p = clouds[c][i];
          x[i] = p[0];
          x[n + i] = p[1];
          x[2 * n + i] = p[2];
          x[3 * n + i] = p[0] * p[0] + p[1] * p[1] + p[2] * p[2];
        } else {
          x[i] = x[n + i] = x[2 * n + i] = 0.0f;
          x[3 * n + i] = kFar;
        }
      }
    }
  }
  size_t size() const { return count_.size(); }
  const float* cloud(size_t c) const { return data_.get() + offset_[c]; }
  size_t count(size_t c) const { return count_[c]; }
  size_t padded(size_t c) const { return padded_[c]; }
  size_t max_padded() const { return padded_.empty() ? 0 : *std::max_element(padded_.begin(), padded_.end()); }

 private:
  AlignedFloats data_;
  std::vector<size_t> offset_, count_, padded_;
};

// A kernel fills rowmin[i] = min_j d(a_i, b_j) for i < na and colmin[j] = min_i d(a_i, b_j) for
// j < nb, with d = |a|^2 + |b|^2 - 2 a.b. na and nb are padded sizes (multiples of kPad); a and b
// point at packed clouds; rowmin and colmin are 64-byte aligned.
using PairKernel = void (*)(const float* a, size_t na, const float* b, size_t nb, float* rowmin, float* colmin);

void pair_generic(const float* a, size_t na, const float* b, size_t nb, float* rowmin, float* colmin) {
  const float *ax = a, *ay = a + na, *az = a + 2 * na, *an = a + 3 * na;
  const float *bx = b, *by = b + nb, *bz = b + 2 * nb, *bn = b + 3 * nb;
  std::fill(colmin, colmin + nb, kFar);
  for (size_t i = 0; i < na; ++i) {
    const float x = -2.0f * ax[i], y = -2.0f * ay[i], z = -2.0f * az[i], n = an[i];
    float r = kFar;
    for (size_t j = 0; j < nb; ++j) {
      const float d = x * bx[j] + (y * by[j] + (z * bz[j] + (bn[j] + n)));
      r = std::min(r, d);
      colmin[j] = std::min(colmin[j], d);
    }
    rowmin[i] = r;
  }
}

#ifdef IFLAME_X86

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_ps(), which -Wmaybe-uninitialized
// misreports (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// 4 points of A (broadcast, 16 registers) against 16 points of B per step.
__attribute__((target("avx512f"))) void pair_avx512(const float* a, size_t na, const float* b, size_t nb,
                                                     float* rowmin, float* colmin) {
  const float *ax = a, *ay = a + na, *az = a + 2 * na, *an = a + 3 * na;
  const float *bx = b, *by = b + nb, *bz = b + 2 * nb, *bn = b + 3 * nb;
  const __m512 far = _mm512_set1_ps(kFar);
  for (size_t j = 0; j < nb; j += 16) _mm512_store_ps(colmin + j, far);
  for (size_t i = 0; i < na; i += 4) {
    const __m512 x0 = _mm512_set1_ps(-2.0f * ax[i]), y0 = _mm512_set1_ps(-2.0f * ay[i]),
                 z0 = _mm512_set1_ps(-2.0f * az[i]), n0 = _mm512_set1_ps(an[i]);
    const __m512 x1 = _mm512_set1_ps(-2.0f * ax[i + 1]), y1 = _mm512_set1_ps(-2.0f * ay[i + 1]),
                 z1 = _mm512_set1_ps(-2.0f * az[i + 1]), n1 = _mm512_set1_ps(an[i + 1]);
    const __m512 x2 = _mm512_set1_ps(-2.0f * ax[i + 2]), y2 = _mm512_set1_ps(-2.0f * ay[i + 2]),
                 z2 = _mm512_set1_ps(-2.0f * az[i + 2]), n2 = _mm512_set1_ps(an[i + 2]);
    const __m512 x3 = _mm512_set1_ps(-2.0f * ax[i + 3]), y3 = _mm512_set1_ps(-2.0f * ay[i + 3]),
                 z3 = _mm512_set1_ps(-2.0f * az[i + 3]), n3 = _mm512_set1_ps(an[i + 3]);
    __m512 r0 = far, r1 = far, r2 = far, r3 = far;
    for (size_t j = 0; j < nb; j += 16) {
      const __m512 vx = _mm512_load_ps(bx + j), vy = _mm512_load_ps(by + j), vz = _mm512_load_ps(bz + j),
                   vn = _mm512_load_ps(bn + j);
      const __m512 d0 = _mm512_fmadd_ps(x0, vx, _mm512_fmadd_ps(y0, vy, _mm512_fmadd_ps(z0, vz, _mm512_add_ps(vn, n0))));
      const __m512 d1 = _mm512_fmadd_ps(x1, vx, _mm512_fmadd_ps(y1, vy, _mm512_fmadd_ps(z1, vz, _mm512_add_ps(vn, n1))));
      const __m512 d2 = _mm512_fmadd_ps(x2, vx, _mm512_fmadd_ps(y2, vy, _mm512_fmadd_ps(z2, vz, _mm512_add_ps(vn, n2))));
      const __m512 d3 = _mm512_fmadd_ps(x3, vx, _mm512_fmadd_ps(y3, vy, _mm512_fmadd_ps(z3, vz, _mm512_add_ps(vn, n3))));
      r0 = _mm512_min_ps(r0, d0);
      r1 = _mm512_min_ps(r1, d1);
      r2 = _mm512_min_ps(r2, d2);
      r3 = _mm512_min_ps(r3, d3);
      const __m512 c = _mm512_min_ps(_mm512_min_ps(d0, d1), _mm512_min_ps(d2, d3));
      _mm512_store_ps(colmin + j, _mm512_min_ps(_mm512_load_ps(colmin + j), c));
    }
    rowmin[i] = _mm512_reduce_min_ps(r0);
    rowmin[i + 1] = _mm512_reduce_min_ps(r1);
    rowmin[i + 2] = _mm512_reduce_min_ps(r2);
    rowmin[i + 3] = _mm512_reduce_min_ps(r3);
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

__attribute__((target("avx2,fma"))) float hmin256(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// 2 points of A against 8 points of B per step (AVX2 has 16 registers).
__attribute__((target("avx2,fma"))) void pair_avx2(const float* a, size_t na, const float* b, size_t nb,
                                                   float* rowmin, float* colmin) {
  const float *ax = a, *ay = a + na, *az = a + 2 * na, *an = a + 3 * na;
  const float *bx = b, *by = b + nb, *bz = b + 2 * nb, *bn = b + 3 * nb;
  const __m256 far = _mm256_set1_ps(kFar);
  for (size_t j = 0; j < nb; j += 8) _mm256_store_ps(colmin + j, far);
  for (size_t i = 0; i < na; i += 2) {
    const __m256 x0 = _mm256_set1_ps(-2.0f * ax[i]), y0 = _mm256_set1_ps(-2.0f * ay[i]),
                 z0 = _mm256_set1_ps(-2.0f * az[i]), n0 = _mm256_set1_ps(an[i]);
    const __m256 x1 = _mm256_set1_ps(-2.0f * ax[i + 1]), y1 = _mm256_set1_ps(-2.0f * ay[i + 1]),
                 z1 = _mm256_set1_ps(-2.0f * az[i + 1]), n1 = _mm256_set1_ps(an[i + 1]);
    __m256 r0 = far, r1 = far;
    for (size_t j = 0; j < nb; j += 8) {
      const __m256 vx = _mm256_load_ps(bx + j), vy = _mm256_load_ps(by + j), vz = _mm256_load_ps(bz + j),
                   vn = _mm256_load_ps(bn + j);
      const __m256 d0 = _mm256_fmadd_ps(x0, vx, _mm256_fmadd_ps(y0, vy, _mm256_fmadd_ps(z0, vz, _mm256_add_ps(vn, n0))));
      const __m256 d1 = _mm256_fmadd_ps(x1, vx, _mm256_fmadd_ps(y1, vy, _mm256_fmadd_ps(z1, vz, _mm256_add_ps(vn, n1))));
      r0 = _mm256_min_ps(r0, d0);
      r1 = _mm256_min_ps(r1, d1);
      _mm256_store_ps(colmin + j, _mm256_min_ps(_mm256_load_ps(colmin + j), _mm256_min_ps(d0, d1)));
    }
    rowmin[i] = hmin256(r0);
    rowmin[i + 1] = hmin256(r1);
  }
}

#endif  // IFLAME_X86

bool cpu_has(const std::string& name) {
#ifdef IFLAME_X86
  __builtin_cpu_init();
  if (name == "avx512") return __builtin_cpu_supports("avx512f");
  if (name == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return name == "generic";
}

PairKernel kernel_by_name(const std::string& name) {
#ifdef IFLAME_X86
  if (name == "avx512") return pair_avx512;
  if (name == "avx2") return pair_avx2;
#endif
  (void)name;
  return pair_generic;
}

// Chamfer distance from one kernel call: the negative values rounding can give for coincident
// points are clamped to 0; means in float64.
double pair_chamfer(PairKernel kernel, const PackedClouds& A, size_t i, const PackedClouds& B, size_t j,
                    float* rowmin, float* colmin) {
  kernel(A.cloud(i), A.padded(i), B.cloud(j), B.padded(j), rowmin, colmin);
  double ra = 0, cb = 0;
  for (size_t k = 0; k < A.count(i); ++k) ra += std::max(rowmin[k], 0.0f);
  for (size_t k = 0; k < B.count(j); ++k) cb += std::max(colmin[k], 0.0f);
  return ra / double(A.count(i)) + cb / double(B.count(j));
}

// Fills matrix entries (i, j) for every i and j in [first(i), |B|). A task is one row and a
// block of columns, so that a set with few clouds still uses every thread.
template <class FirstColumn>
void fill_rows(const PackedClouds& A, const PackedClouds& B, const ChamferOptions& options, FirstColumn first,
               DistanceMatrix& out) {
  const PairKernel kernel = kernel_by_name(resolve_chamfer_kernel(options.kernel));
  const size_t scratch = std::max(A.max_padded(), B.max_padded());
  constexpr size_t kColumns = 32;
  const size_t blocks = (B.size() + kColumns - 1) / kColumns;
  parallel_for(A.size() * blocks, options.threads, [&](size_t task) {
    const size_t i = task / blocks, block = task % blocks;
    const size_t j0 = std::max(first(i), block * kColumns), j1 = std::min(B.size(), (block + 1) * kColumns);
    if (j0 >= j1) return;
    AlignedFloats rowmin = aligned_floats(scratch), colmin = aligned_floats(scratch);
    for (size_t j = j0; j < j1; ++j) out.at(i, j) = pair_chamfer(kernel, A, i, B, j, rowmin.get(), colmin.get());
    if (options.progress) options.progress->add(j1 - j0);
  });
}

}  // namespace

double chamfer_distance(const PointCloud& a, const PointCloud& b) {
  if (a.empty() || b.empty()) throw Error("chamfer_distance: a point cloud is empty");
  auto one_way = [](const PointCloud& from, const PointCloud& to) {
    double sum = 0;
    for (const Point3f& p : from) {
      double best = std::numeric_limits<double>::infinity();
      for (const Point3f& q : to) {
        const double dx = double(p[0]) - q[0], dy = double(p[1]) - q[1], dz = double(p[2]) - q[2];
        best = std::min(best, dx * dx + dy * dy + dz * dz);
      }
      sum += best;
    }
    return sum / double(from.size());
  };
  return one_way(a, b) + one_way(b, a);
}

std::vector<std::string> chamfer_kernels() {
  std::vector<std::string> out;
  for (const char* k : {"avx512", "avx2", "generic"}) {
    if (cpu_has(k)) out.push_back(k);
  }
  return out;
}

std::string resolve_chamfer_kernel(const std::string& name) {
  if (name == "auto") return chamfer_kernels().front();
  if (name != "avx512" && name != "avx2" && name != "generic") {
    throw Error("unknown Chamfer kernel '" + name + "' (expected auto, avx512, avx2 or generic)");
  }
  if (!cpu_has(name)) throw Error("this CPU cannot run the " + name + " Chamfer kernel");
  return name;
}

DistanceMatrix pairwise_chamfer(const std::vector<PointCloud>& a, const std::vector<PointCloud>& b,
                                const ChamferOptions& options) {
  const PackedClouds A(a), B(b);
  DistanceMatrix out{a.size(), b.size(), std::vector<double>(a.size() * b.size(), 0.0)};
  fill_rows(A, B, options, [](size_t) { return size_t(0); }, out);
  return out;
}

DistanceMatrix self_chamfer(const std::vector<PointCloud>& a, const ChamferOptions& options) {
  const PackedClouds A(a);
  DistanceMatrix out{a.size(), a.size(), std::vector<double>(a.size() * a.size(), 0.0)};
  // Row i computes j > i; tasks are handed out in order, so the long rows start first.
  fill_rows(A, A, options, [](size_t i) { return i + 1; }, out);
  for (size_t i = 0; i < a.size(); ++i) {
    for (size_t j = 0; j < i; ++j) out.at(i, j) = out.at(j, i);
  }
  return out;
}

}  // namespace iflame
