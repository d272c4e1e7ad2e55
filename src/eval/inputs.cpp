#include "eval/inputs.h"

#include <algorithm>
#include <filesystem>
#include <new>
#include <random>

#include "dataset/isolated_load.h"
#include "mesh/load.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/parallel.h"

namespace iflame::eval {

namespace fs = std::filesystem;

std::vector<std::string> list_mesh_files(const std::string& dir) {
  std::string error;
  std::vector<std::string> found = find_mesh_files(dir, &error);
  if (!error.empty()) throw Error(dir, error);  // a score over part of a folder would mislead
  return found;
}

std::vector<EvalItem> load_mesh_files(const std::vector<std::string>& paths, const std::string& root, int threads) {
  std::vector<EvalItem> items(paths.size());
  IsolatedReaderPool readers;
  parallel_for(paths.size(), threads, [&](size_t i) {
    EvalItem& item = items[i];
    std::error_code ec;
    const fs::path rel = root.empty() ? fs::path(paths[i]) : fs::relative(paths[i], root, ec);
    item.name = ec || rel.empty() ? paths[i] : rel.generic_string();
    try {
      item.mesh = is_assimp_path(paths[i]) ? readers.load(paths[i]) : load_mesh(paths[i]);
      validate_mesh(item.mesh, paths[i]);
      item.loaded = true;
    } catch (const Error& e) {
      item.error = e.what();
    } catch (const std::bad_alloc&) {
      item.error = paths[i] + ": out of memory while reading";
    } catch (const std::exception& e) {
      item.error = paths[i] + ": " + e.what();
    }
    if (!item.loaded) item.mesh = Mesh{};
  });
  return items;
}

std::vector<size_t> subset_positions(size_t count, const Subset& subset) {
  std::vector<size_t> pos(count);
  for (size_t i = 0; i < count; ++i) pos[i] = i;
  if (subset.limit == 0 || count <= subset.limit) return pos;
  if (subset.random) {  // a partial Fisher-Yates shuffle with our own seeded generator
    std::mt19937_64 rng(subset.seed);
    for (size_t i = 0; i < subset.limit; ++i) std::swap(pos[i], pos[i + size_t(rng() % (count - i))]);
  }
  pos.resize(subset.limit);
  std::sort(pos.begin(), pos.end());
  return pos;
}

std::vector<EvalItem> load_dataset_split(const DatasetReader& data, Split split, const Subset& subset,
                                         DatasetGeometry geometry) {
  const std::vector<size_t> all = data.indices(split);
  std::vector<size_t> idx;
  for (size_t p : subset_positions(all.size(), subset)) idx.push_back(all[p]);
  const TokenizerConfig tk = data.tokenizer_config();
  std::vector<EvalItem> items(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    const DatasetMesh m = data[idx[k]];
    EvalItem& item = items[k];
    item.name = std::string(m.name);
    try {
      item.mesh = geometry == DatasetGeometry::kTokens ? decode_tokens(m.sequence(tk), tk) : m.to_mesh();
      validate_mesh(item.mesh, data.path() + ": " + item.name);
      item.loaded = true;
    } catch (const Error& e) {
      item.error = e.what();
      item.mesh = Mesh{};
    }
  }
  return items;
}

bool is_dataset_path(const std::string& path) { return lower_extension(path) == ".ifds"; }

CloudSet sample_set(const std::vector<EvalItem>& items, size_t points, uint64_t seed, uint64_t stream, int threads) {
  std::vector<PointCloud> clouds(items.size());
  std::vector<std::string> reasons(items.size());
  std::vector<MeshStats> stats(items.size());
  parallel_for(items.size(), threads, [&](size_t i) {
    if (!items[i].loaded) return;
    stats[i] = mesh_stats(items[i].mesh);
    if (!stats[i].usable()) {
      reasons[i] = "no surface area (every face is degenerate)";
      return;
    }
    try {
      clouds[i] = sample_normalized(items[i].mesh, points, item_seed(seed, stream, i));
    } catch (const Error& e) {
      reasons[i] = e.what();
      clouds[i].clear();
    }
  });
  CloudSet out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].loaded) {
      out.stats.add_failure();
      continue;
    }
    out.stats.add(stats[i]);
    if (!clouds[i].empty()) {
      out.clouds.push_back(std::move(clouds[i]));
      out.names.push_back(items[i].name);
    } else {
      if (stats[i].usable()) --out.stats.usable;  // sampling failed after all
      out.skipped.push_back(items[i].name + ": " + reasons[i]);
    }
  }
  return out;
}

}  // namespace iflame::eval
