#include "tokenizer/face_rules.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <set>
#include <vector>

namespace iflame {
namespace {

// The mask of --no-repeat-faces: only at a row's last coordinate, only the coordinates that copy
// an earlier row with the same first eight, never all of them.
TEST(FaceRules, MaskRepeatedFaceTakesOnlyTheCopies) {
  const TokenizerConfig tk;
  const int64_t levels = tk.quant_max() + 1;
  std::vector<int64_t> tokens(9, tk.bos());
  const std::vector<int64_t> a = {1, 2, 3, 4, 5, 6, 7, 8, 9}, b = {1, 2, 3, 4, 5, 6, 7, 8, 20}, c = {1, 2, 3, 4, 5, 6, 7, 9, 9};
  for (const auto* row : {&a, &b, &c}) tokens.insert(tokens.end(), row->begin(), row->end());
  tokens.insert(tokens.end(), a.begin(), a.end() - 1);  // the row being written: a's first eight
  const int64_t t = int64_t(tokens.size());
  std::vector<uint8_t> allowed(size_t(tk.vocab_size()), 0);
  std::fill(allowed.begin(), allowed.begin() + levels, uint8_t(1));
  EXPECT_EQ(mask_repeated_face(tokens.data(), t, tk, allowed.data()), 2);
  for (int64_t v = 0; v < levels; ++v) EXPECT_EQ(allowed[size_t(v)], v != 9 && v != 20) << v;
  // Not at the last coordinate: nothing is masked.
  std::vector<uint8_t> all(size_t(tk.vocab_size()), 1);
  EXPECT_EQ(mask_repeated_face(tokens.data(), t - 1, tk, all.data()), 0);
  // Only copies left to choose: the choice stays (a repeat beats an empty choice).
  std::vector<uint8_t> only_copies(size_t(tk.vocab_size()), 0);
  only_copies[9] = only_copies[20] = 1;
  EXPECT_EQ(mask_repeated_face(tokens.data(), t, tk, only_copies.data()), 0);
  EXPECT_EQ(only_copies[9] + only_copies[20], 2);
}

// Twice the area of the triangle of a face row's corners (tokens z, x, y), in plain doubles.
double doubled_area(const int64_t* row) {
  double u[3], w[3];
  for (int k = 0; k < 3; ++k) u[k] = double(row[3 + k] - row[k]), w[k] = double(row[6 + k] - row[k]);
  const double cx = u[1] * w[2] - u[2] * w[1], cy = u[2] * w[0] - u[0] * w[2], cz = u[0] * w[1] - u[1] * w[0];
  return std::sqrt(cx * cx + cy * cy + cz * cz);
}

// The mask of --no-degenerate-faces at a third corner's last coordinate: exactly the
// coordinates that leave the face without area, on random rows over a small grid (where
// collinear corners are common), never all of them and nothing at other indices.
TEST(FaceRules, MaskDegenerateFaceTakesExactlyTheFlatCompletions) {
  const TokenizerConfig tk;
  const int64_t levels = tk.quant_max() + 1;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int64_t> coord(0, 3);
  int64_t masked_rows = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<int64_t> tokens(9, tk.bos());
    for (int k = 0; k < 8; ++k) tokens.push_back(coord(rng));
    const int64_t t = int64_t(tokens.size());
    std::vector<uint8_t> allowed(size_t(tk.vocab_size()), 0);
    std::fill(allowed.begin(), allowed.begin() + levels, uint8_t(1));
    const int64_t cleared = mask_degenerate_face(tokens.data(), t, tk, allowed.data());
    std::vector<int64_t> row(tokens.begin() + 9, tokens.end());
    row.push_back(0);
    int64_t flat = 0;
    for (int64_t v = 0; v < levels; ++v) {
      row[8] = v;
      flat += doubled_area(row.data()) == 0;
    }
    if (flat == levels) {  // A = B: every completion is flat, and a flat face beats no face
      EXPECT_EQ(cleared, 0);
      continue;
    }
    EXPECT_EQ(cleared, flat) << "trial " << trial;
    for (int64_t v = 0; v < levels; ++v) {
      row[8] = v;
      EXPECT_EQ(allowed[size_t(v)] != 0, doubled_area(row.data()) != 0) << "trial " << trial << " v " << v;
    }
    masked_rows += cleared > 0;
    std::vector<uint8_t> all(size_t(tk.vocab_size()), 1);
    for (int64_t earlier = t - 8; earlier < t; ++earlier) {
      if (earlier % 9 != 5 && earlier % 9 != 7) {
        EXPECT_EQ(mask_degenerate_face(tokens.data(), earlier, tk, all.data()), 0);
      }
    }
  }
  EXPECT_GT(masked_rows, 30);  // the grid is small enough that many rows have a flat completion
}

// The earlier indices: the second corner on the first (index 5), and a third corner whose first
// two coordinates put it on a line AB that runs along the last axis (index 7).
TEST(FaceRules, MaskDegenerateFaceAtTheSecondCornerAndAlongTheLastAxis) {
  const TokenizerConfig tk;
  const int64_t levels = tk.quant_max() + 1;
  auto mask = [&](const std::vector<int64_t>& row_so_far, std::vector<uint8_t>* allowed) {
    std::vector<int64_t> tokens(9, tk.bos());
    tokens.insert(tokens.end(), row_so_far.begin(), row_so_far.end());
    allowed->assign(size_t(tk.vocab_size()), 0);
    std::fill(allowed->begin(), allowed->begin() + levels, uint8_t(1));
    return mask_degenerate_face(tokens.data(), int64_t(tokens.size()), tk, allowed->data());
  };
  std::vector<uint8_t> allowed;
  EXPECT_EQ(mask({1, 2, 3, 1, 2}, &allowed), 1);  // B = (1, 2, v): v = 3 puts B on A
  EXPECT_EQ(allowed[3], 0);
  EXPECT_EQ(mask({1, 2, 3, 1, 5}, &allowed), 0);  // B differs from A already
  EXPECT_EQ(mask({5, 6, 1, 5, 6, 9, 5}, &allowed), 1);  // AB along y; C = (5, v, y) is on it for v = 6
  EXPECT_EQ(allowed[6], 0);
  EXPECT_EQ(mask({5, 6, 1, 5, 6, 9, 4}, &allowed), 0);  // C = (4, v, y) is off the line for every v
  EXPECT_EQ(mask({5, 6, 1, 5, 7, 9, 5}, &allowed), 0);  // AB not along y: some y is off the line
  EXPECT_EQ(mask({5, 6, 1, 5, 6, 1, 5}, &allowed), 0);  // A = B: no line, every C is degenerate
  // A non-coordinate in the row: nothing is masked.
  std::vector<int64_t> tokens(9, tk.bos());
  for (int64_t v : {1, 2, 3, 1, 2}) tokens.push_back(v);
  tokens[12] = tk.eos();
  std::vector<uint8_t> all(size_t(tk.vocab_size()), 1);
  EXPECT_EQ(mask_degenerate_face(tokens.data(), int64_t(tokens.size()), tk, all.data()), 0);
}

// What training pushes down: copies and flat completions together, none where every coordinate
// would be one (there is no better choice), nothing at a row's other indices.
TEST(FaceRules, UnlikelyCoordinatesAreTheCopiesAndTheFlatCompletions) {
  const TokenizerConfig tk;
  std::vector<int64_t> tokens(9, tk.bos());
  const std::vector<int64_t> earlier = {0, 0, 0, 2, 4, 6, 1, 2, 7};  // its last coordinate 7: not flat
  tokens.insert(tokens.end(), earlier.begin(), earlier.end());
  tokens.insert(tokens.end(), earlier.begin(), earlier.end() - 1);  // the same first eight again
  const int64_t t = int64_t(tokens.size());
  EXPECT_EQ(unlikely_coordinates(tokens.data(), t, tk), (std::vector<int64_t>{3, 7}));  // 3: C = (A + B) / 2
  EXPECT_TRUE(unlikely_coordinates(tokens.data(), t - 1, tk).empty());
  std::vector<int64_t> on_a(9, tk.bos());
  for (int64_t v : {4, 4, 4, 4, 4, 4, 9, 9}) on_a.push_back(v);  // B = A: every third corner is flat
  EXPECT_TRUE(unlikely_coordinates(on_a.data(), int64_t(on_a.size()), tk).empty());
}

// A face row is broken when it has no area or the corner set of an earlier row: checked against
// the area in doubles and a plain set comparison, on random rows over a small grid where both
// happen often; and on named cases (a back side, a copy, a row that only shares corners).
TEST(FaceRules, BrokenFaceRowsAreTheFlatOnesAndRepeatedCornerSets) {
  const TokenizerConfig tk;
  std::mt19937 rng(11);
  std::uniform_int_distribution<int64_t> coord(0, 2);
  int64_t flat = 0, repeated = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int64_t> tokens(9, tk.bos());
    for (int r = 0; r < 12; ++r) {
      if (r > 0 && rng() % 3 == 0) {  // an earlier row's corners in a random order
        const size_t from = 9 * (1 + rng() % size_t(r));
        std::array<int, 3> order = {0, 1, 2};
        std::shuffle(order.begin(), order.end(), rng);
        for (int c : order) {
          for (int k = 0; k < 3; ++k) tokens.push_back(tokens[from + size_t(3 * c + k)]);
        }
      } else {
        for (int k = 0; k < 9; ++k) tokens.push_back(coord(rng));
      }
    }
    for (int64_t start = 9; start < int64_t(tokens.size()); start += 9) {
      const int64_t* row = tokens.data() + start;
      auto corners = [](const int64_t* r) {
        std::multiset<std::vector<int64_t>> out;
        for (int c = 0; c < 3; ++c) out.insert({r[3 * c], r[3 * c + 1], r[3 * c + 2]});
        return out;
      };
      bool seen = false;
      for (int64_t s = 9; s < start; s += 9) seen = seen || corners(tokens.data() + s) == corners(row);
      const bool no_area = doubled_area(row) == 0;
      flat += no_area, repeated += seen && !no_area;
      EXPECT_EQ(face_row_is_broken(tokens.data(), start, tk), no_area || seen) << trial << " " << start;
    }
  }
  EXPECT_GT(flat, 100);
  EXPECT_GT(repeated, 20);
  std::vector<int64_t> tokens(9, tk.bos());
  for (int64_t v : {0, 0, 0, 0, 5, 0, 0, 0, 5}) tokens.push_back(v);    // A, B, C
  for (int64_t v : {0, 0, 0, 0, 0, 5, 0, 5, 0}) tokens.push_back(v);    // A, C, B: its back side
  for (int64_t v : {0, 5, 0, 0, 0, 5, 0, 0, 0}) tokens.push_back(v);    // B, C, A: a copy, rotated
  for (int64_t v : {0, 0, 0, 0, 5, 0, 3, 3, 3}) tokens.push_back(v);    // shares two corners only
  for (int64_t v : {1, 1, 1, 2, 2, 2, 3, 3, 3}) tokens.push_back(v);    // on one line
  const std::vector<bool> expected = {false, true, true, false, true};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(face_row_is_broken(tokens.data(), int64_t(9 * (i + 1)), tk), expected[i]) << i;
  }
  EXPECT_FALSE(face_row_is_broken(tokens.data(), 0, tk));  // the BOS row holds no coordinates
}

}  // namespace
}  // namespace iflame
