// Sampling and the generation loop: greedy parity with the reference, determinism, grammar.
#include "generate/generate.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <map>
#include <set>

#include "eval/mesh_stats.h"
#include "model/model_test_util.h"
#include "model/weights.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

using torch::Tensor;

TEST(Sampler, GreedyReproducesTheReferenceTokens) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  IFlameModel model = load_model(test::reference_dir() + "/weights.safetensors");
  model->eval();
  const auto shape = test::reference_shape("greedy.bin");
  Tensor expected = test::read_raw(test::reference_dir() + "/greedy.bin", shape, torch::kLong);
  GenerateOptions opts;
  opts.sampling.greedy = true;
  opts.sampling.constraints = false;
  opts.stop_at_eos = false;
  opts.max_new_tokens = shape[1] - 9;
  auto seqs = generate(*model, TokenizerConfig{}, opts);
  ASSERT_EQ(seqs.size(), 1u);
  std::vector<int64_t> want(expected.data_ptr<int64_t>(), expected.data_ptr<int64_t>() + expected.numel());
  EXPECT_EQ(seqs[0].tokens, want);
}

TEST(Sampler, SameSeedSameMeshesAtAnyBatchSize) {
  IFlameModel model = test::random_tiny_model(0);
  GenerateOptions opts;
  opts.count = 5;
  opts.max_faces = 4;
  opts.seed = 42;
  opts.batch = 5;
  auto a = generate(*model, TokenizerConfig{}, opts);
  opts.batch = 2;
  auto b = generate(*model, TokenizerConfig{}, opts);
  opts.seed = 43;
  auto c = generate(*model, TokenizerConfig{}, opts);
  bool any_different = false;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].tokens, b[i].tokens) << i;
    any_different |= a[i].tokens != c[i].tokens;
  }
  EXPECT_TRUE(any_different);
}

TEST(Sampler, ConstrainedOutputsAlwaysFollowTheGrammarAndEndInAnEosRow) {
  IFlameModel model = test::random_tiny_model(1);
  GenerateOptions opts;
  opts.count = 6;
  opts.max_faces = 6;
  opts.sampling.temperature = 3.0;  // a random model at high temperature tries everything
  opts.sampling.top_k = 0;
  opts.sampling.top_p = 1.0;
  GenerateStats stats;
  auto seqs = generate(*model, TokenizerConfig{}, opts, &stats);
  const TokenizerConfig tk;
  for (const auto& s : seqs) {
    ASSERT_EQ(s.tokens.size() % 9, 0u);
    ASSERT_TRUE(s.eos_row);
    for (size_t i = 9; i + 9 < s.tokens.size(); ++i) EXPECT_TRUE(tk.is_coordinate(s.tokens[i])) << i;
    for (size_t i = s.tokens.size() - 9; i < s.tokens.size(); ++i) EXPECT_EQ(s.tokens[i], tk.eos());
    EXPECT_LE(s.tokens.size(), size_t(9 * (opts.max_faces + 2)));
  }
  EXPECT_GT(stats.rules.grammar.steps, 0);
  EXPECT_GT(stats.rules.grammar.disallowed_mass, 0);  // a random model puts mass on PAD/BOS
}

// Continuous batching (a finished sample's slot takes the next one at once) gives every sample
// the tokens of the lockstep batches, on sequences of many lengths.
TEST(Generate, ContinuousBatchingMatchesLockstepBatches) {
  IFlameModel model = test::random_tiny_model(3);
  const TokenizerConfig tk;
  {
    torch::NoGradGuard no_grad;  // EOS likely enough that meshes end at many lengths
    model->output_proj->bias[tk.eos()].fill_(4.0);
  }
  GenerateOptions opts;
  opts.count = 11;
  opts.batch = 3;
  opts.max_faces = 12;
  opts.seed = 5;
  opts.sampling.order = true;
  std::vector<int64_t> done_order;
  auto record = [&](int64_t i, const GeneratedSequence&) { done_order.push_back(i); };
  GenerateStats continuous_stats, lockstep_stats;
  const auto continuous = generate(*model, tk, opts, &continuous_stats, record);
  ASSERT_EQ(done_order.size(), size_t(opts.count));
  EXPECT_EQ(std::set<int64_t>(done_order.begin(), done_order.end()).size(), size_t(opts.count));
  opts.continuous = false;
  const auto lockstep = generate(*model, tk, opts, &lockstep_stats);

  std::set<size_t> lengths;
  for (size_t i = 0; i < continuous.size(); ++i) {
    EXPECT_EQ(continuous[i].tokens, lockstep[i].tokens) << "sample " << i;
    EXPECT_EQ(continuous[i].finished, lockstep[i].finished) << "sample " << i;
    lengths.insert(continuous[i].tokens.size());
  }
  EXPECT_GE(lengths.size(), 4u) << "the samples should end at many lengths";
  EXPECT_EQ(continuous_stats.tokens, lockstep_stats.tokens);
  EXPECT_EQ(continuous_stats.rules.grammar.steps, lockstep_stats.rules.grammar.steps);
  EXPECT_EQ(continuous_stats.rules.order.steps, lockstep_stats.rules.order.steps);
}

