// Near-duplicate removal for `iflame prepare`: level-of-detail copies, animation poses, skins
// with slightly moved vertices and the same prop shipped by two games survive the exact dedup
// (identical face rows), and would put copies of training meshes into the validation split.
//
// Each mesh becomes a surface point cloud (mesh/sampling.h, the evaluation normalization) and
// every pair is compared by the Chamfer distance of the generation metrics (mesh/chamfer.h).
// Two samplings of one surface are already apart by a floor that grows with the surface's area
// over the number of points (about 0.008 for a cube at 512 points), so a pair is judged by its
// excess over the pair's floors: d(a, b) - (floor(a) + floor(b)) / 2, where floor(x) is the
// distance between two independent samplings of x. A pair is a near-duplicate when its excess
// is below max(max_excess, relative x mean floor): an absolute tolerance for small surfaces (whose
// floor is near 0) and one that grows with the sampling noise for large ones.
// Then a greedy pass over a given priority order keeps a mesh unless a mesh kept before it lies
// within the threshold: no two kept meshes are near-duplicates, and every removed mesh names the
// kept one it copies. Greedy (not connected components) so that a chain of small differences
// never removes two meshes that are themselves far apart.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "mesh/sampling.h"

namespace iflame {

struct NearDuplicateOptions {
  double max_excess = 0;  // absolute tolerance on the excess (see above); must be > 0
  double relative = 0;    // tolerance as a share of the pair's mean floor
  int threads = 0;         // <= 0: every core
  size_t block = 256;      // clouds per row block (memory: block x N distances)
};

// A mesh the greedy pass removed: `index` copies the kept mesh `kept` (their pair's numbers).
struct NearDuplicate {
  size_t index = 0, kept = 0;
  double distance = 0, excess = 0;
};

// Every unordered pair (i < j) whose excess is below the tolerance (see above), sorted. `floors` holds
// each cloud's floor (sampling_floor), or is empty for plain distances (all floors 0).
struct ClosePair {
  size_t i = 0, j = 0;
  double distance = 0;  // the raw Chamfer distance
  double excess = 0;    // distance minus the mean of the two floors
};
std::vector<ClosePair> close_pairs(const std::vector<PointCloud>& clouds, const std::vector<double>& floors,
                                   const NearDuplicateOptions& options);

// The Chamfer distance between two independent samplings of one surface: `a` and `b`.
double sampling_floor(const PointCloud& a, const PointCloud& b);

// The greedy pass. `order` is a permutation of [0, count): earlier meshes are preferred. Returns
// the removed meshes in `order`'s order; each names its closest (by excess) kept mesh that came
// earlier.
std::vector<NearDuplicate> greedy_near_duplicates(size_t count, const std::vector<size_t>& order,
                                                  const std::vector<ClosePair>& pairs);

}  // namespace iflame
