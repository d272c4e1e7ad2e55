#include "model/weights.h"

#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

#include "util/error.h"

namespace iflame {

namespace {

const std::string kCompilePrefix = "_orig_mod.";

std::string strip_prefix(const std::string& name) {
  return name.rfind(kCompilePrefix, 0) == 0 ? name.substr(kCompilePrefix.size()) : name;
}

std::map<std::string, const TensorData*> by_clean_name(const SafetensorsFile& file) {
  std::map<std::string, const TensorData*> out;
  for (const auto& [name, t] : file.tensors) out[strip_prefix(name)] = &t;
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::ostringstream s;
  s << "[";
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  return s.str() + "]";
}

}  // namespace

torch::Tensor to_torch(const TensorData& data) {
  if (data.dtype == DType::I64) {
    torch::Tensor t = torch::empty(data.shape, torch::kLong);
    std::memcpy(t.data_ptr(), data.bytes.data(), data.bytes.size());
    return t;
  }
  std::vector<float> values = to_float32(data);
  torch::Tensor t = torch::empty(data.shape, torch::kFloat);
  std::memcpy(t.data_ptr(), values.data(), values.size() * sizeof(float));
  return t;
}

TensorData from_torch(const torch::Tensor& tensor) {
  torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  TensorData d;
  if (t.scalar_type() == torch::kLong) {
    d.dtype = DType::I64;
  } else {
    t = t.to(torch::kFloat);
    d.dtype = DType::F32;
  }
  d.shape = t.sizes().vec();
  const auto* p = static_cast<const uint8_t*>(t.data_ptr());
  d.bytes.assign(p, p + t.numel() * t.element_size());
  return d;
}

// A metadata number, parsed strictly: the whole text, finite, within [lo, hi].
double metadata_number(const SafetensorsFile& file, const std::string& key, double fallback, double lo, double hi) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) return fallback;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end || !std::isfinite(v) || v < lo || v > hi) {
    throw Error("metadata " + key + " = '" + it->second + "' is not a number in [" + std::to_string(lo) + ", " +
                std::to_string(hi) + "]");
  }
  return v;
}

// Limits on what a weights file may ask for (a config beyond them is not a model we train).
constexpr int64_t kMaxDim = 16384, kMaxVocab = 65539, kMaxBlocks = 512;

