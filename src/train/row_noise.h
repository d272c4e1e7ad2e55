// The noise rows of training (data.repeat_noise, data.flat_noise) as settings, apart from the
// batcher (no LibTorch), so that the training config stays torch-free (its parser is fuzzed in a
// build without LibTorch).
#pragma once
#include <array>
#include <string>

namespace iflame {

// Rows that the model's own samples hold once they drift, and that the data never shows: before
// each face row, with probability `copy`, a copy of an earlier face row; else with probability
// `flat`, a flat one (the corners on one line) made from an earlier row. After a flat row, with
// probability `fan`, another one of the same collapsed fan (as looping samples write them: the
// same first corner, the others further along the same line), and so on.
struct RowNoise {
  double copy = 0;  // data.repeat_noise
  double flat = 0;  // data.flat_noise
  double fan = 0;   // data.flat_fan
  bool any() const { return copy > 0 || flat > 0; }
};

// What is wrong with `noise` ("" when nothing): both must be probabilities that leave the data's
// own rows a chance. `names` spells the two settings as the caller's user wrote them.
inline std::string row_noise_problem(const RowNoise& noise, const std::array<const char*, 2>& names) {
  const auto [copy_name, flat_name] = names;
  if (!(noise.copy >= 0 && noise.copy < 1)) return std::string(copy_name) + " must be a probability in [0, 1)";
  if (!(noise.flat >= 0 && noise.copy + noise.flat < 1)) {
    return std::string(flat_name) + " must be a probability, with " + copy_name + " + " + flat_name + " below 1";
  }
  if (!(noise.fan >= 0 && noise.fan < 1)) return "data.flat_fan must be a probability in [0, 1)";
  return "";
}

}  // namespace iflame
