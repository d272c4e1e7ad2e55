// iflame bench decode: cache memory per sequence (in-process, from the cache's allocations) and
// cached-decoding throughput of iFlame vs the full and linear baselines (one child process per
// configuration, as `bench train` does, so that each peak RSS is its own).
#include "bench/decode.h"

#include <ATen/record_function.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "bench/bench.h"
#include "generate/decode_cache.h"
#include "kernels/decode.h"
#include "generate/decoder.h"
#include "generate/generate.h"
#include "generate/sampler.h"
#include "kernels/threads.h"
#include "model/model.h"
#include "util/args.h"
#include "util/error.h"
#include "util/measure.h"
#include "util/report.h"

namespace iflame::bench {

using nlohmann::json;
using torch::Tensor;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------------------------------
// Counting top-level ATen ops (nested calls, e.g. linear -> addmm, count once).

std::atomic<int64_t> g_ops{0};
thread_local int g_op_depth = 0;

std::unique_ptr<at::ObserverContext> op_start(const at::RecordFunction&) {
  if (g_op_depth++ == 0) g_ops.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}
void op_end(const at::RecordFunction&, at::ObserverContext*) { --g_op_depth; }

// ---------------------------------------------------------------------------------------
// Small output helpers (the same conventions as `bench train`).

// Puts `context` tokens' worth of state into the cache without running the model: K/V of
// every full layer filled (at its resolution) with uniform random values, random linear
// states and hourglass rings. Decoding speed does not depend on the values, and a real
// prefill of 36k tokens through the full baseline would take minutes on a small CPU.
void fill_context(HybridCache& cache, int64_t context, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (auto& l : cache.layers) {
    if (l.kind == AttnKind::Full) {
      l.length = context / l.resolution;
      l.k.narrow(2, 0, l.length).uniform_(-1, 1, gen);
      l.v.narrow(2, 0, l.length).uniform_(-1, 1, gen);
    } else {
      l.state.uniform_(-0.1, 0.1, gen);
    }
  }
  for (Tensor* t : {&cache.a_ring, &cache.b_ring, &cache.latest_c, &cache.latest_d}) {
    if (t->defined()) t->uniform_(-1, 1, gen);
  }
  cache.position = context;
}

}  // namespace

std::pair<int64_t, int64_t> cache_bytes_per_sequence(const ModelConfig& config, int64_t tokens, bool bf16_kv) {
  const int64_t capacity = (tokens + 8) / 9 * 9;
  HybridCache cache(config, 1, capacity, torch::kCPU, bf16_kv ? torch::kBFloat16 : torch::kFloat);
  return {cache.kv_bytes(), cache.state_bytes()};
}

std::vector<std::string> decode_child_arguments(const DecodeSpec& s) {
  std::vector<std::string> a = {"bench",     "decode",   "--child",        "--size",    s.size,
                                "--archs",   arch_name(s.arch),           "--faces",   std::to_string(s.faces),
                                "--batch",   std::to_string(s.batch),     "--tokens",  std::to_string(s.tokens),
                                "--warmup",  std::to_string(s.warmup),    "--precision", s.bf16 ? "bf16" : "fp32",
                                "--path",    s.torch_path ? "torch" : "fast",
                                "--sampling", s.greedy ? "greedy" : "default",
                                "--threads", std::to_string(s.threads),   "--seed",    std::to_string(s.seed),
                                "--mode",    s.generate ? "generate" : "context"};
  if (s.count_ops) a.push_back("--count-ops");
  return a;
}

