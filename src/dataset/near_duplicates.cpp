#include "dataset/near_duplicates.h"

#include <algorithm>
#include <limits>

#include "mesh/chamfer.h"
#include "util/error.h"

namespace iflame {

double sampling_floor(const PointCloud& a, const PointCloud& b) { return chamfer_distance(a, b); }

std::vector<ClosePair> close_pairs(const std::vector<PointCloud>& clouds, const std::vector<double>& floors,
                                   const NearDuplicateOptions& options) {
  if (!(options.max_excess > 0)) throw Error("near-duplicate threshold must be positive");
  if (!(options.relative >= 0)) throw Error("near-duplicate relative tolerance must be 0 or positive");
  if (!floors.empty() && floors.size() != clouds.size()) throw Error("close_pairs: one floor per cloud, or none");
  auto floor_of = [&](size_t i) { return floors.empty() ? 0.0 : floors[i]; };
  const size_t n = clouds.size(), block = std::max<size_t>(options.block, 1);
  ChamferOptions chamfer;
  chamfer.threads = options.threads;
  std::vector<ClosePair> pairs;
  // Row block [b, e) against the clouds [b, n): each unordered pair once, block x n memory.
  for (size_t b = 0; b < n; b += block) {
    const size_t e = std::min(n, b + block);
    const std::vector<PointCloud> rows(clouds.begin() + std::ptrdiff_t(b), clouds.begin() + std::ptrdiff_t(e));
    const std::vector<PointCloud> cols(clouds.begin() + std::ptrdiff_t(b), clouds.end());
    const DistanceMatrix d = pairwise_chamfer(rows, cols, chamfer);
    for (size_t r = 0; r < rows.size(); ++r) {
      for (size_t c = r + 1; c < cols.size(); ++c) {
        const double floor = 0.5 * (floor_of(b + r) + floor_of(b + c)), excess = d.at(r, c) - floor;
        if (excess < std::max(options.max_excess, options.relative * floor)) {
          pairs.push_back({b + r, b + c, d.at(r, c), excess});
        }
      }
    }
  }
  return pairs;
}

std::vector<NearDuplicate> greedy_near_duplicates(size_t count, const std::vector<size_t>& order,
                                                  const std::vector<ClosePair>& pairs) {
  if (order.size() != count) throw Error("greedy_near_duplicates: the order must list every mesh once");
  std::vector<size_t> rank(count, count);
  for (size_t k = 0; k < count; ++k) {
    if (order[k] >= count || rank[order[k]] != count) throw Error("greedy_near_duplicates: order is not a permutation");
    rank[order[k]] = k;
  }
  std::vector<std::vector<const ClosePair*>> neighbours(count);
  for (const ClosePair& p : pairs) {
    if (p.i >= count || p.j >= count) throw Error("greedy_near_duplicates: a pair names a mesh out of range");
    neighbours[p.i].push_back(&p);
    neighbours[p.j].push_back(&p);
  }
  std::vector<bool> kept(count, false);
  std::vector<NearDuplicate> removed;
  for (size_t index : order) {
    NearDuplicate best{index, count, 0, std::numeric_limits<double>::infinity()};
    for (const ClosePair* p : neighbours[index]) {
      const size_t other = p->i == index ? p->j : p->i;
      if (kept[other] && p->excess < best.excess) best = {index, other, p->distance, p->excess};
    }
    if (best.kept == count) {
      kept[index] = true;
    } else {
      removed.push_back(best);
    }
  }
  return removed;
}

}  // namespace iflame
