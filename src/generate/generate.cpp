#include "generate/generate.h"

#include <chrono>

#include "generate/decoder.h"
#include "generate/fast_decode.h"
#include "util/error.h"

namespace iflame {

using torch::Tensor;

const char* finish_name(Finish finish) {
  switch (finish) {
    case Finish::kEos: return "eos";
    case Finish::kMaxFaces: return "max_faces";
    case Finish::kMaxNewTokens: return "max_new_tokens";
    case Finish::kCancelled: return "cancelled";
  }
  return "?";
}

int64_t SequenceLimits::limit() const {
  int64_t n = prompt + (max_faces + 1) * kTokensPerFace;  // faces + the EOS row
  if (max_new_tokens > 0) n = std::min(n, prompt + max_new_tokens);
  return n;
}

bool append_token(GeneratedSequence& seq, int64_t token, const SequenceLimits& limits, const TokenizerConfig& tokenizer) {
  const int64_t t = int64_t(seq.tokens.size()), P = limits.prompt;
  seq.tokens.push_back(token);
  ++seq.new_tokens;
  const bool eos = limits.stop_at_eos && token == tokenizer.eos();
  // The face limit: after max_faces complete rows, close with an EOS row.
  const bool full = limits.stop_at_eos && (t + 1) % kTokensPerFace == 0 && (t + 1 - P) / kTokensPerFace >= limits.max_faces;
  if (!eos && !full && t + 1 < limits.limit()) return false;
  if (eos || full) {
    seq.tokens.resize((seq.tokens.size() + 8) / 9 * 9, tokenizer.eos());  // complete the EOS row
    if (!eos) seq.tokens.insert(seq.tokens.end(), kTokensPerFace, tokenizer.eos());
    seq.eos_row = true;
  }
  const bool new_token_cap = limits.max_new_tokens > 0 && t + 1 - P >= limits.max_new_tokens;
  seq.finished = eos ? Finish::kEos : (full || !new_token_cap) ? Finish::kMaxFaces : Finish::kMaxNewTokens;
  return true;
}

namespace {

using OnDone = std::function<void(int64_t, const GeneratedSequence&)>;

// The fused CPU decoder's path: a fixed pool of `batch` slots; each sample takes a free slot,
// decodes at its own position (fast_decode_rows) and frees it when it ends, so the batch stays
// full while samples remain instead of draining to its longest sequence. The prompt is shared:
// prefilled once, copied into each slot. Sample i draws from make_generator(seed, i) and a
// row's logits do not depend on its neighbours, so results equal the lockstep path's.
void generate_continuous(IFlameModelImpl& model, const TokenizerConfig& tokenizer, const GenerateOptions& options,
                         const std::vector<int64_t>& prompt, const SequenceLimits& limits, DecodeCache& cache,
                         std::vector<GeneratedSequence>& results, GenerateStats* stats, const OnDone& on_done) {
  const int64_t P = limits.prompt;
  DecodeCache prompt_cache(model.config, 1, P, torch::kCPU, cache.kv_dtype());
  const Tensor prompt_t = torch::tensor(prompt, torch::kLong).unsqueeze(0);                     // (1, P)
  const Tensor prompt_logits = prefill(model, prompt_cache, prompt_t).select(1, P - 1);  // (1, V)

  struct Slot {
    int64_t sample = -1;  // -1: free
    std::vector<at::Generator> generator;
    Tensor logits;  // (1, V): the next token's
  };
  std::vector<Slot> slots(size_t(cache.batch()));
  int64_t next_sample = 0, busy = 0;
  for (;;) {
    for (size_t r = 0; r < slots.size() && next_sample < options.count; ++r) {
      if (slots[r].sample >= 0) continue;
      slots[r] = Slot{next_sample, {make_generator(options.seed, uint64_t(next_sample))}, prompt_logits};
      cache.copy_row_from(prompt_cache, 0, int64_t(r));
      ++next_sample, ++busy;
    }
    if (busy == 0) break;
    std::vector<int64_t> rows, positions, tokens;
    for (size_t r = 0; r < slots.size(); ++r) {
      Slot& slot = slots[r];
      if (slot.sample < 0) continue;
      GeneratedSequence& seq = results[size_t(slot.sample)];
      const int64_t t = int64_t(seq.tokens.size());
      const int64_t token = sample_tokens(slot.logits, t, options.sampling, tokenizer, slot.generator,
                                          stats ? &stats->rules : nullptr, {seq.tokens.data()})
                                .item<int64_t>();
      if (stats) ++stats->tokens;
      if (append_token(seq, token, limits, tokenizer)) {
        if (on_done) on_done(slot.sample, seq);
        slot = Slot{};
        --busy;
        continue;
      }
      rows.push_back(int64_t(r));
      positions.push_back(t);
      tokens.push_back(token);
    }
    if (rows.empty()) continue;
    const Tensor logits = fast_decode_rows(model, cache, rows, positions, tokens);  // (rows, V)
    for (size_t i = 0; i < rows.size(); ++i) slots[size_t(rows[i])].logits = logits.narrow(0, int64_t(i), 1);
  }
}

}  // namespace

std::vector<GeneratedSequence> generate(IFlameModelImpl& model, const TokenizerConfig& tokenizer,
                                        const GenerateOptions& options, GenerateStats* stats,
                                        const std::function<void(int64_t, const GeneratedSequence&)>& on_done) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> prompt = options.prompt;
  if (prompt.empty()) prompt.assign(kTokensPerFace, tokenizer.bos());
  if (prompt.size() % kTokensPerFace != 0) throw Error("a prompt must be a multiple of 9 tokens");
  const int64_t P = int64_t(prompt.size());
  const SequenceLimits limits{P, options.max_faces, options.max_new_tokens, options.stop_at_eos};
  const int64_t limit = limits.limit();
  const int64_t capacity = (limit + 8) / 9 * 9;
  const auto device = model.output_proj->weight.device();
  const auto start = std::chrono::steady_clock::now();

