// The mesh sets an evaluation compares: a folder of mesh files or one split of a prepared
// dataset, loaded without ever stopping on a bad file, then sampled to point clouds.
#pragma once
#include <string>
#include <vector>

#include "dataset/format.h"
#include "eval/mesh_stats.h"
#include "mesh/mesh.h"
#include "mesh/sampling.h"

namespace iflame::eval {

// One input: its name (path relative to the folder, or the dataset's mesh name) and either a
// mesh or the reason there is none.
struct EvalItem {
  std::string name;
  bool loaded = false;
  Mesh mesh;
  std::string error;  // when !loaded
};

// Every file under DIR (recursively) that some reader handles, sorted by path. Throws
// iflame::Error when DIR is not a readable folder.
std::vector<std::string> list_mesh_files(const std::string& dir);

// Loads files in parallel (`threads` <= 0: every core). Formats that go to assimp are read in
// crash-isolated reader processes (dataset/isolated_load.h). A file that cannot be read, or
// whose mesh fails validate_mesh, becomes an item with an error; nothing throws for bad files.
std::vector<EvalItem> load_mesh_files(const std::vector<std::string>& paths, const std::string& root, int threads = 0);

// Which geometry of a dataset mesh to use: its canonical token rows decoded (the quantized
// mesh the model learns to produce) or the stored float geometry (before quantization).
enum class DatasetGeometry { kTokens, kFloat };

// Which `limit` of more inputs to take: the first in path (file) order, or a seeded random
// subset (kept in path order), so that a set of equal size can be drawn from a larger one.
struct Subset {
  size_t limit = 0;  // 0: all
  bool random = false;
  uint64_t seed = 0;
};
// The positions [0, count) the subset keeps, ascending.
std::vector<size_t> subset_positions(size_t count, const Subset& subset);

// The meshes of one split of a prepared dataset, in file order, the subset of them.
std::vector<EvalItem> load_dataset_split(const DatasetReader& data, Split split, const Subset& subset,
                                         DatasetGeometry geometry = DatasetGeometry::kTokens);

// True when PATH names a prepared dataset (.ifds) rather than a folder of meshes.
bool is_dataset_path(const std::string& path);

// Point clouds for the usable meshes of a set (loaded, with surface area), normalized for
// evaluation and sampled with item_seed(seed, stream, index-in-items). `names` says which item
// each cloud came from; `stats` covers every item (failures included); `skipped` lists
// "name: reason" for loaded meshes that could not be sampled.
struct CloudSet {
  std::vector<PointCloud> clouds;
  std::vector<std::string> names;
  std::vector<std::string> skipped;
  SetStats stats;
};
CloudSet sample_set(const std::vector<EvalItem>& items, size_t points, uint64_t seed, uint64_t stream, int threads = 0);

}  // namespace iflame::eval
