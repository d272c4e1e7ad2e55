// Token sampling: temperature, top-k, top-p (nucleus), greedy; grammar constraints that keep
// every output decodable; per-sequence seeded generators so results don't depend on batching.
#pragma once
#include <string>
#include <cstdint>
#include <vector>

#include "model/torch_compat.h"
#include "tokenizer/face_rules.h"
#include "tokenizer/tokenizer.h"

namespace iflame {

struct SamplingOptions {
  double temperature = 1.0;  // the reference's defaults
  int64_t top_k = 50;        // 0 = off
  double top_p = 0.95;       // 1 = off
  // Min-p: keep the tokens at least min_p times as likely as the most likely one (0 = off). Unlike
  // top-p it keeps more of the tail where the model is sure and less where it is unsure.
  double min_p = 0.0;
  bool greedy = false;       // argmax (ignores the three above)
  bool constraints = true;   // grammar: coordinates inside a row, EOS only at a row start
  // Canonical order (spec 1.4-1.5, the tokenizer's): inside a face the first vertex is the
  // smallest and the other two differ; faces non-decreasing by their sorted vertex triple;
  // vertices compare by (y, x, z), i.e. by the row's tokens (z, x, y) read backwards. Every
  // output then re-tokenizes to itself. Needs `constraints`.
  bool order = false;
  // Faces strictly increasing: no face twice in a row of the order, so none twice at all. A
  // sequence cannot loop on one face and must move on through the order. Needs `order`.
  bool distinct_faces = false;
  // No face row twice: the last coordinate that would complete a copy of an earlier row (the
  // prompt's included) is masked. Unlike distinct_faces it keeps the model's own order and
  // allows a face's back side (the same corners, the other winding). Works with or without the
  // grammar and the order; where the order leaves a copy as the only way to finish a row, the
  // copy is written.
  bool no_repeat_faces = false;
  // No degenerate face: the coordinate that would make the second corner equal the first, or
  // put the third on the line of the first two (a face without area, after quantization), is
  // masked. Works with or without the other rules; where they leave only such coordinates, the
  // degenerate face is written.
  bool no_degenerate_faces = false;
  // The first token of each face row (EOS, or the first coordinate of the next face) is drawn
  // from the whole distribution (temperature only): top-k, top-p and min-p apply inside rows.
  // Whether and where a new face starts keeps its tail, which is how a sample leaves a loop (a
  // truncated tail cuts the rare EOS and the rare jump away from a run of tiny faces).
  bool full_row_starts = false;
  // After a broken face (without area, or the corners of an earlier face: a copy or a back side)
  // the next row start is drawn as with full_row_starts: a loop of broken faces meets the rare
  // EOS or jump that truncation cuts, while rows that go well keep their truncation.
  bool escape_loops = false;
};

// The on/off rules of SamplingOptions, one row each; the command line (--option, and a model's
// metadata sample.option), the server's request fields and summary.json all list them from here,
// so a new rule is one row. (greedy and constraints are not in it: greedy is no model default and
// constraints is switched off, by --no-constraints.)
struct SamplingSwitch {
  const char* option;  // command-line flag and metadata key: order-constraints
  const char* field;   // request and summary.json field: order
  bool SamplingOptions::*member;
  const char* help;    // for --help
};
const std::vector<SamplingSwitch>& sampling_switches();
// The row of `member` (every bool of SamplingOptions but greedy and constraints has one).
const SamplingSwitch& sampling_switch(bool SamplingOptions::*member);

// Throws iflame::Error naming the option when a value is out of range: temperature must be
// finite and > 0, top_k in [0, vocab], top_p in (0, 1], min_p in [0, 1); order needs
// constraints, distinct_faces needs order. Options are named as on the command line (--top-p)
// or as request fields (top_p).
enum class OptionNames { kCommandLine, kRequestFields };
void check_sampling_options(const SamplingOptions& options, int64_t vocab, OptionNames names = OptionNames::kCommandLine);

// Which of the dependent switches the caller named itself (on the command line, in a request);
// the others hold defaults (built in, or a model's metadata), which give way.
struct NamedSwitches {
  bool order = false;
  bool distinct_faces = false;
};
// Settles the switches that depend on each other, before check_sampling_options: without
// constraints, order and distinct_faces are off unless named; distinct_faces brings the order
// with it unless the order was named; an order that is off drops distinct_faces unless named.
// What is left contradictory (both named) is for check_sampling_options to report.
void settle_sampling_switches(SamplingOptions& options, NamedSwitches named);

// How often the unconstrained model would have broken each rule.
// What one sampling rule saw: the steps where it could be checked, how often the model's raw
// argmax broke it, and the summed probability the model put on breaking it (mean = / steps).
struct RuleCount {
  int64_t steps = 0;
  int64_t argmax_violations = 0;
  double disallowed_mass = 0;
};

struct RuleStats {
  RuleCount grammar;     // every step: the token grammar (coordinates, EOS at a row start)
  RuleCount order;       // steps whose row so far was in canonical order; only grammatical tokens count
  RuleCount repeat;      // last coordinates of a face row: would the face repeat an earlier row
  RuleCount degenerate;  // corner coordinates where a face without area is checkable
};

// Boolean mask (V,) of tokens allowed at sequence index `t` (the index of the token being
// produced): coordinates always; EOS only at a row start (t % 9 == 0); never PAD or BOS.
torch::Tensor allowed_tokens(int64_t t, const TokenizerConfig& tokenizer, int64_t vocab);

// Canonical-order mask for the coordinate at index i (0..8) of a face row: `row` holds the
// row's first i tokens, `prev` the previous face row (9 coordinates; null for the first face).
// allowed[v] (v = 0..quant_max) = 1 when some completion of the row with v is in canonical
// order. Returns false (and allows nothing) when the row so far, or `prev`, is out of order; at
// a row start (i = 0) after an in-order `prev` it returns true, allowing nothing when no face
// can follow (then only EOS may). strict: the face must come after `prev`, not repeat it.
bool canonical_order_mask(const int64_t* row, int64_t i, const int64_t* prev, const TokenizerConfig& tokenizer,
                          uint8_t* allowed, bool strict = false);

// Picks one token per row of `logits` (B, V) for sequence index `t`. `generators` has one
// generator per row (row i always uses its own, whatever the batch). Updates `stats`.
// `history` (one pointer per row, to at least t tokens: the prompt and what was generated) is
// needed for the canonical order (options.order), its statistics, no_repeat_faces and
// no_degenerate_faces; without it none of them runs.
torch::Tensor sample_tokens(const torch::Tensor& logits, int64_t t, const SamplingOptions& options,
                            const TokenizerConfig& tokenizer, std::vector<at::Generator>& generators,
                            RuleStats* stats = nullptr, const std::vector<const int64_t*>& history = {});

// A CPU generator seeded for sample `index` of a run with seed `seed`.
at::Generator make_generator(uint64_t seed, uint64_t index);

}  // namespace iflame