namespace {

// --mode generate: `batch` sequences generated together from 9 BOS through generate(), as
// `iflame sample` runs them (prefill, sampling, the rule statistics), except that EOS does not
// end a sequence: every one runs to exactly faces + 1 rows, so the work does not depend on
// what random weights sample. The context grows from 9 tokens to 9 (faces + 2), half of that
// on average. One untimed generation of one face first packs the weights for the kernels.
json run_generation(const DecodeSpec& spec, IFlameModelImpl& model) {
  const TokenizerConfig tokenizer;
  GenerateOptions options;
  options.sampling.greedy = spec.greedy;
  options.count = spec.batch;
  options.batch = spec.batch;
  options.seed = spec.seed;
  options.stop_at_eos = false;
  options.bf16 = spec.bf16;
  options.max_faces = 1;
  (void)generate(model, tokenizer, options);

  options.max_faces = spec.faces;
  GenerateStats stats;  // as iflame sample: the rule statistics cost a little per step
  const double cpu0 = cpu_usage().seconds();
  const auto wall0 = Clock::now();
  const auto sequences = generate(model, tokenizer, options, &stats);
  const double wall = std::chrono::duration<double>(Clock::now() - wall0).count();
  const double cpu = cpu_usage().seconds() - cpu0;
  int64_t tokens = 0;
  for (const auto& s : sequences) tokens += s.new_tokens;
  const int64_t steps = tokens / spec.batch;
  const auto kv_state = cache_bytes_per_sequence(model.config, 9 + steps, spec.bf16);
  return {{"mode", "generate"},
          {"arch", arch_name(spec.arch)},
          {"size", spec.size},
          {"params", model.num_parameters()},
          {"faces", spec.faces},
          {"context_tokens", 9 + steps},
          {"batch", spec.batch},
          {"tokens", steps},
          {"new_tokens", tokens},
          {"precision", spec.bf16 ? "bf16" : "fp32"},
          {"path", "fast"},
          {"sampling", spec.greedy ? "greedy" : "default"},
          {"threads", at::get_num_threads()},
          {"wall_s", wall},
          {"mean_ms", 1000.0 * wall / double(steps)},
          {"std_ms", 0.0},
          {"tokens_per_s", double(tokens) / wall},
          {"cpu_utilization", cpu / (wall * double(at::get_num_threads()))},
          {"cpu_ms_per_step", 1000.0 * cpu / double(steps)},
          {"tokens_per_cpu_s", double(tokens) / cpu},
          {"kv_bytes", spec.batch * kv_state.first},
          {"state_bytes", spec.batch * kv_state.second},
          {"peak_rss_kb", peak_rss_kb()}};
}

}  // namespace

