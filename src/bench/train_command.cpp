// iflame bench train: training throughput, peak memory and MFU of iFlame vs the baselines. Each
// configuration runs in a child process (this binary again, `bench train --child ...`) so that
// its peak memory is its own.
//
// The command reads in three parts: parse_train_settings (the command line, checked),
// run_train_configurations (the children, one row each) and train_report (the text).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include "bench/bench.h"
#include "util/args.h"
#include "util/error.h"
#include "util/memory.h"
#include "util/report.h"

namespace iflame::bench {

namespace {

using nlohmann::json;

std::string params_text(int64_t n) { return fmt("%.1fM", double(n) / 1e6); }

// ---------------------------------------------------------------------------------------
// The spec: the command line, checked.

// The options as given (the members' initial values are their defaults), and what
// check_train_settings derives from them.
struct TrainSettings {
  std::string size = "ref", archs = "iflame,full", faces = "800", dtype = "bf16", format = "md", out_path,
              optimizer = "adamw", omp_wait = "passive", malloc_mode = "train", recompute = "none";
  int64_t batch = 1, steps = 3, warmup = 2, threads = 0, seed = 1, repeat = 1, dim = 0, heads = 0;
  double peak_gflops = 0, max_mem_mb = 0, timeout_s = 7200;
  bool child = false, idle = false, profile = false;

