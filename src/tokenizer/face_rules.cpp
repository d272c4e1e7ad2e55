#include "tokenizer/face_rules.h"

#include <algorithm>
#include <array>

namespace iflame {

namespace {

// Whether grid vectors d and e are parallel (their cross product is zero): with d = B - A and
// e = C - A, whether corners A, B, C lie on one line.
bool parallel(const int64_t (&d)[3], const int64_t (&e)[3]) {
  return d[1] * e[2] == d[2] * e[1] && d[2] * e[0] == d[0] * e[2] && d[0] * e[1] == d[1] * e[0];
}

}  // namespace

int64_t mask_repeated_face(const int64_t* tokens, int64_t t, const TokenizerConfig& tokenizer, uint8_t* allowed) {
  constexpr int64_t last = kTokensPerFace - 1;
  if (t < kTokensPerFace || t % kTokensPerFace != last) return 0;
  const int64_t* row = tokens + (t - last);
  if (!std::all_of(row, row + last, [&](int64_t v) { return tokenizer.is_coordinate(v); })) return 0;
  std::vector<int64_t> banned;  // last coordinates of earlier rows that share this row's first 8
  for (const int64_t* earlier = tokens; earlier < row; earlier += kTokensPerFace) {
    if (std::equal(earlier, earlier + last, row) && tokenizer.is_coordinate(earlier[last]) && allowed[earlier[last]]) {
      banned.push_back(earlier[last]);
    }
  }
  std::sort(banned.begin(), banned.end());
  banned.erase(std::unique(banned.begin(), banned.end()), banned.end());
  int64_t coordinates_left = 0;
  for (int64_t v = 0; v <= tokenizer.quant_max(); ++v) coordinates_left += allowed[v] != 0;
  if (int64_t(banned.size()) >= coordinates_left) return 0;  // a repeat beats an empty choice
  for (int64_t v : banned) allowed[v] = 0;
  return int64_t(banned.size());
}

int64_t mask_degenerate_face(const int64_t* tokens, int64_t t, const TokenizerConfig& tokenizer, uint8_t* allowed) {
  const int64_t i = t % kTokensPerFace, levels = tokenizer.quant_max() + 1;
  if (t < kTokensPerFace || (i != 5 && i != 7 && i != 8)) return 0;
  const int64_t* row = tokens + (t - i);  // corners A = row[0..2], B = row[3..5], C = row[6..8]; tokens (z, x, y)
  if (!std::all_of(row, row + i, [&](int64_t v) { return tokenizer.is_coordinate(v); })) return 0;
  std::vector<uint8_t> bad(size_t(levels), 0);
  const int64_t* a = row;
  const int64_t* b = row + 3;
  if (i == 5) {
    if (b[0] == a[0] && b[1] == a[1]) bad[size_t(a[2])] = 1;  // B = A
  } else {
    const int64_t d[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    if (i == 7) {
      // C = (row[6], v, y) is on the line AB for every y only when the line runs along y through
      // it (with A = B there is no line: every C is degenerate, and no choice is better).
      if (d[0] == 0 && d[1] == 0 && d[2] != 0 && row[6] == a[0]) bad[size_t(a[1])] = 1;
    } else {
      for (int64_t v = 0; v < levels; ++v) {
        const int64_t e[3] = {row[6] - a[0], row[7] - a[1], v - a[2]};  // C - A
        bad[size_t(v)] = parallel(d, e);
      }
    }
  }
  int64_t cleared = 0, left = 0;
  for (int64_t v = 0; v < levels; ++v) {
    if (!allowed[v]) continue;
    if (bad[size_t(v)]) ++cleared;
    else ++left;
  }
  if (cleared == 0 || left == 0) return 0;  // a degenerate face beats an empty choice
  for (int64_t v = 0; v < levels; ++v) {
    if (bad[size_t(v)]) allowed[v] = 0;
  }
  return cleared;
}

bool face_row_is_broken(const int64_t* tokens, int64_t start, const TokenizerConfig& tokenizer) {
  using Corners = std::array<std::array<int64_t, 3>, 3>;
  auto corners_of = [&](const int64_t* row, Corners& out) {
    if (!std::all_of(row, row + kTokensPerFace, [&](int64_t v) { return tokenizer.is_coordinate(v); })) return false;
    for (int c = 0; c < 3; ++c) out[size_t(c)] = {row[3 * c], row[3 * c + 1], row[3 * c + 2]};
    return true;
  };
  Corners face;
  if (!corners_of(tokens + start, face)) return false;
  const auto &a = face[0], &b = face[1], &c = face[2];
  const int64_t d[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]}, e[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
  if (parallel(d, e)) return true;
  std::sort(face.begin(), face.end());
  Corners earlier;
  for (int64_t s = start - kTokensPerFace; s >= 0; s -= kTokensPerFace) {
    if (!corners_of(tokens + s, earlier)) continue;
    std::sort(earlier.begin(), earlier.end());
    if (earlier == face) return true;
  }
  return false;
}

std::vector<int64_t> unlikely_coordinates(const int64_t* tokens, int64_t t, const TokenizerConfig& tokenizer) {
  const int64_t levels = tokenizer.quant_max() + 1;
  std::vector<uint8_t> allowed(size_t(levels), 1);
  mask_repeated_face(tokens, t, tokenizer, allowed.data());
  mask_degenerate_face(tokens, t, tokenizer, allowed.data());
  std::vector<int64_t> out;
  for (int64_t v = 0; v < levels; ++v) {
    if (!allowed[size_t(v)]) out.push_back(v);
  }
  if (int64_t(out.size()) == levels) out.clear();
  return out;
}

}  // namespace iflame
