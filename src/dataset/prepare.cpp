#include "dataset/prepare.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "dataset/isolated_load.h"
#include "dataset/near_duplicates.h"
#include "mesh/load.h"
#include "mesh/sampling.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/parallel.h"
#include "util/progress.h"

namespace iflame {
namespace fs = std::filesystem;
using nlohmann::json;

const char* split_by_name(SplitBy by) {
  switch (by) {
    case SplitBy::kDir: return "dir";
    case SplitBy::kFile: return "file";
    case SplitBy::kStemPrefix: return "stem-prefix";
  }
  return "?";
}

SplitBy parse_split_by(const std::string& text) {
  if (text == "dir") return SplitBy::kDir;
  if (text == "file") return SplitBy::kFile;
  if (text == "stem-prefix") return SplitBy::kStemPrefix;
  throw Error("--split-by must be dir, file or stem-prefix, got '" + text + "'");
}

const char* skip_reason_name(SkipReason reason) {
  switch (reason) {
    case SkipReason::kNone: return "kept";
    case SkipReason::kUnreadable: return "unreadable";
    case SkipReason::kZeroSize: return "zero_size";
    case SkipReason::kTooFewFaces: return "too_few_faces";
    case SkipReason::kTooManyFaces: return "too_many_faces";
    case SkipReason::kDuplicate: return "duplicate";
    case SkipReason::kNearDuplicate: return "near_duplicate";
  }
  return "?";
}

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t fmix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

Split split_for_group(const std::string& group, double val_fraction) {
  const double u = double(fmix64(fnv1a64(group)) >> 11) * 0x1.0p-53;  // [0, 1)
  return u < val_fraction ? Split::kVal : Split::kTrain;
}

void rotate_z_up_to_y_up(Mesh& mesh) {
  for (Vec3& v : mesh.vertices) v = {v[0], v[2], -v[1]};
}

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_cut(char c) { return c == '_' || c == '-' || c == ' ' || c == '.' || std::isdigit(static_cast<unsigned char>(c)); }

}  // namespace

std::string stem_prefix(const std::string& stem) {
  size_t n = 0;
  while (n < stem.size() && !is_cut(stem[n])) ++n;
  return lower(n == 0 ? stem : stem.substr(0, n));
}

std::string group_key(const std::string& name, SplitBy by) {
  if (by == SplitBy::kFile) return name;
  const size_t slash = name.rfind('/');
  std::string dir = slash == std::string::npos ? std::string() : name.substr(0, slash);
  std::string stem = slash == std::string::npos ? name : name.substr(slash + 1);
  if (const size_t dot = stem.find('.'); dot != std::string::npos && dot > 0) stem.resize(dot);
  bool flattened = false;
  // Flattened names only count in a flat folder (a file directly inside its root).
  const bool top_level = dir.find('/') == std::string::npos;
  if (const size_t sep = stem.rfind("__"); top_level && sep != std::string::npos && sep > 0) {
    std::string folders = stem.substr(0, sep);
    for (size_t p; (p = folders.find("__")) != std::string::npos;) folders.replace(p, 2, "/");
    dir += (dir.empty() ? "" : "/") + folders;
    stem = stem.substr(sep + 2);
    flattened = true;
  }
  if (by == SplitBy::kDir) {
    // A file directly inside its root ("label/file.obj") is its own group.
    if (top_level && !flattened) return name;
    return dir;
  }
  return dir + "/" + stem_prefix(stem);
}

// ------------------------------------------------------------------------------------------
// Step 1: collect.

