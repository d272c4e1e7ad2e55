#include "generate/sampler.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <numeric>

#include "util/error.h"

namespace iflame {

const std::vector<SamplingSwitch>& sampling_switches() {
  static const std::vector<SamplingSwitch> table = {
      {"order-constraints", "order", &SamplingOptions::order,
       "also keep the tokenizer's canonical order (first vertex of a face the smallest, faces sorted), so every "
       "output re-tokenizes to itself; off by default: samples follow the model's own distribution"},
      {"distinct-faces", "distinct_faces", &SamplingOptions::distinct_faces,
       "faces strictly increasing in the canonical order (implies --order-constraints): no face twice, so a sample "
       "cannot loop on one face"},
      {"no-repeat-faces", "no_repeat_faces", &SamplingOptions::no_repeat_faces,
       "never write a face row that was written before (the last coordinate of a copy is masked); keeps the "
       "model's own order and allows a face's back side"},
      {"no-degenerate-faces", "no_degenerate_faces", &SamplingOptions::no_degenerate_faces,
       "never write a face without area (a corner on another, or the third on the line of the first two): the "
       "coordinate that would make one is masked"},
      {"full-row-starts", "full_row_starts", &SamplingOptions::full_row_starts,
       "draw the first token of each face row (EOS or where the next face starts) without top-k/top-p/min-p, "
       "which apply inside rows; lets samples end and leave loops that truncation holds them in"},
      {"escape-loops", "escape_loops", &SamplingOptions::escape_loops,
       "after a broken face (without area, or the corners of an earlier face) draw the next row start without "
       "top-k/top-p/min-p, so a loop of broken faces can end or jump away"},
  };
  return table;
}

const SamplingSwitch& sampling_switch(bool SamplingOptions::*member) {
  for (const SamplingSwitch& rule : sampling_switches()) {
    if (rule.member == member) return rule;
  }
  throw Error("sampling_switch: no row for this member of SamplingOptions");
}

void check_sampling_options(const SamplingOptions& o, int64_t vocab, OptionNames names) {
  const bool cli = names == OptionNames::kCommandLine;
  const std::string prefix = cli ? "--" : "", top_k = cli ? "--top-k" : "top_k", top_p = cli ? "--top-p" : "top_p",
                    min_p = cli ? "--min-p" : "min_p";
  auto text = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  if (!(std::isfinite(o.temperature) && o.temperature > 0)) {
    throw Error(prefix + "temperature must be a finite number above 0, got " + text(o.temperature));
  }
  if (o.top_k < 0 || o.top_k > vocab) {
    throw Error(top_k + " must be between 0 (off) and the vocabulary size " + std::to_string(vocab) + ", got " +
                std::to_string(o.top_k));
  }
  if (!(o.top_p > 0 && o.top_p <= 1)) throw Error(top_p + " must be in (0, 1] (1 = off), got " + text(o.top_p));
  if (!(o.min_p >= 0 && o.min_p < 1)) throw Error(min_p + " must be in [0, 1) (0 = off), got " + text(o.min_p));
  if (o.order && !o.constraints) throw Error(cli ? "--order-constraints needs the grammar constraints (drop --no-constraints)"
                                           : "order needs constraints");
  if (o.distinct_faces && !o.order) throw Error(cli ? "--distinct-faces needs --order-constraints" : "distinct_faces needs order");
}

void settle_sampling_switches(SamplingOptions& o, NamedSwitches named) {
  if (!o.constraints && !named.order) o.order = false;
  if (!o.constraints && !named.distinct_faces) o.distinct_faces = false;
  if (o.distinct_faces && !named.order) o.order = true;  // a rule of the canonical order
  if (!o.order && !named.distinct_faces) o.distinct_faces = false;
}

using torch::Tensor;

at::Generator make_generator(uint64_t seed, uint64_t index) {
  // splitmix64 of (seed, index): independent streams per sample.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return at::detail::createCPUGenerator(z ^ (z >> 31));
}

namespace {

// The grammar mask as bytes: coordinates always, EOS only at a row start.
std::vector<uint8_t> grammar_mask(int64_t t, const TokenizerConfig& tokenizer, int64_t vocab) {
  std::vector<uint8_t> allowed(size_t(vocab), 0);
  std::fill(allowed.begin(), allowed.begin() + std::min<int64_t>(vocab, tokenizer.quant_max() + 1), uint8_t(1));
  if (t % kTokensPerFace == 0 && tokenizer.eos() < vocab) allowed[size_t(tokenizer.eos())] = 1;
  return allowed;
}

// A uniform double in [0, 1) from the row's generator (53 random bits).
double uniform(at::Generator& gen) {
  auto* impl = gen.get<at::CPUGeneratorImpl>();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return double(impl->random64() >> 11) * 0x1.0p-53;
}

// Index of the largest value among `allowed` entries (all when allowed is null); first on ties.
int64_t argmax(const float* v, int64_t n, const uint8_t* allowed) {
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (allowed && !allowed[i]) continue;
    if (best < 0 || v[i] > v[best]) best = i;
  }
  return best;
}

// A vertex's key in canonical order: (y, x, z) as one number, from its tokens (z, x, y).
int64_t vertex_key(const int64_t* v, int64_t levels) { return (v[2] * levels + v[1]) * levels + v[0]; }

// At most three inclusive key ranges.
struct KeyRanges {
  int64_t lo[3], hi[3];
  int n = 0;
  void add(int64_t a, int64_t b) {
    if (a <= b) lo[n] = a, hi[n] = b, ++n;
  }
  // [a, b] with the single key k taken out.
  void add_without(int64_t a, int64_t b, int64_t k) {
    if (k < a || k > b) return add(a, b);
    add(a, k - 1);
    add(k + 1, b);
  }
};

// The softmax probability of the tokens a rule takes away: those `before` allows (null: every
// token) and `after` does not. One pass of V exps (V = 132).
double probability_taken(const float* l, int64_t V, const uint8_t* before, const uint8_t* after) {
  const float m = *std::max_element(l, l + V);
  double z = 0, z_bad = 0;
  for (int64_t i = 0; i < V; ++i) {
    const double e = std::exp(double(l[i] - m));
    z += e;
    if ((!before || before[i]) && !after[i]) z_bad += e;
  }
  return z_bad / z;
}

// How often a rule that masks coordinates would have changed the choice: `mask` is what the
// other rules allow (null: everything), `kept` the same less the coordinates the rule takes.
void count_masked(const float* l, int64_t V, const uint8_t* mask, const uint8_t* kept, RuleCount& count) {
  ++count.steps;
  const int64_t top = argmax(l, V, mask);
  if (top >= 0 && !kept[top]) ++count.argmax_violations;
  count.disallowed_mass += probability_taken(l, V, mask, kept);
}

}  // namespace