// `finished` says what ended each sequence: the model's EOS, the face cap, or max_new_tokens.
TEST(Generate, FinishedNamesWhatEndedEachSequence) {
  IFlameModel model = test::random_tiny_model(2);
  const TokenizerConfig tk;
  GenerateOptions opts;
  opts.count = 3;
  opts.max_faces = 4;
  {
    torch::NoGradGuard no_grad;  // a model that never ends a mesh by itself
    model->output_proj->bias[tk.eos()].fill_(-1e4);
  }
  for (const auto& s : generate(*model, tk, opts)) {
    EXPECT_EQ(s.finished, Finish::kMaxFaces);
    EXPECT_TRUE(s.eos_row);
    EXPECT_EQ(s.tokens.size(), size_t(9 * (opts.max_faces + 2)));  // BOS row, 4 faces, the appended EOS row
  }
  opts.max_new_tokens = 13;
  for (const auto& s : generate(*model, tk, opts)) {
    EXPECT_EQ(s.finished, Finish::kMaxNewTokens);
    EXPECT_FALSE(s.eos_row);
    EXPECT_EQ(s.new_tokens, 13);
  }
  opts.max_new_tokens = 0;
  {
    torch::NoGradGuard no_grad;  // now a model that ends as soon as the grammar allows
    model->output_proj->bias[tk.eos()].fill_(1e4);
  }
  for (const auto& s : generate(*model, tk, opts)) {
    EXPECT_EQ(s.finished, Finish::kEos);
    EXPECT_TRUE(s.eos_row);
    EXPECT_LT(s.tokens.size(), size_t(9 * (opts.max_faces + 2)));
  }
  EXPECT_STREQ(finish_name(Finish::kEos), "eos");
  EXPECT_STREQ(finish_name(Finish::kMaxFaces), "max_faces");
  EXPECT_STREQ(finish_name(Finish::kMaxNewTokens), "max_new_tokens");
}

TEST(Sampler, TopKOneIsGreedy) {
  Tensor logits = torch::randn({4, 132});
  std::vector<at::Generator> gens;
  for (int i = 0; i < 4; ++i) gens.push_back(make_generator(0, uint64_t(i)));
  SamplingOptions top1;
  top1.top_k = 1;
  SamplingOptions greedy;
  greedy.greedy = true;
  EXPECT_TRUE(torch::equal(sample_tokens(logits, 10, top1, {}, gens), sample_tokens(logits, 10, greedy, {}, gens)));
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // Probabilities 0.5, 0.3, 0.2 (rest ~0): top-p 0.6 keeps the first two only.
  Tensor logits = torch::full({1, 132}, -1e9);
  logits[0][3] = std::log(0.5);
  logits[0][7] = std::log(0.3);
  logits[0][9] = std::log(0.2);
  SamplingOptions opts;
  opts.top_k = 0;
  opts.top_p = 0.6;
  std::vector<at::Generator> gens = {make_generator(1, 0)};
  std::set<int64_t> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sample_tokens(logits, 10, opts, {}, gens).item<int64_t>());
  EXPECT_EQ(seen, (std::set<int64_t>{3, 7}));
}