namespace {

bool is_list_path(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".txt" || ext == ".lst";
}

bool is_under(const std::string& path, const std::string& dir) {
  if (dir.empty()) return false;
  if (dir == "/") return path.size() > 1 && path[0] == '/';
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

std::string canonical_string(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(p, ec);
  if (ec) c = fs::absolute(p, ec).lexically_normal();
  std::string s = c.generic_string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

struct Found {
  InputFile file;
  std::string key;  // canonical path, to take every file once
};

class Collector {
 public:
  explicit Collector(const std::vector<std::string>& z_up) {
    for (const std::string& d : z_up) {
      std::error_code ec;
      if (!fs::is_directory(d, ec)) throw Error(d, "--z-up needs an existing directory");
      z_up_.push_back(canonical_string(d));
    }
  }

  // Adds one root: a label and its canonical path.
  std::pair<std::string, std::string> root_label(const std::string& canon_root) {
    if (auto it = labels_.find(canon_root); it != labels_.end()) return it->second;
    std::string base = fs::path(canon_root).filename().string();
    if (base.empty()) base = "root";
    std::string label = base;
    for (int k = 2; taken_.count(label); ++k) label = base + "~" + std::to_string(k);
    taken_.insert(label);
    return labels_[canon_root] = {label, base};
  }

  void add(const std::string& path, const std::string& canon_root, const std::string& rel, size_t input) {
    const auto [label, base] = root_label(canon_root);
    Found f;
    f.file.path = path;
    f.file.name = label + "/" + rel;
    const std::string filename = fs::path(rel).filename().string();
    const size_t sep = filename.find("__");
    const bool top_level = rel.find('/') == std::string::npos;  // flattened names live in flat folders
    f.file.source = (top_level && sep != std::string::npos && sep > 0) ? filename.substr(0, sep) : base;
    f.file.input = input;
    f.key = canon_root == "/" ? "/" + rel : canon_root + "/" + rel;
    for (const std::string& z : z_up_) f.file.z_up = f.file.z_up || is_under(f.key, z);
    found_.push_back(std::move(f));
  }

  // Walks a directory; returns the number of mesh files found.
  size_t walk(const std::string& dir, size_t input, std::vector<std::string>& warnings) {
    const std::string canon_root = canonical_string(dir);
    const fs::path root(dir);
    size_t count = 0;
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) {
      warnings.push_back(dir + ": cannot read directory: " + ec.message());
      return 0;
    }
    for (; it != end; it.increment(ec)) {
      if (ec) {
        warnings.push_back(dir + ": stopped walking: " + ec.message());
        break;
      }
      std::error_code fec;
      if (!it->is_regular_file(fec)) continue;
      const std::string p = it->path().string();
      if (!is_mesh_path(p)) continue;
      add(p, canon_root, it->path().lexically_relative(root).generic_string(), input);
      ++count;
    }
    return count;
  }

  std::vector<Found>& found() { return found_; }

 private:
  std::vector<std::string> z_up_;
  std::map<std::string, std::pair<std::string, std::string>> labels_;  // canonical root -> (label, base)
  std::set<std::string> taken_;
  std::vector<Found> found_;
};

// The deepest directory holding all of `paths` (absolute, lexically normal).
fs::path common_directory(const std::vector<fs::path>& paths) {
  fs::path common = paths.front().parent_path();
  for (const fs::path& p : paths) {
    const fs::path dir = p.parent_path();
    fs::path shared;
    auto a = common.begin(), b = dir.begin();
    for (; a != common.end() && b != dir.end() && *a == *b; ++a, ++b) shared /= *a;
    common = shared;
  }
  return common;
}

}  // namespace

CollectedInputs collect_inputs(const std::vector<std::string>& inputs, const std::vector<std::string>& z_up) {
  CollectedInputs out;
  Collector collector(z_up);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string& input = inputs[i];
    std::error_code ec;
    const fs::file_status st = fs::status(input, ec);
    if (ec || !fs::exists(st)) throw Error(input, "no such file or directory");
    json info = {{"input", input}};
    if (fs::is_directory(st)) {
      info["kind"] = "dir";
      info["files"] = collector.walk(input, i, out.warnings);
    } else if (is_list_path(input)) {
      // A list: one path per line (blank lines and '#' comments skipped), relative to the
      // list's folder. Folders are walked; files are taken whatever their extension.
      info["kind"] = "list";
      const fs::path list_dir = fs::absolute(fs::path(input)).parent_path();
      std::istringstream lines(read_file_text(input));
      std::string line;
      std::vector<fs::path> files;
      size_t count = 0;
      while (std::getline(lines, line)) {
        const size_t b = line.find_first_not_of(" \t\r");
        if (b == std::string::npos || line[b] == '#') continue;
        const size_t e = line.find_last_not_of(" \t\r");
        const fs::path p = fs::path(line.substr(b, e - b + 1));
        const fs::path resolved = p.is_absolute() ? p : list_dir / p;
        if (fs::is_directory(resolved, ec)) {
          count += collector.walk(resolved.string(), i, out.warnings);
        } else {
          files.push_back(resolved.lexically_normal());
        }
      }
      if (!files.empty()) {
        // Listed files share one root: the deepest folder holding them all.
        const fs::path root = common_directory(files);
        const std::string canon_root = canonical_string(root);
        for (const fs::path& f : files) collector.add(f.string(), canon_root, f.lexically_relative(root).generic_string(), i);
        count += files.size();
      }
      info["files"] = count;
    } else {
      info["kind"] = "file";
      const fs::path p(input);
      const fs::path abs = fs::absolute(p).lexically_normal();
      collector.add(input, canonical_string(abs.parent_path()), abs.filename().string(), i);
      info["files"] = 1;
    }
    out.inputs.push_back(std::move(info));
  }

