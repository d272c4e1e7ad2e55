// Model structure: causality of every architecture, shapes, parameter counts, save/load.
#include "model/model.h"

#include <gtest/gtest.h>

#include "model/model_test_util.h"
#include "model/weights.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

using torch::Tensor;

ModelConfig tiny(Arch arch) {
  ModelConfig c = model_preset("tiny", arch);
  c.baseline_layers = 4;
  return c;
}

TEST(Model, EveryArchitectureIsCausal) {
  torch::NoGradGuard no_grad;
  for (Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
    SCOPED_TRACE(arch_name(arch));
    torch::manual_seed(0);
    IFlameModel model(tiny(arch));
    Tensor tokens = torch::randint(0, 129, {1, 54}, torch::kLong);
    Tensor base = model->forward(tokens);
    for (int64_t t : {0, 4, 9, 20, 35, 53}) {
      Tensor changed = tokens.clone();
      changed[0][t] = (changed[0][t].item<int64_t>() + 7) % 129;
      Tensor out = model->forward(changed);
      // Nothing before t may change; position t itself (and later) must see the change.
      if (t > 0) {
        EXPECT_EQ(test::max_abs_diff(out.narrow(1, 0, t), base.narrow(1, 0, t)), 0.0) << t;
      }
      EXPECT_GT(test::max_abs_diff(out.narrow(1, t, 54 - t), base.narrow(1, t, 54 - t)), 1e-6) << t;
    }
  }
}

TEST(Model, LengthsNotMultipleOfNineGiveThePrefixOfTheLongerForward) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(1);
  IFlameModel model(tiny(Arch::IFlame));
  Tensor tokens = torch::randint(0, 129, {2, 36}, torch::kLong);
  Tensor full = model->forward(tokens);
  Tensor part = model->forward(tokens.narrow(1, 0, 22));
  // Float32 noise only: the two forwards run matmuls of different shapes.
  EXPECT_LE(test::max_abs_diff(part, full.narrow(1, 0, 22)), 1e-4);
}

TEST(Model, ReferencePresetHasThePapersParameterCount) {
  IFlameModel model(model_preset("ref"));
  // The paper's 75.7M model: E=512, H=16, 24 blocks.
  EXPECT_NEAR(double(model->num_parameters()) / 1e6, 75.7, 0.1);
  int full = 0, linear = 0;
  for (auto& [name, block] : model->named_blocks()) (block->attn->kind == AttnKind::Full ? full : linear)++;
  EXPECT_EQ(full, 6);
  EXPECT_EQ(linear, 18);
}

TEST(Model, PatternStringSetsPerLayerKinds) {
  ModelConfig c = tiny(Arch::IFlame);
  c.stage_pattern = "LF";
  IFlameModel model(c);
  auto blocks = model->named_blocks();
  EXPECT_EQ(blocks[0].second->attn->kind, AttnKind::Linear);
  EXPECT_EQ(blocks[1].second->attn->kind, AttnKind::Full);
  EXPECT_EQ(blocks[2].second->attn->kind, AttnKind::Linear);
  c.stage_pattern = "LXF";
  EXPECT_THROW(IFlameModel{c}, Error);
}

TEST(Model, SaveLoadRoundTripsEveryArchitecture) {
  torch::NoGradGuard no_grad;
  const std::string dir = test::temp_dir();
  for (Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
    SCOPED_TRACE(arch_name(arch));
    torch::manual_seed(2);
    ModelConfig c = tiny(arch);
    c.stage_pattern = "LFLL";
    IFlameModel model(c);
    const std::string path = dir + "/" + arch_name(arch) + ".safetensors";
    save_model(*model, path);
    IFlameModel back = load_model(path, /*default_heads=*/99);  // heads come from the metadata
    EXPECT_EQ(back->config.arch, arch);
    EXPECT_EQ(back->config.heads, c.heads);
    if (arch == Arch::IFlame) {
      EXPECT_EQ(back->config.stage_pattern, "LFLL");
    }
    Tensor tokens = torch::randint(0, 129, {1, 27}, torch::kLong);
    EXPECT_EQ(test::max_abs_diff(model->forward(tokens), back->forward(tokens)), 0.0);
  }
}

TEST(Model, LoadingNamesMissingUnexpectedAndMisshapenTensors) {
  const std::string dir = test::temp_dir();
  IFlameModel model(tiny(Arch::IFlame));
  SafetensorsFile file;
  for (const auto& item : model->named_parameters()) file.tensors["_orig_mod." + item.key()] = from_torch(item.value());
  file.metadata["num_heads"] = "4";
  file.tensors.erase("_orig_mod.bottlenecke.1.norm2.weight");
  file.tensors["_orig_mod.extra.weight"] = from_torch(torch::zeros({3}));
  file.tensors["_orig_mod.norm.weight"] = from_torch(torch::zeros({5}));
  write_safetensors(file, dir + "/bad.safetensors");
  try {
    load_model(dir + "/bad.safetensors");
    FAIL() << "loaded a broken checkpoint";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing: bottlenecke.1.norm2.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unexpected: extra.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("norm.weight is [5]"), std::string::npos) << msg;
  }
}

TEST(Model, TrainsUnderBf16Autocast) {
  // One optimizer step in bf16 autocast on CPU lowers the loss on a fixed batch.
  torch::manual_seed(3);
  IFlameModel model(tiny(Arch::IFlame));
  Tensor tokens = torch::randint(0, 129, {2, 36}, torch::kLong);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(3e-3));
  auto loss_of = [&] {
    Tensor logits;
    {
      compat::AutocastGuard autocast(torch::kCPU, torch::kBFloat16);
      logits = model->forward(tokens);
    }
    return torch::nn::functional::cross_entropy(logits.narrow(1, 0, 35).reshape({-1, 132}),
                                                tokens.narrow(1, 1, 35).reshape({-1}));
  };
  const double before = loss_of().item<double>();
  for (int i = 0; i < 5; ++i) {
    opt.zero_grad();
    loss_of().backward();
    opt.step();
  }
  EXPECT_LT(loss_of().item<double>(), before);
}

}  // namespace
}  // namespace iflame