  // Derived; `threads` above is also resolved (0: every CPU).
  TrainSpec base;  // every configuration's spec, but for its arch and face count
  std::vector<Arch> arch_list;
  std::vector<int64_t> faces_list;
};

// Rejects what cannot run and fills the derived members. The order of the checks is the order
// in which errors are reported.
void check_train_settings(TrainSettings& s) {
  if (s.dtype != "bf16" && s.dtype != "fp32") throw Error("--dtype must be bf16 or fp32");
  if (s.optimizer != "adamw" && s.optimizer != "muon" && s.optimizer != "none") {
    throw Error("--optimizer must be adamw, muon or none");
  }
  if (s.dim < 0 || s.heads < 0) throw Error("--dim and --heads must be 0 (the preset's) or positive");
  if (s.format != "md" && s.format != "json" && s.format != "csv") throw Error("--format must be md, json or csv");
  if (s.omp_wait != "passive" && s.omp_wait != "active") throw Error("--omp-wait must be passive or active");
  if (s.malloc_mode != "train" && s.malloc_mode != "glibc") throw Error("--malloc must be train or glibc");
  if (s.batch < 1 || s.steps < 1 || s.warmup < 0 || s.repeat < 1) {
    throw Error("--batch, --steps and --repeat must be >= 1, --warmup >= 0");
  }
  require_at_least("threads", s.threads, 0);
  require_at_least("seed", s.seed, 0);  // a negative seed would not survive the trip to the child
  require_finite_non_negative("peak-gflops", s.peak_gflops);
  require_finite_non_negative("max-mem-mb", s.max_mem_mb);
  require_finite_non_negative("timeout", s.timeout_s);
  TrainSpec& base = s.base;
  base.size = s.size;
  base.dim = s.dim;
  base.heads = s.heads;
  (void)base.model();  // validates --size, --dim, --heads
  if (s.threads == 0) s.threads = hardware_threads();

  for (const auto& a : split_commas(s.archs)) s.arch_list.push_back(arch_from_name(a));
  s.faces_list = int_list(s.faces, "--faces", 1);
  if (s.arch_list.empty()) throw Error("--archs needs at least one architecture");

  base.batch = s.batch;
  base.steps = s.steps;
  base.warmup = s.warmup;
  base.bf16 = s.dtype == "bf16";
  base.optimizer = s.optimizer;
  base.threads = s.threads;
  base.seed = uint64_t(s.seed);
  base.profile = s.profile;
  base.recompute = recompute_from_name(s.recompute);
  base.glibc_malloc = s.malloc_mode == "glibc";
}

// The checked command line; nothing when --help was given (the help is printed).
std::optional<TrainSettings> parse_train_settings(int argc, char** argv) {
  TrainSettings s;
  ArgParser args("bench train",
                 "Training throughput and peak memory of iFlame vs the baselines on random coordinate tokens\n"
                 "framed as real sequences (9 BOS, faces x 9, 9 EOS). Each (arch, faces) runs --warmup + --steps\n"
                 "steps of forward + sequence_loss + backward (+ the --optimizer step) in its own\n"
                 "child process; its peak RSS minus that of an idle child that only builds the model is the\n"
                 "'activation' peak. Configurations whose estimated peak exceeds --max-mem-mb are skipped.\n"
                 "MFU = counted model FLOP/s / this CPU's measured bf16 matmul rate (`iflame bench matmul`).");
  args.option("size", &s.size, "model preset: ref | small | tiny")
      .option("dim", &s.dim, "width E instead of the preset's (0: the preset's)")
      .option("heads", &s.heads, "attention heads instead of the preset's (0: the preset's)")
      .option("archs", &s.archs, "comma-separated: iflame, full, linear")
      .option("faces", &s.faces, "comma-separated face counts (tokens = (faces + 2) x 9)")
      .option("batch", &s.batch, "sequences per step")
      .option("steps", &s.steps, "timed steps")
      .option("warmup", &s.warmup, "untimed steps first (the heap that training keeps settles after about two)")
      .option("dtype", &s.dtype, "bf16 (autocast on CPU) | fp32")
      .option("optimizer", &s.optimizer,
              "adamw (torch's AdamW) | muon (iflame train's step: gradient clipping, Muon + AdamW) |\n"
              "none (zero_grad only); the step is included in the timing")
      .option("recompute", &s.recompute,
              "none | linear | all: blocks that keep only their input and run again in the backward\n"
              "(linear: the linear-attention blocks; `full` has none, so it is unchanged)")
      .option("threads", &s.threads, "LibTorch threads (0: every CPU)")
      .option("omp-wait", &s.omp_wait, "OMP_WAIT_POLICY for the children: passive | active")
      .option("malloc", &s.malloc_mode,
              "children's malloc: train (as `iflame train`: freed memory stays in the heap for reuse, no\n"
              "mmap per large tensor) | glibc (glibc's defaults: a page-faulting mmap per large tensor)")
      .option("peak-gflops", &s.peak_gflops, "MFU denominator in GFLOP/s (0: measure bf16 2048^3 matmul now)")
      .option("max-mem-mb", &s.max_mem_mb, "skip configurations estimated above this (0: 90% of MemAvailable)")
      .option("repeat", &s.repeat, "run every configuration this many times, interleaved; keep the fastest")
      .option("timeout", &s.timeout_s, "seconds before a child is killed (0: none)")
      .option("seed", &s.seed, "random seed (weights and tokens)")
      .flag("profile", &s.profile, "also time each block kind's parts (attention kernel, SwiGLU) in isolation")
      .option("format", &s.format, "md | json | csv")
      .option("out", &s.out_path, "also write the output to this file")
      .flag("child", &s.child, "(internal) run one configuration in this process and print one JSON line")
      .flag("idle", &s.idle, "(internal, with --child) only build the model");
  if (!args.parse(argc, argv)) return std::nullopt;
  check_train_settings(s);
  return s;
}

// --child: the one configuration the parent asked for, in this process.
int run_train_child(const TrainSettings& s) {
  if (s.arch_list.size() != 1 || s.faces_list.size() != 1) {
    throw Error("--child runs exactly one arch and one face count");
  }
  TrainSpec spec = s.base;
  spec.arch = s.arch_list[0];
  spec.faces = s.faces_list[0];
  spec.idle = s.idle;
  if (!spec.glibc_malloc) keep_freed_memory();  // as `iflame train` does
  return run_as_child([&] { return run_train(spec); });
}

// ---------------------------------------------------------------------------------------
// The run: the children, one row per (arch, faces).

struct Row {
  TrainSpec spec;
  std::string status = "ok";  // "ok", or why there is no measurement
  json result;                // the child's JSON
  double idle_kb = 0;         // peak RSS of the idle child (the model only)
  double peak_kb = 0;
  double estimate_mb = 0;
  std::string load;           // load average before the run
};

// What the run measured, and the MFU denominator it is reported against.
struct TrainResults {
  std::vector<Row> rows;   // in (arch, faces) order
  double peak_gflops = 0;  // bf16 matmul rate: --peak-gflops, or measured now
  double fp32_peak = 0;    // measured along with it (0: not measured)
  std::string peak_note;   // where peak_gflops comes from
  double limit_mb = 0;     // configurations estimated above this were skipped
};

// How this run starts its children.
struct Children {
  std::string exe;
  std::map<std::string, std::string> env;
  double timeout_s = 0;
};

// The MFU denominator, measured in a child with the same threads and environment, unless given.
void measure_peak(const TrainSettings& s, const Children& children, TrainResults& results) {
  if (s.peak_gflops > 0) {
    results.peak_gflops = s.peak_gflops;
    results.peak_note = "given with --peak-gflops";
    return;
  }
  std::fprintf(stderr, "bench: measuring the bf16 matmul rate (2048^3)...\n");
  auto r = run_child(children.exe,
                     {"bench", "matmul", "--sizes", "2048", "--shapes", "square", "--reps", "5", "--threads",
                      std::to_string(s.threads), "--format", "json"},
                     children.env, 600);
  if (!r.ok) throw Error("bench: the matmul measurement failed: " + r.error);
  results.peak_gflops = r.json.value("peak_bf16_gflops", 0.0);
  results.fp32_peak = r.json.value("peak_fp32_gflops", 0.0);
  results.peak_note = "measured now: torch::matmul 2048x2048x2048, best of 5";
}

// Peak RSS of a child that only builds `arch`'s model (0 when it failed): the memory baseline.
double idle_peak_kb(const TrainSettings& s, const Children& children, Arch arch) {
  TrainSpec idle_spec = s.base;
  idle_spec.arch = arch;
  idle_spec.idle = true;
  idle_spec.faces = s.faces_list[0];
  std::fprintf(stderr, "bench: %s %s: idle baseline...\n", s.size.c_str(), arch_name(arch));
  auto idle_r = run_child(children.exe, child_arguments(idle_spec), children.env, children.timeout_s);
  if (!idle_r.ok) std::fprintf(stderr, "bench: idle child failed: %s\n", idle_r.error.c_str());
  return idle_r.ok ? idle_r.json.value("peak_rss_kb", 0.0) : 0.0;
}

// One configuration in round `round` (from 0): its child's measurement, or why there is none.
Row run_configuration(const TrainSettings& s, const Children& children, const TrainSpec& spec, double idle_kb,
                      double limit_mb, int64_t round) {
  Row row;
  row.spec = spec;
  row.idle_kb = idle_kb;
  row.estimate_mb = estimate_peak_bytes(row.spec.model(), row.spec) / 1048576.0;
  row.load = load_average();
  const char* arch = arch_name(spec.arch);
  if (row.estimate_mb > limit_mb) {
    row.status = "skipped: would exceed memory (estimate " + fmt("%.0f", row.estimate_mb) + " MB > " +
                 fmt("%.0f", limit_mb) + " MB)";
    std::fprintf(stderr, "bench: %s %s %lld faces: %s\n", s.size.c_str(), arch, (long long)spec.faces,
                 row.status.c_str());
    return row;
  }
  if (s.repeat > 1) std::fprintf(stderr, "bench: round %lld of %lld\n", (long long)round + 1, (long long)s.repeat);
  std::fprintf(stderr, "bench: %s %s %lld faces (%lld tokens), estimated peak %.0f MB, load %s...\n", s.size.c_str(),
               arch, (long long)spec.faces, (long long)spec.tokens(), row.estimate_mb, row.load.c_str());
  auto r = run_child(children.exe, child_arguments(row.spec), children.env, children.timeout_s);
  if (!r.ok) {
    row.status = "failed: " + r.error;
    row.peak_kb = double(r.rusage_maxrss_kb);
  } else {
    row.result = r.json;
    row.peak_kb = r.json.value("peak_rss_kb", double(r.rusage_maxrss_kb));
    std::fprintf(stderr, "bench:   %.0f ms/step (CPU %.0f ms), peak %.0f MB\n", r.json.value("mean_ms", 0.0),
                 r.json.value("cpu_ms", 0.0), row.peak_kb / 1024.0);
  }
  return row;
}

// A later round's run of `kept`'s configuration: a failure is reported; otherwise the fastest
// run's timing is kept, with the largest peak memory seen.
void merge_round(Row& kept, const Row& row) {
  if (row.status != "ok") {
    kept.status = row.status;
    return;
  }
  const double peak = std::max(kept.peak_kb, row.peak_kb);
  if (row.result["mean_ms"].get<double>() < kept.result["mean_ms"].get<double>()) kept = row;
  kept.peak_kb = peak;
}

TrainResults run_train_configurations(const TrainSettings& s) {
  const Children children{self_executable(), child_environment(s.threads, s.omp_wait), s.timeout_s};
  TrainResults results;
  results.limit_mb = s.max_mem_mb > 0 ? s.max_mem_mb : 0.9 * double(available_memory_kb()) / 1024.0;
  measure_peak(s, children, results);

  // Rows in (arch, faces) order; with --repeat the whole sequence runs again, interleaved, so
  // that each ratio compares runs made close together in time.
  std::vector<Row>& rows = results.rows;
  std::map<int, double> idle_kb_of;
  for (int64_t round = 0; round < s.repeat; ++round) {
    size_t row_index = 0;
    for (Arch arch : s.arch_list) {
      if (round == 0) idle_kb_of[int(arch)] = idle_peak_kb(s, children, arch);
      for (int64_t f : s.faces_list) {
        const size_t index = row_index++;
        // A configuration that was skipped or failed is not tried again.
        if (round > 0 && rows[index].status != "ok") continue;
        TrainSpec spec = s.base;
        spec.arch = arch;
        spec.faces = f;
        Row row = run_configuration(s, children, spec, idle_kb_of[int(arch)], results.limit_mb, round);
        if (round == 0) {
          rows.push_back(row);
        } else {
          merge_round(rows[index], row);
        }
      }
    }
  }
  return results;
}

// ---------------------------------------------------------------------------------------
// The report: JSON and CSV rows, or Markdown tables.

// The `full` row at the same face count: the baseline of the ratios.
const Row* full_row(const std::vector<Row>& rows, int64_t faces) {
  for (const auto& r : rows) {
    if (r.spec.arch == Arch::Full && r.spec.faces == faces && r.status == "ok") return &r;
  }
  return nullptr;
}

// An ok row's derived numbers, shared by its JSON row and its table rows.
struct Figures {
  double mean_ms = 0, std_ms = 0, tokens_per_s = 0, gflops = 0, mfu = 0, peak_mb = 0, activation_mb = 0;
  const Row* full = nullptr;  // the ratios below are set only with a full row
  double speed_vs_full = 0, peak_vs_full = 0, activation_vs_full = 0;
  std::optional<double> cpu_speed_vs_full;  // needs the full row's CPU time too
};

Figures figures(const Row& r, const Row* full, double peak_gflops) {
  const json& j = r.result;
  Figures x;
  x.mean_ms = j["mean_ms"];
  x.std_ms = j["std_ms"];
  x.tokens_per_s = double(r.spec.tokens() * r.spec.batch) / (x.mean_ms / 1000.0);
  x.gflops = j["flops_per_step"].get<double>() / (x.mean_ms / 1000.0) * 1e-9;
  x.mfu = peak_gflops > 0 ? x.gflops / peak_gflops : 0.0;
  x.peak_mb = r.peak_kb / 1024.0;
  x.activation_mb = (r.peak_kb - r.idle_kb) / 1024.0;
  x.full = full;
  if (full) {
    const double full_mean = full->result["mean_ms"], full_act = full->peak_kb - full->idle_kb;
    x.speed_vs_full = full_mean / x.mean_ms;
    x.peak_vs_full = r.peak_kb / full->peak_kb;
    x.activation_vs_full = (r.peak_kb - r.idle_kb) / full_act;
    if (full->result.contains("cpu_ms")) {
      x.cpu_speed_vs_full = full->result["cpu_ms"].get<double>() / j["cpu_ms"].get<double>();
    }
  }
  return x;
}

// One row of the JSON (and CSV) output: the child's fields with the derived ones over them.
json json_row(const Row& r, const Figures* x) {
  json o = {{"arch", arch_name(r.spec.arch)}, {"size", r.spec.size},     {"faces", r.spec.faces},
            {"tokens", r.spec.tokens()},      {"batch", r.spec.batch},   {"status", r.status},
            {"estimate_peak_mb", r.estimate_mb}, {"load_before", r.load}, {"idle_peak_mb", r.idle_kb / 1024.0}};
  if (!x) {
    if (r.peak_kb > 0) o["peak_mb"] = r.peak_kb / 1024.0;
    return o;
  }
  o.update(r.result);
  o["peak_mb"] = x->peak_mb;
  o["activation_peak_mb"] = x->activation_mb;
  o["tokens_per_s"] = x->tokens_per_s;
  o["gflops"] = x->gflops;
  o["mfu"] = x->mfu;
  if (x->full) {
    o["speed_vs_full"] = x->speed_vs_full;
    o["peak_vs_full"] = x->peak_vs_full;
    o["activation_vs_full"] = x->activation_vs_full;
  }
  if (x->cpu_speed_vs_full) o["cpu_speed_vs_full"] = *x->cpu_speed_vs_full;
  return o;
}

// The main table's row: speed, memory, MFU (a failed or skipped row says why).
std::vector<std::string> main_table_row(const Row& r, const Figures* x) {
  const std::string params = r.result.contains("params") ? params_text(r.result["params"].get<int64_t>()) : "-";
  if (!x) {
    return {arch_name(r.spec.arch), params, std::to_string(r.spec.faces), std::to_string(r.spec.tokens()),
            r.status, "-", "-", r.peak_kb > 0 ? fmt("(%.0f)", r.peak_kb / 1024.0) : "-", "-", "-", "-", "-", "-"};
  }
  auto ratio = [&](double v) { return x->full ? fmt("%.2fx", v) : std::string("-"); };
  return {arch_name(r.spec.arch), params, std::to_string(r.spec.faces), std::to_string(r.spec.tokens()),
          fmt("%.0f", x->mean_ms) + " ± " + fmt("%.0f", x->std_ms), fmt("%.1f", x->tokens_per_s),
          ratio(x->speed_vs_full), fmt("%.0f", x->peak_mb), fmt("%.0f", x->activation_mb), ratio(x->peak_vs_full),
          ratio(x->activation_vs_full), fmt("%.1f", x->gflops), fmt("%.1f%%", 100.0 * x->mfu)};
}

// The parts table's row: where a step's time goes, and the CPU time behind it.
std::vector<std::string> parts_table_row(const Row& r, const Figures& x) {
  const json& j = r.result;
  const double cpu_ms = j["cpu_ms"].get<double>();
  return {arch_name(r.spec.arch), std::to_string(r.spec.faces), fmt("%.0f", j["forward_ms"].get<double>()),
          fmt("%.0f", j["loss_ms"].get<double>()), fmt("%.0f", j["backward_ms"].get<double>()),
          fmt("%.0f", j["optimizer_ms"].get<double>()), fmt("%.3f", j["flops_per_step"].get<double>() * 1e-12),
          fmt("%.0f", cpu_ms), fmt("%.0f%%", 100.0 * j.value("sys_ms", 0.0) / cpu_ms),
          fmt("%.0f", j.value("page_faults", 0.0) / 1000.0), fmt("%.0f%%", 100.0 * j["cpu_utilization"].get<double>()),
          x.cpu_speed_vs_full ? fmt("%.2fx", *x.cpu_speed_vs_full) : "-", fmt("%.0f", r.estimate_mb), r.load};
}

// --profile: one row per block kind and resolution, then the rest of the step.
void add_profile_rows(const Row& r, double mean_ms, std::vector<std::vector<std::string>>& table) {
  double blocks_ms = 0;
  for (const auto& p : r.result["profile"]) {
    auto ms = [&](const std::string& part, const char* pass) { return p[part + "_" + pass + "_ms"].get<double>(); };
    auto fwd_plus_bwd = [&](const std::string& part) {  // "12 + 30"
      return fmt("%.0f", ms(part, "fwd")) + " + " + fmt("%.0f", ms(part, "bwd"));
    };
    const double n = p["count"].get<double>();
    const double blk = ms("block", "fwd") + ms("block", "bwd");
    const double ker = ms("kernel", "fwd") + ms("kernel", "bwd");
    const double ffn = ms("ffn", "fwd") + ms("ffn", "bwd");
    blocks_ms += n * blk;
    const double ker_rate = p["kernel_fwd_flops"].get<double>() *
                            (p["kind"] == "full" ? kFullAttentionTrainFactor : kLinearAttentionTrainFactor) /
                            (ker / 1000.0) * 1e-9;
    const double ffn_rate = p["ffn_fwd_flops"].get<double>() * 3.0 / (ffn / 1000.0) * 1e-9;
    table.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces),
                     p["kind"].get<std::string>() + " @ " + std::to_string(p["positions"].get<int64_t>()),
                     fmt("%.0f", n), fmt("%.0f", blk), fwd_plus_bwd("kernel"), fmt("%.1f", ker_rate),
                     fwd_plus_bwd("ffn"), fmt("%.1f", ffn_rate), fmt("%.0f", blk - ker - ffn),
                     fmt("%.0f%%", 100.0 * n * blk / mean_ms), fmt("%.0f%%", 100.0 * n * ker / mean_ms)});
  }
  table.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces), "outside blocks", "", "", "", "", "", "", "",
                   fmt("%.0f%%", 100.0 * (mean_ms - blocks_ms) / mean_ms), ""});
}