ModelConfig infer_config(const SafetensorsFile& file, int64_t default_heads) {
  const auto tensors = by_clean_name(file);
  auto get = [&](const std::string& name) -> const TensorData& {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw Error("weights have no '" + name + "' tensor: not an iFlame checkpoint");
    return *it->second;
  };
  ModelConfig c;
  const TensorData& emb = get("embedding.weight");
  if (emb.shape.size() != 2) throw Error("embedding.weight must be 2-D, is " + shape_text(emb.shape));
  c.vocab = emb.shape[0];
  c.dim = emb.shape[1];
  if (c.vocab < 4 || c.vocab > kMaxVocab || c.dim < 4 || c.dim > kMaxDim) {
    throw Error("embedding.weight " + shape_text(emb.shape) + " is not a plausible [vocabulary, width] (at most [" +
                std::to_string(kMaxVocab) + ", " + std::to_string(kMaxDim) + "])");
  }
  c.heads = int64_t(metadata_number(file, "num_heads", double(default_heads), 1, 1024));
  c.rms_eps = metadata_number(file, "rms_eps", c.rms_eps, 1e-12, 1.0);
  c.pad_token = c.vocab - 3;

  // Count blocks per group from the key names: "<group>.<i>.attn.q_proj.weight".
  const std::regex block_re(R"(^(encoder_blocks\.\d+|decoder_blocks\.\d+|bottlenecke|bottleneckd|blocks)\.(\d+)\.attn\.q_proj\.weight$)");
  std::map<std::string, std::set<int64_t>> indices;
  for (const auto& [name, t] : tensors) {
    std::smatch m;
    if (!std::regex_match(name, m, block_re)) continue;
    if (m[2].length() > 6) throw Error("block index in '" + name + "' is implausibly large");
    indices[m[1]].insert(std::stoll(m[2]));
  }
  // Blocks are numbered 0..n-1 in every group: a gap or a stray index is not a model we wrote.
  std::map<std::string, int64_t> counts;
  for (const auto& [group, found] : indices) {
    const int64_t n = int64_t(found.size());
    if (*found.rbegin() != n - 1) {
      int64_t gap = 0;
      while (found.count(gap)) ++gap;
      throw Error(group + " blocks are not numbered 0.." + std::to_string(n - 1) + ": block " + std::to_string(gap) +
                  " is missing, the highest is " + std::to_string(*found.rbegin()));
    }
    if (n > kMaxBlocks) throw Error(group + " has " + std::to_string(n) + " blocks, more than " + std::to_string(kMaxBlocks));
    counts[group] = n;
  }
  auto is_linear = [&](const std::string& prefix) { return tensors.count(prefix + ".attn.rms_norm.weight") > 0; };
  if (counts.count("blocks")) {
    c.baseline_layers = counts["blocks"];
    bool all_linear = true, all_full = true;
    for (int64_t i = 0; i < c.baseline_layers; ++i) {
      (is_linear("blocks." + std::to_string(i)) ? all_full : all_linear) = false;
    }
    if (!all_linear && !all_full) throw Error("baseline checkpoint mixes linear and full blocks");
    c.arch = all_linear ? Arch::Linear : Arch::Full;
  } else {
    c.arch = Arch::IFlame;
    c.blocks_per_stage = counts.count("bottlenecke") ? counts["bottlenecke"] : 0;
    if (c.blocks_per_stage == 0) throw Error("weights have no bottlenecke blocks: not an iFlame checkpoint");
    c.stage_pattern.clear();
    for (int64_t i = 0; i < c.blocks_per_stage; ++i) {
      c.stage_pattern += is_linear("encoder_blocks.0." + std::to_string(i)) ? 'L' : 'F';
    }
  }
  const std::string first_block = c.arch == Arch::IFlame ? "encoder_blocks.0.0" : "blocks.0";
  const TensorData& proj1 = get(first_block + ".feed_forward.proj1.weight");
  if (proj1.shape.size() != 2 || proj1.shape[1] != c.dim || proj1.shape[0] < 1 || proj1.shape[0] > 16 * c.dim) {
    throw Error(first_block + ".feed_forward.proj1.weight " + shape_text(proj1.shape) + " does not fit width " +
                std::to_string(c.dim));
  }
  c.ffn_hidden = proj1.shape[0];
  c.validate();
  // Every parameter of the model is a tensor of the file, so a config whose model is far larger
  // than the file's values is refused before anything is allocated for it (a few tensors too
  // many or too few are left to load_weights, which names them).
  int64_t values = 0;
  for (const auto& [name, t] : tensors) values += t->numel();
  if (c.parameter_count() > 2 * values + 4096) {
    throw Error("the weights describe a model of " + std::to_string(c.parameter_count()) + " parameters but hold " +
                std::to_string(values) + " values");
  }
  return c;
}

void load_weights(IFlameModelImpl& model, const SafetensorsFile& file, const std::string& path) {
  const auto tensors = by_clean_name(file);
  std::vector<std::string> missing, wrong_shape;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters()) {
    auto it = tensors.find(item.key());
    if (it == tensors.end()) {
      missing.push_back(item.key());
      continue;
    }
    used.insert(item.key());
    if (it->second->shape != item.value().sizes().vec()) {
      wrong_shape.push_back(item.key() + " is " + shape_text(it->second->shape) + ", expected " +
                            shape_text(item.value().sizes().vec()));
      continue;
    }
    item.value().copy_(to_torch(*it->second));
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : tensors) {
    if (!used.count(name)) unexpected.push_back(name);
  }
  if (missing.empty() && wrong_shape.empty() && unexpected.empty()) return;
  std::ostringstream msg;
  msg << "weights do not fit the model (" << arch_name(model.config.arch) << ", E=" << model.config.dim << ")";
  auto list = [&](const char* what, const std::vector<std::string>& names) {
    if (names.empty()) return;
    msg << "; " << names.size() << " " << what << ":";
    for (size_t i = 0; i < names.size() && i < 8; ++i) msg << " " << names[i];
    if (names.size() > 8) msg << " ...";
  };
  list("missing", missing);
  list("wrongly shaped", wrong_shape);
  list("unexpected", unexpected);
  throw Error(path, msg.str());
}

IFlameModel load_model(const std::string& path, int64_t default_heads, std::map<std::string, std::string>* metadata) {
  const SafetensorsFile file = read_safetensors(path);
  if (metadata) *metadata = file.metadata;
  ModelConfig config;
  try {
    config = infer_config(file, default_heads);
  } catch (const Error& e) {
    throw Error(path, e.what());
  }
  IFlameModel model(config);
  load_weights(*model, file, path);
  return model;
}

void save_model(IFlameModelImpl& model, const std::string& path, const std::map<std::string, std::string>& extra) {
  SafetensorsFile file;
  for (const auto& item : model.named_parameters()) file.tensors[item.key()] = from_torch(item.value());
  file.metadata = model.config.to_metadata();
  for (const auto& [k, v] : extra) file.metadata[k] = v;
  write_safetensors(file, path);
}

}  // namespace iflame