TEST(Sampler, MinPKeepsTheTokensNearTheMostLikely) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: min-p 0.4 keeps those of at least 0.2 (the first two),
  // in proportion 5:3; min-p 0.25 adds the third; with top-p 0.6 as well only the nucleus stays.
  Tensor logits = torch::full({1, 132}, -1e9);
  const std::vector<std::pair<int64_t, double>> probs = {{3, 0.5}, {7, 0.3}, {9, 0.15}, {11, 0.05}};
  for (const auto& [token, prob] : probs) logits[0][token] = std::log(prob);
  auto draw = [&](double min_p, double top_p) {
    SamplingOptions opts;
    opts.top_k = 0;
    opts.top_p = top_p;
    opts.min_p = min_p;
    std::vector<at::Generator> gens = {make_generator(2, 0)};
    std::map<int64_t, int> counts;
    for (int i = 0; i < 4000; ++i) ++counts[sample_tokens(logits, 10, opts, {}, gens).item<int64_t>()];
    return counts;
  };
  const auto two = draw(0.4, 1.0);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NEAR(two.at(3), 2500, 120);
  EXPECT_NEAR(two.at(7), 1500, 120);
  const auto three = draw(0.25, 1.0);
  EXPECT_EQ(three.size(), 3u);
  EXPECT_EQ(three.count(11), 0u);
  EXPECT_EQ(draw(0.0, 1.0).size(), 4u);
  EXPECT_EQ(draw(0.25, 0.6).size(), 2u);
}

// Logits (1, vocab) with coordinates 3 and 7 at probabilities 0.6 and 0.3, EOS at 0.1.
Tensor two_coordinates_and_eos(const TokenizerConfig& tk) {
  Tensor logits = torch::full({1, 132}, -1e9);
  logits[0][3] = std::log(0.6);
  logits[0][7] = std::log(0.3);
  logits[0][tk.eos()] = std::log(0.1);
  return logits;
}

TEST(Sampler, FullRowStartsDrawTheFirstTokenOfARowUntruncated) {
  // At a row start EOS (0.1) and two coordinates (0.6, 0.3): top-p 0.5 and top-k 1 keep only
  // the first. With full_row_starts the row start draws all three; inside a row nothing changes.
  const TokenizerConfig tk;
  const Tensor logits = two_coordinates_and_eos(tk);
  for (bool full : {false, true}) {
    SamplingOptions opts;
    opts.top_k = 1;
    opts.top_p = 0.5;
    opts.full_row_starts = full;
    std::vector<at::Generator> gens = {make_generator(1, 0)};
    std::map<int64_t, int> row_start;
    std::set<int64_t> inside;
    for (int i = 0; i < 2000; ++i) {
      ++row_start[sample_tokens(logits, 18, opts, tk, gens).item<int64_t>()];
      inside.insert(sample_tokens(logits, 19, opts, tk, gens).item<int64_t>());
    }
    EXPECT_EQ(inside, (std::set<int64_t>{3})) << "full " << full;
    if (!full) {
      EXPECT_EQ(row_start, (std::map<int64_t, int>{{3, 2000}}));
      continue;
    }
    ASSERT_EQ(row_start.size(), 3u);
    EXPECT_NEAR(row_start[3], 1200, 100);
    EXPECT_NEAR(row_start[7], 600, 90);
    EXPECT_NEAR(row_start[tk.eos()], 200, 60);
  }
}

TEST(Sampler, EscapeLoopsLiftsTruncationOnlyAfterABrokenFace) {
  // At a row start EOS (0.1) and two coordinates (0.6, 0.3), top-k 1: after a good face only
  // the first is drawn; after a back side of the face before it (a broken face) all three.
  const TokenizerConfig tk;
  const Tensor logits = two_coordinates_and_eos(tk);
  std::vector<int64_t> good(9, tk.bos()), broken(9, tk.bos());
  for (int64_t v : {0, 0, 0, 0, 5, 0, 0, 0, 5}) good.push_back(v), broken.push_back(v);
  for (int64_t v : {1, 1, 1, 4, 2, 1, 1, 1, 6}) good.push_back(v);
  for (int64_t v : {0, 0, 0, 0, 0, 5, 0, 5, 0}) broken.push_back(v);
  SamplingOptions opts;
  opts.top_k = 1;
  opts.escape_loops = true;
  std::vector<at::Generator> gens = {make_generator(3, 0)};
  std::map<int64_t, int> after_good, after_broken;
  for (int i = 0; i < 2000; ++i) {
    ++after_good[sample_tokens(logits, 27, opts, tk, gens, nullptr, {good.data()}).item<int64_t>()];
    ++after_broken[sample_tokens(logits, 27, opts, tk, gens, nullptr, {broken.data()}).item<int64_t>()];
  }
  EXPECT_EQ(after_good, (std::map<int64_t, int>{{3, 2000}}));
  ASSERT_EQ(after_broken.size(), 3u);
  EXPECT_NEAR(after_broken[3], 1200, 100);
  EXPECT_NEAR(after_broken[tk.eos()], 200, 60);
}

