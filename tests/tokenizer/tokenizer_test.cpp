#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "mesh/load.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// True when every `f` line of the OBJ has exactly 3 corners (the reference only handles those).
bool obj_is_triangles_only(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("f ", 0) != 0) continue;
    std::istringstream s(line.substr(2));
    int corners = 0;
    std::string tok;
    while (s >> tok) ++corners;
    if (corners != 3) return false;
  }
  return true;
}

std::vector<std::string> tokenizer_cases() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(test::reference_dir() + "/tokenizer")) {
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Tokenizer, MatchesReferenceRowsTokenForToken) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  int checked = 0;
  for (const std::string& name : tokenizer_cases()) {
    const std::string dir = test::reference_dir() + "/tokenizer/";
    if (!obj_is_triangles_only(dir + name + ".obj")) continue;  // see QuadsAreTriangulated
    SCOPED_TRACE(name);
    const json ref = json::parse(read_file_text(dir + name + ".json"));
    const CanonicalMesh cm = canonicalize(load_mesh(dir + name + ".obj"));

    std::vector<QVertex> ref_vertices;
    for (const auto& v : ref.at("processed_vertices_quantized")) ref_vertices.push_back({v[0], v[1], v[2]});
    EXPECT_EQ(cm.vertices, ref_vertices);
    std::vector<Tri> ref_faces;
    for (const auto& f : ref.at("processed_faces")) ref_faces.push_back({f[0], f[1], f[2]});
    EXPECT_EQ(cm.faces, ref_faces);

    std::vector<int32_t> ref_rows;
    for (const auto& row : ref.at("face_rows")) {
      for (int t : row) ref_rows.push_back(t);
    }
    EXPECT_EQ(face_rows(cm), ref_rows);

    std::vector<int64_t> head = ref.at("sequence_head").get<std::vector<int64_t>>();
    EXPECT_EQ(encode_sequence(cm), head);
    ++checked;
  }
  EXPECT_GE(checked, 2) << "expected triangle-only tokenizer cases in " << test::reference_dir();
}

TEST(Tokenizer, NormalizesLikeTheReference) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  for (const std::string& name : tokenizer_cases()) {
    SCOPED_TRACE(name);
    const std::string dir = test::reference_dir() + "/tokenizer/";
    const json ref = json::parse(read_file_text(dir + name + ".json"));
    // Parse the reference's own parsed vertices so that quads do not matter here.
    Mesh m;
    for (const auto& v : ref.at("parsed_vertices")) m.vertices.push_back({v[0], v[1], v[2]});
    const Mesh n = normalize_mesh(normalize_mesh(m));
    const auto& expected = ref.at("normalized_vertices");
    ASSERT_EQ(n.vertices.size(), expected.size());
    for (size_t i = 0; i < n.vertices.size(); ++i) {
      for (int k = 0; k < 3; ++k) EXPECT_EQ(n.vertices[i][k], expected[i][k].get<double>()) << i << "," << k;
    }
  }
}

TEST(Tokenizer, QuadsAreTriangulated) {
  // The reference emits rows that straddle quads; we fan-triangulate: 6 quads -> 12 triangles.
  const std::string path = test::reference_dir() + "/tokenizer/cube_quads.obj";
  if (!fs::exists(path)) GTEST_SKIP() << "no cube_quads case";
  const Mesh m = load_mesh(path);
  EXPECT_EQ(m.faces.size(), 12u);
  const CanonicalMesh cm = canonicalize(m);
  EXPECT_EQ(cm.faces.size(), 12u);
  EXPECT_EQ(cm.vertices.size(), 8u);
}

// tokens.bin holds the reference dataset's sequences for meshes/*.obj, cut to `rows_kept` rows.
TEST(Tokenizer, ReproducesReferenceTokenFile) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const json meta = json::parse(read_file_text(test::reference_dir() + "/meta.json"));
  const auto shape = meta.at("tokens").at("shape").get<std::vector<size_t>>();
  const size_t rows_kept = meta.at("tokens").at("rows_kept").get<size_t>();
  const auto names = meta.at("tokens").at("meshes").get<std::vector<std::string>>();
  const auto bytes = read_file_bytes(test::reference_dir() + "/tokens.bin");
  ASSERT_EQ(bytes.size(), shape[0] * shape[1] * sizeof(int64_t));
  const auto* ref = reinterpret_cast<const int64_t*>(bytes.data());
  ASSERT_EQ(names.size(), shape[0]);
  for (size_t b = 0; b < names.size(); ++b) {
    SCOPED_TRACE(names[b]);
    const CanonicalMesh cm = canonicalize(load_mesh(test::reference_dir() + "/meshes/" + names[b] + ".obj"));
    std::vector<int64_t> seq = encode_sequence(cm, {}, rows_kept);
    ASSERT_EQ(seq.size(), shape[1]);
    EXPECT_EQ(seq, std::vector<int64_t>(ref + b * shape[1], ref + (b + 1) * shape[1]));
  }
}

