// Parity with the authors' code (shared/reference/iflame-dev): logits, loss, every block's
// activations, RoPE tables. The first proof that the model is right.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "model/kernels.h"
#include "model/loss.h"
#include "model/model_test_util.h"
#include "model/weights.h"
#include "test_paths.h"
#include "util/fs.h"

namespace iflame {
namespace {

IFlameModel reference_model() {
  IFlameModel model = load_model(test::reference_dir() + "/weights.safetensors");
  model->eval();
  return model;
}

torch::Tensor reference_tokens() {
  return test::read_raw(test::reference_dir() + "/tokens.bin", test::reference_shape("tokens.bin"), torch::kLong);
}

TEST(Parity, InfersTheReferenceConfig) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  IFlameModel model = reference_model();
  auto meta = nlohmann::json::parse(read_file_text(test::reference_dir() + "/meta.json"));
  EXPECT_EQ(model->config.dim, meta["config"]["embed_dim"].get<int64_t>());
  EXPECT_EQ(model->config.heads, meta["config"]["num_heads"].get<int64_t>());
  EXPECT_EQ(model->config.hidden(), meta["config"]["ffn_hidden"].get<int64_t>());
  EXPECT_EQ(model->config.stage_pattern, "LLLF");
  EXPECT_EQ(model->num_parameters(), meta["weights"]["params"].get<int64_t>());
}

TEST(Parity, LogitsMatchTheReference) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  torch::NoGradGuard no_grad;
  IFlameModel model = reference_model();
  torch::Tensor tokens = reference_tokens();
  torch::Tensor expected = test::read_raw(test::reference_dir() + "/logits.bin", test::reference_shape("logits.bin"), torch::kFloat);
  torch::Tensor logits = model->forward(tokens);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  const double diff = test::max_abs_diff(logits, expected);
  std::printf("max abs logit diff vs reference: %.3g\n", diff);
  EXPECT_LE(diff, 1e-4);
}

TEST(Parity, LossMatchesTheReference) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  torch::NoGradGuard no_grad;
  IFlameModel model = reference_model();
  torch::Tensor tokens = reference_tokens();
  auto ref = nlohmann::json::parse(read_file_text(test::reference_dir() + "/loss.json"));
  LossStats s = sequence_loss(model->forward(tokens), tokens, model->config.pad_token);
  const double expected = ref["loss"].get<double>();
  EXPECT_NEAR(s.loss.item<double>(), expected, 1e-5 * std::abs(expected));
  EXPECT_EQ(s.targets, ref["num_target_tokens"].get<int64_t>());
  EXPECT_NEAR(double(s.correct) / double(s.targets), ref["accuracy"].get<double>(), 1e-6);
}

TEST(Parity, EveryBlockActivationMatchesTheTrace) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  torch::NoGradGuard no_grad;
  IFlameModel model = reference_model();
  SafetensorsFile trace_file = read_safetensors(test::reference_dir() + "/trace.safetensors");
  std::vector<int64_t> token_list = nlohmann::json::parse(trace_file.metadata.at("tokens")).get<std::vector<int64_t>>();
  torch::Tensor tokens = torch::tensor(token_list, torch::kLong).unsqueeze(0);
  Trace trace;
  model->forward(tokens, &trace);
  int compared = 0;
  for (const auto& [name, data] : trace_file.tensors) {
    SCOPED_TRACE(name);
    auto it = trace.find(name);
    ASSERT_NE(it, trace.end()) << "the model records no activation named " << name;
    torch::Tensor expected = to_torch(data);
    ASSERT_EQ(it->second.sizes(), expected.sizes());
    EXPECT_LE(test::max_abs_diff(it->second, expected), 1e-4);
    ++compared;
  }
  EXPECT_GT(compared, 50);
}

TEST(Parity, RopeTablesAndSlopesMatchTheReference) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  SafetensorsFile aux = read_safetensors(test::reference_dir() + "/aux.safetensors");
  const int64_t D = std::stoll(aux.metadata.at("head_dim"));
  torch::Tensor expected_cos = to_torch(aux.tensors.at("rotary.cos"));
  RopeTable table = RopeTable::make(expected_cos.size(0), D, 1024.0, torch::kCPU);
  EXPECT_TRUE(torch::equal(RopeTable::frequencies(D, 1024.0), to_torch(aux.tensors.at("rotary.angular_freq"))));
  EXPECT_LE(test::max_abs_diff(table.cos, expected_cos), 1e-6);
  EXPECT_LE(test::max_abs_diff(table.sin, to_torch(aux.tensors.at("rotary.sin"))), 1e-6);
  torch::Tensor slopes = to_torch(aux.tensors.at("slope_rate"));
  EXPECT_TRUE(torch::equal(kernels::alibi_slopes(slopes.size(0)), slopes));
}

}  // namespace
}  // namespace iflame
