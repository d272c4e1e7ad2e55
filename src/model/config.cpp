#include "model/config.h"

#include <sstream>

#include "util/error.h"

namespace iflame {

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::IFlame: return "iflame";
    case Arch::Full: return "full";
    case Arch::Linear: return "linear";
  }
  return "?";
}

Arch arch_from_name(const std::string& name) {
  if (name == "iflame") return Arch::IFlame;
  if (name == "full") return Arch::Full;
  if (name == "linear") return Arch::Linear;
  throw Error("unknown architecture '" + name + "' (expected iflame, full or linear)");
}

const char* recompute_name(Recompute r) {
  switch (r) {
    case Recompute::Linear: return "linear";
    case Recompute::All: return "all";
    default: return "none";
  }
}

Recompute recompute_from_name(const std::string& name) {
  if (name == "none") return Recompute::None;
  if (name == "linear") return Recompute::Linear;
  if (name == "all") return Recompute::All;
  throw Error("recompute must be none, linear or all, got '" + name + "'");
}

bool recomputes(Recompute policy, AttnKind kind) {
  return policy == Recompute::All || (policy == Recompute::Linear && kind == AttnKind::Linear);
}

AttnKind ModelConfig::kind_of(int64_t index) const {
  if (arch == Arch::Full) return AttnKind::Full;
  if (arch == Arch::Linear) return AttnKind::Linear;
  const char c = stage_pattern[size_t(index % int64_t(stage_pattern.size()))];
  return c == 'F' ? AttnKind::Full : AttnKind::Linear;
}

std::vector<StageSpec> ModelConfig::stages() const {
  if (arch != Arch::IFlame) return {{"blocks", 1, 0, baseline_layers}};
  static const std::pair<const char*, int64_t> hourglass[6] = {{"encoder_blocks.0", 1}, {"encoder_blocks.1", 3},
                                                               {"bottlenecke", 9},      {"bottleneckd", 9},
                                                               {"decoder_blocks.0", 3}, {"decoder_blocks.1", 1}};
  std::vector<StageSpec> out;
  for (int64_t s = 0; s < 6; ++s) out.push_back({hourglass[s].first, hourglass[s].second, s * blocks_per_stage, blocks_per_stage});
  return out;
}

StageSpec ModelConfig::stage_of(int64_t block) const {
  for (const StageSpec& s : stages()) {
    if (block >= s.first_block && block < s.first_block + s.blocks) return s;
  }
  throw Error("model: block " + std::to_string(block) + " outside the " + std::to_string(num_layers()) + " blocks");
}

void ModelConfig::validate() const {
  if (dim <= 0 || heads <= 0 || dim % heads != 0) {
    throw Error("model: width " + std::to_string(dim) + " is not divisible by " + std::to_string(heads) + " heads");
  }
  if (head_dim() % 4 != 0) throw Error("model: head dim " + std::to_string(head_dim()) + " must be divisible by 4 (RoPE)");
  if (stage_pattern.empty()) throw Error("model: empty attention pattern");
  for (char c : stage_pattern) {
    if (c != 'L' && c != 'F') throw Error(std::string("model: attention pattern letter '") + c + "' (use L or F)");
  }
  if (blocks_per_stage <= 0 || baseline_layers <= 0) throw Error("model: block counts must be positive");
  if (vocab <= pad_token) throw Error("model: vocabulary smaller than the PAD token");
}

int64_t ModelConfig::parameter_count() const {
  const int64_t E = dim, H = hidden();
  auto block = [&](AttnKind kind) {
    const int64_t attn = 4 * E * E + (kind == AttnKind::Linear ? E : 0);  // q, k, v, out (+ the heads' RMSNorm)
    const int64_t ffn = 2 * (E * H + H) + (H * E + E);                   // proj1, proj2, proj3 with biases
    return attn + ffn + 2 * E;                                            // + norm1, norm2
  };
  int64_t blocks = 0;
  for (int64_t i = 0; i < num_layers(); ++i) blocks += block(block_kind(i));
  const int64_t skip = arch == Arch::IFlame ? 2 : 0;  // skip_weights2
  return vocab * E + E + blocks + skip + (E * vocab + vocab);  // embedding, norm, blocks, output_proj
}

std::string ModelConfig::describe() const {
  std::ostringstream s;
  s << "arch          = " << arch_name(arch) << "\n"
    << "dim           = " << dim << "\n"
    << "heads         = " << heads << " (head dim " << head_dim() << ")\n"
    << "ffn_hidden    = " << hidden() << "\n"
    << "vocab         = " << vocab << "\n";
  if (arch == Arch::IFlame) {
    s << "stages        = 6 x " << blocks_per_stage << " blocks (token, vertex, face, face, vertex, token)\n"
      << "stage_pattern = " << stage_pattern << "\n";
  } else {
    s << "layers        = " << baseline_layers << " (" << (arch == Arch::Full ? "full" : "linear") << " attention)\n";
  }
  return s.str();
}

std::map<std::string, std::string> ModelConfig::to_metadata() const {
  return {{"arch", arch_name(arch)},
          {"embed_dim", std::to_string(dim)},
          {"num_heads", std::to_string(heads)},
          {"ffn_hidden", std::to_string(hidden())},
          {"num_categories", std::to_string(vocab)},
          {"blocks_per_stage", std::to_string(blocks_per_stage)},
          {"baseline_layers", std::to_string(baseline_layers)},
          {"stage_pattern", stage_pattern}};
}

ModelConfig model_preset(const std::string& name, Arch arch) {
  ModelConfig c;
  c.arch = arch;
  if (name == "ref") {
    c.dim = 512, c.heads = 16;
  } else if (name == "small") {
    c.dim = 256, c.heads = 8;
  } else if (name == "tiny") {
    c.dim = 64, c.heads = 4;
  } else {
    throw Error("unknown model preset '" + name + "' (expected ref, small or tiny)");
  }
  return c;
}

}  // namespace iflame