json run_decode(const DecodeSpec& spec) {
  set_compute_threads(spec.threads);
  c10::InferenceMode inference;
  const ModelConfig cfg = model_preset(spec.size, spec.arch);
  torch::manual_seed(spec.seed);
  IFlameModel model(cfg);
  model->eval();
  if (spec.generate) {
    if (spec.torch_path || spec.count_ops) throw Error("--mode generate runs the fast path only, without --count-ops");
    return run_generation(spec, *model);
  }
  const int64_t B = spec.batch, P = spec.context_tokens();
  const int64_t capacity = P + spec.warmup + spec.tokens;  // multiples of 9 (checked by the parent)
  DecodeCache cache(cfg, B, capacity, torch::kCPU, spec.bf16 ? torch::kBFloat16 : torch::kFloat);
  cache.path = spec.torch_path ? DecodePath::Torch : DecodePath::Auto;
  fill_context(cache, P, spec.seed + 1);

  SamplingOptions sampling;  // iflame sample's defaults: top-k 50, top-p 0.95, grammar mask
  sampling.greedy = spec.greedy;
  const TokenizerConfig tokenizer;
  std::vector<at::Generator> gens;
  for (int64_t i = 0; i < B; ++i) gens.push_back(make_generator(spec.seed, uint64_t(i)));
  Tensor token = torch::randint(0, tokenizer.quant_max() + 1, {B}, torch::kLong);

  at::CallbackHandle handle = 0;
  if (spec.count_ops) {
    handle = at::addGlobalCallback(at::RecordFunctionCallback(op_start, op_end).scopes({at::RecordScope::FUNCTION}));
  }
  std::vector<double> step_ms;
  double cpu0 = 0, ops0 = 0;
  Clock::time_point wall0;
  for (int64_t s = 0; s < spec.warmup + spec.tokens; ++s) {
    if (s == spec.warmup) {
      cpu0 = cpu_usage().seconds();
      ops0 = double(g_ops.load());
      wall0 = Clock::now();
    }
    const auto t0 = Clock::now();
    const int64_t t = cache.position;  // the sequence index of the token being produced next
    Tensor logits = decode_step(*model, cache, token);
    token = sample_tokens(logits, t + 1, sampling, tokenizer, gens);
    if (s >= spec.warmup) step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double wall = std::chrono::duration<double>(Clock::now() - wall0).count();
  const double cpu = cpu_usage().seconds() - cpu0;
  if (spec.count_ops) at::removeCallback(handle);

  json j = {{"arch", arch_name(spec.arch)},
            {"size", spec.size},
            {"params", model->num_parameters()},
            {"faces", spec.faces},
            {"context_tokens", P},
            {"batch", B},
            {"tokens", spec.tokens},
            {"warmup", spec.warmup},
            {"precision", spec.bf16 ? "bf16" : "fp32"},
            {"path", spec.torch_path ? "torch" : "fast"},
            {"sampling", spec.greedy ? "greedy" : "default"},
            {"threads", at::get_num_threads()},
            {"step_ms", step_ms},
            {"mean_ms", mean_of(step_ms)},
            {"std_ms", std_of(step_ms)},
            {"tokens_per_s", double(B * spec.tokens) / wall},
            {"cpu_utilization", cpu / (wall * double(at::get_num_threads()))},
            {"cpu_ms_per_step", 1000.0 * cpu / double(spec.tokens)},
            {"tokens_per_cpu_s", double(B * spec.tokens) / cpu},
            {"kv_bytes", cache.kv_bytes()},
            {"state_bytes", cache.state_bytes()},
            {"peak_rss_kb", peak_rss_kb()}};
  if (spec.count_ops) j["ops_per_step"] = (double(g_ops.load()) - ops0) / double(spec.tokens);
  return j;
}

// ---------------------------------------------------------------------------------------
// The command, in three parts: parse_decode_settings (the command line, checked),
// run_decode_configurations (the cache table in this process, the throughput in children) and
// decode_report (the text).

namespace {

double mb(double bytes) { return bytes / 1048576.0; }

// ---------------------------------------------------------------------------------------
// The spec: the command line, checked.

// The options as given (the members' initial values are their defaults), and what
// check_decode_settings derives from them.
struct DecodeSettings {
  std::string size = "ref", archs = "iflame,full,linear", faces = "800,4000", batches = "1,16", precision = "fp32",
              path = "fast", sampling = "default", cache_faces = "100,800,4000", format = "md", out_path,
              omp_wait = "default", mode = "context";
  int64_t tokens = 27, warmup = 9, threads = 0, seed = 1, repeat = 1;
  double max_mem_mb = 0, timeout_s = 1800;
  bool child = false, count_ops = false;

  // Derived.
  DecodeSpec base;  // every configuration's spec, but for its arch, face count and batch
  std::vector<Arch> arch_list;
  std::vector<int64_t> faces_list, batch_list, cache_list;
};

// Rejects what cannot run and fills the derived members. The order of the checks is the order
// in which errors are reported.
void check_decode_settings(DecodeSettings& s) {
  if (s.precision != "fp32" && s.precision != "bf16") throw Error("--precision must be fp32 or bf16");
  if (s.path != "fast" && s.path != "torch") throw Error("--path must be fast or torch");
  if (s.sampling != "default" && s.sampling != "greedy") throw Error("--sampling must be default or greedy");
  if (s.format != "md" && s.format != "json") throw Error("--format must be md or json");
  if (s.mode != "context" && s.mode != "generate") throw Error("--mode must be context or generate");
  if (s.mode == "generate" && (s.path != "fast" || s.count_ops)) {
    throw Error("--mode generate times the fast path only (no --path torch, no --count-ops)");
  }
  if (s.omp_wait != "default" && s.omp_wait != "passive" && s.omp_wait != "active") {
    throw Error("--omp-wait must be default, passive or active");
  }
  if (s.tokens < 9 || s.tokens % 9 != 0 || s.warmup < 0 || s.warmup % 9 != 0) {
    throw Error("--tokens must be a positive and --warmup a non-negative multiple of 9 (whole faces: iFlame's "
                "cost per token depends on the position inside a face)");
  }
  if (s.repeat < 1) throw Error("--repeat must be >= 1");
  require_at_least("threads", s.threads, 0);
  require_at_least("seed", s.seed, 0);  // a negative seed would not survive the trip to the child
  require_finite_non_negative("max-mem-mb", s.max_mem_mb);
  require_finite_non_negative("timeout", s.timeout_s);
  (void)model_preset(s.size, Arch::IFlame);  // validates --size
  for (const auto& a : split_commas(s.archs)) s.arch_list.push_back(arch_from_name(a));
  s.faces_list = int_list(s.faces, "--faces", 0);
  s.batch_list = int_list(s.batches, "--batch", 1);
  if (s.arch_list.empty()) throw Error("--archs needs at least one architecture");
  s.cache_list = int_list(s.cache_faces, "--cache-faces", 0);

  DecodeSpec& base = s.base;
  base.size = s.size;
  base.tokens = s.tokens;
  base.warmup = s.warmup;
  base.bf16 = s.precision == "bf16";
  base.torch_path = s.path == "torch";
  base.greedy = s.sampling == "greedy";
  base.threads = s.threads == 0 ? hardware_threads() : s.threads;
  base.count_ops = s.count_ops;
  base.seed = uint64_t(s.seed);
  base.generate = s.mode == "generate";
}

// The checked command line; nothing when --help was given (the help is printed).
std::optional<DecodeSettings> parse_decode_settings(int argc, char** argv) {
  DecodeSettings s;
  ArgParser args("bench decode",
                 "Cached decoding: (a) exact cache bytes per sequence vs length for iflame, full and linear\n"
                 "(K/V of full-attention layers, fp32 linear states and rings, from the HybridCache's own\n"
                 "allocations); (b) decode throughput at a context of --faces faces: the cache is filled with\n"
                 "9 BOS + faces x 9 tokens' worth of random K/V and states (no prefill), then --warmup untimed\n"
                 "and --tokens timed steps of decode_step + sampling, each (arch, faces, batch) in its own\n"
                 "child process. --mode generate times whole generations instead: from 9 BOS to --faces\n"
                 "faces (EOS does not stop them), as iflame sample runs them, so the average context is half\n"
                 "the final one. Random-init weights (speed does not depend on them).");
  args.option("size", &s.size, "model preset: ref | small | tiny")
      .option("archs", &s.archs, "comma-separated: iflame, full, linear")
      .option("mode", &s.mode, "context (decode at a fixed context) | generate (whole generations from scratch)")
      .option("faces", &s.faces, "comma-separated context lengths in faces (generate: the final lengths)")
      .option("batch", &s.batches, "comma-separated batch sizes")
      .option("tokens", &s.tokens, "timed decode steps (a multiple of 9: whole faces)")
      .option("warmup", &s.warmup, "untimed decode steps first (a multiple of 9)")
      .option("precision", &s.precision,
              "fp32 | bf16 (weights and K/V stored in bf16; matmul inputs rounded to bf16 where the CPU has\n"
              "AVX512-BF16; accumulation in fp32)")
      .option("path", &s.path, "fast (fused CPU kernels) | torch (LibTorch per-op Block::step)")
      .option("sampling", &s.sampling, "default (iflame sample's: top-k 50, top-p 0.95, grammar mask) | greedy")
      .option("cache-faces", &s.cache_faces, "comma-separated lengths in faces for the cache-bytes table")
      .option("threads", &s.threads, "LibTorch threads (0: every CPU)")
      .option("omp-wait", &s.omp_wait,
              "OMP_WAIT_POLICY for the children: default (unset, as iflame sample usually runs: threads spin a\n"
              "while between parallel regions, then sleep) | passive | active")
      .option("repeat", &s.repeat, "run every configuration this many times, interleaved; keep the fastest")
      .option("max-mem-mb", &s.max_mem_mb, "skip configurations estimated above this (0: 90% of MemAvailable)")
      .option("timeout", &s.timeout_s, "seconds before a child is killed (0: none)")
      .option("seed", &s.seed, "random seed (weights, context, sampling)")
      .flag("count-ops", &s.count_ops, "count top-level ATen ops per decode step (RecordFunction; slows the run)")
      .option("format", &s.format, "md | json")
      .option("out", &s.out_path, "also write the output to this file")
      .flag("child", &s.child, "(internal) run one configuration in this process and print one JSON line");
  if (!args.parse(argc, argv)) return std::nullopt;
  check_decode_settings(s);
  return s;
}

// --child: the one configuration the parent asked for, in this process.
int run_decode_child(const DecodeSettings& s) {
  if (s.arch_list.size() != 1 || s.faces_list.size() != 1 || s.batch_list.size() != 1) {
    throw Error("--child runs exactly one arch, one face count and one batch size");
  }
  DecodeSpec spec = s.base;
  spec.arch = s.arch_list[0];
  spec.faces = s.faces_list[0];
  spec.batch = s.batch_list[0];
  return run_as_child([&] { return run_decode(spec); });
}

// ---------------------------------------------------------------------------------------
// The run: (a) cache bytes in this process, (b) throughput in children.

// (a) One sequence's cache bytes at one length, with the full baseline's K/V at that length.
struct CacheRow {
  int64_t faces = 0, tokens = 0;
  Arch arch = Arch::IFlame;
  int64_t kv = 0, state = 0, full_kv = 0;
};

// (a) The spec's claim that iFlame's K/V is (26/9) / 24 of the full baseline's (8.3x less), at
// 4000 faces, and both K/Vs in the paper's setting (fp16).
struct KvCheck {
  int64_t tokens = 0;
  double ratio = 0, expected = 0;
  bool holds = false;
  int64_t iflame_fp16_kv = 0, full_fp16_kv = 0;  // one sequence
};

// (b) One configuration's measurement, or why there is none.
struct Row {
  DecodeSpec spec;
  std::string status = "ok";
  json result;
};

struct DecodeResults {
  std::vector<CacheRow> cache;  // (a), in (faces, arch) order
  KvCheck kv_check;
  std::vector<Row> rows;        // (b), in (faces, batch, arch) order
};

// (a) K/V is allocated but never touched, so this is quick at any length.
std::vector<CacheRow> measure_cache(const DecodeSettings& s) {
  std::vector<CacheRow> rows;
  for (int64_t f : s.cache_list) {
    const int64_t L = 9 * (f + 2);  // 9 BOS + faces + the EOS row
    const auto full = cache_bytes_per_sequence(model_preset(s.size, Arch::Full), L, s.base.bf16);
    for (Arch arch : {Arch::IFlame, Arch::Full, Arch::Linear}) {
      const auto [kv, state] = cache_bytes_per_sequence(model_preset(s.size, arch), L, s.base.bf16);
      rows.push_back({f, L, arch, kv, state, full.first});
    }
  }
  return rows;
}

KvCheck check_kv_claim(const DecodeSettings& s) {
  KvCheck c;
  c.tokens = 9 * (4000 + 2);
  const ModelConfig ifl = model_preset(s.size, Arch::IFlame), full = model_preset(s.size, Arch::Full);
  c.ratio = double(cache_bytes_per_sequence(ifl, c.tokens, s.base.bf16).first) /
            double(cache_bytes_per_sequence(full, c.tokens, s.base.bf16).first);
  c.expected = (26.0 / 9.0) / 24.0;
  c.holds = std::abs(c.ratio - c.expected) < 1e-9 && full.baseline_layers == 24;
  HybridCache ifl16(ifl, 1, c.tokens, torch::kCPU, torch::kHalf), full16(full, 1, c.tokens, torch::kCPU, torch::kHalf);
  c.iflame_fp16_kv = ifl16.kv_bytes();
  c.full_fp16_kv = full16.kv_bytes();
  return c;
}

// How this run starts its children.
struct Children {
  std::string exe;
  std::map<std::string, std::string> env;
  double timeout_s = 0;
  double limit_mb = 0;  // configurations estimated above this are skipped
};

// OMP_WAIT_POLICY "default" leaves it unset (an empty value removes it), as iflame sample runs.
std::map<std::string, std::string> decode_child_environment(int64_t threads, const std::string& omp_wait) {
  const std::string n = std::to_string(threads);
  const std::string policy = omp_wait == "default" ? "" : omp_wait == "active" ? "ACTIVE" : "PASSIVE";
  return {{"OMP_NUM_THREADS", n}, {"OPENBLAS_NUM_THREADS", n}, {"MKL_NUM_THREADS", n}, {"OMP_WAIT_POLICY", policy}};
}

// A configuration's peak memory, roughly: weights (float32, plus a packed copy for the fused
// kernels), the cache, the runtime.
double estimate_mb(const DecodeSpec& spec) {
  const ModelConfig cfg = model_preset(spec.size, spec.arch);
  const auto [kv, state] =
      cache_bytes_per_sequence(cfg, spec.context_tokens() + spec.warmup + spec.tokens, spec.bf16);
  const double params = double(block_matmul_weights(cfg) * cfg.num_layers() + 2 * cfg.dim * cfg.vocab);
  return mb(params * (spec.bf16 ? 6.0 : 8.0) + double(spec.batch) * double(kv + state) + 400e6);
}

// (b) One configuration in its child, unless it would not fit.
Row run_configuration(const DecodeSpec& spec, const Children& children) {
  Row row;
  row.spec = spec;
  const char* size = spec.size.c_str();
  const char* arch = arch_name(spec.arch);
  const double est_mb = estimate_mb(spec);
  if (est_mb > children.limit_mb) {
    row.status = "skipped: needs ~" + fmt("%.0f", est_mb) + " MB > " + fmt("%.0f", children.limit_mb) + " MB";
    std::fprintf(stderr, "bench: %s %s %lld faces batch %lld: %s\n", size, arch, (long long)spec.faces,
                 (long long)spec.batch, row.status.c_str());
    return row;
  }
  std::fprintf(stderr, "bench: %s %s %lld faces batch %lld (load %s)...\n", size, arch, (long long)spec.faces,
               (long long)spec.batch, load_average().c_str());
  auto r = run_child(children.exe, decode_child_arguments(spec), children.env, children.timeout_s);
  if (!r.ok) {
    row.status = "failed: " + r.error;
  } else {
    row.result = r.json;
    std::fprintf(stderr, "bench:   %.1f ms/step, %.1f tokens/s\n", r.json.value("mean_ms", 0.0),
                 r.json.value("tokens_per_s", 0.0));
  }
  return row;
}

// (b) Every configuration in its child; with --repeat the whole sequence runs again, arches
// interleaved, so that ratios compare runs made close together in time. The fastest run is kept.
std::vector<Row> run_throughput(const DecodeSettings& s) {
  const Children children{self_executable(), decode_child_environment(s.base.threads, s.omp_wait), s.timeout_s,
                          s.max_mem_mb > 0 ? s.max_mem_mb : 0.9 * double(available_memory_kb()) / 1024.0};
  std::vector<Row> rows;
  for (int64_t round = 0; round < s.repeat; ++round) {
    size_t index = 0;
    for (int64_t f : s.faces_list) {
      for (int64_t b : s.batch_list) {
        for (Arch arch : s.arch_list) {
          const size_t i = index++;
          // A configuration that was skipped or failed is not tried again.
          if (round > 0 && rows[i].status != "ok") continue;
          DecodeSpec spec = s.base;
          spec.arch = arch;
          spec.faces = f;
          spec.batch = b;
          Row row = run_configuration(spec, children);
          if (round == 0) {
            rows.push_back(row);
          } else if (row.status != "ok") {
            rows[i].status = row.status;  // a later round failed: report it
          } else if (row.result["tokens_per_s"].get<double>() > rows[i].result["tokens_per_s"].get<double>()) {
            rows[i] = row;
          }
        }
      }
    }
  }
  return rows;
}

DecodeResults run_decode_configurations(const DecodeSettings& s) {
  DecodeResults results;
  results.cache = measure_cache(s);
  results.kv_check = check_kv_claim(s);
  results.rows = run_throughput(s);
  return results;
}

// ---------------------------------------------------------------------------------------
// The report: JSON, or Markdown tables.

json cache_json_row(const CacheRow& c) {
  const double ratio = c.full_kv > 0 ? double(c.kv) / double(c.full_kv) : 0.0;
  return {{"arch", arch_name(c.arch)}, {"faces", c.faces},        {"tokens", c.tokens},      {"kv_bytes", c.kv},
          {"state_bytes", c.state},    {"total_bytes", c.kv + c.state}, {"kv_vs_full", ratio}};
}

std::vector<std::string> cache_table_row(const CacheRow& c) {
  const double ratio = c.full_kv > 0 ? double(c.kv) / double(c.full_kv) : 0.0;
  return {std::to_string(c.faces), std::to_string(c.tokens), arch_name(c.arch), fmt("%.2f", mb(double(c.kv))),
          fmt("%.1f", double(c.state) / 1024.0), fmt("%.2f", mb(double(c.kv + c.state))),
          c.kv > 0 ? fmt("%.4f", ratio) + " (" + fmt("%.2f", 1.0 / ratio) + "x less)" : "no K/V"};
}

std::string kv_check_text(const KvCheck& c) {
  return "At 4000 faces (" + std::to_string(c.tokens) + " tokens) iFlame's K/V is " + fmt("%.5f", c.ratio) +
         " of full's; (26/9)/24 = " + fmt("%.5f", c.expected) + ": " +
         (c.holds ? "holds exactly (" + fmt("%.2f", 1.0 / c.ratio) + "x less)" : std::string("DOES NOT HOLD")) +
         ".\nThe paper's setting (batch 4, fp16 K/V, 4000 faces): iFlame " +
         fmt("%.2f", 4.0 * double(c.iflame_fp16_kv) / 1073741824.0) + " GiB, full " +
         fmt("%.2f", 4.0 * double(c.full_fp16_kv) / 1073741824.0) + " GiB (paper: 0.80 vs 6.6 GB).\n";
}

// The `full` row of the same face count and batch: the baseline of the ratios.
const Row* full_row(const std::vector<Row>& rows, const Row& r) {
  for (const auto& o : rows) {
    if (o.spec.arch == Arch::Full && o.spec.faces == r.spec.faces && o.spec.batch == r.spec.batch && o.status == "ok") {
      return &o;
    }
  }
  return nullptr;
}

// Generate mode: the context grows from 9 BOS to the final length.
std::string context_label(const DecodeSpec& s) {
  return s.generate ? "9-" + std::to_string(9 * (s.faces + 2)) : std::to_string(s.context_tokens());
}

// (b)'s rows: every row's JSON, the table's rows, and iFlame's speed ratios to full.
struct Throughput {
  json rows = json::array();
  std::vector<std::vector<std::string>> table;
  std::string ratios;  // one line per iflame row with a full row
};

void add_throughput_row(const Row& r, const Row* full, Throughput& t) {
  json o = {{"arch", arch_name(r.spec.arch)}, {"faces", r.spec.faces}, {"batch", r.spec.batch}, {"status", r.status}};
  if (r.status != "ok") {
    t.table.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces), context_label(r.spec),
                       std::to_string(r.spec.batch), r.status, "-", "-", "-", "-", "-", "-", "-"});
    t.rows.push_back(o);
    return;
  }
  const json& j = r.result;
  o.update(j);
  std::string vs_full = "-";
  if (full) {
    const double x = j["tokens_per_s"].get<double>() / full->result["tokens_per_s"].get<double>();
    o["speed_vs_full"] = x;
    vs_full = fmt("%.2fx", x);
    if (r.spec.arch == Arch::IFlame) {
      t.ratios += "iflame / full at " + std::to_string(r.spec.faces) + " faces, batch " +
                  std::to_string(r.spec.batch) + ": " + vs_full + "\n";
    }
  }
  const double cache_mb = mb(double(j["kv_bytes"].get<int64_t>() + j["state_bytes"].get<int64_t>()));
  t.table.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces), context_label(r.spec),
                     std::to_string(r.spec.batch),
                     fmt("%.1f", j["mean_ms"].get<double>()) +
                         (r.spec.generate ? std::string() : " ± " + fmt("%.1f", j["std_ms"].get<double>())),
                     fmt("%.1f", j["tokens_per_s"].get<double>()), vs_full,
                     j.contains("ops_per_step") ? fmt("%.0f", j["ops_per_step"].get<double>()) : "-",
                     fmt("%.0f", cache_mb), fmt("%.0f", j["peak_rss_kb"].get<double>() / 1024.0),
                     fmt("%.0f%%", 100.0 * j["cpu_utilization"].get<double>()),
                     fmt("%.1f", j["tokens_per_cpu_s"].get<double>())});
  t.rows.push_back(o);
}

