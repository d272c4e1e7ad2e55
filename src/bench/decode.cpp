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
#include <sstream>

#include "bench/bench.h"
#include "generate/decode_cache.h"
#include "kernels/decode.h"
#include "generate/decoder.h"
#include "generate/generate.h"
#include "generate/sampler.h"
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
  set_threads(spec.threads);
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
// The command.

namespace {

struct Row {
  DecodeSpec spec;
  std::string status = "ok";
  json result;
};

double mb(double bytes) { return bytes / 1048576.0; }

}  // namespace

int run_decode_command(int argc, char** argv) {
  std::string size = "ref", archs = "iflame,full,linear", faces = "800,4000", batches = "1,16", precision = "fp32",
              path = "fast", sampling = "default", cache_faces = "100,800,4000", format = "md", out_path,
              omp_wait = "default", mode = "context";
  int64_t tokens = 27, warmup = 9, threads = 0, seed = 1, repeat = 1;
  double max_mem_mb = 0, timeout_s = 1800;
  bool child = false, count_ops = false;
  ArgParser args("bench decode",
                 "Cached decoding: (a) exact cache bytes per sequence vs length for iflame, full and linear\n"
                 "(K/V of full-attention layers, fp32 linear states and rings, from the HybridCache's own\n"
                 "allocations); (b) decode throughput at a context of --faces faces: the cache is filled with\n"
                 "9 BOS + faces x 9 tokens' worth of random K/V and states (no prefill), then --warmup untimed\n"
                 "and --tokens timed steps of decode_step + sampling, each (arch, faces, batch) in its own\n"
                 "child process. --mode generate times whole generations instead: from 9 BOS to --faces\n"
                 "faces (EOS does not stop them), as iflame sample runs them, so the average context is half\n"
                 "the final one. Random-init weights (speed does not depend on them).");
  args.option("size", &size, "model preset: ref | small | tiny")
      .option("archs", &archs, "comma-separated: iflame, full, linear")
      .option("mode", &mode, "context (decode at a fixed context) | generate (whole generations from scratch)")
      .option("faces", &faces, "comma-separated context lengths in faces (generate: the final lengths)")
      .option("batch", &batches, "comma-separated batch sizes")
      .option("tokens", &tokens, "timed decode steps (a multiple of 9: whole faces)")
      .option("warmup", &warmup, "untimed decode steps first (a multiple of 9)")
      .option("precision", &precision,
              "fp32 | bf16 (weights and K/V stored in bf16; matmul inputs rounded to bf16 where the CPU has\n"
              "AVX512-BF16; accumulation in fp32)")
      .option("path", &path, "fast (fused CPU kernels) | torch (LibTorch per-op Block::step)")
      .option("sampling", &sampling, "default (iflame sample's: top-k 50, top-p 0.95, grammar mask) | greedy")
      .option("cache-faces", &cache_faces, "comma-separated lengths in faces for the cache-bytes table")
      .option("threads", &threads, "LibTorch threads (0: every CPU)")
      .option("omp-wait", &omp_wait,
              "OMP_WAIT_POLICY for the children: default (unset, as iflame sample usually runs: threads spin a\n"
              "while between parallel regions, then sleep) | passive | active")
      .option("repeat", &repeat, "run every configuration this many times, interleaved; keep the fastest")
      .option("max-mem-mb", &max_mem_mb, "skip configurations estimated above this (0: 90% of MemAvailable)")
      .option("timeout", &timeout_s, "seconds before a child is killed (0: none)")
      .option("seed", &seed, "random seed (weights, context, sampling)")
      .flag("count-ops", &count_ops, "count top-level ATen ops per decode step (RecordFunction; slows the run)")
      .option("format", &format, "md | json")
      .option("out", &out_path, "also write the output to this file")
      .flag("child", &child, "(internal) run one configuration in this process and print one JSON line");
  if (!args.parse(argc, argv)) return 0;
  if (precision != "fp32" && precision != "bf16") throw Error("--precision must be fp32 or bf16");
  if (path != "fast" && path != "torch") throw Error("--path must be fast or torch");
  if (sampling != "default" && sampling != "greedy") throw Error("--sampling must be default or greedy");
  if (format != "md" && format != "json") throw Error("--format must be md or json");
  if (mode != "context" && mode != "generate") throw Error("--mode must be context or generate");
  if (mode == "generate" && (path != "fast" || count_ops)) {
    throw Error("--mode generate times the fast path only (no --path torch, no --count-ops)");
  }
  if (omp_wait != "default" && omp_wait != "passive" && omp_wait != "active") {
    throw Error("--omp-wait must be default, passive or active");
  }
  if (tokens < 9 || tokens % 9 != 0 || warmup < 0 || warmup % 9 != 0) {
    throw Error("--tokens must be a positive and --warmup a non-negative multiple of 9 (whole faces: iFlame's "
                "cost per token depends on the position inside a face)");
  }
  if (repeat < 1) throw Error("--repeat must be >= 1");
  (void)model_preset(size, Arch::IFlame);  // validates --size
  std::vector<Arch> arch_list;
  for (const auto& a : split_commas(archs)) arch_list.push_back(arch_from_name(a));
  const std::vector<int64_t> faces_list = int_list(faces, "--faces", 0), batch_list = int_list(batches, "--batch", 1);
  if (arch_list.empty()) throw Error("--archs needs at least one architecture");

  DecodeSpec base;
  base.size = size;
  base.tokens = tokens;
  base.warmup = warmup;
  base.bf16 = precision == "bf16";
  base.torch_path = path == "torch";
  base.greedy = sampling == "greedy";
  base.threads = threads <= 0 ? hardware_threads() : threads;
  base.count_ops = count_ops;
  base.seed = uint64_t(seed);
  base.generate = mode == "generate";
  if (child) {
    if (arch_list.size() != 1 || faces_list.size() != 1 || batch_list.size() != 1) {
      throw Error("--child runs exactly one arch, one face count and one batch size");
    }
    base.arch = arch_list[0];
    base.faces = faces_list[0];
    base.batch = batch_list[0];
    return run_as_child([&] { return run_decode(base); });
  }

  // (a) Cache bytes per sequence, in this process (K/V is allocated but never touched).
  const std::vector<int64_t> cache_list = int_list(cache_faces, "--cache-faces", 0);
  const std::vector<Arch> all_archs = {Arch::IFlame, Arch::Full, Arch::Linear};
  json cache_rows = json::array();
  std::vector<std::vector<std::string>> md_cache;
  std::string kv_check;
  for (int64_t f : cache_list) {
    const int64_t L = 9 * (f + 2);  // 9 BOS + faces + the EOS row
    const auto full = cache_bytes_per_sequence(model_preset(size, Arch::Full), L, base.bf16);
    for (Arch arch : all_archs) {
      const auto [kv, state] = cache_bytes_per_sequence(model_preset(size, arch), L, base.bf16);
      const double ratio = full.first > 0 ? double(kv) / double(full.first) : 0.0;
      cache_rows.push_back({{"arch", arch_name(arch)}, {"faces", f}, {"tokens", L}, {"kv_bytes", kv},
                            {"state_bytes", state}, {"total_bytes", kv + state}, {"kv_vs_full", ratio}});
      md_cache.push_back({std::to_string(f), std::to_string(L), arch_name(arch), fmt("%.2f", mb(double(kv))),
                          fmt("%.1f", double(state) / 1024.0), fmt("%.2f", mb(double(kv + state))),
                          kv > 0 ? fmt("%.4f", ratio) + " (" + fmt("%.2f", 1.0 / ratio) + "x less)" : "no K/V"});
    }
  }
  {
    // The spec's claim: iFlame's K/V is (26/9) / 24 of the full baseline's, 8.3x less.
    const int64_t L = 9 * (4000 + 2);
    const ModelConfig ifl = model_preset(size, Arch::IFlame), full = model_preset(size, Arch::Full);
    const double ratio = double(cache_bytes_per_sequence(ifl, L, base.bf16).first) /
                         double(cache_bytes_per_sequence(full, L, base.bf16).first);
    const double expected = (26.0 / 9.0) / 24.0;
    const bool holds = std::abs(ratio - expected) < 1e-9 && full.baseline_layers == 24;
    HybridCache ifl16(ifl, 1, L, torch::kCPU, torch::kHalf), full16(full, 1, L, torch::kCPU, torch::kHalf);
    kv_check = "At 4000 faces (" + std::to_string(L) + " tokens) iFlame's K/V is " + fmt("%.5f", ratio) +
               " of full's; (26/9)/24 = " + fmt("%.5f", expected) + ": " +
               (holds ? "holds exactly (" + fmt("%.2f", 1.0 / ratio) + "x less)" : std::string("DOES NOT HOLD")) +
               ".\nThe paper's setting (batch 4, fp16 K/V, 4000 faces): iFlame " +
               fmt("%.2f", 4.0 * double(ifl16.kv_bytes()) / 1073741824.0) + " GiB, full " +
               fmt("%.2f", 4.0 * double(full16.kv_bytes()) / 1073741824.0) + " GiB (paper: 0.80 vs 6.6 GB).\n";
  }

  // (b) Throughput, one child per configuration; arches interleaved so ratios compare runs
  // made close together in time.
  const std::string exe = self_executable();
  std::map<std::string, std::string> env;
  const std::string n = std::to_string(base.threads);
  env = {{"OMP_NUM_THREADS", n}, {"OPENBLAS_NUM_THREADS", n}, {"MKL_NUM_THREADS", n}};
  env["OMP_WAIT_POLICY"] = omp_wait == "default" ? "" : omp_wait == "active" ? "ACTIVE" : "PASSIVE";
  const double limit_mb = max_mem_mb > 0 ? max_mem_mb : 0.9 * double(available_memory_kb()) / 1024.0;

  std::vector<Row> rows;
  for (int64_t round = 0; round < repeat; ++round) {
    size_t index = 0;
    for (int64_t f : faces_list) {
      for (int64_t b : batch_list) {
        for (Arch arch : arch_list) {
          Row row;
          row.spec = base;
          row.spec.arch = arch;
          row.spec.faces = f;
          row.spec.batch = b;
          const size_t i = index++;
          if (round > 0 && rows[i].status != "ok") continue;
          const ModelConfig cfg = model_preset(size, arch);
          const auto [kv, state] = cache_bytes_per_sequence(
              cfg, row.spec.context_tokens() + row.spec.warmup + row.spec.tokens, base.bf16);
          // Weights (float32, plus a packed copy for the fused kernels), the cache, the runtime.
          const double params = double(block_matmul_weights(cfg) * cfg.num_layers() + 2 * cfg.dim * cfg.vocab);
          const double est_mb = mb(params * (base.bf16 ? 6.0 : 8.0) + double(b) * double(kv + state) + 400e6);
          if (est_mb > limit_mb) {
            row.status = "skipped: needs ~" + fmt("%.0f", est_mb) + " MB > " + fmt("%.0f", limit_mb) + " MB";
            std::fprintf(stderr, "bench: %s %s %lld faces batch %lld: %s\n", size.c_str(), arch_name(arch),
                         (long long)f, (long long)b, row.status.c_str());
          } else {
            std::fprintf(stderr, "bench: %s %s %lld faces batch %lld (load %s)...\n", size.c_str(), arch_name(arch),
                         (long long)f, (long long)b, load_average().c_str());
            auto r = run_child(exe, decode_child_arguments(row.spec), env, timeout_s);
            if (!r.ok) {
              row.status = "failed: " + r.error;
            } else {
              row.result = r.json;
              std::fprintf(stderr, "bench:   %.1f ms/step, %.1f tokens/s\n", r.json.value("mean_ms", 0.0),
                           r.json.value("tokens_per_s", 0.0));
            }
          }
          if (round == 0) {
            rows.push_back(row);
          } else if (row.status != "ok") {
            rows[i].status = row.status;
          } else if (row.result["tokens_per_s"].get<double>() > rows[i].result["tokens_per_s"].get<double>()) {
            rows[i] = row;
          }
        }
      }
    }
  }

  auto full_row = [&](const Row& r) -> const Row* {
    for (const auto& o : rows) {
      if (o.spec.arch == Arch::Full && o.spec.faces == r.spec.faces && o.spec.batch == r.spec.batch && o.status == "ok") {
        return &o;
      }
    }
    return nullptr;
  };
  // Generate mode: the context grows from 9 BOS to the final length.
  auto context_label = [](const DecodeSpec& s) {
    return s.generate ? "9-" + std::to_string(9 * (s.faces + 2)) : std::to_string(s.context_tokens());
  };
  json out_rows = json::array();
  std::vector<std::vector<std::string>> md;
  std::string ratios;
  for (const auto& r : rows) {
    json o = {{"arch", arch_name(r.spec.arch)}, {"faces", r.spec.faces}, {"batch", r.spec.batch}, {"status", r.status}};
    if (r.status != "ok") {
      md.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces), context_label(r.spec),
                    std::to_string(r.spec.batch), r.status, "-", "-", "-", "-", "-", "-", "-"});
      out_rows.push_back(o);
      continue;
    }
    const json& j = r.result;
    o.update(j);
    std::string vs_full = "-";
    if (const Row* full = full_row(r)) {
      const double x = j["tokens_per_s"].get<double>() / full->result["tokens_per_s"].get<double>();
      o["speed_vs_full"] = x;
      vs_full = fmt("%.2fx", x);
      if (r.spec.arch == Arch::IFlame) {
        ratios += "iflame / full at " + std::to_string(r.spec.faces) + " faces, batch " + std::to_string(r.spec.batch) +
                  ": " + vs_full + "\n";
      }
    }
    const double cache_mb = mb(double(j["kv_bytes"].get<int64_t>() + j["state_bytes"].get<int64_t>()));
    md.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces), context_label(r.spec),
                  std::to_string(r.spec.batch),
                  fmt("%.1f", j["mean_ms"].get<double>()) +
                      (r.spec.generate ? std::string() : " ± " + fmt("%.1f", j["std_ms"].get<double>())),
                  fmt("%.1f", j["tokens_per_s"].get<double>()), vs_full,
                  j.contains("ops_per_step") ? fmt("%.0f", j["ops_per_step"].get<double>()) : "-", fmt("%.0f", cache_mb),
                  fmt("%.0f", j["peak_rss_kb"].get<double>() / 1024.0),
                  fmt("%.0f%%", 100.0 * j["cpu_utilization"].get<double>()),
                  fmt("%.1f", j["tokens_per_cpu_s"].get<double>())});
    out_rows.push_back(o);
  }

  const json settings = {{"size", size},         {"precision", precision}, {"path", path},
                         {"sampling", sampling}, {"tokens", tokens},       {"warmup", warmup},
                         {"threads", base.threads}, {"omp_wait", omp_wait}, {"repeat", repeat},
                         {"mode", mode}};
  std::string text;
  if (format == "json") {
    json j = {{"machine", machine_facts(base.threads)},
              {"settings", settings},
              {"cache", cache_rows},
              {"kv_check", kv_check},
              {"rows", out_rows}};
    text = j.dump(2) + "\n";
  } else {
    const std::string kv_type = base.bf16 ? "bf16" : "fp32";
    std::ostringstream s;
    s << "iflame bench decode: " << cpu_model() << " (" << hardware_threads() << " CPUs, " << base.threads
      << " threads, OMP_WAIT_POLICY " << (omp_wait == "default" ? std::string("unset") : omp_wait) << "), LibTorch "
      << libtorch_version() << ", " << today() << "\n"
      << "size " << size << ", precision " << precision
      << (base.bf16 ? std::string(" (weights and K/V in bf16; matmul kernels: ") +
                          decode::isa_name(decode::active_isa() >= decode::Isa::Avx512 ? decode::active_isa()
                                                                                   : decode::Isa::Generic) +
                          (decode::active_isa() == decode::Isa::Avx512Bf16 ? ", inputs rounded to bf16)" : ", fp32 arithmetic)")
                    : std::string(" (weights, K/V and arithmetic in fp32)"))
      << ", path " << path << (path == "fast" ? " (fused CPU kernels)" : " (LibTorch per-op Block::step)") << "\n\n"
      << "(a) Cache bytes per sequence of faces + 2 rows (BOS and EOS), from the HybridCache's allocations:\n"
      << "K/V of the full-attention layers in " << kv_type
      << "; state = fp32 linear-attention states (H x D x D per layer) + iFlame's hourglass rings.\n\n"
      << markdown_table({"faces", "tokens", "arch", "K/V MB", "state KB", "total MB", "K/V vs full"}, md_cache) << "\n"
      << kv_check << "\n"
      << (base.generate
              ? "(b) Generation throughput from scratch: batch sequences generated together from 9 BOS to\n"
                "faces + 1 rows each (EOS does not stop them) by generate(), as iflame sample runs it: prefill,\n"
                "decode_step + " +
                    std::string(base.greedy ? "greedy argmax" : "sampling (top-k 50, top-p 0.95, temperature 1, grammar mask)") +
                    ", rule statistics. The context grows from 9 tokens to the final length (half of it\n"
                    "on average). tokens/s = generated tokens / wall time; ms/step = wall time / steps.\n"
              : "(b) Decode throughput. Context: 9 BOS + faces x 9 tokens already in the cache (filled with random\n"
                "K/V and states, no prefill); then " +
                    std::to_string(warmup) + " untimed and " + std::to_string(tokens) + " timed steps, each = decode_step + " +
                    (base.greedy ? "greedy argmax" : "sampling (top-k 50, top-p 0.95, temperature 1, grammar mask)") +
                    ".\ntokens/s = batch x timed steps / wall time; ms/step = mean ± std of one step (the whole batch);\n")
      << "CPU util = CPU time / (wall time x threads): well below 100% means other processes had the cores;\n"
      << "tokens/CPU-s = batch x timed steps / CPU time (all threads), less sensitive to that contention.\n"
      << (repeat > 1 ? "Fastest of " + std::to_string(repeat) + " interleaved runs.\n" : std::string()) << "\n"
      << markdown_table({"arch", "faces", "context", "batch", "ms/step", "tokens/s", "vs full", "ATen ops/step",
                         "cache MB", "peak MB", "CPU util", "tokens/CPU-s"},
                        md)
      << "\n"
      << ratios;
    text = s.str();
  }
  emit(text, out_path);
  bool any_failed = false;
  for (const auto& r : rows) any_failed |= r.status.rfind("failed", 0) == 0;
  return any_failed ? 1 : 0;
}

}  // namespace iflame::bench
