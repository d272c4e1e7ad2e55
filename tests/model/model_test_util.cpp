#include "model/model_test_util.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_paths.h"
#include "util/fs.h"

namespace iflame::test {

torch::Tensor read_raw(const std::string& path, std::vector<int64_t> shape, torch::ScalarType dtype) {
  auto bytes = read_file_bytes(path);
  torch::Tensor t = torch::empty(shape, dtype);
  EXPECT_EQ(size_t(t.numel() * t.element_size()), bytes.size()) << path;
  std::memcpy(t.data_ptr(), bytes.data(), std::min(bytes.size(), size_t(t.numel() * t.element_size())));
  return t;
}

std::vector<int64_t> reference_shape(const std::string& file_name) {
  auto meta = nlohmann::json::parse(read_file_text(reference_dir() + "/meta.json"));
  return meta.at("binaries").at(file_name).at("shape").get<std::vector<int64_t>>();
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

IFlameModel random_tiny_model(uint64_t seed) {
  torch::manual_seed(seed);
  IFlameModel model(model_preset("tiny"));
  model->eval();
  return model;
}

}  // namespace iflame::test