// The canonical order by brute force, with 1-bit coordinates (levels 0..2, 27 vertex keys):
// every row of 9 tokens is listed, and the mask after every prefix must allow exactly the
// tokens that some in-order completion uses next.
TEST(Sampler, CanonicalOrderMaskMatchesBruteForce) {
  TokenizerConfig tk;
  tk.bits = 1;
  const int64_t levels = 3;
  auto key = [&](const int64_t* v) { return (v[2] * levels + v[1]) * levels + v[0]; };
  auto in_order = [&](const int64_t* row, const int64_t* prev, bool strict) {
    const int64_t a = key(row), b = key(row + 3), c = key(row + 6);
    if (!(a < b && a < c && b != c)) return false;
    if (!prev) return true;
    int64_t p[3] = {key(prev), key(prev + 3), key(prev + 6)};
    std::sort(p, p + 3);
    const std::array<int64_t, 3> mine = {a, std::min(b, c), std::max(b, c)}, theirs = {p[0], p[1], p[2]};
    return strict ? mine > theirs : mine >= theirs;
  };
  // Previous faces (z, x, y per vertex): none, an early one, one with a middle first vertex,
  // one whose last two vertices are the two largest keys (strict order cannot tie its first),
  // and the last face possible (its first vertex is the third-largest key: strict order has
  // no face after it).
  const std::vector<std::vector<int64_t>> prevs = {{},
                                                   {0, 0, 0, 1, 0, 0, 0, 1, 0},
                                                   {1, 1, 1, 2, 2, 1, 0, 0, 2},
                                                   {1, 0, 0, 1, 2, 2, 2, 2, 2},
                                                   {0, 2, 2, 1, 2, 2, 2, 2, 2}};
  for (const bool strict : {false, true}) {
    for (const auto& prev : prevs) {
      const int64_t* prev_ptr = prev.empty() ? nullptr : prev.data();
      // completable[prefix as base-3 number at each length].
      std::vector<std::vector<uint8_t>> completable(10);
      for (int64_t len = 0; len <= 9; ++len) completable[size_t(len)].assign(size_t(std::pow(3, len)), 0);
      int64_t row[9];
      int64_t total = 0;
      for (int64_t code = 0; code < 19683; ++code) {
        int64_t c = code;
        for (int64_t i = 8; i >= 0; --i) row[i] = c % 3, c /= 3;
        if (!in_order(row, prev_ptr, strict)) continue;
        ++total;
        int64_t prefix = 0;
        completable[0][0] = 1;
        for (int64_t i = 0; i < 9; ++i) completable[size_t(i + 1)][size_t(prefix = prefix * 3 + row[i])] = 1;
      }
      EXPECT_EQ(total == 0, strict && prev == prevs.back()) << "strict " << strict;
      for (int64_t len = 0; len < 9; ++len) {
        for (int64_t prefix = 0; prefix < int64_t(completable[size_t(len)].size()); ++prefix) {
          int64_t c = prefix;
          for (int64_t i = len - 1; i >= 0; --i) row[i] = c % 3, c /= 3;
          uint8_t allowed[3];
          const bool known = canonical_order_mask(row, len, prev_ptr, tk, allowed, strict);
          // A row start is always known after an in-order face (nothing allowed: only EOS).
          EXPECT_EQ(known, len == 0 || completable[size_t(len)][size_t(prefix)]) << len << " " << prefix;
          for (int64_t v = 0; v < 3; ++v) {
            EXPECT_EQ(bool(allowed[v]), bool(completable[size_t(len + 1)][size_t(prefix * 3 + v)]))
                << "strict " << strict << " prev " << prev.size() << " len " << len << " prefix " << prefix
                << " token " << v;
          }
        }
      }
    }
  }
}