// Every row's JSON, and the Markdown tables' rows (a failed or skipped row only in the first).
struct Tables {
  json rows = json::array();
  std::vector<std::vector<std::string>> main, parts, profile;
};

Tables tables(const TrainResults& results) {
  Tables t;
  for (const auto& r : results.rows) {
    if (r.status != "ok") {
      t.rows.push_back(json_row(r, nullptr));
      t.main.push_back(main_table_row(r, nullptr));
      continue;
    }
    const Figures x = figures(r, full_row(results.rows, r.spec.faces), results.peak_gflops);
    t.rows.push_back(json_row(r, &x));
    t.main.push_back(main_table_row(r, &x));
    t.parts.push_back(parts_table_row(r, x));
    if (r.result.contains("profile")) add_profile_rows(r, x.mean_ms, t.profile);
  }
  return t;
}

std::string json_report(const TrainSettings& s, const TrainResults& results, const json& rows) {
  const json settings = {{"size", s.size},         {"batch", s.batch},           {"steps", s.steps},
                         {"repeat", s.repeat},     {"warmup", s.warmup},         {"dtype", s.dtype},
                         {"optimizer", s.optimizer}, {"omp_wait", s.omp_wait},   {"malloc", s.malloc_mode},
                         {"recompute", s.recompute}, {"peak_bf16_gflops", results.peak_gflops},
                         {"peak_note", results.peak_note}, {"max_mem_mb", results.limit_mb}};
  json j = {{"machine", machine_facts(s.threads)}, {"settings", settings}, {"rows", rows}};
  if (results.fp32_peak > 0) j["settings"]["peak_fp32_gflops"] = results.fp32_peak;
  return j.dump(2) + "\n";
}

