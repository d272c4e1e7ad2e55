// iflame bench train: training throughput, peak memory and MFU of iFlame vs the baselines. Each
// configuration runs in a child process (this binary again, `bench train --child ...`) so that
// its peak memory is its own.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "bench/bench.h"
#include "util/args.h"
#include "util/error.h"
#include "util/memory.h"
#include "util/report.h"

namespace iflame::bench {

namespace {

using nlohmann::json;

std::string params_text(int64_t n) { return fmt("%.1fM", double(n) / 1e6); }


struct Row {
  TrainSpec spec;
  std::string status = "ok";  // "ok", or why there is no measurement
  json result;                // the child's JSON
  double idle_kb = 0;         // peak RSS of the idle child (the model only)
  double peak_kb = 0;
  double estimate_mb = 0;
  std::string load;           // load average before the run
};

int run_train_child(const TrainSpec& spec) {
  if (!spec.glibc_malloc) keep_freed_memory();  // as `iflame train` does
  return run_as_child([&] { return run_train(spec); });
}

}  // namespace

int run_train_command(int argc, char** argv) {
  std::string size = "ref", archs = "iflame,full", faces = "800", dtype = "bf16", format = "md", out_path,
              optimizer = "adamw", omp_wait = "passive", malloc_mode = "train", recompute = "none";
  int64_t batch = 1, steps = 3, warmup = 2, threads = 0, seed = 1, repeat = 1, dim = 0, heads = 0;
  double peak_gflops = 0, max_mem_mb = 0, timeout_s = 7200;
  bool child = false, idle = false, profile = false;
  ArgParser args("bench train",
                 "Training throughput and peak memory of iFlame vs the baselines on random coordinate tokens\n"
                 "framed as real sequences (9 BOS, faces x 9, 9 EOS). Each (arch, faces) runs --warmup + --steps\n"
                 "steps of forward + sequence_loss + backward (+ the --optimizer step) in its own\n"
                 "child process; its peak RSS minus that of an idle child that only builds the model is the\n"
                 "'activation' peak. Configurations whose estimated peak exceeds --max-mem-mb are skipped.\n"
                 "MFU = counted model FLOP/s / this CPU's measured bf16 matmul rate (`iflame bench matmul`).");
  args.option("size", &size, "model preset: ref | small | tiny")
      .option("dim", &dim, "width E instead of the preset's (0: the preset's)")
      .option("heads", &heads, "attention heads instead of the preset's (0: the preset's)")
      .option("archs", &archs, "comma-separated: iflame, full, linear")
      .option("faces", &faces, "comma-separated face counts (tokens = (faces + 2) x 9)")
      .option("batch", &batch, "sequences per step")
      .option("steps", &steps, "timed steps")
      .option("warmup", &warmup, "untimed steps first (the heap that training keeps settles after about two)")
      .option("dtype", &dtype, "bf16 (autocast on CPU) | fp32")
      .option("optimizer", &optimizer,
              "adamw (torch's AdamW) | muon (iflame train's step: gradient clipping, Muon + AdamW) |\n"
              "none (zero_grad only); the step is included in the timing")
      .option("recompute", &recompute,
              "none | linear | all: blocks that keep only their input and run again in the backward\n"
              "(linear: the linear-attention blocks; `full` has none, so it is unchanged)")
      .option("threads", &threads, "LibTorch threads (0: every CPU)")
      .option("omp-wait", &omp_wait, "OMP_WAIT_POLICY for the children: passive | active")
      .option("malloc", &malloc_mode,
              "children's malloc: train (as `iflame train`: freed memory stays in the heap for reuse, no\n"
              "mmap per large tensor) | glibc (glibc's defaults: a page-faulting mmap per large tensor)")
      .option("peak-gflops", &peak_gflops, "MFU denominator in GFLOP/s (0: measure bf16 2048^3 matmul now)")
      .option("max-mem-mb", &max_mem_mb, "skip configurations estimated above this (0: 90% of MemAvailable)")
      .option("repeat", &repeat, "run every configuration this many times, interleaved; keep the fastest")
      .option("timeout", &timeout_s, "seconds before a child is killed (0: none)")
      .option("seed", &seed, "random seed (weights and tokens)")
      .flag("profile", &profile, "also time each block kind's parts (attention kernel, SwiGLU) in isolation")
      .option("format", &format, "md | json | csv")
      .option("out", &out_path, "also write the output to this file")
      .flag("child", &child, "(internal) run one configuration in this process and print one JSON line")
      .flag("idle", &idle, "(internal, with --child) only build the model");
  if (!args.parse(argc, argv)) return 0;
  if (dtype != "bf16" && dtype != "fp32") throw Error("--dtype must be bf16 or fp32");
  if (optimizer != "adamw" && optimizer != "muon" && optimizer != "none") {
    throw Error("--optimizer must be adamw, muon or none");
  }
  if (dim < 0 || heads < 0) throw Error("--dim and --heads must be 0 (the preset's) or positive");
  if (format != "md" && format != "json" && format != "csv") throw Error("--format must be md, json or csv");
  if (omp_wait != "passive" && omp_wait != "active") throw Error("--omp-wait must be passive or active");
  if (malloc_mode != "train" && malloc_mode != "glibc") throw Error("--malloc must be train or glibc");
  if (batch < 1 || steps < 1 || warmup < 0 || repeat < 1) {
    throw Error("--batch, --steps and --repeat must be >= 1, --warmup >= 0");
  }
  TrainSpec base;
  base.size = size;
  base.dim = dim;
  base.heads = heads;
  (void)base.model();  // validates --size, --dim, --heads
  if (threads <= 0) threads = hardware_threads();

  std::vector<Arch> arch_list;
  for (const auto& a : split_commas(archs)) arch_list.push_back(arch_from_name(a));
  const std::vector<int64_t> faces_list = int_list(faces, "--faces", 1);
  if (arch_list.empty()) throw Error("--archs needs at least one architecture");

  base.batch = batch;
  base.steps = steps;
  base.warmup = warmup;
  base.bf16 = dtype == "bf16";
  base.optimizer = optimizer;
  base.threads = threads;
  base.seed = uint64_t(seed);
  base.profile = profile;
  base.recompute = recompute_from_name(recompute);
  base.glibc_malloc = malloc_mode == "glibc";

  if (child) {
    if (arch_list.size() != 1 || faces_list.size() != 1) throw Error("--child runs exactly one arch and one face count");
    base.arch = arch_list[0];
    base.faces = faces_list[0];
    base.idle = idle;
    return run_train_child(base);
  }

  const std::string exe = self_executable();
  const auto env = child_environment(threads, omp_wait);
  const double limit_mb = max_mem_mb > 0 ? max_mem_mb : 0.9 * double(available_memory_kb()) / 1024.0;

  // The MFU denominator, measured in a child with the same threads and environment.
  std::string peak_note;
  double fp32_peak = 0;
  if (peak_gflops <= 0) {
    std::fprintf(stderr, "bench: measuring the bf16 matmul rate (2048^3)...\n");
    auto r = run_child(exe,
                              {"bench", "matmul", "--sizes", "2048", "--shapes", "square", "--reps", "5", "--threads",
                               std::to_string(threads), "--format", "json"},
                              env, 600);
    if (!r.ok) throw Error("bench: the matmul measurement failed: " + r.error);
    peak_gflops = r.json.value("peak_bf16_gflops", 0.0);
    fp32_peak = r.json.value("peak_fp32_gflops", 0.0);
    peak_note = "measured now: torch::matmul 2048x2048x2048, best of 5";
  } else {
    peak_note = "given with --peak-gflops";
  }

  // Rows in (arch, faces) order; with --repeat the whole sequence runs again, interleaved, so
  // that each ratio compares runs made close together in time.
  std::vector<Row> rows;
  std::map<int, double> idle_kb_of;
  for (int64_t round = 0; round < repeat; ++round) {
  size_t row_index = 0;
  for (Arch arch : arch_list) {
    TrainSpec idle_spec = base;
    idle_spec.arch = arch;
    idle_spec.idle = true;
    idle_spec.faces = faces_list[0];
    if (round == 0) {
      std::fprintf(stderr, "bench: %s %s: idle baseline...\n", size.c_str(), arch_name(arch));
      auto idle_r = run_child(exe, child_arguments(idle_spec), env, timeout_s);
      idle_kb_of[int(arch)] = idle_r.ok ? idle_r.json.value("peak_rss_kb", 0.0) : 0.0;
      if (!idle_r.ok) std::fprintf(stderr, "bench: idle child failed: %s\n", idle_r.error.c_str());
    }
    const double idle_kb = idle_kb_of[int(arch)];
    for (int64_t f : faces_list) {
      const size_t index = row_index++;
      // A configuration that was skipped or failed is not tried again.
      if (round > 0 && rows[index].status != "ok") continue;
      Row row;
      row.spec = base;
      row.spec.arch = arch;
      row.spec.faces = f;
      row.idle_kb = idle_kb;
      row.estimate_mb = estimate_peak_bytes(row.spec.model(), row.spec) / 1048576.0;
      row.load = load_average();
      if (row.estimate_mb > limit_mb) {
        row.status = "skipped: would exceed memory (estimate " + fmt("%.0f", row.estimate_mb) + " MB > " +
                     fmt("%.0f", limit_mb) + " MB)";
        std::fprintf(stderr, "bench: %s %s %lld faces: %s\n", size.c_str(), arch_name(arch), (long long)f,
                     row.status.c_str());
        rows.push_back(row);
        continue;
      }
      if (repeat > 1) std::fprintf(stderr, "bench: round %lld of %lld\n", (long long)round + 1, (long long)repeat);
      std::fprintf(stderr, "bench: %s %s %lld faces (%lld tokens), estimated peak %.0f MB, load %s...\n", size.c_str(),
                   arch_name(arch), (long long)f, (long long)row.spec.tokens(), row.estimate_mb, row.load.c_str());
      auto r = run_child(exe, child_arguments(row.spec), env, timeout_s);
      if (!r.ok) {
        row.status = "failed: " + r.error;
        row.peak_kb = double(r.rusage_maxrss_kb);
      } else {
        row.result = r.json;
        row.peak_kb = r.json.value("peak_rss_kb", double(r.rusage_maxrss_kb));
        std::fprintf(stderr, "bench:   %.0f ms/step (CPU %.0f ms), peak %.0f MB\n", r.json.value("mean_ms", 0.0),
                     r.json.value("cpu_ms", 0.0), row.peak_kb / 1024.0);
      }
      if (round == 0) {
        rows.push_back(row);
      } else if (row.status != "ok") {
        rows[index].status = row.status;  // a later round failed: report it
      } else {
        // Keep the fastest run's timing; the peak memory is the largest seen.
        const double peak = std::max(rows[index].peak_kb, row.peak_kb);
        if (row.result["mean_ms"].get<double>() < rows[index].result["mean_ms"].get<double>()) rows[index] = row;
        rows[index].peak_kb = peak;
      }
    }
  }
  }

  // Ratios against the `full` baseline at the same face count.
  auto full_row = [&](int64_t f) -> const Row* {
    for (const auto& r : rows) {
      if (r.spec.arch == Arch::Full && r.spec.faces == f && r.status == "ok") return &r;
    }
    return nullptr;
  };
  json out_rows = json::array();
  std::vector<std::vector<std::string>> md, md_parts, md_profile;
  for (const auto& r : rows) {
    const Row* full = full_row(r.spec.faces);
    json o = {{"arch", arch_name(r.spec.arch)}, {"size", r.spec.size},     {"faces", r.spec.faces},
              {"tokens", r.spec.tokens()},      {"batch", r.spec.batch},   {"status", r.status},
              {"estimate_peak_mb", r.estimate_mb}, {"load_before", r.load}, {"idle_peak_mb", r.idle_kb / 1024.0}};
    const std::string params = r.result.contains("params") ? params_text(r.result["params"].get<int64_t>()) : "-";
    if (r.status != "ok") {
      if (r.peak_kb > 0) o["peak_mb"] = r.peak_kb / 1024.0;
      md.push_back({arch_name(r.spec.arch), params, std::to_string(r.spec.faces), std::to_string(r.spec.tokens()),
                    r.status, "-", "-", r.peak_kb > 0 ? fmt("(%.0f)", r.peak_kb / 1024.0) : "-", "-", "-", "-", "-", "-"});
      out_rows.push_back(o);
      continue;
    }
    const json& j = r.result;
    const double mean = j["mean_ms"], sd = j["std_ms"];
    const double tok_s = double(r.spec.tokens() * r.spec.batch) / (mean / 1000.0);
    const double gflops = j["flops_per_step"].get<double>() / (mean / 1000.0) * 1e-9;
    const double mfu = peak_gflops > 0 ? gflops / peak_gflops : 0.0;
    const double peak_mb = r.peak_kb / 1024.0, act_mb = (r.peak_kb - r.idle_kb) / 1024.0;
    o.update(j);
    o["peak_mb"] = peak_mb;
    o["activation_peak_mb"] = act_mb;
    o["tokens_per_s"] = tok_s;
    o["gflops"] = gflops;
    o["mfu"] = mfu;
    std::string speed = "-", peak_ratio = "-", act_ratio = "-";
    if (full) {
      const double full_mean = full->result["mean_ms"], full_peak = full->peak_kb, full_act = full->peak_kb - full->idle_kb;
      o["speed_vs_full"] = full_mean / mean;
      o["peak_vs_full"] = r.peak_kb / full_peak;
      o["activation_vs_full"] = (r.peak_kb - r.idle_kb) / full_act;
      speed = fmt("%.2fx", full_mean / mean);
      peak_ratio = fmt("%.2fx", r.peak_kb / full_peak);
      act_ratio = fmt("%.2fx", (r.peak_kb - r.idle_kb) / full_act);
    }
    md.push_back({arch_name(r.spec.arch), params, std::to_string(r.spec.faces), std::to_string(r.spec.tokens()),
                  fmt("%.0f", mean) + " ± " + fmt("%.0f", sd), fmt("%.1f", tok_s), speed, fmt("%.0f", peak_mb),
                  fmt("%.0f", act_mb), peak_ratio, act_ratio, fmt("%.1f", gflops), fmt("%.1f%%", 100.0 * mfu)});
    std::string cpu_speed = "-";
    if (full && full->result.contains("cpu_ms")) {
      o["cpu_speed_vs_full"] = full->result["cpu_ms"].get<double>() / j["cpu_ms"].get<double>();
      cpu_speed = fmt("%.2fx", o["cpu_speed_vs_full"].get<double>());
    }
    md_parts.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces), fmt("%.0f", j["forward_ms"].get<double>()),
                        fmt("%.0f", j["loss_ms"].get<double>()), fmt("%.0f", j["backward_ms"].get<double>()),
                        fmt("%.0f", j["optimizer_ms"].get<double>()), fmt("%.3f", j["flops_per_step"].get<double>() * 1e-12),
                        fmt("%.0f", j["cpu_ms"].get<double>()), fmt("%.0f%%", 100.0 * j.value("sys_ms", 0.0) / j["cpu_ms"].get<double>()),
                        fmt("%.0f", j.value("page_faults", 0.0) / 1000.0), fmt("%.0f%%", 100.0 * j["cpu_utilization"].get<double>()),
                        cpu_speed, fmt("%.0f", r.estimate_mb),
                        r.load});
    if (j.contains("profile")) {
      double blocks_ms = 0;
      for (const auto& p : j["profile"]) {
        const double n = p["count"].get<double>();
        const double blk = p["block_fwd_ms"].get<double>() + p["block_bwd_ms"].get<double>();
        const double ker = p["kernel_fwd_ms"].get<double>() + p["kernel_bwd_ms"].get<double>();
        const double ffn = p["ffn_fwd_ms"].get<double>() + p["ffn_bwd_ms"].get<double>();
        blocks_ms += n * blk;
        const double ker_rate = p["kernel_fwd_flops"].get<double>() *
                                (p["kind"] == "full" ? kFullAttentionTrainFactor : kLinearAttentionTrainFactor) /
                                (ker / 1000.0) * 1e-9;
        const double ffn_rate = p["ffn_fwd_flops"].get<double>() * 3.0 / (ffn / 1000.0) * 1e-9;
        md_profile.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces),
                              p["kind"].get<std::string>() + " @ " + std::to_string(p["positions"].get<int64_t>()),
                              fmt("%.0f", n), fmt("%.0f", blk), fmt("%.0f", p["kernel_fwd_ms"].get<double>()) + " + " +
                              fmt("%.0f", p["kernel_bwd_ms"].get<double>()), fmt("%.1f", ker_rate),
                              fmt("%.0f", p["ffn_fwd_ms"].get<double>()) + " + " + fmt("%.0f", p["ffn_bwd_ms"].get<double>()),
                              fmt("%.1f", ffn_rate), fmt("%.0f", blk - ker - ffn),
                              fmt("%.0f%%", 100.0 * n * blk / mean), fmt("%.0f%%", 100.0 * n * ker / mean)});
      }
      md_profile.push_back({arch_name(r.spec.arch), std::to_string(r.spec.faces), "outside blocks", "", "", "", "", "", "",
                            "", fmt("%.0f%%", 100.0 * (mean - blocks_ms) / mean), ""});
    }
    out_rows.push_back(o);
  }

  const json settings = {{"size", size},         {"batch", batch},           {"steps", steps}, {"repeat", repeat},
                         {"warmup", warmup},     {"dtype", dtype},           {"optimizer", optimizer},
                         {"omp_wait", omp_wait}, {"malloc", malloc_mode}, {"recompute", recompute}, {"peak_bf16_gflops", peak_gflops}, {"peak_note", peak_note},
                         {"max_mem_mb", limit_mb}};
  std::string text;
  if (format == "json") {
    json j = {{"machine", machine_facts(threads)}, {"settings", settings}, {"rows", out_rows}};
    if (fp32_peak > 0) j["settings"]["peak_fp32_gflops"] = fp32_peak;
    text = j.dump(2) + "\n";
  } else if (format == "csv") {
    const std::vector<std::string> keys = {"arch", "size", "params", "faces", "tokens", "batch", "status", "mean_ms",
                                           "std_ms", "tokens_per_s", "speed_vs_full", "peak_mb", "activation_peak_mb",
                                           "idle_peak_mb", "peak_vs_full", "activation_vs_full", "gflops", "mfu",
                                           "forward_ms", "backward_ms", "optimizer_ms", "cpu_ms", "sys_ms", "page_faults", "cpu_utilization",
                                           "cpu_speed_vs_full"};
    text = csv_line(keys);
    for (const auto& o : out_rows) {
      std::vector<std::string> cells;
      for (const auto& k : keys) {
        if (!o.contains(k)) cells.push_back("");
        else if (o[k].is_string()) cells.push_back(o[k].get<std::string>());
        else cells.push_back(o[k].dump());
      }
      text += csv_line(cells);
    }
  } else {
    std::ostringstream s;
    s << "iflame bench train: " << cpu_model() << " (" << hardware_threads() << " CPUs, " << threads
      << " threads, OMP_WAIT_POLICY=" << omp_wait << ", malloc " << malloc_mode << "), " << fmt("%.1f", double(total_memory_kb()) / 1048576.0)
      << " GiB RAM, LibTorch " << libtorch_version() << ", " << today() << "\n"
      << "size " << size << (dim > 0 ? " E=" + std::to_string(dim) : std::string())
      << (heads > 0 ? " H=" + std::to_string(heads) : std::string()) << ", batch " << batch << ", " << dtype << (dtype == "bf16" ? " autocast" : "") << ", "
      << warmup << " warm-up + " << steps << " timed steps of forward + loss + backward"
      << (base.optimizer == "adamw" ? " + AdamW step" : base.optimizer == "muon" ? " + clip + Muon/AdamW step (as iflame train)" : " (no optimizer step)")
      << (recompute != "none" ? ", recompute " + recompute + " blocks in the backward" : std::string())
      << (repeat > 1 ? ", fastest of " + std::to_string(repeat) + " interleaved runs" : std::string()) << "\n"
      << "MFU denominator: bf16 matmul " << fmt("%.1f", peak_gflops) << " GFLOP/s (" << peak_note << ")";
    if (fp32_peak > 0) s << "; fp32 " << fmt("%.1f", fp32_peak) << " GFLOP/s";
    s << "\n\n"
      << markdown_table({"arch", "params", "faces", "tokens", "ms/step", "tokens/s", "speed vs full", "peak MB", "act. MB",
                         "peak vs full", "act. vs full", "GFLOP/s", "MFU"},
                        md);
    if (!md_parts.empty()) {
      s << "\n"
        << markdown_table({"arch", "faces", "fwd ms", "loss ms", "bwd ms", "optim ms", "TFLOP/step", "CPU ms/step",
                           "sys %", "kfaults/step", "CPU util", "CPU-time speed vs full", "est. peak MB", "load before"},
                          md_parts);
    }
    if (!md_profile.empty()) {
      s << "\nBlocks timed in isolation (forward + backward, ms; kernel GFLOP/s counts executed FLOPs):\n\n"
        << markdown_table({"arch", "faces", "block", "count", "block ms", "attn kernel ms", "attn GFLOP/s", "SwiGLU ms",
                           "SwiGLU GFLOP/s", "rest ms", "blocks % of step", "attn % of step"},
                          md_profile);
    }
    text = s.str();
  }
  emit(text, out_path);
  bool any_failed = false;
  for (const auto& r : rows) any_failed |= r.status.rfind("failed", 0) == 0;
  return any_failed ? 1 : 0;
}

}  // namespace iflame::bench
