#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>

#include "util/error.h"

namespace iflame {

Mesh normalize_mesh(const Mesh& mesh) {
  if (mesh.vertices.empty()) throw Error("mesh has no vertices");
  Vec3 lo = mesh.vertices[0], hi = mesh.vertices[0];
  for (const Vec3& v : mesh.vertices) {
    for (int k = 0; k < 3; ++k) {
      if (!std::isfinite(v[k])) throw Error("mesh has a non-finite coordinate");
      lo[k] = std::min(lo[k], v[k]);
      hi[k] = std::max(hi[k], v[k]);
    }
  }
  const Vec3 center = {0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])};
  const double scale = std::max({hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]});
  if (!(scale > 0) || !std::isfinite(scale)) throw Error("mesh has a zero-size (or infinite) bounding box");
  Mesh out;
  out.faces = mesh.faces;
  out.vertices.resize(mesh.vertices.size());
  for (size_t i = 0; i < mesh.vertices.size(); ++i) {
    for (int k = 0; k < 3; ++k) out.vertices[i][k] = (mesh.vertices[i][k] - center[k]) / scale;
  }
  return out;
}

CanonicalMesh canonicalize(const Mesh& mesh, const TokenizerConfig& config) {
  return canonicalize_normalized(normalize_mesh(normalize_mesh(mesh)), config);
}

CanonicalMesh canonicalize_normalized(const Mesh& mesh, const TokenizerConfig& config) {
  const double levels = double(config.quant_max());
  const size_t nv = mesh.vertices.size();

  // Quantize in float64 with round-half-to-even (nearbyint under the default rounding mode).
  std::vector<QVertex> q(nv);
  for (size_t i = 0; i < nv; ++i) {
    const Vec3& v = mesh.vertices[i];
    auto quant = [&](double c) { return int32_t(std::nearbyint(std::clamp(c + 0.5, 0.0, 1.0) * levels)); };
    q[i] = {quant(v[2]), quant(v[0]), quant(v[1])};  // emitted order (z, x, y)
  }

  // Sort by (y, x, z) = emitted columns (2, 1, 0), then merge identical vertices.
  auto key_less = [](const QVertex& a, const QVertex& b) {
    return std::tie(a[2], a[1], a[0]) < std::tie(b[2], b[1], b[0]);
  };
  std::vector<int32_t> order(nv);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return key_less(q[a], q[b]); });
  std::vector<QVertex> merged;
  std::vector<int32_t> remap(nv);
  for (int32_t i : order) {
    if (merged.empty() || merged.back() != q[i]) merged.push_back(q[i]);
    remap[i] = int32_t(merged.size() - 1);
  }

  // Faces: re-index, drop degenerate, reverse winding (a, c, b), rotate smallest first.
  std::vector<Tri> faces;
  faces.reserve(mesh.faces.size());
  for (const Tri& f : mesh.faces) {
    const int32_t a = remap[f[0]], b = remap[f[1]], c = remap[f[2]];
    if (a == b || b == c || a == c) continue;
    Tri t = {a, c, b};
    std::rotate(t.begin(), std::min_element(t.begin(), t.end()), t.end());
    faces.push_back(t);
  }
  auto sorted_triple = [](const Tri& t) {
    Tri s = t;
    std::sort(s.begin(), s.end());
    return s;
  };
  std::stable_sort(faces.begin(), faces.end(),
                   [&](const Tri& a, const Tri& b) { return sorted_triple(a) < sorted_triple(b); });

  // Drop vertices no face uses; order is kept, so faces stay sorted.
  std::vector<int32_t> used(merged.size(), -1);
  for (const Tri& f : faces) {
    for (int32_t v : f) used[v] = 0;
  }
  CanonicalMesh out;
  for (size_t i = 0; i < merged.size(); ++i) {
    if (used[i] == 0) {
      used[i] = int32_t(out.vertices.size());
      out.vertices.push_back(merged[i]);
    }
  }
  out.faces = std::move(faces);
  for (Tri& f : out.faces) {
    for (int32_t& v : f) v = used[v];
  }
  return out;
}

std::vector<int32_t> face_rows(const CanonicalMesh& mesh) {
  std::vector<int32_t> rows;
  rows.reserve(mesh.faces.size() * kTokensPerFace);
  for (const Tri& f : mesh.faces) {
    for (int32_t v : f) rows.insert(rows.end(), mesh.vertices[v].begin(), mesh.vertices[v].end());
  }
  return rows;
}

size_t drop_repeated_face_rows(std::vector<int64_t>& seq, const TokenizerConfig& config) {
  using Row = std::array<int64_t, kTokensPerFace>;
  std::set<Row> seen;
  const size_t rows = seq.size() / kTokensPerFace;
  size_t kept = 0;  // rows written back so far
  for (size_t r = 0; r < rows; ++r) {
    Row row;
    std::copy_n(seq.begin() + std::ptrdiff_t(r * kTokensPerFace), kTokensPerFace, row.begin());
    const bool face = is_face_row(row.data(), config);
    if (face && !seen.insert(row).second) continue;
    std::copy(row.begin(), row.end(), seq.begin() + std::ptrdiff_t(kept * kTokensPerFace));
    ++kept;
  }
  const size_t tail = seq.size() - rows * kTokensPerFace;  // a partial row, moved along
  std::copy(seq.end() - std::ptrdiff_t(tail), seq.end(), seq.begin() + std::ptrdiff_t(kept * kTokensPerFace));
  seq.resize(kept * kTokensPerFace + tail);
  return rows - kept;
}