// The dependent switches, one rule for the command line, the server's defaults and requests:
// a switch the caller named is kept (a contradiction is left for check_sampling_options), a
// default gives way.
TEST(Sampler, SwitchesSettleByWhatWasNamed) {
  struct Case {
    bool constraints, order, distinct;  // before settling
    NamedSwitches named;
    bool want_order, want_distinct;
    bool valid;  // passes check_sampling_options afterwards
  };
  const Case cases[] = {
      {true, false, true, {false, false}, true, true, true},     // distinct brings the order
      {true, false, true, {false, true}, true, true, true},      // ... also when named
      {true, false, true, {true, true}, false, true, false},     // order named off, distinct named on
      {true, false, true, {true, false}, false, false, true},    // order named off drops a default distinct
      {false, true, true, {false, false}, false, false, true},   // no constraints: defaults drop both
      {false, true, false, {true, false}, true, false, false},   // no constraints yet order named on
      {true, true, false, {false, false}, true, false, true},    // nothing to settle
      {true, false, false, {false, false}, false, false, true},
  };
  for (const Case& c : cases) {
    SamplingOptions o;
    o.constraints = c.constraints;
    o.order = c.order;
    o.distinct_faces = c.distinct;
    settle_sampling_switches(o, c.named);
    const std::string label = "constraints " + std::to_string(c.constraints) + " order " + std::to_string(c.order) +
                              " distinct " + std::to_string(c.distinct) + " named " + std::to_string(c.named.order) +
                              std::to_string(c.named.distinct_faces);
    EXPECT_EQ(o.order, c.want_order) << label;
    EXPECT_EQ(o.distinct_faces, c.want_distinct) << label;
    bool valid = true;
    try {
      check_sampling_options(o, 100);
    } catch (const Error&) {
      valid = false;
    }
    EXPECT_EQ(valid, c.valid) << label;
  }
}

// Face rows (all 9 tokens coordinates) of a sample that repeat an earlier one.
int64_t repeated_face_rows(const GeneratedSequence& s, const TokenizerConfig& tk) {
  std::set<std::vector<int64_t>> seen;
  int64_t n = 0;
  for (size_t r = 0; r + 9 <= s.tokens.size(); r += 9) {
    const std::vector<int64_t> row(s.tokens.begin() + r, s.tokens.begin() + r + 9);
    if (*std::max_element(row.begin(), row.end()) <= tk.quant_max()) n += !seen.insert(row).second;
  }
  return n;
}

// --distinct-faces: faces strictly increasing, so no face twice, where the plain order lets a
// model that likes one face repeat it to the cap.
TEST(Generate, DistinctFacesNeverRepeatAFace) {
  IFlameModel model = test::random_tiny_model(11);
  const TokenizerConfig tk;
  GenerateOptions opts;
  opts.count = 4;
  opts.batch = 2;
  opts.max_faces = 20;
  opts.sampling.greedy = true;  // a random model's argmax keeps choosing the same face
  opts.sampling.order = true;
  int64_t repeated = 0;
  for (const auto& s : generate(*model, tk, opts)) repeated += repeated_face_rows(s, tk);
  EXPECT_GT(repeated, 0) << "this model should repeat faces under the plain order";

  opts.sampling.distinct_faces = true;
  for (const auto& s : generate(*model, tk, opts)) {
    ASSERT_TRUE(s.eos_row);
    EXPECT_EQ(repeated_face_rows(s, tk), 0);
    std::vector<int32_t> rows(s.tokens.begin() + 9, s.tokens.end() - 9);
    const Mesh mesh = decode_tokens(s.tokens, tk);
    EXPECT_EQ(mesh.faces.size() * 9, rows.size());  // no degenerate face
    EXPECT_EQ(face_rows(canonicalize_normalized(mesh, tk)), rows);
  }
  opts.sampling.order = false;
  EXPECT_THROW(check_sampling_options(opts.sampling, tk.vocab_size()), Error);
}

// Faces without area in a sample as `iflame eval` counts them on its decoded mesh, plus the
// rows that decoding drops for two equal corners.
int64_t degenerate_face_rows(const GeneratedSequence& s, const TokenizerConfig& tk) {
  const Mesh mesh = decode_tokens(s.tokens, tk);
  int64_t rows = 0;
  for (size_t r = 9; r + 9 <= s.tokens.size(); r += 9) {
    rows += std::all_of(s.tokens.begin() + int64_t(r), s.tokens.begin() + int64_t(r + 9), [&](int64_t v) { return tk.is_coordinate(v); });
  }
  return rows - int64_t(mesh.faces.size()) + int64_t(eval::mesh_stats(mesh).degenerate_faces);
}

// A masking switch of the sampler keeps a greedy random model, which breaks its rule unmasked
// (so the test can fail), from breaking it at all. Both decode paths.
void expect_switch_removes(bool SamplingOptions::*masked, RuleCount RuleStats::*rule_count,
                           int64_t (*breaks)(const GeneratedSequence&, const TokenizerConfig&), const char* rule) {
  IFlameModel model = test::random_tiny_model(5);
  const TokenizerConfig tk;
  GenerateOptions opts;
  opts.count = 4;
  opts.batch = 2;
  opts.max_faces = 20;
  opts.sampling.greedy = true;  // this random model's argmax breaks both rules (36 repeats in these 4)
  for (bool continuous : {true, false}) {
    opts.continuous = continuous;
    opts.sampling.*masked = false;
    GenerateStats plain;
    int64_t broken = 0;
    for (const auto& s : generate(*model, tk, opts, &plain)) broken += breaks(s, tk);
    EXPECT_GT(broken, 0) << "this model should break the rule unmasked: " << rule;
    EXPECT_GT((plain.rules.*rule_count).argmax_violations, 0) << rule;
    opts.sampling.*masked = true;
    for (const auto& s : generate(*model, tk, opts)) EXPECT_EQ(breaks(s, tk), 0) << rule << ", continuous " << continuous;
  }
}

