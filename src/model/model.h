// The iFlame network (spec section 2) and the two baselines, behind one module.
//
//   tokens (B, L) -> embedding -> RMSNorm ------------------------------- x (B, L, E)
//   A  encoder_blocks.0  token  res  (B, L,   E) --- mean of 3 --->
//   B  encoder_blocks.1  vertex res  (B, L/3, E) --- mean of 3 --->
//   C1 bottlenecke       face   res  (B, L/9, E)
//   C2 bottleneckd       face   res  (B, L/9, E) --- repeat 3, shift right 2, * w0, + B out --->
//   D  decoder_blocks.0  vertex res  (B, L/3, E) --- repeat 3, shift right 2, * w1, + A out --->
//   E  decoder_blocks.1  token  res  (B, L,   E) -> output_proj -> logits (B, L, V)
//
// Baselines (`full`, `linear`): embedding -> RMSNorm -> `blocks.0..N-1` at token resolution ->
// output_proj; same block code, every layer full or every layer linear attention.
#pragma once
#include "model/config.h"
#include "model/layers.h"

namespace iflame {

class HybridCache;  // model/cache.h

struct IFlameModelImpl : torch::nn::Module {
  explicit IFlameModelImpl(const ModelConfig& config);

  // tokens: (B, L) int64, any L (padded internally to a multiple of 9; causal, so the padding
  // never reaches earlier positions) -> logits (B, L, V) in float32.
  // With `capture` (a prefill; L must be a multiple of 9 and fit the cache), the cache is
  // filled so that decoding can continue at position L.
  torch::Tensor forward(const torch::Tensor& tokens, Trace* trace = nullptr, HybridCache* capture = nullptr);

  // The six iFlame stages' blocks in order A, B, C1, C2, D, E (empty for the baselines); their
  // names and resolutions are config.stages().
  std::vector<torch::nn::ModuleList> stages() const;
  // All blocks in forward order, and their state-dict prefixes ("encoder_blocks.0.3", ...).
  std::vector<std::pair<std::string, Block>> named_blocks() const;
  int64_t num_parameters() const;

  // RoPE tables for at least `positions` positions, grown on demand and kept on the device.
  const RopeTable& rope(int64_t positions, const torch::Device& device);

  ModelConfig config;
  // Which blocks recompute their activations in the backward instead of keeping them (a
  // training setting, not part of the architecture or the weights; model/recompute.h).
  Recompute recompute = Recompute::None;
  torch::nn::Embedding embedding{nullptr};
  RMSNorm norm{nullptr};
  torch::Tensor skip_weights2;  // (2,): w0 for the face -> vertex skip, w1 for vertex -> token
  torch::nn::ModuleList encoder_blocks{nullptr}, decoder_blocks{nullptr};
  torch::nn::ModuleList bottlenecke{nullptr}, bottleneckd{nullptr};
  torch::nn::ModuleList blocks{nullptr};  // baselines only
  torch::nn::Linear output_proj{nullptr};

 private:
  torch::Tensor run_stage(const torch::nn::ModuleList& stage, const StageSpec& spec, torch::Tensor x, Trace* trace,
                          HybridCache* capture);
  RopeTable rope_;
};
TORCH_MODULE(IFlameModel);

// Hourglass resampling, (B, T, E) layout.
torch::Tensor downsample3(const torch::Tensor& x);             // mean of each 3 -> (B, T/3, E)
torch::Tensor upsample3_shift2(const torch::Tensor& x);        // repeat x3, shift right by 2 -> (B, 3T, E)

}  // namespace iflame
