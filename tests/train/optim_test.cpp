// The optimizer against numbers made by another implementation: three steps of Muon (Nesterov
// momentum, its 0.2 * sqrt(max(rows, cols)) lr scale, decoupled weight decay) and of PyTorch's
// own torch.optim.AdamW (bias-corrected moments), written by tools/make_optim_fixtures.py.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/weights.h"
#include "test_paths.h"
#include "train/optim.h"

namespace iflame {
namespace {

using torch::Tensor;

const char* const kParams[] = {"blocks.0.w_tall", "blocks.0.w_wide", "blocks.0.bias", "output_proj.weight"};

struct Fixture {
  SafetensorsFile file;
  Tensor get(const std::string& name) const {
    auto it = file.tensors.find(name);
    if (it == file.tensors.end()) throw std::runtime_error("fixture has no tensor " + name);
    return to_torch(it->second).clone();
  }
};

// The largest |a - b| relative to max(1, |b|).
double max_rel_diff(const Tensor& a, const Tensor& b) {
  return ((a - b).abs() / b.abs().clamp_min(1.0)).max().item<double>();
}

TEST(OptimFixture, MuonAndAdamWMatchPyTorchOverThreeSteps) {
  const Fixture fx{read_safetensors(test::source_dir() + "/tests/data/optim/muon_adamw.safetensors")};
  const auto lrs = nlohmann::json::parse(fx.file.metadata.at("lrs")).get<std::vector<double>>();
  const auto betas = nlohmann::json::parse(fx.file.metadata.at("betas")).get<std::vector<double>>();
  OptimizerOptions options;
  options.kind = "muon";
  options.weight_decay = std::stod(fx.file.metadata.at("weight_decay"));
  options.beta1 = betas.at(0);
  options.beta2 = betas.at(1);
  options.eps = std::stod(fx.file.metadata.at("eps"));
  options.muon_momentum = std::stod(fx.file.metadata.at("momentum"));

  std::vector<std::pair<std::string, Tensor>> params;
  for (const char* name : kParams) params.emplace_back(name, fx.get(std::string(name) + ".init").requires_grad_());
  Optimizer optimizer(params, options);
  EXPECT_TRUE(optimizer.uses_muon("blocks.0.w_tall"));
  EXPECT_TRUE(optimizer.uses_muon("blocks.0.w_wide"));
  EXPECT_FALSE(optimizer.uses_muon("blocks.0.bias"));
  EXPECT_FALSE(optimizer.uses_muon("output_proj.weight"));

  for (size_t k = 0; k < lrs.size(); ++k) {
    for (auto& [name, p] : params) p.mutable_grad() = fx.get(name + ".grad." + std::to_string(k));
    optimizer.step(lrs[k]);
    for (auto& [name, p] : params) {
      const Tensor expected = fx.get(name + ".after." + std::to_string(k));
      // Both sides run Newton-Schulz in float32 through different BLAS call orders.
      EXPECT_LT(max_rel_diff(p.detach(), expected), 2e-5) << name << " after step " << k;
      // The step moved the parameter by far more than the tolerance: the check has teeth.
      if (k == 0) {
        EXPECT_GT(max_rel_diff(fx.get(name + ".init"), expected), 1e-3) << name;
      }
    }
  }
  const auto state = optimizer.state();
  for (const auto& [key, tensor] : state) {
    EXPECT_LT(max_rel_diff(tensor, fx.get(key)), 2e-5) << key;
  }
  EXPECT_EQ(state.size(), 6u);  // two momenta, two pairs of Adam moments
}

}  // namespace
}  // namespace iflame