  std::vector<GeneratedSequence> results(size_t(options.count));
  for (auto& seq : results) seq.tokens = prompt;
  const auto kv_dtype = options.bf16 ? torch::kBFloat16 : torch::kFloat;
  if (options.continuous && options.count > 0 && fast_decode_supported(model)) {
    DecodeCache cache(model.config, std::min(options.batch, options.count), capacity, device, kv_dtype);
    generate_continuous(model, tokenizer, options, prompt, limits, cache, results, stats, on_done);
    if (stats) {
      stats->peak_cache_bytes = std::max(stats->peak_cache_bytes, cache.bytes());
      stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    return results;
  }
  // Elsewhere (CUDA, the per-op path): batches in lockstep, each drained to its last sequence.
  for (int64_t first = 0; first < options.count; first += options.batch) {
    const int64_t B = std::min(options.batch, options.count - first);
    std::vector<int64_t> lane_of(static_cast<size_t>(B));  // active lane -> sample index
    std::vector<at::Generator> gens;
    for (int64_t i = 0; i < B; ++i) {
      lane_of[size_t(i)] = first + i;
      gens.push_back(make_generator(options.seed, uint64_t(first + i)));
    }
    DecodeCache cache(model.config, B, capacity, device, kv_dtype);
    Tensor prompt_t = torch::tensor(prompt, torch::kLong).to(device).unsqueeze(0).expand({B, P}).contiguous();
    Tensor logits = prefill(model, cache, prompt_t).select(1, P - 1);  // (B, V)
    if (stats) stats->peak_cache_bytes = std::max(stats->peak_cache_bytes, cache.bytes());

    for (int64_t t = P; t < limit && !lane_of.empty(); ++t) {
      // Each row's tokens so far, for the canonical-order mask and its statistics.
      std::vector<const int64_t*> history;
      if (options.sampling.order || options.sampling.no_repeat_faces || options.sampling.no_degenerate_faces ||
          options.sampling.escape_loops || stats) {
        for (int64_t lane : lane_of) history.push_back(results[size_t(lane)].tokens.data());
      }
      Tensor next = sample_tokens(logits, t, options.sampling, tokenizer, gens, stats ? &stats->rules : nullptr, history);
      std::vector<int64_t> keep;
      const int64_t* next_tokens = next.data_ptr<int64_t>();
      for (size_t lane = 0; lane < lane_of.size(); ++lane) {
        GeneratedSequence& seq = results[size_t(lane_of[lane])];
        if (append_token(seq, next_tokens[lane], limits, tokenizer)) {
          if (on_done) on_done(lane_of[lane], seq);
        } else {
          keep.push_back(int64_t(lane));
        }
      }
      if (stats) stats->tokens += int64_t(lane_of.size());
      if (keep.empty()) break;
      if (keep.size() != lane_of.size()) {  // free the finished sequences' slots
        Tensor rows = torch::tensor(keep, torch::kLong);
        cache.keep_rows(rows);
        next = next.index_select(0, rows);
        std::vector<int64_t> lanes;
        std::vector<at::Generator> kept_gens;
        for (int64_t k : keep) {
          lanes.push_back(lane_of[size_t(k)]);
          kept_gens.push_back(gens[size_t(k)]);
        }
        lane_of = std::move(lanes);
        gens = std::move(kept_gens);
      }
      if (t + 1 >= limit) break;
      logits = decode_step(model, cache, next.to(device));
    }
  }
  if (stats) stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return results;
}

}  // namespace iflame
