#include "model/model.h"

#include "model/cache.h"
#include "model/recompute.h"
#include "util/error.h"

namespace iflame {

using torch::Tensor;
namespace F = torch::nn::functional;

Tensor downsample3(const Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), E = x.size(2);
  return x.view({B, T / 3, 3, E}).mean(2);
}

Tensor upsample3_shift2(const Tensor& x) {
  Tensor up = x.repeat_interleave(3, 1);  // (B, 3T, E)
  // Shift right by 2 along time: position t now carries group floor((t-2)/3); zeros in front.
  return F::pad(up, F::PadFuncOptions({0, 0, 2, 0})).narrow(1, 0, up.size(1));
}

IFlameModelImpl::IFlameModelImpl(const ModelConfig& cfg) : config(cfg) {
  config.validate();
  embedding = register_module("embedding", torch::nn::Embedding(config.vocab, config.dim));
  norm = register_module("norm", RMSNorm(config.dim, config.rms_eps));
  auto make_stage = [&](int64_t count) {
    torch::nn::ModuleList stage;
    for (int64_t i = 0; i < count; ++i) stage->push_back(Block(config, config.kind_of(i)));
    return stage;
  };
  if (config.arch == Arch::IFlame) {
    skip_weights2 = register_parameter("skip_weights2", torch::ones({2}));
    encoder_blocks = register_module("encoder_blocks", torch::nn::ModuleList());
    encoder_blocks->push_back(make_stage(config.blocks_per_stage));
    encoder_blocks->push_back(make_stage(config.blocks_per_stage));
    bottlenecke = register_module("bottlenecke", make_stage(config.blocks_per_stage));
    bottleneckd = register_module("bottleneckd", make_stage(config.blocks_per_stage));
    decoder_blocks = register_module("decoder_blocks", torch::nn::ModuleList());
    decoder_blocks->push_back(make_stage(config.blocks_per_stage));
    decoder_blocks->push_back(make_stage(config.blocks_per_stage));
  } else {
    blocks = register_module("blocks", make_stage(config.baseline_layers));
  }
  output_proj = register_module("output_proj", torch::nn::Linear(config.dim, config.vocab));
}

std::vector<torch::nn::ModuleList> IFlameModelImpl::stages() const {
  if (config.arch != Arch::IFlame) return {};
  auto sub = [](const torch::nn::ModuleList& list, size_t i) {
    return torch::nn::ModuleList(list->ptr<torch::nn::ModuleListImpl>(i));
  };
  return {sub(encoder_blocks, 0), sub(encoder_blocks, 1), bottlenecke, bottleneckd, sub(decoder_blocks, 0),
          sub(decoder_blocks, 1)};
}

std::vector<std::pair<std::string, Block>> IFlameModelImpl::named_blocks() const {
  std::vector<std::pair<std::string, Block>> out;
  const std::vector<torch::nn::ModuleList> lists = config.arch == Arch::IFlame ? stages() : std::vector{blocks};
  const std::vector<StageSpec> specs = config.stages();
  for (size_t s = 0; s < specs.size(); ++s) {
    for (size_t i = 0; i < lists[s]->size(); ++i) {
      out.emplace_back(std::string(specs[s].name) + "." + std::to_string(i), Block(lists[s]->ptr<BlockImpl>(i)));
    }
  }
  return out;
}

int64_t IFlameModelImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

const RopeTable& IFlameModelImpl::rope(int64_t positions, const torch::Device& device) {
  if (!rope_.cos.defined() || rope_.cos.size(0) < positions || rope_.cos.device() != device) {
    const int64_t n = std::max<int64_t>(positions, rope_.cos.defined() ? rope_.cos.size(0) : 0);
    rope_ = RopeTable::make(n, config.head_dim(), config.rope_base, device);
  }
  return rope_;
}

Tensor IFlameModelImpl::run_stage(const torch::nn::ModuleList& stage, const StageSpec& spec, Tensor x, Trace* trace,
                                  HybridCache* capture) {
  const int64_t T = x.size(1);
  const RopeTable& table = rope(T, x.device());
  Tensor cos = table.cos.narrow(0, 0, T), sin = table.sin.narrow(0, 0, T);
  const std::string name = spec.name;
  if (trace) (*trace)[name + ".0.input"] = x.detach();
  for (size_t i = 0; i < stage->size(); ++i) {
    LayerCache* layer = capture ? &capture->layers[size_t(spec.first_block) + i] : nullptr;
    BlockImpl& block = *stage->ptr<BlockImpl>(i);
    if (!trace && !layer && recomputes(recompute, block.attn->kind)) {
      x = checkpointed_block(block, x, cos, sin);
    } else {
      x = block.forward(x, cos, sin, trace, name + "." + std::to_string(i), layer);
    }
  }
  return x;
}

Tensor IFlameModelImpl::forward(const Tensor& tokens, Trace* trace, HybridCache* capture) {
  TORCH_CHECK(tokens.dim() == 2, "tokens must be (B, L)");
  const int64_t L = tokens.size(1);
  if (capture && (L % 9 != 0 || L > capture->max_tokens() || tokens.size(0) != capture->batch())) {
    throw Error("prefill needs a prompt of a multiple of 9 tokens that fits the cache (got " + std::to_string(L) + ")");
  }
  const std::vector<StageSpec> spec = config.stages();
  Tensor x = norm(embedding(tokens));  // (B, L, E)
  if (trace) (*trace)["embed_norm_out"] = x.detach();
  Tensor h;
  if (config.arch != Arch::IFlame) {
    h = run_stage(blocks, spec[0], x, trace, capture);
  } else {
    const int64_t padded = (L + 8) / 9 * 9;
    if (padded != L) x = F::pad(x, F::PadFuncOptions({0, 0, 0, padded - L}));
    auto st = stages();
    auto run = [&](HourglassStage s, Tensor in) { return run_stage(st[s], spec[s], std::move(in), trace, capture); };
    Tensor a = run(kStageA, x);  // (B, L, E)
    Tensor a_down = downsample3(a);
    if (trace) (*trace)["downsamplers.0.output_BCL"] = a_down.transpose(1, 2).detach();
    Tensor b = run(kStageB, a_down);  // (B, L/3, E)
    Tensor b_down = downsample3(b);
    if (trace) (*trace)["downsamplers.1.output_BCL"] = b_down.transpose(1, 2).detach();
    Tensor c = run(kStageC2, run(kStageC1, b_down));  // (B, L/9, E)
    if (trace) (*trace)["upsamplers.0.output_BCL"] = c.repeat_interleave(3, 1).transpose(1, 2).detach();
    Tensor d = run(kStageD, skip_weights2[0] * upsample3_shift2(c) + b);  // (B, L/3, E)
    if (trace) (*trace)["upsamplers.1.output_BCL"] = d.repeat_interleave(3, 1).transpose(1, 2).detach();
    h = run(kStageE, skip_weights2[1] * upsample3_shift2(d) + a);  // (B, L, E)
    if (padded != L) h = h.narrow(1, 0, L);
    if (capture) {
      torch::NoGradGuard no_grad;
      capture->latest_c.copy_(c.select(1, c.size(1) - 1));
      capture->latest_d.copy_(d.select(1, d.size(1) - 1));
    }
  }
  if (capture) capture->position = L;
  Tensor logits = output_proj(h).to(torch::kFloat);  // (B, L, V)
  if (trace) (*trace)["logits"] = logits.detach();
  return logits;
}

}  // namespace iflame