bool canonical_order_mask(const int64_t* row, int64_t i, const int64_t* prev, const TokenizerConfig& tokenizer,
                          uint8_t* allowed, bool strict) {
  const int64_t levels = tokenizer.quant_max() + 1, max_key = levels * levels * levels - 1;
  std::fill(allowed, allowed + levels, uint8_t(0));
  for (int64_t j = 0; j < i; ++j) {
    if (!tokenizer.is_coordinate(row[j])) return false;
  }
  // The previous face's sorted vertex keys P1 < P2 < P3 (faces are non-decreasing by them).
  bool has_prev = false;
  int64_t P[3] = {0, 0, 0};
  if (prev && is_face_row(prev, tokenizer)) {
    for (int c = 0; c < 3; ++c) P[c] = vertex_key(prev + 3 * c, levels);
    std::sort(P, P + 3);
    if (!(P[0] < P[1] && P[1] < P[2])) return false;
    has_prev = true;
  }
  // Keys the vertex being written may take so that the row can still be completed in order.
  // A (first vertex) < B, C; B != C; (A, min(B, C), max(B, C)) >= (P1, P2, P3), or > when strict.
  const int64_t above = strict ? 1 : 0;
  const int64_t vertex = i / 3;
  const int64_t a = vertex >= 1 ? vertex_key(row, levels) : -1, b = vertex >= 2 ? vertex_key(row + 3, levels) : -1;
  KeyRanges ranges;
  // A leaves room for two larger vertices; A = P1 needs some (B, C) after (P2, P3), which
  // strict order does not have when they are the two largest keys.
  const bool a_may_tie = !(strict && P[1] == max_key - 1);
  const int64_t a_min = has_prev ? (a_may_tie ? P[0] : P[0] + 1) : 0;
  if (vertex == 0) {
    ranges.add(a_min, max_key - 2);
  } else {
    if (a > max_key - 2 || a < a_min) return false;
    const bool tied = has_prev && a == P[0];  // the face's order is then decided by B and C
    if (vertex == 1) {
      // B = P2 leaves C >= P3 (> P3 when strict), which the largest key may not allow.
      const bool b_may_tie = P[2] + above <= max_key;
      ranges.add(tied ? std::max(a + 1, b_may_tie ? P[1] : P[1] + 1) : a + 1, max_key);
    } else {
      if (b <= a || (tied && b < P[1])) return false;
      if (!tied) {
        ranges.add_without(a + 1, max_key, b);
      } else if (b > P[1]) {
        ranges.add_without(P[1] + 1, max_key, b);
        if (b >= P[2] + above) ranges.add(P[1], P[1]);
      } else {  // b == P2: C must be at least P3 (above it when strict)
        ranges.add(P[2] + above, max_key);
      }
    }
  }
  // The tokens written so far fix the key's low digits (z, then x: keys read the row backwards).
  const int64_t component = i % 3;
  int64_t fixed = 0, scale = 1;
  for (int64_t c = 0; c < component; ++c, scale *= levels) fixed += row[3 * vertex + c] * scale;
  const int64_t modulus = scale * levels;
  bool any = false;
  for (int64_t v = 0; v < levels; ++v) {
    const int64_t low = fixed + v * scale;
    for (int r = 0; r < ranges.n; ++r) {
      // The smallest key >= lo whose low digits are `low`.
      const int64_t k = ranges.lo[r] + ((low - ranges.lo[r]) % modulus + modulus) % modulus;
      if (k <= ranges.hi[r]) {
        allowed[v] = 1;
        any = true;
        break;
      }
    }
  }
  // At a row start nothing allowed means no face can follow the previous one: only EOS.
  return any || i == 0;
}

