// The generation loop: batches of sequences decode together on one hybrid cache; each stops
// at its own EOS (or its face limit) and frees its slot.
#pragma once
#include <functional>
#include <vector>

#include "generate/sampler.h"
#include "model/model.h"

namespace iflame {

struct GenerateOptions {
  SamplingOptions sampling;
  int64_t count = 1;              // sequences to generate
  int64_t batch = 8;              // sequences decoded together
  uint64_t seed = 0;
  int64_t max_faces = 800;        // a sequence ends (with an EOS row) after this many faces
  int64_t max_new_tokens = 0;     // 0 = no limit beyond max_faces
  bool stop_at_eos = true;
  std::vector<int64_t> prompt;    // a multiple of 9 tokens; empty = 9 BOS
  bool bf16 = false;              // weights and K/V in bfloat16 (arithmetic stays float32)
  // On the fused CPU decoder, a finished sequence's slot takes the next sample at once, so the
  // batch stays full (same results); false, or elsewhere: batches decode in lockstep, each
  // drained to its longest sequence.
  bool continuous = true;
};

// Why a sequence ended: the model wrote EOS itself, or a cap ended it: max_faces (with grammar
// constraints an EOS row is appended; without them the sequence stops at that length) or
// max_new_tokens (no EOS row); or, in the server, the request was cancelled (client gone, timeout).
enum class Finish { kEos, kMaxFaces, kMaxNewTokens, kCancelled };
const char* finish_name(Finish finish);  // "eos", "max_faces", "max_new_tokens", "cancelled"

struct GeneratedSequence {
  std::vector<int64_t> tokens;  // prompt + generated tokens (+ a completed EOS row when it ended)
  Finish finished = Finish::kMaxNewTokens;
  bool eos_row = false;  // ends with an EOS row (the model's own, or the one the face cap appended)
  int64_t new_tokens = 0;
};

// Where one sequence must stop: its prompt length, face cap, token limit.
struct SequenceLimits {
  int64_t prompt = 9;          // P, a multiple of 9
  int64_t max_faces = 800;
  int64_t max_new_tokens = 0;  // 0 = none
  bool stop_at_eos = true;
  int64_t limit() const;       // the last sequence length allowed: P + (max_faces + 1) x 9, or less
};

// Appends `token` (the token at sequence index t = seq.tokens.size()) to `seq`. Returns true
// when that ends the sequence; then seq.finished says why and, after an EOS or at the face cap,
// the EOS row is completed. The one rule of generate() and of the server's batcher.
bool append_token(GeneratedSequence& seq, int64_t token, const SequenceLimits& limits, const TokenizerConfig& tokenizer);

struct GenerateStats {
  RuleStats rules;
  int64_t tokens = 0;        // new tokens decoded
  double seconds = 0;
  int64_t peak_cache_bytes = 0;
};

// `on_done` (optional) is called as each sequence finishes, with its index.
std::vector<GeneratedSequence> generate(IFlameModelImpl& model, const TokenizerConfig& tokenizer,
                                        const GenerateOptions& options, GenerateStats* stats = nullptr,
                                        const std::function<void(int64_t, const GeneratedSequence&)>& on_done = {});

}  // namespace iflame
