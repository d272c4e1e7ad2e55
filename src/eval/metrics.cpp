#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

#include "util/error.h"
#include "util/parallel.h"

namespace iflame::eval {

CoverageMmd coverage_mmd(const DistanceMatrix& rs) {
  if (rs.rows == 0 || rs.cols == 0) throw Error("coverage_mmd: needs at least one reference and one sample");
  CoverageMmd out;
  std::vector<char> covered(rs.rows, 0);
  double smp_sum = 0;
  for (size_t s = 0; s < rs.cols; ++s) {
    size_t best = 0;
    for (size_t r = 1; r < rs.rows; ++r) {
      if (rs.at(r, s) < rs.at(best, s)) best = r;
    }
    covered[best] = 1;
    smp_sum += rs.at(best, s);
  }
  double mmd_sum = 0;
  for (size_t r = 0; r < rs.rows; ++r) {
    double best = std::numeric_limits<double>::infinity();
    for (size_t s = 0; s < rs.cols; ++s) best = std::min(best, rs.at(r, s));
    mmd_sum += best;
  }
  out.coverage = double(std::count(covered.begin(), covered.end(), 1)) / double(rs.rows);
  out.mmd = mmd_sum / double(rs.rows);
  out.mmd_smp = smp_sum / double(rs.cols);
  return out;
}

OneNna one_nna(const DistanceMatrix& rr, const DistanceMatrix& rs, const DistanceMatrix& ss) {
  const size_t nr = rr.rows, ns = ss.rows;
  if (rr.cols != nr || ss.cols != ns || rs.rows != nr || rs.cols != ns) {
    throw Error("one_nna: matrix sizes do not fit (rr " + std::to_string(rr.rows) + "x" + std::to_string(rr.cols) +
                ", rs " + std::to_string(rs.rows) + "x" + std::to_string(rs.cols) + ", ss " + std::to_string(ss.rows) +
                "x" + std::to_string(ss.cols) + ")");
  }
  if (nr + ns < 2) throw Error("one_nna: needs at least two clouds in all");
  // Distance between items a and b of the joint order (references, then samples).
  auto dist = [&](size_t a, size_t b) {
    if (a < nr && b < nr) return rr.at(a, b);
    if (a < nr) return rs.at(a, b - nr);
    if (b < nr) return rs.at(b, a - nr);
    return ss.at(a - nr, b - nr);
  };
  size_t right_refs = 0, right_samples = 0;
  for (size_t a = 0; a < nr + ns; ++a) {
    size_t best = a == 0 ? 1 : 0;
    for (size_t b = 0; b < nr + ns; ++b) {
      if (b != a && dist(a, b) < dist(a, best)) best = b;
    }
    const bool is_ref = a < nr, predicted_ref = best < nr;
    if (is_ref && predicted_ref) ++right_refs;
    if (!is_ref && !predicted_ref) ++right_samples;
  }
  OneNna out;
  out.accuracy = double(right_refs + right_samples) / double(nr + ns);
  out.accuracy_references = nr ? double(right_refs) / double(nr) : 0.0;
  out.accuracy_samples = ns ? double(right_samples) / double(ns) : 0.0;
  return out;
}

namespace {

// The clipped grid in integer coordinates: grid point i sits at (2i - (res - 1)) / (2 (res - 1))
// per axis, so it is kept when sum (2i - (res - 1))^2 <= (res - 1)^2.
struct Grid {
  int res = 0;
  double step = 0;                // 1 / (res - 1)
  std::vector<int32_t> id;        // full-grid index -> kept index, -1 when clipped
  std::vector<Point3f> kept;      // coordinates (float, as PointFlow's float32 grid)
  std::vector<std::array<double, 3>> kept_d;  // the same in float64 for distances
  std::vector<int32_t> shell;     // kept points with a clipped or missing 6-neighbour
  // Per clipped full-grid point: offsets into `candidates` of the kept points that can be the
  // nearest one for any query whose nearest full-grid point it is.
  std::vector<uint32_t> cand_begin, cand_end;
  std::vector<int32_t> candidates;

