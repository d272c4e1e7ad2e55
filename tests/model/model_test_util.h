// Shared helpers for the model tests: reading the reference's raw .bin files and comparing.
#pragma once
#include <string>
#include <vector>

#include "model/model.h"
#include "model/torch_compat.h"

namespace iflame::test {

// Raw little-endian file -> tensor of the given shape and dtype (kLong or kFloat).
torch::Tensor read_raw(const std::string& path, std::vector<int64_t> shape, torch::ScalarType dtype);
// Shape of a reference binary from meta.json ("binaries" section).
std::vector<int64_t> reference_shape(const std::string& file_name);
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);
// The `tiny` preset with weights drawn after torch::manual_seed(seed), in eval mode.
IFlameModel random_tiny_model(uint64_t seed);

}  // namespace iflame::test