// --no-degenerate-faces: no face without area.
TEST(Generate, NoDegenerateFacesWritesNoFaceWithoutArea) {
  expect_switch_removes(&SamplingOptions::no_degenerate_faces, &RuleStats::degenerate,
                        degenerate_face_rows, "degenerate faces");
}

// --no-repeat-faces: no face row twice.
TEST(Generate, NoRepeatFacesNeverWritesAFaceTwice) {
  expect_switch_removes(&SamplingOptions::no_repeat_faces, &RuleStats::repeat, repeated_face_rows,
                        "repeated faces");
}

TEST(Generate, OrderConstrainedSamplesRetokenizeToThemselves) {
  IFlameModel model = test::random_tiny_model(7);
  GenerateOptions opts;
  opts.count = 6;
  opts.batch = 3;
  opts.max_faces = 12;
  opts.seed = 3;
  opts.sampling.temperature = 3.0;  // a random model at high temperature tries everything
  opts.sampling.top_k = 0;
  opts.sampling.top_p = 1.0;
  opts.sampling.order = true;
  GenerateStats stats;
  const TokenizerConfig tk;
  auto seqs = generate(*model, tk, opts, &stats);
  int64_t faces = 0;
  for (const auto& s : seqs) {
    ASSERT_TRUE(s.eos_row);
    // The face rows between the BOS row and the EOS row.
    std::vector<int32_t> rows(s.tokens.begin() + 9, s.tokens.end() - 9);
    const Mesh mesh = decode_tokens(s.tokens, tk);
    EXPECT_EQ(mesh.faces.size() * 9, rows.size());  // no degenerate face was dropped
    EXPECT_EQ(face_rows(canonicalize_normalized(mesh, tk)), rows);
    faces += int64_t(mesh.faces.size());
  }
  EXPECT_GT(faces, 12);
  // The unconstrained model breaks the order often; the statistics see it.
  EXPECT_GT(stats.rules.order.steps, 0);
  EXPECT_GT(stats.rules.order.argmax_violations, 0);
  EXPECT_GT(stats.rules.order.disallowed_mass, 0);
  EXPECT_LE(stats.rules.order.steps, stats.rules.grammar.steps);
}

TEST(Generate, WithoutOrderConstraintsARandomModelBreaksTheOrder) {
  IFlameModel model = test::random_tiny_model(7);
  GenerateOptions opts;
  opts.count = 4;
  opts.max_faces = 12;
  opts.sampling.temperature = 3.0;
  opts.sampling.top_k = 0;
  opts.sampling.top_p = 1.0;
  const TokenizerConfig tk;
  bool any_out_of_order = false;
  for (const auto& s : generate(*model, tk, opts)) {
    std::vector<int32_t> rows(s.tokens.begin() + 9, s.tokens.end() - 9);
    any_out_of_order |= face_rows(canonicalize_normalized(decode_tokens(s.tokens, tk), tk)) != rows;
  }
  EXPECT_TRUE(any_out_of_order);  // so the test above is not passing by luck
}

TEST(Generate, SampleCommandReportsGrammarAndOrderBreaks) {
  IFLAME_REQUIRE_REFERENCE_DATA();
  const std::string dir = test::temp_dir();
  const auto run = test::run_iflame("sample --weights " + test::reference_dir() +
                                    "/weights.safetensors --n 2 --max-faces 8 --order-constraints --precision bf16 "
                                    "--no-previews --threads 1 --out " + dir);
  ASSERT_EQ(run.code, 0) << run.out;
  EXPECT_NE(run.out.find("and the canonical order at"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("order constraints on"), std::string::npos) << run.out;
  const auto bad = test::run_iflame("sample --weights x.safetensors --order-constraints --no-constraints");
  EXPECT_EQ(bad.code, 1) << bad.out;
}

}  // namespace
}  // namespace iflame
