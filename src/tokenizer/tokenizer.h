// The iFlame mesh tokenizer (spec section 1): canonicalization, 9-tokens-per-triangle encoding,
// decoding back to a mesh, and training-time augmentation.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "mesh/mesh.h"

namespace iflame {

// Token layout for `bits` quantization bits: coordinates 0..2^bits (2^bits + 1 levels), then
// PAD, BOS, EOS. bits = 7 is the reference: 129 levels, PAD 129, BOS 130, EOS 131, vocab 132.
struct TokenizerConfig {
  int bits = 7;

  int32_t quant_max() const { return int32_t(1) << bits; }  // largest coordinate token
  int32_t pad() const { return quant_max() + 1; }
  int32_t bos() const { return quant_max() + 2; }
  int32_t eos() const { return quant_max() + 3; }
  int32_t vocab_size() const { return quant_max() + 4; }
  bool is_coordinate(int64_t token) const { return token >= 0 && token <= quant_max(); }
};

inline constexpr int kTokensPerVertex = 3;
inline constexpr int kTokensPerFace = 9;

// Token-row arithmetic, so that callers never count rows by hand.
// Tokens of the sequence of a mesh of `faces` faces: its BOS row, face rows and EOS row.
inline constexpr size_t sequence_tokens(size_t faces) { return (faces + 2) * kTokensPerFace; }
// Faces of a prompt (encode_prompt: the BOS row, then face rows).
inline constexpr size_t prompt_faces(size_t prompt_tokens) {
  return prompt_tokens < size_t(kTokensPerFace) ? 0 : prompt_tokens / kTokensPerFace - 1;
}
// Whether the 9 tokens at `row` are all coordinates: a face, not a BOS, EOS or PAD row.
inline bool is_face_row(const int64_t* row, const TokenizerConfig& config) {
  for (int i = 0; i < kTokensPerFace; ++i) {
    if (!config.is_coordinate(row[i])) return false;
  }
  return true;
}

// A quantized vertex in emitted order: (q_z, q_x, q_y) of the input axes.
using QVertex = std::array<int32_t, 3>;

// The canonical form of a mesh: merged, sorted quantized vertices and canonical faces.
// `faces` hold the *emitted* winding (reversed from the input, smallest index first); decode
// restores the input winding.
struct CanonicalMesh {
  std::vector<QVertex> vertices;  // sorted ascending by (q_y, q_x, q_z), all referenced
  std::vector<Tri> faces;         // sorted stably by their sorted index triple
};

// Centers the bounding box of all vertices at 0 and divides by its largest side, in float64.
// Throws iflame::Error when the bounding box has zero size or a coordinate is not finite.
Mesh normalize_mesh(const Mesh& mesh);

// The full pipeline of the reference dataset: normalize (twice, as the reference does; the
// second pass can move the last bit), quantize, merge, sort, canonical faces. May return a
// mesh with no faces when every triangle collapses under quantization.
CanonicalMesh canonicalize(const Mesh& mesh, const TokenizerConfig& config = {});
// The same without normalizing: for vertices already inside [-0.5, 0.5] (augmentation output).
CanonicalMesh canonicalize_normalized(const Mesh& mesh, const TokenizerConfig& config = {});

// Face rows only (9 tokens per face, no BOS/EOS): [F * 9].
std::vector<int32_t> face_rows(const CanonicalMesh& mesh);
// The training sequence: 9 x BOS, the face rows, 9 x EOS, then PAD rows up to `pad_to_rows`
// rows in total (0 = no padding). Length is always a multiple of 9.
std::vector<int64_t> encode_sequence(const CanonicalMesh& mesh, const TokenizerConfig& config = {},
                                     size_t pad_to_rows = 0);

// Drops each face row of `seq` (rows of 9 from index 0) that repeats an earlier face row: the
// same corners in the same winding add nothing to the surface, yet the reference keeps them
// (spec 1.5) and a model learns from them to loop on one face. Rows holding special tokens
// (BOS, EOS, PAD) stay, and so does a face's back side (the other winding). Returns the number
// of rows dropped; a trailing partial row is kept as it is.
size_t drop_repeated_face_rows(std::vector<int64_t>& seq, const TokenizerConfig& config = {});

// A prompt for the model to continue: the BOS row and the face rows, without the EOS row.
std::vector<int64_t> encode_prompt(const CanonicalMesh& mesh, const TokenizerConfig& config = {});

// Decodes a token sequence: leading BOS rows are skipped, decoding stops at the first row
// that holds any non-coordinate token (EOS, PAD, ...), a trailing partial row is ignored.
// Vertices are dequantized (q / 2^bits - 0.5), put back in (x, y, z) order, merged and
// sorted canonically; faces get the input winding back; degenerate faces are dropped.
Mesh decode_tokens(const int64_t* tokens, size_t count, const TokenizerConfig& config = {});
inline Mesh decode_tokens(const std::vector<int64_t>& tokens, const TokenizerConfig& config = {}) {
  return decode_tokens(tokens.data(), tokens.size(), config);
}
// The three corners of one face row (9 coordinate tokens) as decode_tokens places them:
// dequantized, in (x, y, z) order and the input winding. Degenerate rows are returned as they are.
std::array<Vec3, 3> face_corners(const int64_t* row, const TokenizerConfig& config = {});
// The canonical mesh as a float mesh (what decode(encode(m)) returns).
Mesh canonical_to_mesh(const CanonicalMesh& mesh, const TokenizerConfig& config = {});

// Deterministic uniform doubles from a seeded 64-bit generator (the standard distributions
// differ between standard libraries; ours must not).
double uniform(std::mt19937_64& rng, double lo, double hi);

// Training augmentation (spec 1.9): normalize; scale each input axis by U[0.75, 1.25];
// normalize; shift x and y by U[-0.1, 0.1] and z by U[-0.075, 0.075], each clamped so the
// shape stays inside [-0.5, 0.5]^3. Deterministic for a given generator state.
Mesh augment_mesh(const Mesh& mesh, std::mt19937_64& rng);

}  // namespace iflame