  size_t full(int i, int j, int k) const { return (size_t(i) * size_t(res) + size_t(j)) * size_t(res) + size_t(k); }
  double coord(int i) const { return double(i) * step - 0.5; }
};

Grid make_grid(int res) {
  if (res < 2 || res > 1024) throw Error("occupancy grid resolution must be between 2 and 1024");
  Grid g;
  g.res = res;
  g.step = 1.0 / double(res - 1);
  const int64_t r2 = int64_t(res - 1) * int64_t(res - 1);
  auto sq = [&](int i) { return int64_t(2 * i - (res - 1)) * int64_t(2 * i - (res - 1)); };
  g.id.assign(size_t(res) * size_t(res) * size_t(res), -1);
  for (int i = 0; i < res; ++i) {
    for (int j = 0; j < res; ++j) {
      for (int k = 0; k < res; ++k) {
        if (sq(i) + sq(j) + sq(k) > r2) continue;
        g.id[g.full(i, j, k)] = int32_t(g.kept.size());
        // PointFlow fills a float32 array with i * spacing - 0.5 computed in float64.
        g.kept.push_back({float(g.coord(i)), float(g.coord(j)), float(g.coord(k))});
        g.kept_d.push_back({double(g.kept.back()[0]), double(g.kept.back()[1]), double(g.kept.back()[2])});
      }
    }
  }
  auto kept_at = [&](int i, int j, int k) {
    return i >= 0 && j >= 0 && k >= 0 && i < res && j < res && k < res && g.id[g.full(i, j, k)] >= 0;
  };
  for (int i = 0; i < res; ++i) {
    for (int j = 0; j < res; ++j) {
      for (int k = 0; k < res; ++k) {
        if (!kept_at(i, j, k)) continue;
        if (!kept_at(i - 1, j, k) || !kept_at(i + 1, j, k) || !kept_at(i, j - 1, k) || !kept_at(i, j + 1, k) ||
            !kept_at(i, j, k - 1) || !kept_at(i, j, k + 1)) {
          g.shell.push_back(g.id[g.full(i, j, k)]);
        }
      }
    }
  }
  // For a query q whose nearest full-grid point c is clipped: the nearest kept point lies on the
  // shell (an interior kept point always has a kept neighbour closer to q), and within
  // D_c + |q - c| <= D_c + sqrt(3)/2 of q, hence within D_c + sqrt(3) of c, where D_c is c's
  // distance to its nearest kept point (in grid steps; integer arithmetic).
  std::vector<std::array<int, 3>> shell_at;
  for (int32_t s : g.shell) {
    const Point3f& p = g.kept[size_t(s)];
    shell_at.push_back({int(std::lround((double(p[0]) + 0.5) / g.step)), int(std::lround((double(p[1]) + 0.5) / g.step)),
                        int(std::lround((double(p[2]) + 0.5) / g.step))});
  }
  g.cand_begin.assign(g.id.size(), 0);
  g.cand_end.assign(g.id.size(), 0);
  std::vector<int64_t> d2(g.shell.size());
  for (int i = 0; i < res; ++i) {
    for (int j = 0; j < res; ++j) {
      for (int k = 0; k < res; ++k) {
        const size_t c = g.full(i, j, k);
        if (g.id[c] >= 0) continue;
        int64_t best = std::numeric_limits<int64_t>::max();
        for (size_t t = 0; t < shell_at.size(); ++t) {
          const int64_t dx = shell_at[t][0] - i, dy = shell_at[t][1] - j, dz = shell_at[t][2] - k;
          d2[t] = dx * dx + dy * dy + dz * dz;
          best = std::min(best, d2[t]);
        }
        // Slack for the float32 grid coordinates the distances below are measured to.
        const double limit = std::sqrt(double(best)) + std::sqrt(3.0) + 1e-3;
        g.cand_begin[c] = uint32_t(g.candidates.size());
        for (size_t t = 0; t < shell_at.size(); ++t) {
          if (double(d2[t]) <= limit * limit) g.candidates.push_back(g.shell[t]);
        }
        g.cand_end[c] = uint32_t(g.candidates.size());
      }
    }
  }
  return g;
}

// The index of the kept grid point nearest to p (ties: the lowest index).
int32_t nearest_kept(const Grid& g, const Point3f& p) {
  int idx[3];
  bool inside = true;
  for (int a = 0; a < 3; ++a) {
    const double u = (double(p[size_t(a)]) + 0.5) / g.step;
    inside = inside && u >= -0.5 && u <= double(g.res - 1) + 0.5;
    idx[a] = int(std::clamp(std::lround(std::clamp(u, -1.0, double(g.res))), 0L, long(g.res - 1)));
  }
  const size_t c = g.full(idx[0], idx[1], idx[2]);
  if (inside && g.id[c] >= 0) return g.id[c];  // the nearest grid point overall is kept
  auto d2 = [&](int32_t s) {
    const auto& q = g.kept_d[size_t(s)];
    const double dx = double(p[0]) - q[0], dy = double(p[1]) - q[1], dz = double(p[2]) - q[2];
    return dx * dx + dy * dy + dz * dz;
  };
  int32_t best = -1;
  double best_d = std::numeric_limits<double>::infinity();
  auto consider = [&](int32_t s) {
    const double d = d2(s);
    if (d < best_d || (d == best_d && s < best)) {
      best = s;
      best_d = d;
    }
  };
  if (inside) {
    for (uint32_t t = g.cand_begin[c]; t < g.cand_end[c]; ++t) consider(g.candidates[t]);
  } else {
    for (int32_t s : g.shell) consider(s);  // outside the cube: every shell point is a candidate
  }
  return best;
}

// Grids are built once per resolution and shared (read-only) afterwards.
const Grid& cached_grid(int res) {
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<Grid>> grids;
  std::lock_guard<std::mutex> lock(mutex);
  auto& g = grids[res];
  if (!g) g = std::make_unique<Grid>(make_grid(res));
  return *g;
}

}  // namespace

std::vector<Point3f> occupancy_grid(int resolution) { return cached_grid(resolution).kept; }

std::vector<double> occupancy_counts(const std::vector<PointCloud>& clouds, int resolution, int threads) {
  const Grid& g = cached_grid(resolution);
  // Per-cloud histograms merged in cloud order: the result does not depend on threading.
  std::vector<std::vector<uint32_t>> per_cloud(clouds.size());
  parallel_for(clouds.size(), threads, [&](size_t c) {
    std::vector<uint32_t> h(g.kept.size(), 0);
    for (const Point3f& p : clouds[c]) {
      if (!std::isfinite(p[0]) || !std::isfinite(p[1]) || !std::isfinite(p[2])) {
        throw Error("occupancy_counts: cloud " + std::to_string(c) + " has a non-finite point");
      }
      ++h[size_t(nearest_kept(g, p))];
    }
    per_cloud[c] = std::move(h);
  });
  std::vector<double> counts(g.kept.size(), 0.0);
  for (const auto& h : per_cloud) {
    for (size_t i = 0; i < h.size(); ++i) counts[i] += double(h[i]);
  }
  return counts;
}

double jensen_shannon_bits(const std::vector<double>& p, const std::vector<double>& q) {
  if (p.size() != q.size()) throw Error("jensen_shannon_bits: histograms of different sizes");
  double sp = 0, sq = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] < 0 || q[i] < 0 || !std::isfinite(p[i]) || !std::isfinite(q[i])) {
      throw Error("jensen_shannon_bits: negative or non-finite histogram entry");
    }
    sp += p[i];
    sq += q[i];
  }
  if (!(sp > 0) || !(sq > 0)) throw Error("jensen_shannon_bits: an empty histogram");
  auto h = [](double x) { return x > 0 ? -x * std::log2(x) : 0.0; };
  double hp = 0, hq = 0, hm = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double a = p[i] / sp, b = q[i] / sq;
    hp += h(a);
    hq += h(b);
    hm += h((a + b) / 2.0);
  }
  return hm - (hp + hq) / 2.0;
}