  std::vector<Found>& found = collector.found();
  std::stable_sort(found.begin(), found.end(), [](const Found& a, const Found& b) { return a.file.path < b.file.path; });
  std::unordered_set<std::string> seen_keys, seen_names;
  for (Found& f : found) {
    if (!seen_keys.insert(f.key).second) {
      out.warnings.push_back(f.file.path + ": found twice (through overlapping inputs); taken once");
      continue;
    }
    if (!seen_names.insert(f.file.name).second) {  // cannot happen with unique labels; keep names unique anyway
      int k = 2;
      while (!seen_names.insert(f.file.name + "~" + std::to_string(k)).second) ++k;
      f.file.name += "~" + std::to_string(k);
    }
    out.files.push_back(std::move(f.file));
  }
  return out;
}

// ------------------------------------------------------------------------------------------
// Step 2: process one file.

namespace {

struct Processed {
  SkipReason reason = SkipReason::kNone;
  std::string detail;
  uint32_t input_faces = 0;
  uint32_t faces = 0;  // canonical
  std::vector<float> vertices;
  std::vector<int32_t> triangles;
  std::vector<uint16_t> tokens;
  uint64_t hash = 0;
};

// What a dropped duplicate copies: exact (distance unset) or near (Chamfer distance and excess).
struct DuplicateOf {
  std::string name;
  double distance = 0, excess = 0;
};

// The reader's message without the leading "path: " (the report names the file already).
std::string without_path(const Error& e, const std::string& path) {
  std::string what = e.what();
  if (!e.path().empty() && what.rfind(e.path() + ": ", 0) == 0) return what.substr(e.path().size() + 2);
  if (what.rfind(path + ": ", 0) == 0) return what.substr(path.size() + 2);
  return what;
}

// `readers` (null: load in this process) runs the assimp formats in reader processes.
Processed process_file(const InputFile& in, const PrepareOptions& opt, IsolatedReaderPool* readers) {
  Processed r;
  auto skip = [&](SkipReason reason, std::string detail) {
    r = Processed();
    r.reason = reason;
    r.detail = std::move(detail);
    return r;
  };
  std::error_code ec;
  if (fs::file_size(in.path, ec) == 0 && !ec) return skip(SkipReason::kZeroSize, "empty file (0 bytes)");

  Mesh mesh;
  try {
    mesh = readers && is_assimp_path(in.path) ? readers->load(in.path, opt.reader_timeout_s) : load_mesh(in.path);
  } catch (const Error& e) {
    return skip(SkipReason::kUnreadable, without_path(e, in.path));
  } catch (const std::exception& e) {
    return skip(SkipReason::kUnreadable, std::string("reader failed: ") + e.what());
  }
  r.input_faces = uint32_t(std::min<size_t>(mesh.faces.size(), UINT32_MAX));
  if (in.z_up) rotate_z_up_to_y_up(mesh);

  // Bounding box: non-finite and zero-size meshes are named as such.
  Vec3 lo = mesh.vertices.at(0), hi = lo;
  for (const Vec3& v : mesh.vertices) {
    for (int k = 0; k < 3; ++k) {
      if (!std::isfinite(v[k])) return skip(SkipReason::kUnreadable, "non-finite vertex coordinate (NaN or Inf)");
      lo[k] = std::min(lo[k], v[k]);
      hi[k] = std::max(hi[k], v[k]);
    }
  }
  const double extent = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
  if (!(extent > 0)) return skip(SkipReason::kZeroSize, "all vertices coincide (zero-size bounding box)");
  if (!std::isfinite(extent)) return skip(SkipReason::kUnreadable, "coordinates too large (infinite bounding box)");

  TokenizerConfig cfg;
  cfg.bits = opt.bits;
  CanonicalMesh cm;
  Mesh normalized;
  try {
    cm = canonicalize(mesh, cfg);
    normalized = normalize_mesh(mesh);
  } catch (const Error& e) {
    return skip(SkipReason::kUnreadable, e.what());
  }
  const size_t faces = cm.faces.size();
  if (faces == 0) {
    return skip(SkipReason::kTooFewFaces, "no faces after quantization (all " + std::to_string(mesh.faces.size()) +
                                              " triangles collapse at " + std::to_string(opt.bits) + " bits)");
  }
  if (int64_t(faces) < opt.min_faces) {
    return skip(SkipReason::kTooFewFaces, std::to_string(faces) + " faces after quantization, fewer than --min-faces " +
                                              std::to_string(opt.min_faces));
  }
  if (int64_t(faces) > opt.max_faces) {
    return skip(SkipReason::kTooManyFaces, std::to_string(faces) + " faces after quantization, more than --max-faces " +
                                               std::to_string(opt.max_faces));
  }
  r.faces = uint32_t(faces);

  // Float geometry: all vertices (normalization uses them all), triangles not degenerate in float.
  r.vertices.resize(normalized.vertices.size() * 3);
  for (size_t i = 0; i < normalized.vertices.size(); ++i) {
    for (int k = 0; k < 3; ++k) r.vertices[3 * i + k] = float(normalized.vertices[i][k]);
  }
  auto same = [&](int32_t a, int32_t b) {
    return a == b || (r.vertices[3 * size_t(a)] == r.vertices[3 * size_t(b)] &&
                      r.vertices[3 * size_t(a) + 1] == r.vertices[3 * size_t(b) + 1] &&
                      r.vertices[3 * size_t(a) + 2] == r.vertices[3 * size_t(b) + 2]);
  };
  r.triangles.reserve(normalized.faces.size() * 3);
  for (const Tri& t : normalized.faces) {
    if (same(t[0], t[1]) || same(t[1], t[2]) || same(t[0], t[2])) continue;
    r.triangles.insert(r.triangles.end(), t.begin(), t.end());
  }

  const std::vector<int32_t> rows = face_rows(cm);
  r.tokens.assign(rows.begin(), rows.end());
  r.hash = fnv1a64(std::string_view(reinterpret_cast<const char*>(r.tokens.data()), r.tokens.size() * sizeof(uint16_t)));
  return r;
}

// Summary statistics of a list of counts.
json stats(std::vector<size_t> v) {
  if (v.empty()) return json{{"count", 0}};
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (size_t x : v) sum += double(x);
  auto pct = [&](double p) { return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))]; };
  return json{{"count", v.size()}, {"min", v.front()},   {"max", v.back()},     {"mean", sum / double(v.size())},
              {"median", pct(0.5)}, {"p90", pct(0.9)},     {"p99", pct(0.99)},   {"total", size_t(sum)}};
}

