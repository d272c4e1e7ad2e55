// Model weights <-> safetensors, with the reference's key names (so the authors' released
// checkpoint loads after `iflame convert`). The architecture is inferred from the tensors.
#pragma once
#include <map>
#include <string>

#include "io/safetensors.h"
#include "model/model.h"

namespace iflame {

// Width from `embedding.weight`, SwiGLU hidden from `proj1`, blocks per stage and the
// attention pattern from which blocks carry `attn.rms_norm.weight` (linear blocks do), the
// baseline kind from `blocks.*` keys. Heads come from `__metadata__["num_heads"]` when
// present, else `default_heads`. A `_orig_mod.` prefix (torch.compile) is ignored.
ModelConfig infer_config(const SafetensorsFile& file, int64_t default_heads = 16);

// Copies every tensor into the model's parameters. Throws iflame::Error naming `path` and
// listing every missing, unexpected or wrongly shaped tensor.
void load_weights(IFlameModelImpl& model, const SafetensorsFile& file, const std::string& path);

// infer_config + construct + load_weights. `metadata` (optional) receives the file's
// `__metadata__` (the config, and e.g. the sampling defaults a shipped model carries).
IFlameModel load_model(const std::string& path, int64_t default_heads = 16,
                       std::map<std::string, std::string>* metadata = nullptr);

// Writes the parameters (float32) with the config in the metadata, atomically.
void save_model(IFlameModelImpl& model, const std::string& path,
                const std::map<std::string, std::string>& extra_metadata = {});

// torch <-> safetensors tensor conversion (float32 / int64 only where needed).
torch::Tensor to_torch(const TensorData& data);
TensorData from_torch(const torch::Tensor& tensor);

}  // namespace iflame
