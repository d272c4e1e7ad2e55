// iflame bench paper: the paper's five comparisons (spec section 5) of iFlame against the full
// and linear baselines, side by side in one run and next to the paper's numbers:
//   (a) generation throughput      bench decode's child (run_decode), one per (arch, context)
//   (b) cache bytes per sequence   a HybridCache's own allocations at 4000 faces (this process)
//   (c) training tokens/s and
//   (d) training peak memory       bench train's children (run_train), plus an idle child per
//                                  arch that only builds the model (the memory baseline)
//   (e) validation loss / token accuracy / face accuracy after the same training tokens: the
//       trainer (train/trainer.h) on a prepared corpus, one child per arch, validated through
//       train/evaluate.h
// Every measurement runs in its own child process (this binary again), so that each peak RSS is
// its own and a crash or an out-of-memory kill costs one cell, not the run.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "bench/bench.h"
#include "bench/decode.h"
#include "dataset/format.h"
#include "kernels/threads.h"
#include "render/font.h"
#include "render/plot.h"
#include "render/png.h"
#include "train/config.h"
#include "train/data.h"
#include "train/trainer.h"
#include "util/args.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/report.h"

namespace iflame::bench {

using nlohmann::json;

namespace {

namespace fs = std::filesystem;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr Arch kArchs[] = {Arch::Full, Arch::Linear, Arch::IFlame};  // the table's column order
constexpr int64_t kCacheFaces = 4000;                                  // the paper's cache figure

// Spec section 5 (ShapeNet, 2B training tokens, 4 GPUs), as full, linear, iFlame.
struct Triple {
  double full, linear, iflame;
  double of(Arch a) const { return a == Arch::Full ? full : a == Arch::Linear ? linear : iflame; }
};
constexpr Triple kPaperDecodeTokensPerS{45.0, 40.8, 81.9};
constexpr Triple kPaperCacheGiB{6.6, 0.0, 0.8};  // K/V at 4000 faces, batch 4, fp16
constexpr Triple kPaperTrainMinutes{422, 304, 227};
constexpr Triple kPaperMemoryGB{45, 50, 28};
constexpr Triple kPaperAccuracyPct{78.3, 71.9, 78.1};

// The (e) budget: what every architecture is trained with.
struct QualityOptions {
  std::string data;
  std::string size = "tiny";
  int64_t tokens = 100000;      // target tokens (non-PAD, EOS included) to train on
  int64_t max_faces = 100;      // meshes with more faces are left out (train and validation)
  int64_t batch_tokens = 2048;  // padded tokens per step
  int64_t batch_size = 32;
  int64_t val_batches = 0;      // 0: every validation mesh
  double lr = 0;                // 0: 3e-3 for tiny, 1e-3 otherwise
  int64_t threads = 0;
  uint64_t seed = 1;
  std::string precision = "bf16";