std::string with_commas(size_t n) {
  // Built forwards (not with string::insert, which GCC 12 at -O2 -std=c++20 misreports as an
  // overflowing memcpy under -Werror).
  const std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Step 3b: marks near-duplicates among the meshes still kept (see near_duplicates.h). Meshes
// with more canonical faces are preferred (a level-of-detail chain keeps its finest level),
// then earlier paths. Returns how many it removed.
size_t remove_near_duplicates(std::vector<Processed>& done, const std::vector<InputFile>& files,
                              const PrepareOptions& opt, int jobs, std::vector<DuplicateOf>& duplicate_of) {
  std::vector<size_t> alive;  // indices into done[] of the meshes kept so far
  for (size_t i = 0; i < done.size(); ++i) {
    if (done[i].reason == SkipReason::kNone) alive.push_back(i);
  }
  // Two independent samplings per mesh: one to compare, one for its floor.
  std::vector<PointCloud> clouds(alive.size());
  std::vector<double> floors(alive.size(), -1);
  parallel_for(alive.size(), jobs, [&](size_t k) {
    const Processed& p = done[alive[k]];
    Mesh mesh;
    mesh.vertices.resize(p.vertices.size() / 3);
    for (size_t v = 0; v < mesh.vertices.size(); ++v) {
      mesh.vertices[v] = {double(p.vertices[3 * v]), double(p.vertices[3 * v + 1]), double(p.vertices[3 * v + 2])};
    }
    for (size_t t = 0; t + 2 < p.triangles.size(); t += 3) {
      mesh.faces.push_back({p.triangles[t], p.triangles[t + 1], p.triangles[t + 2]});
    }
    try {
      const size_t n = size_t(opt.near_dup_points);
      clouds[k] = sample_normalized(mesh, n, item_seed(1, 2, alive[k]));
      floors[k] = sampling_floor(clouds[k], sample_normalized(mesh, n, item_seed(1, 3, alive[k])));
    } catch (const Error&) {  // no area in float: never a near-duplicate of anything
      clouds[k].clear();
    }
  });
  std::vector<size_t> of;  // comparable cloud -> position in alive[]
  std::vector<PointCloud> comparable;
  std::vector<double> comparable_floors;
  for (size_t k = 0; k < alive.size(); ++k) {
    if (clouds[k].empty()) continue;
    of.push_back(k);
    comparable.push_back(std::move(clouds[k]));
    comparable_floors.push_back(floors[k]);
  }
  clouds.clear();
  NearDuplicateOptions nd;
  nd.max_excess = opt.near_dup;
  nd.relative = opt.near_dup_relative;
  nd.threads = jobs;
  const std::vector<ClosePair> pairs = close_pairs(comparable, comparable_floors, nd);
  std::vector<size_t> order(comparable.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  auto faces_of = [&](size_t c) { return done[alive[of[c]]].faces; };
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return faces_of(a) > faces_of(b); });
  const std::vector<NearDuplicate> removed = greedy_near_duplicates(comparable.size(), order, pairs);
  for (const NearDuplicate& r : removed) {
    const size_t i = alive[of[r.index]], twin = alive[of[r.kept]];
    duplicate_of[i] = {files[twin].name, r.distance, r.excess};
    char numbers[128];
    std::snprintf(numbers, sizeof numbers, " (Chamfer distance %.4g, %.4g above the sampling floor %.4g)", r.distance,
                  r.excess, r.distance - r.excess);
    Processed& p = done[i];
    p = Processed();
    p.reason = SkipReason::kNearDuplicate;
    p.detail = "near-duplicate of " + files[twin].name + numbers;
  }
  return removed.size();
}

}  // namespace

