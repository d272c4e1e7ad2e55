// Weights files that do not describe a model we wrote are refused before the model is built:
// stray or missing block indices, implausible sizes, bad metadata, a model larger than the file.
#include "model/weights.h"

#include <gtest/gtest.h>

#include "error_text.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

SafetensorsFile reference_weights() { return read_safetensors(test::reference_dir() + "/weights.safetensors"); }

TensorData tiny_tensor() {
  TensorData t;
  t.dtype = DType::F32;
  t.shape = {1};
  t.bytes.assign(4, 0);
  return t;
}

std::string refusal(const SafetensorsFile& file) {
  return test::error_text([&] { (void)infer_config(file); });
}

TEST(Weights, ParameterCountIsTheModelsForEveryArchitecture) {
  for (const Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
    ModelConfig c = model_preset("tiny", arch);
    c.baseline_layers = 3;
    IFlameModel model(c);
    EXPECT_EQ(c.parameter_count(), model->num_parameters()) << arch_name(arch);
    c.stage_pattern = "LF";
    c.blocks_per_stage = 3;
    c.ffn_hidden = 40;
    IFlameModel other(c);
    EXPECT_EQ(c.parameter_count(), other->num_parameters()) << arch_name(arch);
  }
}

TEST(Weights, AStrayBlockIndexIsRefusedBeforeAnythingIsBuilt) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  SafetensorsFile file = reference_weights();
  EXPECT_EQ(refusal(file), "");
  file.tensors["bottlenecke.999999.attn.q_proj.weight"] = tiny_tensor();
  const std::string why = refusal(file);
  EXPECT_NE(why.find("bottlenecke blocks are not numbered"), std::string::npos) << why;
  file.tensors.erase("bottlenecke.999999.attn.q_proj.weight");
  file.tensors["bottlenecke.99999999999.attn.q_proj.weight"] = tiny_tensor();
  EXPECT_NE(refusal(file).find("implausibly large"), std::string::npos);
}

TEST(Weights, BadMetadataAndImplausibleShapesAreErrors) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  SafetensorsFile file = reference_weights();
  file.metadata["num_heads"] = "sixteen";
  EXPECT_NE(refusal(file).find("num_heads"), std::string::npos);
  file.metadata["num_heads"] = "1e9";
  EXPECT_NE(refusal(file).find("num_heads"), std::string::npos);
  file = reference_weights();
  file.metadata["rms_eps"] = "nan";
  EXPECT_NE(refusal(file).find("rms_eps"), std::string::npos);

  // A wide embedding with few values behind the rest: the model would be far larger than the file.
  file = reference_weights();
  TensorData& emb = file.tensors.at("embedding.weight");
  emb.shape = {132, 4096};
  emb.bytes.assign(size_t(132 * 4096 * 4), 0);
  file.tensors.at("encoder_blocks.0.0.feed_forward.proj1.weight").shape = {10, 4096};
  file.tensors.at("encoder_blocks.0.0.feed_forward.proj1.weight").bytes.assign(10 * 4096 * 4, 0);
  const std::string why = refusal(file);
  EXPECT_NE(why.find("parameters but hold"), std::string::npos) << why;
  emb.shape = {3, 8};
  emb.bytes.assign(3 * 8 * 4, 0);
  EXPECT_NE(refusal(file).find("not a plausible"), std::string::npos);
}

}  // namespace
}  // namespace iflame