Tensor allowed_tokens(int64_t t, const TokenizerConfig& tokenizer, int64_t vocab) {
  const std::vector<uint8_t> mask = grammar_mask(t, tokenizer, vocab);
  Tensor out = torch::empty({vocab}, torch::kBool);
  std::copy(mask.begin(), mask.end(), out.data_ptr<bool>());
  return out;
}

Tensor sample_tokens(const Tensor& logits_in, int64_t t, const SamplingOptions& options, const TokenizerConfig& tokenizer,
                     std::vector<at::Generator>& generators, RuleStats* stats, const std::vector<const int64_t*>& history) {
  const Tensor logits = logits_in.to(torch::kCPU, torch::kFloat).contiguous();  // (B, V)
  const int64_t B = logits.size(0), V = logits.size(1);
  const std::vector<uint8_t> allowed = grammar_mask(t, tokenizer, V);
  Tensor out = torch::empty({B}, torch::kLong);
  int64_t* next = out.data_ptr<int64_t>();
  std::vector<std::pair<float, int32_t>> cand;  // (scaled logit, token), reused across rows
  cand.reserve(size_t(V));
  std::vector<double> p;
  std::vector<uint8_t> row_allowed;  // grammar and canonical order, for one row
  const bool with_order = !history.empty() && (options.order || stats);
  if (!history.empty() && int64_t(history.size()) != B) throw Error("sample_tokens: one history per row is needed");
  std::vector<uint8_t> unrepeated;  // the mask in use less the coordinates that repeat a face
  const bool check_repeats = !history.empty() && (options.no_repeat_faces || stats) && t % kTokensPerFace == kTokensPerFace - 1;
  const int64_t in_row = t % kTokensPerFace, row_start = t - in_row;
  std::vector<uint8_t> nondegenerate;  // the mask in use less the coordinates that make a face degenerate
  const bool check_degenerate = !history.empty() && (options.no_degenerate_faces || stats) && t >= kTokensPerFace &&
                                (in_row == 5 || in_row == 7 || in_row == 8);
  for (int64_t b = 0; b < B; ++b) {
    const float* l = logits.data_ptr<float>() + b * V;
    // The canonical-order mask of this row (coordinates only; EOS at a row start stays allowed).
    bool order_known = false;
    if (with_order && row_start >= kTokensPerFace) {
      row_allowed = allowed;
      const int64_t* row = history[size_t(b)] + row_start;
      const int64_t* prev = row - kTokensPerFace;
      order_known = canonical_order_mask(row, in_row, prev, tokenizer, row_allowed.data(), options.distinct_faces);
      for (int64_t i = 0; i <= tokenizer.quant_max() && i < V; ++i) row_allowed[size_t(i)] &= allowed[size_t(i)];
    }
    if (stats && order_known) {
      // The raw argmax counts only when it was grammatical (else it is the grammar's count).
      ++stats->order.steps;
      const int64_t top = argmax(l, V, nullptr);
      if (allowed[size_t(top)] && !row_allowed[size_t(top)]) ++stats->order.argmax_violations;
      stats->order.disallowed_mass += probability_taken(l, V, allowed.data(), row_allowed.data());
    }
    if (stats) {
      // How the unconstrained model would have done: its argmax, and its probability mass on
      // disallowed tokens.
      count_masked(l, V, nullptr, allowed.data(), stats->grammar);
    }
    const uint8_t* mask = options.constraints ? (options.order && order_known ? row_allowed.data() : allowed.data()) : nullptr;
    if (check_repeats) {
      if (mask) unrepeated.assign(mask, mask + V);
      else unrepeated.assign(size_t(V), uint8_t(1));
      const bool repeats = mask_repeated_face(history[size_t(b)], t, tokenizer, unrepeated.data()) > 0;
      if (stats) count_masked(l, V, mask, unrepeated.data(), stats->repeat);
      if (options.no_repeat_faces && repeats) mask = unrepeated.data();
    }
    if (check_degenerate) {
      if (mask) nondegenerate.assign(mask, mask + V);
      else nondegenerate.assign(size_t(V), uint8_t(1));
      const bool degenerate = mask_degenerate_face(history[size_t(b)], t, tokenizer, nondegenerate.data()) > 0;
      if (stats) count_masked(l, V, mask, nondegenerate.data(), stats->degenerate);
      if (options.no_degenerate_faces && degenerate) mask = nondegenerate.data();
    }
    if (options.greedy) {
      next[b] = argmax(l, V, mask);
      continue;
    }
    // Candidates: allowed tokens with temperature-scaled logits, best first.
    const float inv_t = float(1.0 / std::max(options.temperature, 1e-6));
    cand.clear();
    for (int64_t i = 0; i < V; ++i) {
      if (!mask || mask[i]) cand.emplace_back(l[i] * inv_t, int32_t(i));
    }
    auto by_logit = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& c) {
      return a.first > c.first || (a.first == c.first && a.second < c.second);
    };
    const bool truncate = !(in_row == 0 && (options.full_row_starts ||
                                            (options.escape_loops && !history.empty() && t >= kTokensPerFace &&
                                             face_row_is_broken(history[size_t(b)], t - kTokensPerFace, tokenizer))));
    // Top-k keeps every token at least as likely as the k-th (ties included).
    if (truncate && options.top_k > 0 && options.top_k < int64_t(cand.size())) {
      std::nth_element(cand.begin(), cand.begin() + (options.top_k - 1), cand.end(), by_logit);
      const float kth = cand[size_t(options.top_k - 1)].first;
      cand.erase(std::remove_if(cand.begin(), cand.end(), [&](const auto& c) { return c.first < kth; }), cand.end());
    }
    std::sort(cand.begin(), cand.end(), by_logit);
    // Softmax over the candidates.
    p.resize(cand.size());
    double z = 0;
    for (size_t i = 0; i < cand.size(); ++i) z += (p[i] = std::exp(double(cand[i].first - cand[0].first)));
    size_t keep = cand.size();
    if (truncate && options.top_p < 1.0) {
      // Drop the tail whose cumulative mass before it exceeds top_p (the best token stays).
      double before = 0;
      for (size_t i = 0; i < cand.size(); ++i) {
        if (before / z > options.top_p) {
          keep = i;
          break;
        }
        before += p[i];
      }
    }
    if (truncate && options.min_p > 0) {
      // p[i] is the candidate's probability over the best one's (p[0] = 1); sorted, so a prefix.
      size_t likely = 1;
      while (likely < keep && p[likely] >= options.min_p) ++likely;
      keep = likely;
    }
    double kept = 0;
    for (size_t i = 0; i < keep; ++i) kept += p[i];
    const double u = uniform(generators[size_t(b)]) * kept;
    double acc = 0;
    size_t pick = keep - 1;
    for (size_t i = 0; i < keep; ++i) {
      acc += p[i];
      if (u < acc) {
        pick = i;
        break;
      }
    }
    next[b] = cand[pick].second;
  }
  return out;
}

}  // namespace iflame