std::vector<int64_t> encode_sequence(const CanonicalMesh& mesh, const TokenizerConfig& config, size_t pad_to_rows) {
  const size_t rows = mesh.faces.size() + 2;
  std::vector<int64_t> seq;
  seq.reserve(std::max(rows, pad_to_rows) * kTokensPerFace);
  seq.insert(seq.end(), kTokensPerFace, config.bos());
  for (int32_t t : face_rows(mesh)) seq.push_back(t);
  seq.insert(seq.end(), kTokensPerFace, config.eos());
  if (pad_to_rows > rows) seq.insert(seq.end(), (pad_to_rows - rows) * kTokensPerFace, config.pad());
  return seq;
}

namespace {

// Builds the float mesh from quantized emitted-order vertices and emitted-winding faces.
Mesh to_float_mesh(const std::vector<QVertex>& vertices, const std::vector<Tri>& emitted_faces,
                   const TokenizerConfig& config) {
  const double levels = double(config.quant_max());
  Mesh out;
  out.vertices.reserve(vertices.size());
  for (const QVertex& q : vertices) {
    // Emitted (z, x, y) -> input (x, y, z).
    out.vertices.push_back({q[1] / levels - 0.5, q[2] / levels - 0.5, q[0] / levels - 0.5});
  }
  out.faces.reserve(emitted_faces.size());
  for (const Tri& f : emitted_faces) out.faces.push_back({f[0], f[2], f[1]});  // undo the reversal
  return out;
}

}  // namespace

std::array<Vec3, 3> face_corners(const int64_t* row, const TokenizerConfig& config) {
  const double levels = double(config.quant_max());
  auto corner = [&](int c) -> Vec3 {  // emitted (z, x, y) -> input (x, y, z)
    const int64_t* q = row + 3 * c;
    return {double(q[1]) / levels - 0.5, double(q[2]) / levels - 0.5, double(q[0]) / levels - 0.5};
  };
  return {corner(0), corner(2), corner(1)};  // undo the reversal, as to_float_mesh does
}

Mesh canonical_to_mesh(const CanonicalMesh& mesh, const TokenizerConfig& config) {
  return to_float_mesh(mesh.vertices, mesh.faces, config);
}

std::vector<int64_t> encode_prompt(const CanonicalMesh& mesh, const TokenizerConfig& config) {
  std::vector<int64_t> seq = encode_sequence(mesh, config);
  seq.resize(seq.size() - kTokensPerFace);  // the model continues the mesh: no EOS row
  return seq;
}

Mesh decode_tokens(const int64_t* tokens, size_t count, const TokenizerConfig& config) {
  const size_t rows = count / kTokensPerFace;
  size_t r = 0;
  auto row_is = [&](size_t row, int64_t token) {
    return std::all_of(tokens + row * kTokensPerFace, tokens + (row + 1) * kTokensPerFace,
                       [&](int64_t t) { return t == token; });
  };
  while (r < rows && row_is(r, config.bos())) ++r;

  std::vector<std::array<QVertex, 3>> triangles;
  for (; r < rows; ++r) {
    const int64_t* row = tokens + r * kTokensPerFace;
    if (!is_face_row(row, config)) break;
    std::array<QVertex, 3> tri;
    for (int c = 0; c < 3; ++c) tri[c] = {int32_t(row[3 * c]), int32_t(row[3 * c + 1]), int32_t(row[3 * c + 2])};
    if (tri[0] == tri[1] || tri[1] == tri[2] || tri[0] == tri[2]) continue;  // degenerate
    triangles.push_back(tri);
  }

  // Merge identical vertices; index them in canonical (y, x, z) order.
  std::map<std::array<int32_t, 3>, int32_t> index;  // key (y, x, z)
  for (const auto& tri : triangles) {
    for (const QVertex& v : tri) index.emplace(std::array<int32_t, 3>{v[2], v[1], v[0]}, 0);
  }
  std::vector<QVertex> vertices;
  vertices.reserve(index.size());
  for (auto& [key, id] : index) {
    id = int32_t(vertices.size());
    vertices.push_back({key[2], key[1], key[0]});
  }
  std::vector<Tri> faces;
  faces.reserve(triangles.size());
  for (const auto& tri : triangles) {
    Tri f;
    for (int c = 0; c < 3; ++c) f[c] = index.at({tri[c][2], tri[c][1], tri[c][0]});
    faces.push_back(f);
  }
  return to_float_mesh(vertices, faces, config);
}

double uniform(std::mt19937_64& rng, double lo, double hi) {
  const double u = double(rng() >> 11) * 0x1.0p-53;  // [0, 1) with 53 random bits
  return lo + (hi - lo) * u;
}

Mesh augment_mesh(const Mesh& mesh, std::mt19937_64& rng) {
  Mesh m = normalize_mesh(mesh);
  Vec3 scale;
  for (int k = 0; k < 3; ++k) scale[k] = uniform(rng, 0.75, 1.25);
  for (Vec3& v : m.vertices) {
    for (int k = 0; k < 3; ++k) v[k] *= scale[k];
  }
  m = normalize_mesh(m);
  Vec3 lo = m.vertices[0], hi = m.vertices[0];
  for (const Vec3& v : m.vertices) {
    for (int k = 0; k < 3; ++k) {
      lo[k] = std::min(lo[k], v[k]);
      hi[k] = std::max(hi[k], v[k]);
    }
  }
  const double limits[3] = {0.1, 0.1, 0.075};  // x, y, z
  for (int k = 0; k < 3; ++k) {
    // Clamp the shift so that lo + s >= -0.5 and hi + s <= 0.5.
    // (min/max rather than std::clamp: the bounds may cross by an ulp when the extent is 1.)
    const double s = std::min(std::max(uniform(rng, -limits[k], limits[k]), -0.5 - lo[k]), 0.5 - hi[k]);
    for (Vec3& v : m.vertices) v[k] += s;
  }
  return m;
}

}  // namespace iflame