double jsd_occupancy(const std::vector<PointCloud>& samples, const std::vector<PointCloud>& references, int resolution,
                     int threads) {
  return jensen_shannon_bits(occupancy_counts(samples, resolution, threads),
                             occupancy_counts(references, resolution, threads));
}

std::vector<Nearest> nearest_clouds(const std::vector<PointCloud>& queries, const std::vector<PointCloud>& pool,
                                    const ChamferOptions& options) {
  if (pool.empty()) throw Error("nearest_clouds: the pool is empty");
  constexpr size_t kBlock = 64;
  std::vector<Nearest> out(queries.size());
  for (size_t b = 0; b < queries.size(); b += kBlock) {
    const size_t e = std::min(queries.size(), b + kBlock);
    const std::vector<PointCloud> block(queries.begin() + std::ptrdiff_t(b), queries.begin() + std::ptrdiff_t(e));
    const DistanceMatrix d = pairwise_chamfer(block, pool, options);
    for (size_t r = 0; r < block.size(); ++r) {
      Nearest best{0, d.at(r, 0)};
      for (size_t c = 1; c < pool.size(); ++c) {
        if (d.at(r, c) < best.distance) best = {c, d.at(r, c)};
      }
      out[b + r] = best;
    }
  }
  return out;
}

size_t generation_metric_pairs(size_t samples, size_t references) {
  auto half = [](size_t n) { return n * (n ? n - 1 : 0) / 2; };
  return samples * references + half(samples) + half(references);
}

GenerationMetrics generation_metrics(const std::vector<PointCloud>& samples, const std::vector<PointCloud>& references,
                                     const ChamferOptions& options, int jsd_resolution) {
  if (samples.empty() || references.empty()) throw Error("generation metrics need at least one sample and one reference");
  GenerationMetrics out;
  out.samples = samples.size();
  out.references = references.size();
  const DistanceMatrix rs = pairwise_chamfer(references, samples, options);
  const DistanceMatrix rr = self_chamfer(references, options);
  const DistanceMatrix ss = self_chamfer(samples, options);
  out.cov_mmd = coverage_mmd(rs);
  out.nna = one_nna(rr, rs, ss);
  out.jsd = jsd_occupancy(samples, references, jsd_resolution, options.threads);
  return out;
}

}  // namespace iflame::eval