TEST(Tokenizer, RoundsHalfToEven) {
  // After normalization a coordinate of 2.5/128 - 0.5 quantizes to 2, 3.5/128 - 0.5 to 4.
  Mesh m;
  m.vertices = {{-0.5, -0.5, -0.5}, {0.5, 0.5, 0.5}, {2.5 / 128 - 0.5, 3.5 / 128 - 0.5, 0}};
  m.faces = {{0, 1, 2}};
  const CanonicalMesh cm = canonicalize_normalized(m);
  ASSERT_EQ(cm.vertices.size(), 3u);
  // Sorted by y: vertex 0 (y=0), then vertex 2 (y=4), then vertex 1 (y=128). Emitted (z, x, y).
  EXPECT_EQ(cm.vertices[1], (QVertex{64, 2, 4}));
}

TEST(Tokenizer, QuantizationBitsAreConfigurable) {
  TokenizerConfig cfg;
  cfg.bits = 8;
  EXPECT_EQ(cfg.quant_max(), 256);
  EXPECT_EQ(cfg.pad(), 257);
  EXPECT_EQ(cfg.vocab_size(), 260);
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}};
  m.faces = {{0, 1, 2}};
  const auto seq = encode_sequence(canonicalize(m, cfg), cfg);
  EXPECT_EQ(seq.front(), cfg.bos());
  EXPECT_EQ(seq.back(), cfg.eos());
  for (size_t i = 9; i < seq.size() - 9; ++i) EXPECT_TRUE(cfg.is_coordinate(seq[i]));
  EXPECT_EQ(*std::max_element(seq.begin() + 9, seq.end() - 9), 256);
}

TEST(Tokenizer, PadsWithPadRowsOnly) {
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}};
  m.faces = {{0, 1, 2}};
  const auto seq = encode_sequence(canonicalize(m), {}, 5);
  ASSERT_EQ(seq.size(), 45u);
  for (size_t i = 27; i < 45; ++i) EXPECT_EQ(seq[i], 129);
}

// The same face twice in one winding is dropped, the back side (other winding) stays, and so do
// special rows and a partial row at the end, in their places.
TEST(Tokenizer, DropRepeatedFaceRowsKeepsBackSidesAndSpecialRows) {
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  m.faces = {{0, 1, 2}, {0, 2, 1}, {0, 1, 2}, {0, 1, 3}, {0, 1, 2}, {0, 1, 3}};
  const CanonicalMesh cm = canonicalize(m);
  ASSERT_EQ(cm.faces.size(), 6u);  // the reference keeps exact repeats
  std::vector<int64_t> seq = encode_sequence(cm, {}, 10);  // BOS row, 6 faces, EOS row, 2 PAD rows
  seq.insert(seq.end(), {5, 6});                            // a partial row
  const std::vector<int64_t> before = seq;
  EXPECT_EQ(drop_repeated_face_rows(seq), 3u);
  ASSERT_EQ(seq.size(), before.size() - 27);
  auto row = [](const std::vector<int64_t>& s, size_t r) {
    return std::vector<int64_t>(s.begin() + std::ptrdiff_t(9 * r), s.begin() + std::ptrdiff_t(9 * r + 9));
  };
  // Three distinct faces are left, each as its first copy, in order.
  std::set<std::vector<int64_t>> faces;
  for (size_t r = 1; r <= 6; ++r) faces.insert(row(before, r));
  ASSERT_EQ(faces.size(), 3u);
  std::vector<std::vector<int64_t>> firsts;
  for (size_t r = 1; r <= 6; ++r) {
    if (std::find(firsts.begin(), firsts.end(), row(before, r)) == firsts.end()) firsts.push_back(row(before, r));
  }
  for (size_t r = 0; r < 3; ++r) EXPECT_EQ(row(seq, r + 1), firsts[r]) << r;
  EXPECT_EQ(row(seq, 0), row(before, 0));  // BOS
  for (size_t r = 4; r < 7; ++r) EXPECT_EQ(row(seq, r), row(before, r + 3)) << r;  // EOS and PAD rows
  EXPECT_EQ(std::vector<int64_t>(seq.end() - 2, seq.end()), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(decode_tokens(seq).faces.size(), 3u);
  EXPECT_EQ(drop_repeated_face_rows(seq), 0u);  // idempotent
}

Mesh random_mesh(std::mt19937_64& rng, int nv, int nf) {
  Mesh m;
  for (int i = 0; i < nv; ++i) {
    // Coarse coordinates so that merges, ties and degenerate faces actually happen.
    m.vertices.push_back({std::floor(uniform(rng, -20, 20)), std::floor(uniform(rng, -5, 30)), uniform(rng, -3, 3)});
  }
  for (int f = 0; f < nf; ++f) {
    m.faces.push_back({int32_t(rng() % nv), int32_t(rng() % nv), int32_t(rng() % nv)});
  }
  return m;
}

TEST(Tokenizer, DecodeOfEncodeIsTheCanonicalMesh) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const Mesh m = random_mesh(rng, 3 + int(rng() % 40), 1 + int(rng() % 60));
    const CanonicalMesh cm = canonicalize(m);
    const Mesh canonical = canonical_to_mesh(cm);
    const Mesh decoded = decode_tokens(encode_sequence(cm, {}, cm.faces.size() + 4));
    ASSERT_EQ(decoded.vertices, canonical.vertices) << "trial " << trial;
    ASSERT_EQ(decoded.faces, canonical.faces) << "trial " << trial;
    // Canonicalization is idempotent: the decoded mesh encodes to the same rows.
    ASSERT_EQ(face_rows(canonicalize_normalized(decoded)), face_rows(cm)) << "trial " << trial;
  }
}