std::string csv_report(const json& rows) {
  const std::vector<std::string> keys = {"arch", "size", "params", "faces", "tokens", "batch", "status", "mean_ms",
                                         "std_ms", "tokens_per_s", "speed_vs_full", "peak_mb", "activation_peak_mb",
                                         "idle_peak_mb", "peak_vs_full", "activation_vs_full", "gflops", "mfu",
                                         "forward_ms", "backward_ms", "optimizer_ms", "cpu_ms", "sys_ms", "page_faults",
                                         "cpu_utilization", "cpu_speed_vs_full"};
  std::string text = csv_line(keys);
  for (const auto& o : rows) {
    std::vector<std::string> cells;
    for (const auto& k : keys) {
      if (!o.contains(k)) cells.push_back("");
      else if (o[k].is_string()) cells.push_back(o[k].get<std::string>());
      else cells.push_back(o[k].dump());
    }
    text += csv_line(cells);
  }
  return text;
}

// The Markdown report's first lines: the machine, the settings, the MFU denominator.
std::string markdown_header(const TrainSettings& s, const TrainResults& results) {
  const std::string& optimizer = s.base.optimizer;
  std::ostringstream h;
  h << "iflame bench train: " << cpu_model() << " (" << hardware_threads() << " CPUs, " << s.threads
    << " threads, OMP_WAIT_POLICY=" << s.omp_wait << ", malloc " << s.malloc_mode << "), "
    << fmt("%.1f", double(total_memory_kb()) / 1048576.0) << " GiB RAM, LibTorch " << libtorch_version() << ", "
    << today() << "\n"
    << "size " << s.size << (s.dim > 0 ? " E=" + std::to_string(s.dim) : std::string())
    << (s.heads > 0 ? " H=" + std::to_string(s.heads) : std::string()) << ", batch " << s.batch << ", " << s.dtype
    << (s.dtype == "bf16" ? " autocast" : "") << ", " << s.warmup << " warm-up + " << s.steps
    << " timed steps of forward + loss + backward"
    << (optimizer == "adamw"  ? " + AdamW step"
        : optimizer == "muon" ? " + clip + Muon/AdamW step (as iflame train)"
                              : " (no optimizer step)")
    << (s.recompute != "none" ? ", recompute " + s.recompute + " blocks in the backward" : std::string())
    << (s.repeat > 1 ? ", fastest of " + std::to_string(s.repeat) + " interleaved runs" : std::string()) << "\n"
    << "MFU denominator: bf16 matmul " << fmt("%.1f", results.peak_gflops) << " GFLOP/s (" << results.peak_note << ")";
  if (results.fp32_peak > 0) h << "; fp32 " << fmt("%.1f", results.fp32_peak) << " GFLOP/s";
  return h.str();
}