// ------------------------------------------------------------------------------------------

namespace {

void check_prepare_options(const PrepareOptions& opt) {
  if (opt.inputs.empty()) throw Error("prepare: no --input given");
  if (opt.out.empty()) throw Error("prepare: no --out given");
  if (opt.bits < 2 || opt.bits > 15) throw Error("--bits must be between 2 and 15 (tokens are stored as uint16)");
  if (opt.min_faces < 1) throw Error("--min-faces must be at least 1");
  if (opt.max_faces < opt.min_faces) throw Error("--max-faces must be at least --min-faces");
  if (!(opt.val_fraction >= 0 && opt.val_fraction <= 1)) throw Error("--val-fraction must be between 0 and 1");
  if (!(opt.reader_timeout_s > 0)) throw Error("--reader-timeout must be positive");
  if (!(opt.near_dup >= 0 && opt.near_dup < 1)) {
    throw Error("--near-dup must be in [0, 1) (0 = off), got " + std::to_string(opt.near_dup));
  }
  if (!(opt.near_dup_relative >= 0 && opt.near_dup_relative <= 10)) throw Error("--near-dup-relative must be between 0 and 10");
  if (opt.near_dup_points < 16 || opt.near_dup_points > 8192) throw Error("--near-dup-points must be between 16 and 8192");
}

// Step 2: every file read, canonicalized and tokenized, in parallel; a file that fails is
// skipped as unreadable, never the job.
std::vector<Processed> process_files(const std::vector<InputFile>& files, const PrepareOptions& opt, int jobs) {
  std::vector<Processed> done(files.size());
  IsolatedReaderPool reader_pool;  // reader processes end when this goes
  IsolatedReaderPool* readers = opt.isolate_assimp ? &reader_pool : nullptr;
  Progress progress("prepare", files.size(), stderr, opt.progress);
  parallel_for(files.size(), jobs, [&](size_t i) {
    try {
      done[i] = process_file(files[i], opt, readers);
    } catch (const std::exception& e) {  // never let one mesh stop the job (bad_alloc, ...)
      done[i] = Processed();
      done[i].reason = SkipReason::kUnreadable;
      done[i].detail = std::string("failed: ") + e.what();
    }
    progress.add();
  });
  progress.finish();
  return done;
}

// Step 3: a mesh whose face rows equal an earlier one's (path order) is a duplicate of it.
void drop_exact_duplicates(std::vector<Processed>& done, const std::vector<InputFile>& files,
                           std::vector<DuplicateOf>& duplicate_of) {
  std::unordered_map<uint64_t, std::vector<size_t>> by_hash;
  for (size_t i = 0; i < files.size(); ++i) {
    Processed& p = done[i];
    if (p.reason != SkipReason::kNone) continue;
    std::vector<size_t>& same_hash = by_hash[p.hash];
    for (size_t j : same_hash) {
      if (done[j].tokens == p.tokens) {
        duplicate_of[i].name = files[j].name;
        p = Processed();
        p.reason = SkipReason::kDuplicate;
        p.detail = "duplicate of " + files[j].name + " (identical face rows)";
        break;
      }
    }
    if (p.reason == SkipReason::kNone) same_hash.push_back(i);
  }
}

// What survived, split into train and val, with the counts the report needs.
struct Kept {
  std::vector<DatasetEntry> entries;
  std::map<std::string, json> sources;  // per source: found, kept, train, val, skipped by reason
  std::map<SkipReason, size_t> skipped_by_reason;
  std::set<std::string> train_groups, val_groups;
  std::vector<size_t> faces, tokens;  // of each kept mesh
  json skipped_files = json::array();
};

json& source_entry(Kept& kept, const std::string& source) {
  json& s = kept.sources[source];
  if (s.is_null()) {
    s = json{{"found", 0}, {"kept", 0}, {"train", 0}, {"val", 0}, {"skipped", json::object()}};
    for (SkipReason r : kSkipReasons) s["skipped"][skip_reason_name(r)] = 0;
  }
  return s;
}

void increment(json& count) { count = count.get<size_t>() + 1; }

// Step 4: the kept meshes become dataset entries (moved out of `done`), the skipped ones report rows.
Kept keep_meshes(std::vector<Processed>& done, const std::vector<InputFile>& files,
                 const std::vector<DuplicateOf>& duplicate_of, const PrepareOptions& opt) {
  Kept kept;
  for (size_t i = 0; i < files.size(); ++i) {
    const InputFile& f = files[i];
    Processed& p = done[i];
    json& src = source_entry(kept, f.source);
    increment(src["found"]);
    if (p.reason != SkipReason::kNone) {
      ++kept.skipped_by_reason[p.reason];
      increment(src["skipped"][skip_reason_name(p.reason)]);
      json item = {{"file", f.path}, {"name", f.name}, {"reason", skip_reason_name(p.reason)}, {"detail", p.detail}};
      if (!duplicate_of[i].name.empty()) item["duplicate_of"] = duplicate_of[i].name;
      if (p.reason == SkipReason::kNearDuplicate) {
        item["chamfer"] = duplicate_of[i].distance;
        item["excess"] = duplicate_of[i].excess;
      }
      kept.skipped_files.push_back(std::move(item));
      continue;
    }
    DatasetEntry e;
    e.name = f.name;
    e.group = group_key(f.name, opt.split_by);
    e.source = f.source;
    e.split = split_for_group(e.group, opt.val_fraction);
    e.input_faces = p.input_faces;
    e.vertices = std::move(p.vertices);
    e.triangles = std::move(p.triangles);
    e.tokens = std::move(p.tokens);
    (e.split == Split::kVal ? kept.val_groups : kept.train_groups).insert(e.group);
    increment(src["kept"]);
    increment(src[split_name(e.split)]);
    kept.faces.push_back(p.faces);
    kept.tokens.push_back(sequence_tokens(size_t(p.faces)));
    kept.entries.push_back(std::move(e));
    p = Processed();
  }
  return kept;
}

// Step 5: the dataset file, with what made it in its metadata.
void write_prepared(const PrepareOptions& opt, const Kept& kept, const PrepareResult& result) {
  json meta = {{"format", "iflame-dataset"},
               {"tokenizer_bits", opt.bits},
               {"max_faces", opt.max_faces},
               {"min_faces", opt.min_faces},
               {"val_fraction", opt.val_fraction},
               {"split_by", split_by_name(opt.split_by)},
               {"split_hash", "fmix64(fnv1a64(group)) / 2^64 < val_fraction"},
               {"near_dup", opt.near_dup}, {"near_dup_relative", opt.near_dup_relative},
               {"near_dup_points", opt.near_dup_points},
               {"inputs", opt.inputs},
               {"z_up", opt.z_up},
               {"meshes", kept.entries.size()},
               {"train", result.train},
               {"val", result.val}};
  if (const fs::path parent = fs::path(opt.out).parent_path(); !parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
  }
  write_dataset(opt.out, kept.entries, opt.bits, meta.dump());
}

// Kept meshes by canonical face count, in bins of 50.
json face_histogram(const std::vector<size_t>& faces) {
  constexpr size_t kBin = 50;
  json bins = json::array();
  if (!faces.empty()) {
    const size_t top = *std::max_element(faces.begin(), faces.end());
    std::vector<size_t> counts(top / kBin + 1, 0);
    for (size_t f : faces) ++counts[f / kBin];
    for (size_t b = 0; b < counts.size(); ++b) bins.push_back({{"lo", b * kBin}, {"hi", (b + 1) * kBin}, {"count", counts[b]}});
  }
  return {{"bin_width", kBin}, {"note", "canonical faces of kept meshes; bin = [lo, hi)"}, {"bins", bins}};
}

// The ten groups with the most kept meshes, and their split.
json largest_groups(const std::vector<DatasetEntry>& entries) {
  std::map<std::string, std::pair<size_t, Split>> group_sizes;
  for (const DatasetEntry& e : entries) {
    auto& g = group_sizes[e.group];
    ++g.first;
    g.second = e.split;
  }
  std::vector<std::pair<std::string, std::pair<size_t, Split>>> largest(group_sizes.begin(), group_sizes.end());
  std::stable_sort(largest.begin(), largest.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  if (largest.size() > 10) largest.resize(10);
  json top = json::array();
  for (const auto& [group, g] : largest) top.push_back({{"group", group}, {"meshes", g.first}, {"split", split_name(g.second)}});
  return top;
}

struct PrepareTiming {
  double collect_s = 0, process_s = 0, near_dup_s = 0, write_s = 0;
};

json prepare_report(const PrepareOptions& opt, int jobs, const CollectedInputs& collected, Kept& kept,
                    const PrepareResult& result, const PrepareTiming& timing) {
  json report;
  report["dataset"] = opt.out;
  report["options"] = {{"max_faces", opt.max_faces},      {"min_faces", opt.min_faces},
                       {"val_fraction", opt.val_fraction}, {"bits", opt.bits},
                       {"split_by", split_by_name(opt.split_by)}, {"jobs", jobs},
                       {"z_up", opt.z_up}, {"isolate_assimp", opt.isolate_assimp},
                       {"reader_timeout_s", opt.reader_timeout_s},
                       {"near_dup", opt.near_dup}, {"near_dup_relative", opt.near_dup_relative}, {"near_dup_points", opt.near_dup_points}};
  report["inputs"] = collected.inputs;
  report["files_found"] = collected.files.size();
  report["kept"] = {{"total", result.kept}, {"train", result.train}, {"val", result.val}};
  report["groups"] = {{"train", kept.train_groups.size()}, {"val", kept.val_groups.size()}};
  json skipped = {{"total", result.skipped}};
  for (SkipReason r : kSkipReasons) skipped[skip_reason_name(r)] = kept.skipped_by_reason[r];
  report["skipped"] = skipped;
  report["sources"] = kept.sources;
  report["largest_groups"] = largest_groups(kept.entries);
  report["face_histogram"] = face_histogram(kept.faces);
  report["faces"] = stats(kept.faces);
  report["tokens"] = stats(kept.tokens);
  report["tokens"]["note"] = "sequence length with the BOS and EOS rows: (faces + 2) * 9";
  report["skipped_files"] = std::move(kept.skipped_files);
  report["warnings"] = collected.warnings;
  report["timing"] = {{"collect_s", timing.collect_s}, {"process_s", timing.process_s},
                      {"near_dup_s", timing.near_dup_s}, {"write_s", timing.write_s}};
  report["wall_time_s"] = result.seconds;
  report["meshes_per_s"] = result.seconds > 0 ? double(collected.files.size()) / result.seconds : 0.0;
  return report;
}

// "prepare: 5,741 kept (5,356 train, 385 val), 9 skipped (...) of 5,750 files in ... -> OUT; report R"
std::string summary_line(const PrepareOptions& opt, const PrepareResult& result, const Kept& kept, size_t files) {
  std::ostringstream s;
  s << "prepare: " << with_commas(result.kept) << " kept (" << with_commas(result.train) << " train, "
    << with_commas(result.val) << " val), " << with_commas(result.skipped) << " skipped";
  std::string reasons;
  for (SkipReason r : kSkipReasons) {
    const auto it = kept.skipped_by_reason.find(r);
    if (it == kept.skipped_by_reason.end() || it->second == 0) continue;
    reasons += (reasons.empty() ? "" : ", ") + with_commas(it->second) + " " + skip_reason_name(r);
  }
  if (!reasons.empty()) s << " (" << reasons << ")";
  char timing[96];
  std::snprintf(timing, sizeof timing, " of %s files in %.1f s (%.0f meshes/s)", with_commas(files).c_str(),
                result.seconds, result.seconds > 0 ? double(files) / result.seconds : 0.0);
  s << timing << " -> " << opt.out << "; report " << result.report_path;
  return s.str();
}

}  // namespace

PrepareResult prepare_dataset(const PrepareOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  check_prepare_options(opt);
  const int jobs = opt.jobs > 0 ? opt.jobs : hardware_jobs();
  PrepareResult result;
  result.dataset_path = opt.out;
  result.report_path = opt.report.empty() ? opt.out + ".report.json" : opt.report;
  PrepareTiming timing;

  // 1. collect
  const CollectedInputs collected = collect_inputs(opt.inputs, opt.z_up);
  const std::vector<InputFile>& files = collected.files;
  if (files.empty()) throw Error("prepare: no mesh files found in the inputs (extensions: see `iflame prepare --help`)");
  timing.collect_s = seconds_since(t0);

  // 2. process, in parallel
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<Processed> done = process_files(files, opt, jobs);
  timing.process_s = seconds_since(t1);

  // 3. deduplicate (path order): exact, then near
  const auto t2 = std::chrono::steady_clock::now();
  std::vector<DuplicateOf> duplicate_of(files.size());
  drop_exact_duplicates(done, files, duplicate_of);
  const auto t_near = std::chrono::steady_clock::now();
  if (opt.near_dup > 0) remove_near_duplicates(done, files, opt, jobs, duplicate_of);
  timing.near_dup_s = seconds_since(t_near);

  // 4. split, and 5. write
  Kept kept = keep_meshes(done, files, duplicate_of, opt);
  done.clear();
  done.shrink_to_fit();
  for (const DatasetEntry& e : kept.entries) (e.split == Split::kVal ? result.val : result.train)++;
  result.found = files.size();
  result.kept = kept.entries.size();
  result.skipped = files.size() - kept.entries.size();
  write_prepared(opt, kept, result);
  timing.write_s = seconds_since(t2);
  result.seconds = seconds_since(t0);

  json report = prepare_report(opt, jobs, collected, kept, result, timing);
  write_file_atomic(result.report_path, report.dump(2) + "\n");
  result.report = std::move(report);
  result.summary = summary_line(opt, result, kept, files.size());
  return result;
}

}  // namespace iflame