TEST(Tokenizer, DecodeRestoresInputWinding) {
  Mesh m;
  m.vertices = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  m.faces = {{0, 1, 2}, {0, 3, 1}};
  const Mesh d = decode_tokens(encode_sequence(canonicalize(m)));
  ASSERT_EQ(d.faces.size(), 2u);
  // Each decoded face's normal points the same way as the input face's normal.
  auto normal = [](const Mesh& mesh, const Tri& f) {
    const Vec3 &a = mesh.vertices[f[0]], &b = mesh.vertices[f[1]], &c = mesh.vertices[f[2]];
    const Vec3 u = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, v = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
    return Vec3{u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]};
  };
  for (const Tri& df : d.faces) {
    const Vec3 dn = normal(d, df);
    bool matched = false;
    for (const Tri& f : m.faces) {
      const Vec3 n = normal(m, f);
      const double cos = dn[0] * n[0] + dn[1] * n[1] + dn[2] * n[2];
      const double len = std::sqrt((dn[0] * dn[0] + dn[1] * dn[1] + dn[2] * dn[2]) * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]));
      if (cos > 0.999 * len) matched = true;
    }
    EXPECT_TRUE(matched);
  }
}

TEST(Tokenizer, DecodeStopsAtFirstSpecialRowAndSkipsDegenerates) {
  std::vector<int64_t> seq(9, 130);
  const std::vector<int64_t> good = {0, 0, 0, 0, 128, 0, 0, 0, 128};
  const std::vector<int64_t> degenerate = {0, 0, 0, 0, 0, 0, 5, 5, 5};
  const std::vector<int64_t> mixed = {0, 0, 0, 131, 128, 0, 0, 0, 128};
  seq.insert(seq.end(), good.begin(), good.end());
  seq.insert(seq.end(), degenerate.begin(), degenerate.end());
  seq.insert(seq.end(), mixed.begin(), mixed.end());
  seq.insert(seq.end(), good.begin(), good.end());  // after the stop: ignored
  const Mesh d = decode_tokens(seq);
  EXPECT_EQ(d.faces.size(), 1u);
  EXPECT_EQ(d.vertices.size(), 3u);
}

TEST(Tokenizer, AugmentationStaysInsideTheUnitCubeAndIsSeeded) {
  std::mt19937_64 gen(11);
  for (int trial = 0; trial < 200; ++trial) {
    const Mesh m = random_mesh(gen, 4 + int(gen() % 30), 4);
    std::mt19937_64 a(1000 + trial), b(1000 + trial);
    const Mesh x = augment_mesh(m, a);
    const Mesh y = augment_mesh(m, b);
    ASSERT_EQ(x.vertices, y.vertices);
    for (const Vec3& v : x.vertices) {
      for (double c : v) {
        ASSERT_GE(c, -0.5 - 1e-12);
        ASSERT_LE(c, 0.5 + 1e-12);
      }
    }
    std::mt19937_64 other(5000 + trial);
    EXPECT_NE(augment_mesh(m, other).vertices, x.vertices);
  }
}

TEST(Tokenizer, ZeroSizeMeshIsAClearError) {
  Mesh m;
  m.vertices = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
  m.faces = {{0, 1, 2}};
  EXPECT_THROW(canonicalize(m), Error);
}

}  // namespace
}  // namespace iflame
