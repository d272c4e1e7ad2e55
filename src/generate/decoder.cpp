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

// Runs blocks [first, first + count) of the flattened block list on one position.
Tensor run_blocks(std::vector<std::pair<std::string, Block>>& blocks, DecodeCache& cache, int64_t first,
                  int64_t count, Tensor x, const RopeTable& rope, int64_t position) {
  Tensor cos = rope.cos.narrow(0, position, 1), sin = rope.sin.narrow(0, position, 1);
  for (int64_t i = first; i < first + count; ++i) x = blocks[size_t(i)].second->step(x, cos, sin, cache.layers[size_t(i)]);
  return x;
}

}  // namespace

torch::Tensor decode_step(IFlameModelImpl& model, DecodeCache& cache, const torch::Tensor& token) {
  torch::NoGradGuard no_grad;
  if (fast_decode_supported(model, cache)) return fast_decode_step(model, cache, token);
  const int64_t p = cache.position;
  if (p >= cache.max_tokens()) throw Error("decode_step: the cache holds " + std::to_string(cache.max_tokens()) + " tokens");
  const int64_t B = token.size(0);
  // Block lists are cheap handles; keep one per model to avoid rebuilding it every token.
  thread_local const IFlameModelImpl* blocks_owner = nullptr;
  thread_local std::vector<std::pair<std::string, Block>> blocks;
  if (blocks_owner != &model) {
    blocks = model.named_blocks();
    blocks_owner = &model;
  }
  // The whole capacity at once: the table is rebuilt whenever it grows.
  const RopeTable& rope = model.rope(cache.max_tokens(), token.device());
  Tensor x = model.norm(model.embedding(token.view({B, 1})));  // (B, 1, E)

  Tensor h;
  if (model.config.arch != Arch::IFlame) {
    h = run_blocks(blocks, cache, 0, int64_t(blocks.size()), x, rope, p);
  } else {
    const int64_t n = model.config.blocks_per_stage;
    Tensor a = run_blocks(blocks, cache, 0, n, x, rope, p);  // stage A, token p
    cache.a_ring.select(1, p % 3).copy_(a.select(1, 0));
    if ((p + 1) % 3 == 0) {
      const int64_t j = p / 3;  // the vertex this token completes
      Tensor b = run_blocks(blocks, cache, n, n, cache.a_ring.mean(1, true).to(a.scalar_type()), rope, j);  // stage B
      cache.b_ring.select(1, j % 3).copy_(b.select(1, 0));
      if ((p + 1) % 9 == 0) {
        const int64_t f = p / 9;  // the face this token completes: C1 + C2 (before D)
        Tensor c = run_blocks(blocks, cache, 2 * n, 2 * n, cache.b_ring.mean(1, true).to(b.scalar_type()), rope, f);
        cache.latest_c.copy_(c.select(1, 0));
      }
      // Vertex j sees face floor((j-2)/3): the latest C output (zeros before the first face).
      Tensor d_in = model.skip_weights2[0] * cache.latest_c.unsqueeze(1).to(b.scalar_type()) + b;
      Tensor d = run_blocks(blocks, cache, 4 * n, n, d_in, rope, j);  // stage D
      cache.latest_d.copy_(d.select(1, 0));
    }
    // Token p sees vertex floor((p-2)/3): the latest D output (zeros before the first vertex).
    Tensor e_in = model.skip_weights2[1] * cache.latest_d.unsqueeze(1).to(a.scalar_type()) + a;
    h = run_blocks(blocks, cache, 5 * n, n, e_in, rope, p);  // stage E
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