Throughput throughput(const std::vector<Row>& rows) {
  Throughput t;
  for (const auto& r : rows) add_throughput_row(r, full_row(rows, r), t);
  return t;
}

std::string json_report(const DecodeSettings& s, const DecodeResults& results, const json& rows) {
  const json settings = {{"size", s.size},           {"precision", s.precision}, {"path", s.path},
                         {"sampling", s.sampling},   {"tokens", s.tokens},       {"warmup", s.warmup},
                         {"threads", s.base.threads}, {"omp_wait", s.omp_wait},  {"repeat", s.repeat},
                         {"mode", s.mode}};
  json cache = json::array();
  for (const CacheRow& c : results.cache) cache.push_back(cache_json_row(c));
  const json j = {{"machine", machine_facts(s.base.threads)},
                  {"settings", settings},
                  {"cache", cache},
                  {"kv_check", kv_check_text(results.kv_check)},
                  {"rows", rows}};
  return j.dump(2) + "\n";
}

// The Markdown report's first lines: the machine and the settings.
std::string markdown_header(const DecodeSettings& s) {
  const decode::Isa isa = decode::active_isa();
  const std::string bf16_note =
      std::string(" (weights and K/V in bf16; matmul kernels: ") +
      decode::isa_name(isa >= decode::Isa::Avx512 ? isa : decode::Isa::Generic) +
      (isa == decode::Isa::Avx512Bf16 ? ", inputs rounded to bf16)" : ", fp32 arithmetic)");
  std::ostringstream h;
  h << "iflame bench decode: " << cpu_model() << " (" << hardware_threads() << " CPUs, " << s.base.threads
    << " threads, OMP_WAIT_POLICY " << (s.omp_wait == "default" ? std::string("unset") : s.omp_wait) << "), LibTorch "
    << libtorch_version() << ", " << today() << "\n"
    << "size " << s.size << ", precision " << s.precision
    << (s.base.bf16 ? bf16_note : std::string(" (weights, K/V and arithmetic in fp32)")) << ", path " << s.path
    << (s.path == "fast" ? " (fused CPU kernels)" : " (LibTorch per-op Block::step)") << "\n";
  return h.str();
}