std::string markdown_report(const TrainSettings& s, const TrainResults& results, const Tables& t) {
  std::ostringstream out;
  out << markdown_header(s, results) << "\n\n"
      << markdown_table({"arch", "params", "faces", "tokens", "ms/step", "tokens/s", "speed vs full", "peak MB",
                         "act. MB", "peak vs full", "act. vs full", "GFLOP/s", "MFU"},
                        t.main);
  if (!t.parts.empty()) {
    out << "\n"
        << markdown_table({"arch", "faces", "fwd ms", "loss ms", "bwd ms", "optim ms", "TFLOP/step", "CPU ms/step",
                           "sys %", "kfaults/step", "CPU util", "CPU-time speed vs full", "est. peak MB",
                           "load before"},
                          t.parts);
  }
  if (!t.profile.empty()) {
    out << "\nBlocks timed in isolation (forward + backward, ms; kernel GFLOP/s counts executed FLOPs):\n\n"
        << markdown_table({"arch", "faces", "block", "count", "block ms", "attn kernel ms", "attn GFLOP/s", "SwiGLU ms",
                           "SwiGLU GFLOP/s", "rest ms", "blocks % of step", "attn % of step"},
                          t.profile);
  }
  return out.str();
}

// The report in --format, to stdout and --out.
void train_report(const TrainSettings& s, const TrainResults& results) {
  const Tables t = tables(results);
  const std::string text = s.format == "json"  ? json_report(s, results, t.rows)
                           : s.format == "csv" ? csv_report(t.rows)
                                               : markdown_report(s, results, t);
  emit(text, s.out_path);
}

}  // namespace

int run_train_command(int argc, char** argv) {
  const std::optional<TrainSettings> settings = parse_train_settings(argc, argv);
  if (!settings) return 0;
  if (settings->child) return run_train_child(*settings);
  const TrainResults results = run_train_configurations(*settings);
  train_report(*settings, results);
  const bool any_failed = std::any_of(results.rows.begin(), results.rows.end(),
                                      [](const Row& r) { return r.status.rfind("failed", 0) == 0; });
  return any_failed ? 1 : 0;
}

}  // namespace iflame::bench