  double learning_rate() const { return lr > 0 ? lr : size == "tiny" ? 3e-3 : 1e-3; }
};

TrainConfig quality_config(const QualityOptions& q, Arch arch, int64_t steps, const std::string& dir) {
  TrainConfig c;  // the trainer's defaults: Muon + AdamW, 10% warmup + cosine, clipping 1.0
  c.model_preset = q.size;
  c.model_arch = arch_name(arch);
  c.data_train = q.data;
  c.data_max_faces = q.max_faces;
  c.data_batch_tokens = q.batch_tokens;
  c.data_batch_size = q.batch_size;
  c.train_steps = steps;
  c.train_seed = q.seed;
  c.train_threads = q.threads;
  c.train_precision = q.precision;
  c.optim_lr = q.learning_rate();
  c.eval_every = 0;  // validation once, after the last step
  c.eval_batches = q.val_batches;
  c.out_dir = dir;
  c.out_save_every = 0;  // one checkpoint, at the end
  c.out_keep_last = 1;
  c.log_every = std::max<int64_t>(1, steps / 5);
  return c;
}

// How many steps make `q.tokens` target tokens, walking the trainer's own batch plan (the same
// for every architecture: it depends on the data and the seed only).
struct Budget {
  int64_t steps = 0, planned_targets = 0;
  size_t train_meshes = 0, val_meshes = 0;
};

Budget plan_budget(const QualityOptions& q) {
  DatasetReader data(q.data);
  const auto train_idx = data.indices(Split::kTrain), val_idx = data.indices(Split::kVal);
  auto fits = [&](size_t i) { return data[i].num_faces > 0 && int64_t(data[i].num_faces) <= q.max_faces; };
  Budget b;
  for (size_t i : train_idx) b.train_meshes += fits(i);
  for (size_t i : val_idx) b.val_meshes += fits(i);
  if (b.val_meshes == 0) {
    throw Error(q.data, "no validation meshes with 1.." + std::to_string(q.max_faces) +
                            " faces, so (e) cannot be measured; raise --quality-max-faces");
  }
  const BatchPlanOptions options{q.batch_tokens, q.batch_size, q.max_faces};
  for (int64_t epoch = 0; b.planned_targets < q.tokens; ++epoch) {
    for (const auto& batch : plan_epoch(data, train_idx, options, q.seed, epoch)) {
      for (size_t i : batch) b.planned_targets += (int64_t(data[i].num_faces) + 1) * int64_t(kTokensPerFace);
      ++b.steps;
      if (b.planned_targets >= q.tokens) break;
    }
  }
  return b;
}

std::vector<std::string> quality_child_arguments(const QualityOptions& q, Arch arch, int64_t steps,
                                                 const std::string& dir) {
  return {"bench", "paper", "--child-quality", arch_name(arch), "--data", q.data, "--quality-size", q.size,
          "--quality-steps", std::to_string(steps), "--quality-max-faces", std::to_string(q.max_faces),
          "--batch-tokens", std::to_string(q.batch_tokens), "--batch-size", std::to_string(q.batch_size),
          "--val-batches", std::to_string(q.val_batches), "--lr", fmt("%.9g", q.learning_rate()),
          "--quality-precision", q.precision, "--threads", std::to_string(q.threads), "--seed",
          std::to_string(q.seed), "--out", dir};
}

// The child side of (e): trains one architecture; the JSON line of its result.
json quality_child(const QualityOptions& q, Arch arch, int64_t steps, const std::string& dir) {
  // A fresh run each time: the trainer appends to an existing log. Only a folder this command
  // made before (it has a log.jsonl) is removed.
  if (fs::exists(dir)) {
    if (!fs::exists(dir + "/log.jsonl") && !fs::is_empty(dir)) {
      throw Error(dir, "exists and is not an earlier `bench paper` training run; use another --out");
    }
    fs::remove_all(dir);
  }
  set_compute_threads(q.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const TrainResult r = train(quality_config(q, arch, steps, dir), RunStart::kOverwrite);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Tokens and time of the steps themselves, from the trainer's log.
  double targets = 0, train_ms = 0;
  int64_t params = 0;
  std::ifstream log(dir + "/log.jsonl");
  std::string line;
  while (std::getline(log, line)) {
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    if (j.value("event", "") == "start") params = j.value("params", int64_t(0));
    if (j.contains("tokens_per_s") && j.contains("ms")) {
      targets += j["tokens_per_s"].get<double>() * j["ms"].get<double>() / 1000.0;
      train_ms += j["ms"].get<double>();
    }
  }
  json out = {{"arch", arch_name(arch)},
              {"size", q.size},
              {"params", params},
              {"steps", r.steps},
              {"targets", std::llround(targets)},
              {"train_ms", train_ms},
              {"tokens_per_s", train_ms > 0 ? targets / (train_ms / 1000.0) : 0.0},
              {"final_loss", r.final_loss},
              {"val_loss", r.val_loss},
              {"val_token_accuracy", r.val_token_accuracy},
              {"val_face_accuracy", r.val_face_accuracy},
              {"wall_s", wall},
              {"peak_rss_kb", peak_rss_kb()}};
  return out;
}

// ---------------------------------------------------------------------------------------
// The table.

// One architecture's number in one comparison: a value, or why there is none.
struct Cell {
  double value = kNaN;
  std::string text = "-";  // as printed
};

// One row of the main table: the paper's and our numbers per architecture (full, linear,
// iflame) and the ratios to full that the chart draws.
struct Row {
  std::string label;
  Cell paper[3], ours[3];
  // "higher is better" rows divide x by full; "lower is better" rows (time) divide full by x so
  // that every ratio reads "how many times better than full" the same way as the paper's text.
  bool invert_paper = false;
  double paper_ratio(int a) const {
    const double f = paper[0].value, x = paper[a].value;
    if (!std::isfinite(f) || !std::isfinite(x)) return kNaN;
    return invert_paper ? (x > 0 ? f / x : kNaN) : (f > 0 ? x / f : kNaN);
  }
  double ours_ratio(int a) const {
    const double f = ours[0].value, x = ours[a].value;
    return std::isfinite(f) && std::isfinite(x) && f > 0 ? x / f : kNaN;
  }
};

int arch_index(Arch a) { return a == Arch::Full ? 0 : a == Arch::Linear ? 1 : 2; }

Cell cell(double v, const char* f, const std::string& unit = "") {
  if (!std::isfinite(v)) return {};
  return {v, fmt(f, v) + unit};
}

Cell failed(const std::string& why) { return {kNaN, why}; }

std::string ratio_text(double paper, double ours) {
  auto one = [](double r) { return std::isfinite(r) ? fmt("%.2fx", r) : std::string("-"); };
  return one(paper) + " / " + one(ours);
}

// "failed: exited with status 1: ..." shortened for a table cell.
std::string short_status(const std::string& s) { return s.size() > 60 ? s.substr(0, 57) + "..." : s; }

// ---------------------------------------------------------------------------------------
// The chart: one small grouped bar chart of ratios to full per comparison, and a caption cell.

render::Image panel(const std::string& title, const std::vector<render::BarSeries>& series) {
  render::BarOptions o;
  o.width = 600;
  o.height = 420;
  o.title = title;
  o.y_label = "ratio to full";
  o.guide = 1;
  return render::plot_bars({"full", "linear", "iflame"}, series, o);
}

render::Image caption_cell(const std::vector<std::string>& lines, int width, int height) {
  render::Image img(width, height);
  const int fs = 2, th = render::text_height(fs), gap = 12;
  int y = 2 * gap;
  for (const auto& l : lines) {
    render::draw_text(img, gap, y, render::fit_text(l, width - 2 * gap, fs), {40, 40, 40}, fs);
    y += th + gap;
  }
  return img;
}

render::Image compose(const std::vector<render::Image>& cells, int columns) {
  const int w = cells.front().width, h = cells.front().height;
  const int rows = (int(cells.size()) + columns - 1) / columns;
  render::Image out(w * columns, h * rows);
  for (size_t i = 0; i < cells.size(); ++i) out.blit(cells[i], int(i % size_t(columns)) * w, int(i / size_t(columns)) * h);
  // Thin separators between the cells.
  for (int c = 1; c < columns; ++c) out.fill_rect(c * w, 0, 1, out.height, {210, 210, 210});
  for (int r = 1; r < rows; ++r) out.fill_rect(0, r * h, out.width, 1, {210, 210, 210});
  return out;
}

double mib(double bytes) { return bytes / 1048576.0; }

// ---------------------------------------------------------------------------------------
// The command, in three parts: parse_paper_settings (the command line, checked),
// run_paper_comparisons (every measurement, each in its child) and paper_report (the table,
// paper-bench.{md,json,png}).

// The options as given (the members' initial values are their defaults), and what
// check_paper_settings derives from them.
struct PaperSettings {
  std::string size = "small", faces = "800,4000", out_dir = "runs/bench-paper", only = "a,b,c,d,e", child_quality;
  int64_t train_faces = 800, train_steps = 1, train_warmup = 1, decode_tokens = 27, decode_warmup = 9, threads = 0,
          seed = 1, quality_steps = 0;
  double timeout_s = 3600;
  QualityOptions q;  // (e); its threads and seed are set from the ones above

  // Derived; `threads` above is also resolved (0: every CPU).
  std::vector<int64_t> faces_list;
  std::string wanted;  // the letters of --only

  bool want(char comparison) const { return wanted.find(comparison) != std::string::npos; }
};

// Rejects what cannot run and fills the derived members. The order of the checks is the order
// in which errors are reported.
void check_paper_settings(PaperSettings& s) {
  (void)model_preset(s.size, Arch::IFlame);  // validates --size
  (void)model_preset(s.q.size, Arch::IFlame);
  require_at_least("threads", s.threads, 0);
  require_at_least("seed", s.seed, 0);  // a negative seed would not survive the trip to the children
  require_finite_non_negative("timeout", s.timeout_s);
  require_finite_non_negative("lr", s.q.lr);
  if (s.threads == 0) s.threads = hardware_threads();
  s.q.threads = s.threads;
  s.q.seed = uint64_t(s.seed);
  if (s.q.precision != "bf16" && s.q.precision != "fp32") throw Error("--quality-precision must be bf16 or fp32");
  if (!s.child_quality.empty() && s.quality_steps < 1) throw Error("--child-quality needs --quality-steps >= 1");
  require_at_least("quality-steps", s.quality_steps, 0);
  s.faces_list = int_list(s.faces, "--faces", 1);
  std::stringstream in(s.only);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.size() != 1 || item[0] < 'a' || item[0] > 'e') {
      throw Error("--only takes letters a..e, got '" + item + "'");
    }
    s.wanted += item;
  }
  if (s.train_faces < 1 || s.train_steps < 1 || s.train_warmup < 0) {
    throw Error("--train-faces and --train-steps must be >= 1, --train-warmup >= 0");
  }
  if (s.decode_tokens < 9 || s.decode_tokens % 9 != 0 || s.decode_warmup < 0 || s.decode_warmup % 9 != 0) {
    throw Error("--decode-tokens must be a positive and --decode-warmup a non-negative multiple of 9");
  }
  const QualityOptions& q = s.q;
  if (q.tokens < 1 || q.max_faces < 1 || q.batch_tokens < 1 || q.batch_size < 1 || q.val_batches < 0) {
    throw Error(
        "--train-tokens, --quality-max-faces, --batch-tokens and --batch-size must be >= 1, --val-batches >= 0");
  }
}

// The checked command line; nothing when --help was given (the help is printed).
std::optional<PaperSettings> parse_paper_settings(int argc, char** argv) {
  PaperSettings s;
  QualityOptions& q = s.q;
  ArgParser args("bench paper",
                 "The paper's five comparisons (spec section 5) of iFlame vs the full and linear baselines in one\n"
                 "run, each measurement in its own child process, printed as a Markdown table next to the\n"
                 "paper's numbers and drawn as ratios to full in OUT/paper-bench.png:\n"
                 "  (a) generation tokens/s at each --faces context (as `bench decode`: random-init weights,\n"
                 "      cache filled to the context, decode_step + sampling, batch 1, fp32);\n"
                 "  (b) cache bytes per sequence at 4000 faces, exact, from the HybridCache's allocations;\n"
                 "  (c) training tokens/s and (d) training peak memory at --train-faces (as `bench train`:\n"
                 "      random tokens, batch 1, bf16 autocast, forward + loss + backward + AdamW);\n"
                 "  (e) validation loss, token accuracy and face accuracy after the same number of training\n"
                 "      tokens on --data (iflame train's trainer, a --quality-size model, the same batches for\n"
                 "      every architecture); skipped without --data.\n"
                 "Also writes OUT/paper-bench.md and OUT/paper-bench.json; (e)'s runs go to OUT/quality-ARCH/.");
  args.option("size", &s.size, "model preset for (a)-(d): ref | small | tiny")
      .option("faces", &s.faces, "comma-separated decode contexts in faces for (a)")
      .option("train-faces", &s.train_faces, "sequence length in faces for (c) and (d) ((faces + 2) x 9 tokens)")
      .option("train-steps", &s.train_steps, "timed training steps for (c) and (d)")
      .option("train-warmup", &s.train_warmup, "untimed training steps first")
      .option("decode-tokens", &s.decode_tokens, "timed decode steps for (a) (a multiple of 9)")
      .option("decode-warmup", &s.decode_warmup, "untimed decode steps first (a multiple of 9)")
      .option("data", &q.data, "prepared corpus (.ifds from `iflame prepare`) for (e); none: skip (e)")
      .option("train-tokens", &q.tokens, "(e): target tokens each architecture trains on")
      .option("quality-size", &q.size, "(e): model preset trained (ref | small | tiny)")
      .option("quality-max-faces", &q.max_faces, "(e): meshes with more faces are left out of training and validation")
      .option("batch-tokens", &q.batch_tokens, "(e): padded tokens per training step")
      .option("batch-size", &q.batch_size, "(e): sequences per training step at most")
      .option("val-batches", &q.val_batches, "(e): validation batches (0: every validation mesh)")
      .option("lr", &q.lr, "(e): peak learning rate (0: 3e-3 for tiny, 1e-3 otherwise)")
      .option("quality-precision", &q.precision, "(e): bf16 (autocast) | fp32")
      .option("threads", &s.threads, "threads of every child (0: every CPU)")
      .option("timeout", &s.timeout_s, "seconds before a child is killed (0: none)")
      .option("seed", &s.seed, "random seed (weights, data order)")
      .option("only", &s.only, "comma-separated comparisons to run: a, b, c, d, e (c and d share their children)")
      .option("out", &s.out_dir, "folder for paper-bench.{md,json,png} and the (e) training runs")
      .option("child-quality", &s.child_quality, "(internal) train this architecture for (e) and print one JSON line")
      .option("quality-steps", &s.quality_steps, "(internal, with --child-quality) training steps");
  if (!args.parse(argc, argv)) return std::nullopt;
  check_paper_settings(s);
  return s;
}

// --child-quality: (e)'s training of one architecture, in this process.
int run_quality_child(const PaperSettings& s) {
  return run_as_child([&] { return quality_child(s.q, arch_from_name(s.child_quality), s.quality_steps, s.out_dir); });
}

// ---------------------------------------------------------------------------------------
// The run: every comparison's cells (ours and the paper's) and the children's JSON.

Cell not_run() { return failed("not run (--only)"); }

// How this run starts its children.
struct Children {
  std::string exe;
  std::map<std::string, std::string> env;
  double timeout_s = 0;
  double limit_mb = 0;  // training configurations estimated above this are skipped
};

// Every comparison's table rows (the paper's numbers and ours) and its children's JSON.
struct PaperResults {
  json machine;        // machine_facts, with the device
  std::string device;  // where the measurements ran, in words
  std::map<Arch, int64_t> params;  // estimated, then the children's counts
  std::vector<Row> decode_rows;    // (a), one per --faces context
  Row cache_row;                   // (b)
  Row speed_row, peak_row, act_row;  // (c), (d)
  Row loss_row, acc_row, face_row;   // (e)
  json cache_json = json::object(), decode_json = json::array(), train_json = json::array(),
       quality_json = json::array();  // paper-bench.json's records of each comparison
  Budget budget;                      // (e)'s, when it ran
  std::map<Arch, json> quality;       // (e)'s children that succeeded
};

// (b) Cache bytes per sequence, exact and in this process.
void measure_cache(const PaperSettings& s, PaperResults& results) {
  Row& row = results.cache_row;
  row.label = "(b) cache per sequence @ 4000 faces";
  const int64_t cache_tokens = 9 * (kCacheFaces + 2);  // 9 BOS + faces + the EOS row
  for (Arch a : kArchs) {
    const int i = arch_index(a);
    row.paper[i] = cell(kPaperCacheGiB.of(a) * 1024.0 / 4.0, "%.0f", " MiB");
    if (!s.want('b')) {
      row.ours[i] = not_run();
      continue;
    }
    const auto [kv, state] = cache_bytes_per_sequence(model_preset(s.size, a), cache_tokens, /*bf16_kv=*/true);
    row.ours[i] = cell(mib(double(kv + state)), mib(double(kv + state)) < 10 ? "%.2f" : "%.0f", " MiB");
    results.cache_json[arch_name(a)] = {{"kv_bytes", kv}, {"state_bytes", state}, {"tokens", cache_tokens}};
  }
}

// (a) One architecture's generation tokens/s at one context, in a decode child.
Cell measure_decode_of(const PaperSettings& s, const Children& children, Arch a, int64_t faces,
                       PaperResults& results) {
  DecodeSpec spec;
  spec.size = s.size;
  spec.arch = a;
  spec.faces = faces;
  spec.batch = 1;
  spec.tokens = s.decode_tokens;
  spec.warmup = s.decode_warmup;
  spec.threads = s.threads;
  spec.seed = uint64_t(s.seed);
  std::fprintf(stderr, "paper: (a) %s %s, decoding at %lld faces (load %s)...\n", s.size.c_str(), arch_name(a),
               (long long)faces, load_average().c_str());
  const ChildResult r = run_child(children.exe, decode_child_arguments(spec), children.env, children.timeout_s);
  if (!r.ok) {
    results.decode_json.push_back({{"arch", arch_name(a)}, {"faces", faces}, {"error", r.error}});
    return failed("failed: " + short_status(r.error));
  }
  const double tps = r.json.at("tokens_per_s").get<double>();
  results.params[a] = r.json.value("params", results.params[a]);
  results.decode_json.push_back(r.json);
  std::fprintf(stderr, "paper:   %.1f tokens/s\n", tps);
  return cell(tps, "%.1f");
}

// (a) Generation throughput, one decode child per (context, arch).
void measure_decode(const PaperSettings& s, const Children& children, PaperResults& results) {
  for (int64_t f : s.faces_list) {
    Row row;
    row.label = "(a) generation tokens/s @ " + std::to_string(f) + " faces";
    for (Arch a : kArchs) {
      const int i = arch_index(a);
      row.paper[i] = cell(kPaperDecodeTokensPerS.of(a), "%.1f");
      row.ours[i] = s.want('a') ? measure_decode_of(s, children, a, f, results) : not_run();
    }
    results.decode_rows.push_back(row);
  }
}

// (c) and (d)'s configuration, but for its arch.
TrainSpec training_spec(const PaperSettings& s) {
  TrainSpec spec;
  spec.size = s.size;
  spec.faces = s.train_faces;
  spec.steps = s.train_steps;
  spec.warmup = s.train_warmup;
  spec.threads = s.threads;
  spec.seed = uint64_t(s.seed);
  return spec;
}

// (c) and (d) of one architecture: an idle child (the model only) and a training child.
void measure_training_of(const PaperSettings& s, const Children& children, Arch a, PaperResults& results) {
  const int i = arch_index(a);
  auto set_ours = [&](const Cell& c) {
    results.speed_row.ours[i] = results.peak_row.ours[i] = results.act_row.ours[i] = c;
  };
  TrainSpec spec = training_spec(s);
  spec.arch = a;
  const double estimate_mb = estimate_peak_bytes(model_preset(s.size, a), spec) / 1048576.0;
  if (estimate_mb > children.limit_mb) {
    const std::string why = "skipped: ~" + fmt("%.0f", estimate_mb) + " MB > " + fmt("%.0f", children.limit_mb) + " MB";
    set_ours(failed(why));
    results.train_json.push_back({{"arch", arch_name(a)}, {"status", why}});
    return;
  }
  TrainSpec idle = spec;
  idle.idle = true;
  std::fprintf(stderr, "paper: (c, d) %s %s: idle baseline...\n", s.size.c_str(), arch_name(a));
  const ChildResult ri = run_child(children.exe, child_arguments(idle), children.env, children.timeout_s);
  std::fprintf(stderr, "paper: (c, d) %s %s, training at %lld faces (%lld tokens; load %s)...\n", s.size.c_str(),
               arch_name(a), (long long)s.train_faces, (long long)spec.tokens(), load_average().c_str());
  const ChildResult r = run_child(children.exe, child_arguments(spec), children.env, children.timeout_s);
  if (!r.ok) {
    set_ours(failed("failed: " + short_status(r.error)));
    results.train_json.push_back({{"arch", arch_name(a)}, {"error", r.error}});
    return;
  }
  const double mean_ms = r.json.at("mean_ms").get<double>();
  const double tps = double(spec.tokens() * spec.batch) / (mean_ms / 1000.0);
  const double peak_mb = r.json.at("peak_rss_kb").get<double>() / 1024.0;
  results.speed_row.ours[i] = cell(tps, "%.1f", " tok/s");
  results.peak_row.ours[i] = cell(peak_mb, "%.0f", " MB");
  json j = r.json;
  j["tokens_per_s"] = tps;
  if (ri.ok) {
    const double idle_mb = ri.json.at("peak_rss_kb").get<double>() / 1024.0;
    results.act_row.ours[i] = cell(peak_mb - idle_mb, "%.0f", " MB");
    j["idle_peak_rss_kb"] = ri.json.at("peak_rss_kb");
  } else {
    results.act_row.ours[i] = failed("idle child failed: " + short_status(ri.error));
  }
  results.params[a] = r.json.value("params", results.params[a]);
  results.train_json.push_back(j);
  std::fprintf(stderr, "paper:   %.0f ms/step, %.1f tokens/s, peak %.0f MB\n", mean_ms, tps, peak_mb);
}

// (c) and (d): training speed and peak memory.
void measure_training(const PaperSettings& s, const Children& children, PaperResults& results) {
  results.speed_row.label = "(c) training speed";
  results.speed_row.invert_paper = true;  // the paper gives minutes for 2B tokens
  results.peak_row.label = "(d) training peak memory";
  results.act_row.label = "(d) activations (peak - model)";
  for (Arch a : kArchs) {
    const int i = arch_index(a);
    results.speed_row.paper[i] = cell(kPaperTrainMinutes.of(a), "%.0f", " min");
    results.peak_row.paper[i] = cell(kPaperMemoryGB.of(a), "%.0f", " GB");
    if (s.want('c') || s.want('d')) {
      measure_training_of(s, children, a, results);
    } else {
      results.speed_row.ours[i] = results.peak_row.ours[i] = results.act_row.ours[i] = not_run();
    }
  }
}

// (e) One architecture trained on the budget, in its child.
void measure_quality_of(const PaperSettings& s, const Children& children, Arch a, PaperResults& results) {
  const QualityOptions& q = s.q;
  const Budget& budget = results.budget;
  const int i = arch_index(a);
  const std::string dir = s.out_dir + "/quality-" + arch_name(a);
  std::fprintf(stderr, "paper: (e) %s %s, training %lld steps (~%lld tokens) on %s (load %s)...\n", q.size.c_str(),
               arch_name(a), (long long)budget.steps, (long long)budget.planned_targets, q.data.c_str(),
               load_average().c_str());
  const ChildResult r = run_child(children.exe, quality_child_arguments(q, a, budget.steps, dir), children.env,
                                  children.timeout_s);
  if (!r.ok) {
    results.loss_row.ours[i] = results.acc_row.ours[i] = results.face_row.ours[i] =
        failed("failed: " + short_status(r.error));
    results.quality_json.push_back({{"arch", arch_name(a)}, {"error", r.error}});
    return;
  }
  const json& j = r.json;
  results.loss_row.ours[i] = cell(j.at("val_loss").get<double>(), "%.4f");
  results.acc_row.ours[i] = cell(100.0 * j.at("val_token_accuracy").get<double>(), "%.2f", "%");
  results.face_row.ours[i] = cell(100.0 * j.at("val_face_accuracy").get<double>(), "%.2f", "%");
  const int64_t trained = j.at("targets").get<int64_t>();
  results.quality[a] = j;
  results.quality_json.push_back(j);
  std::fprintf(stderr, "paper:   val loss %.4f, token accuracy %.2f%%, face accuracy %.2f%% (%lld tokens, %.0f s)\n",
               j.at("val_loss").get<double>(), 100.0 * j.at("val_token_accuracy").get<double>(),
               100.0 * j.at("val_face_accuracy").get<double>(), (long long)trained, j.at("wall_s").get<double>());
}

// Does (e) run: wanted, and given a corpus?
bool quality_runs(const PaperSettings& s) { return s.want('e') && !s.q.data.empty(); }

// (e) Quality after the same training tokens.
void measure_quality(const PaperSettings& s, const Children& children, PaperResults& results) {
  results.loss_row.label = "(e) validation loss";
  results.acc_row.label = "(e) validation token accuracy";
  results.face_row.label = "(e) validation face accuracy";
  for (Arch a : kArchs) results.acc_row.paper[arch_index(a)] = cell(kPaperAccuracyPct.of(a), "%.1f", "%");
  if (!quality_runs(s)) {
    for (Row* row : {&results.loss_row, &results.acc_row, &results.face_row}) {
      for (auto& c : row->ours) c = s.want('e') ? failed("skipped: no --data") : not_run();
    }
    return;
  }
  results.budget = plan_budget(s.q);
  for (Arch a : kArchs) measure_quality_of(s, children, a, results);
}

PaperResults run_paper_comparisons(const PaperSettings& s) {
  fs::create_directories(s.out_dir);
  // The children run this very binary through /proc/self/exe (resolved in the forked child
  // before exec), not its path: a rebuild during the run would otherwise swap the file under us.
  const Children children{"/proc/self/exe", child_environment(s.threads, "passive"), s.timeout_s,
                          0.9 * double(available_memory_kb()) / 1024.0};
  PaperResults results;
  // The measurements below all run on the CPU: bench decode's and bench train's children and the
  // trainer place their tensors there. Say so when this build could use a GPU.
  results.device = torch::cuda::is_available() ? "cpu (CUDA is available, but the decode and training "
                                                 "benchmarks and the trainer run on the CPU)"
                                               : "cpu";
  results.machine = machine_facts(s.threads);
  results.machine["device"] = results.device;
  for (Arch a : kArchs) {
    const ModelConfig cfg = model_preset(s.size, a);
    results.params[a] = block_matmul_weights(cfg) * cfg.num_layers() + 2 * cfg.dim * cfg.vocab;  // until measured
  }
  measure_cache(s, results);
  measure_decode(s, children, results);
  measure_training(s, children, results);
  measure_quality(s, children, results);
  return results;
}

// ---------------------------------------------------------------------------------------
// The report: the table (Markdown and JSON), paper-bench.{md,json} and the chart.

// The table's rows, in order: (a) per context, then (b) to (e).
std::vector<Row> table_rows(const PaperResults& r) {
  std::vector<Row> rows = r.decode_rows;
  for (const Row& row : {r.cache_row, r.speed_row, r.peak_row, r.act_row, r.loss_row, r.acc_row, r.face_row}) {
    rows.push_back(row);
  }
  return rows;
}

std::vector<std::string> markdown_row(const Row& r) {
  return {r.label,         r.paper[0].text, r.paper[1].text, r.paper[2].text, r.ours[0].text, r.ours[1].text,
          r.ours[2].text, ratio_text(r.paper_ratio(2), r.ours_ratio(2)), ratio_text(r.paper_ratio(1), r.ours_ratio(1))};
}

// A number, or (ours) why there is none.
json json_row(const Row& r) {
  json o = {{"comparison", r.label}};
  for (Arch a : kArchs) {
    const int i = arch_index(a);
    const Cell &paper = r.paper[i], &ours = r.ours[i];
    o[std::string("paper_") + arch_name(a)] = std::isfinite(paper.value) ? json(paper.value) : json(nullptr);
    o[std::string("ours_") + arch_name(a)] = std::isfinite(ours.value) ? json(ours.value) : json(ours.text);
  }
  return o;
}

// (e)'s note under the table: what each architecture was trained and validated on.
std::string budget_text(const PaperSettings& s, const PaperResults& results) {
  if (!quality_runs(s)) {
    return s.want('e') ? "(e) skipped: no --data given (a corpus from `iflame prepare`, e.g. "
                         "/work/corpus/light/corpus.ifds)."
                       : "(e) not run (--only).";
  }
  const QualityOptions& q = s.q;
  const Budget& budget = results.budget;
  // Per architecture that trained: `what` of its result, e.g. "full 412, iflame 409".
  auto per_arch = [&](const std::function<std::string(const json&)>& what) {
    std::string text;
    for (Arch a : kArchs) {
      const auto it = results.quality.find(a);
      if (it == results.quality.end()) continue;
      text += (text.empty() ? "" : ", ") + std::string(arch_name(a)) + " " + what(it->second);
    }
    return text;
  };
  const std::string counted = per_arch([](const json& j) { return std::to_string(j.at("targets").get<int64_t>()); });
  const std::string params =
      per_arch([](const json& j) { return fmt("%.2fM", double(j.value("params", int64_t(0))) / 1e6); });
  std::ostringstream b;
  b << "(e) budget: each architecture trained from scratch on the same " << budget.steps
    << (budget.steps == 1 ? " batch (" : " batches (") << budget.planned_targets << " target tokens planned";
  if (!counted.empty()) b << "; trained, after augmentation: " << counted;
  b << ") of " << q.data << ": " << budget.train_meshes << " training meshes of 1.." << q.max_faces
    << " faces, batches of <= " << q.batch_tokens << " padded tokens and <= " << q.batch_size
    << " sequences, augmentation on; `" << q.size << "` model";
  if (!params.empty()) b << " (" << params << ")";
  b << ", Muon + AdamW at lr " << fmt("%.3g", q.learning_rate()) << " with 10% warmup and cosine decay, "
    << q.precision << (q.precision == "bf16" ? " autocast" : "") << ", seed " << s.seed
    << ". Validation: teacher-forced over "
    << (q.val_batches > 0 ? "the first " + std::to_string(q.val_batches) + " batches of the " : std::string("all "))
    << budget.val_meshes << " validation meshes of 1.." << q.max_faces << " faces (train/evaluate.h).";
  return b.str();
}

std::string markdown_report(const PaperSettings& s, const PaperResults& results, const std::vector<Row>& rows) {
  std::vector<std::vector<std::string>> md;
  for (const Row& r : rows) md.push_back(markdown_row(r));
  auto params = [&](Arch a) { return fmt("%.1fM", double(results.params.at(a)) / 1e6); };
  std::ostringstream out;
  out << "iflame bench paper: size " << s.size << " (parameters: full " << params(Arch::Full) << ", linear "
      << params(Arch::Linear) << ", iflame " << params(Arch::IFlame) << "), " << cpu_model() << " ("
      << hardware_threads() << " CPUs, " << s.threads << " threads), LibTorch " << libtorch_version() << ", device "
      << results.device << ", " << today() << "\n\n"
      << markdown_table({"comparison", "full (paper)", "linear (paper)", "iFlame (paper)", "full (ours)",
                         "linear (ours)", "iflame (ours)", "iflame / full (paper / ours)",
                         "linear / full (paper / ours)"},
                        md)
      << "\n"
      << "- Paper: spec section 5 (ShapeNet, 2B training tokens, 4 GPUs, the 75.7M `ref` model; its baselines are "
      << "plain 24-layer transformers). Ratios are to full, so > 1 means more than full; for (c) the paper's ratio is "
      << "full's training time over the other's, ours is tokens/s over full's.\n"
      << "- (a) `bench decode` children: random-init weights, the cache filled to the context (9 BOS + faces x 9 "
      << "tokens), then " << s.decode_warmup << " untimed and " << s.decode_tokens
      << " timed steps of decode_step + sampling, batch 1, fp32; tokens/s over the timed steps. The paper does not "
      << "state its context; its figure is repeated on every (a) row.\n"
      << "- (b) exact bytes of one sequence's HybridCache at 4000 faces (" << 9 * (kCacheFaces + 2)
      << " tokens): 16-bit K/V of the full-attention layers (the paper's fp16) + fp32 linear-attention states and "
      << "iFlame's rings. Paper: 6.6 / 0 / 0.8 GB of K/V at batch 4, divided by 4.\n"
      << "- (c), (d) `bench train` children: random tokens framed as " << s.train_faces << " faces ("
      << training_spec(s).tokens() << " tokens), batch 1, bf16 autocast, " << s.train_warmup << " untimed + "
      << s.train_steps << " timed steps of forward + loss + backward + AdamW; peak = the child's peak RSS, "
      << "activations = that minus the peak of a child that only builds the model. The paper's memory is per GPU at "
      << "batch 48.\n"
      << "- " << budget_text(s, results) << " The paper's accuracy is after 2B tokens of ShapeNet; the spec reads it "
      << "as token accuracy.\n";
  return out.str();
}

// paper-bench.json: the machine, every child's JSON, (e)'s budget and the table.
json json_record(const PaperSettings& s, const PaperResults& results, const std::vector<Row>& rows) {
  const QualityOptions& q = s.q;
  const Budget& budget = results.budget;
  json table = json::array();
  for (const Row& r : rows) table.push_back(json_row(r));
  return {{"machine", results.machine},
          {"cache", results.cache_json},
          {"decode", results.decode_json},
          {"train", results.train_json},
          {"quality", results.quality_json},
          {"quality_budget",
           {{"data", q.data},
            {"size", q.size},
            {"train_tokens", q.tokens},
            {"steps", budget.steps},
            {"planned_targets", budget.planned_targets},
            {"max_faces", q.max_faces},
            {"batch_tokens", q.batch_tokens},
            {"batch_size", q.batch_size},
            {"val_meshes", budget.val_meshes},
            {"lr", q.learning_rate()},
            {"precision", q.precision}}},
          {"table", table}};
}

// The chart: one panel of ratios to full per comparison, and a caption cell; 3 x 2 cells.
render::Image chart(const PaperSettings& s, const PaperResults& r) {
  auto series = [&](const std::string& name, const Row& row, bool paper) {
    render::BarSeries b{name, {}};
    for (int i = 0; i < 3; ++i) b.values.push_back(paper ? row.paper_ratio(i) : row.ours_ratio(i));
    return b;
  };
  std::vector<render::BarSeries> decode = {series("paper", r.decode_rows.front(), true)};
  for (size_t k = 0; k < r.decode_rows.size(); ++k) {
    decode.push_back(series("ours @" + std::to_string(s.faces_list[k]), r.decode_rows[k], false));
  }
  std::vector<render::Image> cells;
  cells.push_back(panel("(a) generation tokens/s", decode));
  cells.push_back(panel("(b) cache per sequence @ 4000 faces",
                        {series("paper", r.cache_row, true), series("ours", r.cache_row, false)}));
  cells.push_back(panel("(c) training speed @ " + std::to_string(s.train_faces) + " faces",
                        {series("paper", r.speed_row, true), series("ours", r.speed_row, false)}));
  cells.push_back(panel("(d) training peak memory", {series("paper", r.peak_row, true),
                                                     series("ours", r.peak_row, false),
                                                     series("ours activations", r.act_row, false)}));
  cells.push_back(panel("(e) validation token accuracy",
                        {series("paper", r.acc_row, true), series("ours", r.acc_row, false)}));
  const std::vector<std::string> caption = {
      "iflame bench paper, " + today(),
      "bars: ratio to full (dashed line: 1)",
      "paper: ShapeNet, 2B tokens, 4 GPUs, ref model",
      "ours: size " + s.size + ", " + std::to_string(s.threads) + " threads, " + r.device.substr(0, 3),
      cpu_model(),
      "(a) decode, batch 1, fp32",
      "(b) 16-bit K/V + fp32 states",
      "(c, d) bench train, " + std::to_string(s.train_faces) + " faces",
      s.q.data.empty() ? std::string("(e) skipped: no --data")
                       : "(e) " + s.q.size + ", " + std::to_string(r.budget.planned_targets) + " tokens, " +
                             std::to_string(r.budget.steps) + " steps",
  };
  cells.push_back(caption_cell(caption, cells.front().width, cells.front().height));
  return compose(cells, 3);
}

// The table to stdout and OUT/paper-bench.md, the record to OUT/paper-bench.json, the chart to
// OUT/paper-bench.png.
void paper_report(const PaperSettings& s, const PaperResults& results, const std::vector<Row>& rows) {
  const std::string text = markdown_report(s, results, rows);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  write_file_atomic(s.out_dir + "/paper-bench.md", text);
  write_file_atomic(s.out_dir + "/paper-bench.json", json_record(s, results, rows).dump(2) + "\n");
  const std::string png = s.out_dir + "/paper-bench.png";
  render::write_png(png, chart(s, results));
  std::fprintf(stderr, "paper: wrote %s, %s/paper-bench.md and %s/paper-bench.json\n", png.c_str(),
               s.out_dir.c_str(), s.out_dir.c_str());
}

}  // namespace

int run_paper_command(int argc, char** argv) {
  const std::optional<PaperSettings> settings = parse_paper_settings(argc, argv);
  if (!settings) return 0;
  if (!settings->child_quality.empty()) return run_quality_child(*settings);
  const PaperResults results = run_paper_comparisons(*settings);
  const std::vector<Row> rows = table_rows(results);
  paper_report(*settings, results, rows);
  bool any_failed = false;
  for (const Row& r : rows) {
    for (const Cell& c : r.ours) any_failed |= c.text.rfind("failed", 0) == 0;
  }
  return any_failed ? 1 : 0;
}

}  // namespace iflame::bench