// (a): the cache table and the K/V claim.
std::string markdown_cache_section(const DecodeSettings& s, const DecodeResults& results) {
  std::vector<std::vector<std::string>> table;
  for (const CacheRow& c : results.cache) table.push_back(cache_table_row(c));
  return "(a) Cache bytes per sequence of faces + 2 rows (BOS and EOS), from the HybridCache's allocations:\n"
         "K/V of the full-attention layers in " + std::string(s.base.bf16 ? "bf16" : "fp32") +
         "; state = fp32 linear-attention states (H x D x D per layer) + iFlame's hourglass rings.\n\n" +
         markdown_table({"faces", "tokens", "arch", "K/V MB", "state KB", "total MB", "K/V vs full"}, table) + "\n" +
         kv_check_text(results.kv_check);
}

// (b): what was timed, the throughput table and iFlame's ratios to full.
std::string markdown_throughput_section(const DecodeSettings& s, const Throughput& t) {
  const std::string step = s.base.greedy ? "greedy argmax"
                                         : "sampling (top-k 50, top-p 0.95, temperature 1, grammar mask)";
  std::ostringstream out;
  if (s.base.generate) {
    out << "(b) Generation throughput from scratch: batch sequences generated together from 9 BOS to\n"
           "faces + 1 rows each (EOS does not stop them) by generate(), as iflame sample runs it: prefill,\n"
           "decode_step + "
        << step
        << ", rule statistics. The context grows from 9 tokens to the final length (half of it\n"
           "on average). tokens/s = generated tokens / wall time; ms/step = wall time / steps.\n";
  } else {
    out << "(b) Decode throughput. Context: 9 BOS + faces x 9 tokens already in the cache (filled with random\n"
           "K/V and states, no prefill); then "
        << s.warmup << " untimed and " << s.tokens << " timed steps, each = decode_step + " << step
        << ".\ntokens/s = batch x timed steps / wall time; ms/step = mean ± std of one step (the whole batch);\n";
  }
  out << "CPU util = CPU time / (wall time x threads): well below 100% means other processes had the cores;\n"
      << "tokens/CPU-s = batch x timed steps / CPU time (all threads), less sensitive to that contention.\n"
      << (s.repeat > 1 ? "Fastest of " + std::to_string(s.repeat) + " interleaved runs.\n" : std::string()) << "\n"
      << markdown_table({"arch", "faces", "context", "batch", "ms/step", "tokens/s", "vs full", "ATen ops/step",
                         "cache MB", "peak MB", "CPU util", "tokens/CPU-s"},
                        t.table)
      << "\n"
      << t.ratios;
  return out.str();
}

// The report in --format, to stdout and --out.
void decode_report(const DecodeSettings& s, const DecodeResults& results) {
  const Throughput t = throughput(results.rows);
  const std::string text = s.format == "json" ? json_report(s, results, t.rows)
                                              : markdown_header(s) + "\n" + markdown_cache_section(s, results) +
                                                    "\n" + markdown_throughput_section(s, t);
  emit(text, s.out_path);
}

}  // namespace

int run_decode_command(int argc, char** argv) {
  const std::optional<DecodeSettings> settings = parse_decode_settings(argc, argv);
  if (!settings) return 0;
  if (settings->child) return run_decode_child(*settings);
  const DecodeResults results = run_decode_configurations(*settings);
  decode_report(*settings, results);
  const bool any_failed = std::any_of(results.rows.begin(), results.rows.end(),
                                      [](const Row& r) { return r.status.rfind("failed", 0) == 0; });
  return any_failed ? 1 : 0;
}

}  // namespace iflame::bench
