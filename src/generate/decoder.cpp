#include "generate/decoder.h"

#include "generate/fast_decode.h"
#include "util/error.h"

namespace iflame {

using torch::Tensor;

torch::Tensor prefill(IFlameModelImpl& model, DecodeCache& cache, const torch::Tensor& prompt) {
  torch::NoGradGuard no_grad;
  cache.reset();
  return model.forward(prompt, nullptr, &cache);
}

namespace {

// Runs the blocks of `stage` on its position of token p (the flattened block list, forward order).
Tensor run_stage(std::vector<std::pair<std::string, Block>>& blocks, DecodeCache& cache, const StageSpec& stage,
                 Tensor x, const RopeTable& rope, int64_t p) {
  const int64_t position = stage.position_of(p);
  Tensor cos = rope.cos.narrow(0, position, 1), sin = rope.sin.narrow(0, position, 1);
  for (int64_t i = stage.first_block; i < stage.first_block + stage.blocks; ++i) {
    x = blocks[size_t(i)].second->step(x, cos, sin, cache.layers[size_t(i)]);
  }
  return x;
}

}  // namespace

torch::Tensor decode_step(IFlameModelImpl& model, DecodeCache& cache, const torch::Tensor& token) {
  torch::NoGradGuard no_grad;
  if (fast_decode_supported(model, cache)) return fast_decode_step(model, cache, token);
  const int64_t p = cache.position;
  if (p >= cache.max_tokens()) throw Error("decode_step: the cache holds " + std::to_string(cache.max_tokens()) + " tokens");
  const int64_t B = token.size(0);
  // A microsecond per token, against the ~1000 LibTorch ops of this path; a list kept between
  // calls could outlive its model and be taken for another allocated at the same address.
  std::vector<std::pair<std::string, Block>> blocks = model.named_blocks();
  // The whole capacity at once: the table is rebuilt whenever it grows.
  const RopeTable& rope = model.rope(cache.max_tokens(), token.device());
  Tensor x = model.norm(model.embedding(token.view({B, 1})));  // (B, 1, E)

  const std::vector<StageSpec> stages = model.config.stages();
  auto run = [&](size_t s, Tensor in) { return run_stage(blocks, cache, stages[s], std::move(in), rope, p); };
  Tensor h;
  if (model.config.arch != Arch::IFlame) {
    h = run(0, x);
  } else {
    Tensor a = run(kStageA, x);  // (B, 1, E)
    cache.a_ring.select(1, p % 3).copy_(a.select(1, 0));  // slot: the token within its vertex
    if (stages[kStageB].runs_at(p)) {
      Tensor b = run(kStageB, cache.a_ring.mean(1, true).to(a.scalar_type()));
      cache.b_ring.select(1, stages[kStageB].position_of(p) % 3).copy_(b.select(1, 0));  // the vertex within its face
      if (stages[kStageC1].runs_at(p)) {  // C1 + C2 on the face p completes (before D)
        Tensor c = run(kStageC2, run(kStageC1, cache.b_ring.mean(1, true).to(b.scalar_type())));
        cache.latest_c.copy_(c.select(1, 0));
      }
      // Vertex j sees face floor((j-2)/3): the latest C output (zeros before the first face).
      h = run(kStageD, model.skip_weights2[0] * cache.latest_c.unsqueeze(1).to(b.scalar_type()) + b);
      cache.latest_d.copy_(h.select(1, 0));
    }
    // Token p sees vertex floor((p-2)/3): the latest D output (zeros before the first vertex).
    h = run(kStageE, model.skip_weights2[1] * cache.latest_d.unsqueeze(1).to(a.scalar_type()) + a);
  }
  cache.position = p + 1;
  return model.output_proj(h.select(1, 0)).to(torch::kFloat);  // (B, V)
}

torch::Tensor cached_logits(IFlameModelImpl& model, const torch::Tensor& tokens, int64_t prompt_tokens) {
  torch::NoGradGuard no_grad;
  const int64_t B = tokens.size(0), L = tokens.size(1);
  if (prompt_tokens <= 0 || prompt_tokens % 9 != 0 || prompt_tokens > L) {
    throw Error("the prompt must be a positive multiple of 9 tokens, at most the sequence length");
  }
  DecodeCache cache(model.config, B, (L + 8) / 9 * 9, tokens.device());
  std::vector<Tensor> out = {prefill(model, cache, tokens.narrow(1, 0, prompt_tokens))};
  for (int64_t p = prompt_tokens; p < L; ++p) out.push_back(decode_step(model, cache, tokens.select(1, p)).unsqueeze(1));
  return torch::cat(out, 1);  // (B, L, V)
}

}  // namespace iflame
