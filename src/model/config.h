// Model hyperparameters (a plain struct, torch-free) and the per-layer attention pattern.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace iflame {

enum class AttnKind { Linear, Full };

// Which network: the paper's hourglass, or one of the two baselines it compares against
// (a plain stack at token resolution with full or linear attention everywhere).
enum class Arch { IFlame, Full, Linear };

// Which blocks recompute their activations in the backward instead of keeping them (training
// only; model/recompute.h): none, the linear-attention blocks, or all blocks.
enum class Recompute { None, Linear, All };
const char* recompute_name(Recompute r);
Recompute recompute_from_name(const std::string& name);  // none | linear | all; throws iflame::Error
bool recomputes(Recompute policy, AttnKind kind);         // is a block of this kind recomputed?

// One stage of blocks at one resolution. iFlame's hourglass has six (spec section 2):
//   A encoder_blocks.0 (token), B encoder_blocks.1 (vertex), C1 bottlenecke, C2 bottleneckd (face),
//   D decoder_blocks.0 (vertex), E decoder_blocks.1 (token);
// the baselines have one, `blocks`, at token resolution. Everything that walks the blocks (the
// forward, both decoders, the cache and the FLOP counter) reads this table.
struct StageSpec {
  const char* name;     // state-dict prefix of its blocks
  int64_t resolution;   // tokens per position: 1 token, 3 vertex, 9 face
  int64_t first_block;  // index of its first block in forward order (named_blocks())
  int64_t blocks;
  // The decode schedule: a stage runs when token p completes one of its positions, and runs
  // that position. Stage A runs every token; B and D when p ends a vertex; C1, C2 a face.
  bool runs_at(int64_t p) const { return (p + 1) % resolution == 0; }
  int64_t position_of(int64_t p) const { return p / resolution; }
  int64_t positions(int64_t tokens) const { return tokens / resolution; }  // tokens: a multiple of 9
};

// iFlame's stages by index into ModelConfig::stages().
enum HourglassStage : size_t { kStageA, kStageB, kStageC1, kStageC2, kStageD, kStageE };

struct ModelConfig {
  Arch arch = Arch::IFlame;
  int64_t dim = 512;         // E
  int64_t heads = 16;        // H; head dim D = E / H, divisible by 4 (half-truncated RoPE)
  int64_t vocab = 132;       // 129 coordinate levels + PAD, BOS, EOS
  int64_t ffn_hidden = 0;    // 0 = int(8/3 * E), as the reference
  int64_t blocks_per_stage = 4;
  int64_t baseline_layers = 24;  // depth of the `full` / `linear` baselines
  // Attention kinds of one stage's blocks, 'L' linear and 'F' full; repeated to fill a stage.
  std::string stage_pattern = "LLLF";
  double rms_eps = 1e-5;
  double rope_base = 1024.0;
  int64_t pad_token = 129;

  int64_t head_dim() const { return dim / heads; }
  int64_t hidden() const { return ffn_hidden > 0 ? ffn_hidden : int64_t(8.0 / 3.0 * double(dim)); }
  // Attention kind of block `index` within a stage (iFlame) or of layer `index` (baselines).
  AttnKind kind_of(int64_t index) const;
  int64_t num_layers() const { return arch == Arch::IFlame ? 6 * blocks_per_stage : baseline_layers; }
  // The stages in forward order (six for iFlame, one for the baselines).
  std::vector<StageSpec> stages() const;
  // The stage that block `block` (forward order) belongs to, and its attention kind.
  StageSpec stage_of(int64_t block) const;
  AttnKind block_kind(int64_t block) const { return kind_of(block - stage_of(block).first_block); }
  // Throws iflame::Error when inconsistent (D not divisible by 4, unknown pattern letter, ...).
  void validate() const;
  // The number of parameters the model of this config has (analytic: nothing is allocated),
  // so that a weights file can be checked against the model it asks for before building it.
  int64_t parameter_count() const;
  // Aligned `key = value` lines for logs (llama.cpp's print_info style).
  std::string describe() const;
  // Metadata stored in safetensors so that a checkpoint knows its own architecture.
  std::map<std::string, std::string> to_metadata() const;
};

const char* arch_name(Arch arch);
Arch arch_from_name(const std::string& name);

// Presets: "ref" (E=512, H=16: the paper's 75.7M model), "small" (E=256, H=8), "tiny" (E=64,
// H=4: the reference test model's size). `arch` picks iFlame or a baseline of the same width.
ModelConfig model_preset(const std::string& name, Arch arch = Arch::IFlame);

}  // namespace iflame
