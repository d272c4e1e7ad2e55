// iflame eval: generation-quality metrics of sampled meshes against reference meshes (COV, MMD,
// 1-NNA, JSD; spec section 6) with mesh statistics of both sets, and/or teacher-forced metrics
// of a model on a dataset split (loss, perplexity, token and strict face accuracy).
#include <algorithm>
#include <chrono>
#include <map>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "dataset/format.h"
#include "eval/inputs.h"
#include "eval/metrics.h"
#include "kernels/threads.h"
#include "model/weights.h"
#include "render/png.h"
#include "render/render.h"
#include "train/evaluate.h"
#include "dataset/stats.h"
#include "util/args.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/parallel.h"
#include "util/progress.h"
#include "util/report.h"

namespace iflame::cli {
namespace {

using nlohmann::json;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Split parse_split(const std::string& s) {
  if (s == "val") return Split::kVal;
  if (s == "train") return Split::kTrain;
  throw Error("--split must be val or train, got '" + s + "'");
}

// Loads one side: a folder of meshes, or (when allowed) one split of a prepared dataset.
std::vector<eval::EvalItem> load_side(const std::string& path, Split split, eval::DatasetGeometry geometry,
                                      const eval::Subset& subset, int threads, std::string& described) {
  const std::string picked = subset.limit > 0 ? (subset.random ? ", a random " : ", the first ") +
                                                    std::to_string(subset.limit)
                                              : std::string();
  if (eval::is_dataset_path(path)) {
    DatasetReader data(path);
    described = path + " (" + split_name(split) + " split" + picked + ", " +
                (geometry == eval::DatasetGeometry::kTokens ? "decoded token rows" : "float geometry") + ")";
    auto items = eval::load_dataset_split(data, split, subset, geometry);
    if (items.empty()) throw Error(path, std::string("the ") + split_name(split) + " split is empty");
    return items;
  }
  const std::vector<std::string> all = eval::list_mesh_files(path);
  if (all.empty()) throw Error(path, "no mesh files in this folder");
  std::vector<std::string> files;
  for (size_t p : eval::subset_positions(all.size(), subset)) files.push_back(all[p]);
  described = path + (picked.empty() ? "" : " (" + picked.substr(2) + ")");
  return eval::load_mesh_files(files, path, threads);
}

// How the samples of a folder written by `iflame sample` ended (its summary.json), if it has one.
json finished_counts(const std::string& samples) {
  std::map<std::string, int64_t> counts;
  try {
    const json summary = json::parse(read_file_text(samples + "/summary.json"));
    for (const json& s : summary.at("samples")) ++counts[s.value("finished", std::string("unknown"))];
  } catch (const std::exception&) {
    return json();  // no summary, or not one of ours
  }
  return counts;
}

// Reports every input that gave no cloud, by file name, on stderr (the JSON lists them all).
json report_problems(const std::string& what, const std::vector<eval::EvalItem>& items, const eval::CloudSet& set) {
  json failed = json::array(), skipped = json::array();
  for (const auto& it : items) {
    if (!it.loaded) failed.push_back({{"name", it.name}, {"error", it.error}});
  }
  for (const auto& s : set.skipped) skipped.push_back(s);
  const size_t shown_max = 20;
  size_t shown = 0;
  for (const auto& f : failed) {
    if (shown++ < shown_max) {
      // Reader errors already start with the file's path; do not repeat the name then.
      const std::string name = f["name"], error = f["error"];
      const std::string text = error.find(name) != std::string::npos ? error : name + ": " + error;
      std::fprintf(stderr, "iflame eval: %s: skipping %s\n", what.c_str(), text.c_str());
    }
  }
  for (const auto& s : set.skipped) {
    if (shown++ < shown_max) std::fprintf(stderr, "iflame eval: %s: skipping %s\n", what.c_str(), s.c_str());
  }
  if (shown > shown_max) std::fprintf(stderr, "iflame eval: %s: ... and %zu more (see the JSON)\n", what.c_str(), shown - shown_max);
  return {{"failed_files", failed}, {"unusable_files", skipped}};
}

json stats_json(const eval::SetStats& s) {
  return {{"inputs", s.inputs},
          {"face_histogram", {{"bin", eval::SetStats::kHistogramBin}, {"counts", s.face_histogram}}},
          {"loaded", s.loaded},
          {"failed", s.failed},
          {"usable", s.usable},
          {"usable_share", s.usable_share()},
          {"watertight", s.watertight},
          {"watertight_share", s.watertight_share()},
          {"faces", s.faces},
          {"mean_faces", s.mean_faces()},
          {"max_faces", s.max_faces},
          {"vertices", s.vertices},
          {"mean_vertices", s.mean_vertices()},
          {"degenerate_faces", s.degenerate_faces},
          {"duplicate_faces", s.duplicate_faces},
          {"repeated_faces", s.repeated_faces},
          {"boundary_edges", s.boundary_edges},
          {"non_manifold_edges", s.non_manifold_edges},
          {"meshes_with_degenerate_faces", s.with_degenerate},
          {"meshes_with_duplicate_faces", s.with_duplicates},
          {"meshes_with_repeated_faces", s.with_repeated},
          {"meshes_with_non_manifold_edges", s.with_non_manifold}};
}

std::vector<std::string> stats_row(const std::string& name, const eval::SetStats& s) {
  return {name,
          std::to_string(s.inputs),
          std::to_string(s.usable),
          std::to_string(s.failed),
          fmt("%.1f", s.mean_faces()),
          fmt("%.1f", s.mean_vertices()),
          fmt("%.1f%%", 100 * s.watertight_share()),
          std::to_string(s.degenerate_faces),
          std::to_string(s.duplicate_faces),
          std::to_string(s.repeated_faces),
          std::to_string(s.non_manifold_edges)};
}

// What the generation and novelty parts need from the command line.
struct GenerationArgs {
  std::string samples, reference, nearest, nearest_image, geometry = "tokens", kernel = "auto";
  Split samples_split = Split::kTrain, split = Split::kVal, nearest_split = Split::kTrain;
  int64_t points = int64_t(kDefaultPoints), seed = 0, nearest_pairs = 24;
  eval::Subset subset;
  int jobs = 1;
};

ChamferOptions chamfer_options(const GenerationArgs& a, Progress* progress) {
  ChamferOptions o;
  o.threads = a.jobs;
  o.kernel = resolve_chamfer_kernel(a.kernel);
  o.progress = progress;
  return o;
}

// Novelty: every sample's nearest mesh of the --nearest dataset split, and optionally a picture
// of the first --nearest-pairs samples each beside it.
std::string run_novelty(const GenerationArgs& a, const std::vector<eval::EvalItem>& sample_items,
                        const eval::CloudSet& S, json& out) {
  const auto geometry = a.geometry == "tokens" ? eval::DatasetGeometry::kTokens : eval::DatasetGeometry::kFloat;
  std::string pool_desc;
  const auto pool_items = load_side(a.nearest, a.nearest_split, geometry, {}, a.jobs, pool_desc);
  const eval::CloudSet P = eval::sample_set(pool_items, size_t(a.points), uint64_t(a.seed), /*stream=*/2, a.jobs);
  if (P.clouds.empty()) throw Error(a.nearest, "no usable meshes to compare the samples with");
  Progress progress("eval nearest", S.clouds.size() * P.clouds.size());
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<eval::Nearest> nearest = eval::nearest_clouds(S.clouds, P.clouds, chamfer_options(a, &progress));
  progress.finish();
  std::vector<double> d;
  json per_sample = json::array();
  for (size_t i = 0; i < nearest.size(); ++i) {
    d.push_back(nearest[i].distance);
    per_sample.push_back({{"sample", S.names[i]}, {"nearest", P.names[nearest[i].index]}, {"chamfer", nearest[i].distance}});
  }
  std::vector<double> sorted = d;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double q) { return sorted[std::min(sorted.size() - 1, size_t(q * double(sorted.size() - 1) + 0.5))]; };
  out["nearest"] = {{"pool", pool_desc}, {"pool_meshes", P.clouds.size()}, {"median", pct(0.5)}, {"min", sorted.front()},
                    {"p10", pct(0.1)}, {"p90", pct(0.9)}, {"seconds", seconds_since(t0)}, {"samples", per_sample}};
  std::ostringstream s;
  s << "\nnovelty: each sample's nearest mesh of " << pool_desc << " (" << P.clouds.size() << " meshes), Chamfer x10^3\n\n"
    << markdown_table({"min", "p10", "median", "p90"},
                      {{fmt("%.3f", 1e3 * sorted.front()), fmt("%.3f", 1e3 * pct(0.1)), fmt("%.3f", 1e3 * pct(0.5)),
                        fmt("%.3f", 1e3 * pct(0.9))}});
  if (!a.nearest_image.empty()) {
    // Sample names -> their meshes (the clouds skipped unusable items, so match by name).
    std::map<std::string, const Mesh*> sample_mesh, pool_mesh;
    for (const auto& it : sample_items) sample_mesh[it.name] = &it.mesh;
    for (const auto& it : pool_items) pool_mesh[it.name] = &it.mesh;
    std::vector<Mesh> cells;
    std::vector<std::string> captions;
    for (size_t i = 0; i < nearest.size() && int64_t(i) < a.nearest_pairs; ++i) {
      const std::string& twin = P.names[nearest[i].index];
      cells.push_back(*sample_mesh.at(S.names[i]));
      captions.push_back(S.names[i]);
      cells.push_back(*pool_mesh.at(twin));
      captions.push_back("nearest: " + twin.substr(twin.find_last_of('/') + 1) + "\nCD " +
                         fmt("%.2f", 1e3 * nearest[i].distance) + "e-3");
    }
    render::GridOptions grid;
    grid.columns = 8;  // four pairs a row
    grid.cell_size = 192;
    render::write_png(a.nearest_image, render::render_grid(cells, grid, captions));
    s << "\nwrote " << a.nearest_image << " (" << cells.size() / 2 << " samples, each beside its nearest mesh)\n";
  }
  return s.str();
}

// COV, MMD, 1-NNA and JSD of --samples against --reference, their mesh statistics, and the
// novelty check when --nearest is given.
std::string run_generation(const GenerationArgs& a, json& out) {
  const auto geometry = a.geometry == "tokens" ? eval::DatasetGeometry::kTokens : eval::DatasetGeometry::kFloat;
  const auto t_load = std::chrono::steady_clock::now();
  std::string samples_desc, reference_desc;
  const auto sample_items = load_side(a.samples, a.samples_split, geometry, a.subset, a.jobs, samples_desc);
  const auto reference_items = load_side(a.reference, a.split, geometry, a.subset, a.jobs, reference_desc);
  const double load_s = seconds_since(t_load);

  const auto t_sample = std::chrono::steady_clock::now();
  // Separate streams: a sample that copies a reference mesh still gets its own points.
  const eval::CloudSet S = eval::sample_set(sample_items, size_t(a.points), uint64_t(a.seed), /*stream=*/0, a.jobs);
  const eval::CloudSet R = eval::sample_set(reference_items, size_t(a.points), uint64_t(a.seed), /*stream=*/1, a.jobs);
  const double sample_s = seconds_since(t_sample);
  const json sample_problems = report_problems("samples", sample_items, S);
  const json reference_problems = report_problems("reference", reference_items, R);
  if (S.clouds.empty()) throw Error(a.samples, "no usable sample meshes (every file failed to load or has no area)");
  if (R.clouds.empty()) throw Error(a.reference, "no usable reference meshes");

  const size_t pairs = eval::generation_metric_pairs(S.clouds.size(), R.clouds.size());
  Progress progress("eval chamfer", pairs);
  const ChamferOptions copt = chamfer_options(a, &progress);
  const auto t_metrics = std::chrono::steady_clock::now();
  const eval::GenerationMetrics m = eval::generation_metrics(S.clouds, R.clouds, copt);
  const double metrics_s = seconds_since(t_metrics);
  progress.finish();

  out["settings"].update({{"samples", a.samples}, {"reference", a.reference}, {"reference_geometry", a.geometry},
                          {"points", a.points}, {"seed", a.seed}, {"limit", a.subset.limit},
                          {"subset", a.subset.random ? "random" : "first"}, {"chamfer_kernel", copt.kernel},
                          {"jsd_resolution", 28}});
  out["samples"] = stats_json(S.stats);
  out["samples"].update(sample_problems);
  if (const json finished = finished_counts(a.samples); !finished.is_null()) out["samples"]["finished"] = finished;
  out["references"] = stats_json(R.stats);
  out["references"].update(reference_problems);
  out["metrics"] = {{"samples", m.samples},
                    {"references", m.references},
                    {"cov", m.cov_mmd.coverage},
                    {"mmd", m.cov_mmd.mmd},
                    {"mmd_smp", m.cov_mmd.mmd_smp},
                    {"nna", m.nna.accuracy},
                    {"nna_references", m.nna.accuracy_references},
                    {"nna_samples", m.nna.accuracy_samples},
                    {"jsd", m.jsd}};
  out["timing_s"] = {{"load", load_s}, {"sample", sample_s}, {"metrics", metrics_s}, {"chamfer_pairs", pairs}};

  std::ostringstream s;
  s << "iflame eval: " << m.samples << " samples (" << samples_desc << ") vs " << m.references << " references ("
    << reference_desc << "), " << a.points << " points per mesh, seed " << a.seed << "\n\n"
    << markdown_table({"set", "inputs", "usable", "failed", "mean faces", "mean verts", "watertight", "degenerate faces",
                       "duplicate faces", "of which copies", "non-manifold edges"},
                      {stats_row("samples", S.stats), stats_row("references", R.stats)})
    << "\n"
    << markdown_table({"metric", "value", "note"},
                      {{"COV", fmt("%.2f%%", 100 * m.cov_mmd.coverage), "higher is better"},
                       {"MMD (CD) x10^3", fmt("%.4f", 1e3 * m.cov_mmd.mmd), "lower is better"},
                       {"1-NNA (CD)", fmt("%.2f%%", 100 * m.nna.accuracy),
                        "50% ideal (references " + fmt("%.1f%%", 100 * m.nna.accuracy_references) + ", samples " +
                            fmt("%.1f%%", 100 * m.nna.accuracy_samples) + ")"},
                       {"JSD x10^2", fmt("%.4f", 1e2 * m.jsd), "lower is better"}})
    << "\nload " << fmt("%.1f", load_s) << " s, sampling " << fmt("%.1f", sample_s) << " s, metrics "
    << fmt("%.1f", metrics_s) << " s (" << pairs << " Chamfer pairs, " << copt.kernel << " kernel, " << a.jobs
    << " threads)\n";
  if (!a.nearest.empty()) s << run_novelty(a, sample_items, S, out);
  return s.str();
}

// What the teacher-forced part needs from the command line.
struct TeacherArgs {
  std::string weights, dataset, precision = "fp32", device = "cpu";
  Split split = Split::kVal;
  int64_t heads = 16, max_faces = 800, batch_tokens = 16384, batch_size = 48, max_batches = 0, threads = 0;
  bool drop_repeated_faces = false;
  RowNoise noise = {};
};

// The model's loss, perplexity and accuracies on a dataset split, next to the unigram baseline.
std::string run_teacher(const TeacherArgs& a, json& out) {
  set_compute_threads(a.threads);
  const torch::Device device = parse_device(a.device);
  DatasetReader data(a.dataset);
  IFlameModel model = load_model(a.weights, a.heads);
  if (model->config.vocab != data.tokenizer_config().vocab_size()) {
    throw Error(a.weights, "model vocabulary " + std::to_string(model->config.vocab) + " does not fit the dataset's (" +
                               std::to_string(data.tokenizer_config().vocab_size()) + ", " + a.dataset + ")");
  }
  model->to(device);
  const auto indices = data.indices(a.split);
  if (indices.empty()) throw Error(a.dataset, std::string("the ") + split_name(a.split) + " split is empty");
  TeacherForcedOptions topt;
  topt.batch_tokens = a.batch_tokens;
  topt.batch_size = a.batch_size;
  topt.max_faces = a.max_faces;
  topt.max_batches = a.max_batches;
  topt.drop_repeated_faces = a.drop_repeated_faces;
  topt.noise = a.noise;
  topt.bf16 = a.precision == "bf16";
  Progress progress("eval teacher forcing", indices.size());
  topt.progress = &progress;
  const auto t0 = std::chrono::steady_clock::now();
  const TeacherForcedResult r = evaluate_teacher_forced(*model, data, indices, topt);
  const double secs = seconds_since(t0);
  progress.finish();
  if (r.sequences == 0) {
    throw Error(a.dataset,
                std::string("no ") + split_name(a.split) + " meshes with 1.." + std::to_string(a.max_faces) + " faces");
  }
  out["settings"].update({{"weights", a.weights}, {"dataset", a.dataset}, {"max_faces", a.max_faces},
                          {"batch_tokens", a.batch_tokens}, {"batch_size", a.batch_size}, {"max_batches", a.max_batches},
                          {"drop_repeated_faces", a.drop_repeated_faces}, {"repeat_noise", a.noise.copy}, {"flat_noise", a.noise.flat},
                          {"precision", a.precision}, {"device", a.device}});
  out["teacher_forced"] = {{"loss", r.loss},           {"perplexity", r.perplexity}, {"token_accuracy", r.token_accuracy},
                           {"face_accuracy", r.face_accuracy}, {"sequences", r.sequences}, {"batches", r.batches},
                           {"targets", r.targets},     {"faces", r.faces},           {"left_out", r.left_out},
                           {"seconds", secs}};
  // What a model must beat: the train split's token frequencies, scored on the val split.
  // A plain struct and a flag: GCC 12 reports a false maybe-uninitialized through c10::optional.
  UnigramBaseline uni;
  const bool has_unigram = a.split == Split::kVal && data.num_train() > 0;
  if (has_unigram) {
    uni = unigram_baseline(data, a.max_faces, a.drop_repeated_faces);
    out["unigram_baseline"] = {{"loss", uni.cross_entropy},     {"perplexity", uni.perplexity},
                               {"token_accuracy", uni.accuracy}, {"val_targets", uni.val_targets},
                               {"train_targets", uni.train_targets}};
  }
  auto baseline = [&](double v, const char* f) { return has_unigram ? fmt(f, v) : std::string("-"); };
  std::ostringstream s;
  s << "iflame eval: teacher forcing, " << a.weights << " on " << a.dataset << " (" << split_name(a.split) << " split, "
    << r.sequences << " meshes, " << r.targets << " targets"
    << (r.left_out ? ", " + std::to_string(r.left_out) + " left out: no faces or > " + std::to_string(a.max_faces)
                   : std::string())
    << (a.noise.any() ? fmt(", copies / flat rows inserted before %.0f%% / ", 100 * a.noise.copy) +
                            fmt("%.0f%% of the face rows", 100 * a.noise.flat)
                      : std::string())
    << ", " << a.precision << ")\n\n"
    << markdown_table({"metric", "model", "unigram baseline"},
                      {{"loss (nats/token)", fmt("%.4f", r.loss), baseline(uni.cross_entropy, "%.4f")},
                       {"perplexity", fmt("%.3f", r.perplexity), baseline(uni.perplexity, "%.3f")},
                       {"token accuracy", fmt("%.2f%%", 100 * r.token_accuracy), baseline(100 * uni.accuracy, "%.2f%%")},
                       {"face accuracy (all 9 tokens)", fmt("%.2f%%", 100 * r.face_accuracy), "-"}})
    << "\n"
    << (has_unigram ? "unigram baseline: train-split token frequencies (add-one) scored on the same val targets (" +
                          std::to_string(uni.val_targets) + ")\n"
                    : std::string())
    << fmt("%.1f", secs) << " s\n";
  return s.str();
}

}  // namespace

int run_eval(int argc, char** argv) {
  GenerationArgs g;
  TeacherArgs t;
  std::string split_text = "val", samples_split_text = "train", nearest_split_text = "train", subset = "first", json_out;
  int64_t limit = 0, threads = 0;
  ArgParser args("eval",
                 "Generation quality (spec section 6, PointFlow's protocol, Chamfer path): every mesh is\n"
                 "centered on its bounding box and scaled to longest side 1, then --points surface points are\n"
                 "sampled (area-weighted, seeded). With S the samples and R the references:\n"
                 "  COV    share of references that are some sample's nearest reference (higher is better)\n"
                 "  MMD    mean over references of the Chamfer distance to the nearest sample (lower; x10^3)\n"
                 "  1-NNA  leave-one-out 1-NN accuracy over S u R (50% ideal; 0% copies; 100% disjoint)\n"
                 "  JSD    Jensen-Shannon divergence of the 28^3 occupancy histograms (lower; has a floor)\n"
                 "plus mesh statistics of both sets (degenerate/duplicate faces, non-manifold edges,\n"
                 "watertight share, face-count histogram; for a folder from `iflame sample`, how its samples\n"
                 "ended). Unreadable meshes are reported by name and skipped. Compare sets of equal size:\n"
                 "--limit N with --subset random draws N of each side. --samples may be a dataset split too\n"
                 "(--samples-split): training meshes scored as if generated give the ceiling.\n\n"
                 "Novelty: --nearest D.ifds finds each sample's nearest mesh of a split (--nearest-split,\n"
                 "default train) by Chamfer distance; --nearest-image draws samples beside their nearest mesh.\n\n"
                 "Teacher forcing: with --weights W --dataset D.ifds, the model's loss, perplexity, token\n"
                 "accuracy and strict face accuracy on a split (as validation during training).\n\n"
                 "examples:\n"
                 "  iflame eval --samples samples/ --reference corpus.ifds --split val --json eval.json\n"
                 "  iflame eval --samples corpus.ifds --reference corpus.ifds --limit 323 --subset random\n"
                 "  iflame eval --samples samples/ --reference corpus.ifds --nearest corpus.ifds --nearest-image n.png\n"
                 "  iflame eval --weights run/best/model.safetensors --dataset corpus.ifds");
  args.option("samples", &g.samples, "folder of generated meshes (searched recursively), or a dataset (.ifds)")
      .option("samples-split", &samples_split_text, "dataset split when --samples is a dataset: train or val")
      .option("reference", &g.reference, "folder of reference meshes, or a prepared dataset (.ifds)")
      .option("split", &split_text, "dataset split for --reference and --dataset: val or train")
      .option("reference-geometry", &g.geometry,
              "dataset meshes: tokens (the canonical quantized mesh) or float (before quantization)")
      .option("points", &g.points, "surface points per mesh")
      .option("seed", &g.seed, "sampling seed (surface points, and --subset random)")
      .option("limit", &limit, "at most this many meshes per set (0: all)")
      .option("subset", &subset, "with --limit: first (in path order) or random (seeded by --seed)")
      .option("nearest", &g.nearest, "novelty: a dataset whose meshes each sample is compared with")
      .option("nearest-split", &nearest_split_text, "novelty: the --nearest split: train or val")
      .option("nearest-image", &g.nearest_image, "novelty: PNG of samples beside their nearest meshes")
      .option("nearest-pairs", &g.nearest_pairs, "novelty: how many samples the image shows")
      .option("kernel", &g.kernel, "Chamfer kernel: auto, avx512, avx2 or generic")
      .option("weights", &t.weights, "teacher forcing: model weights (.safetensors)")
      .option("dataset", &t.dataset, "teacher forcing: prepared dataset (.ifds)")
      .option("max-faces", &t.max_faces, "teacher forcing: leave out meshes with more faces")
      .option("batch-tokens", &t.batch_tokens, "teacher forcing: padded tokens per batch")
      .option("batch-size", &t.batch_size, "teacher forcing: sequences per batch at most")
      .option("max-batches", &t.max_batches, "teacher forcing: stop after this many batches (0: all)")
      .flag("drop-repeated-faces", &t.drop_repeated_faces,
            "teacher forcing: score the rows without face rows that repeat an earlier one (as training with "
            "data.drop_repeated_faces)")
      .option("repeat-noise", &t.noise.copy,
              "teacher forcing: before each face row, with this probability, an unscored copy of an earlier row "
              "(as training with data.repeat_noise): how well the model goes on after the repeats its samples make")
      .option("flat-noise", &t.noise.flat,
              "teacher forcing: the same with flat rows (corners on one line) made from earlier rows (data.flat_noise)")
      .option("precision", &t.precision, "teacher forcing: fp32 or bf16 (autocast)")
      .option("heads", &t.heads, "teacher forcing: attention heads when the weights' metadata does not say")
      .option("device", &t.device, "teacher forcing: cpu, cuda or auto")
      .option("json", &json_out, "write every number (and every skipped file) to this JSON file")
      .option("threads", &threads, "threads (0: every core)");
  if (!args.parse(argc, argv)) return 0;
  const bool generation = !g.samples.empty() || !g.reference.empty();
  const bool teacher = !t.weights.empty() || !t.dataset.empty();
  if (!generation && !teacher) {
    throw Error("eval: give --samples DIR --reference DIR|DATA.ifds, or --weights W --dataset DATA.ifds (see --help)");
  }
  if (generation && (g.samples.empty() || g.reference.empty())) throw Error("eval: --samples and --reference go together");
  if (teacher && (t.weights.empty() || t.dataset.empty())) throw Error("eval: --weights and --dataset go together");
  if (!g.nearest.empty() && !generation) throw Error("eval: --nearest needs --samples and --reference");
  if (!g.nearest_image.empty() && g.nearest.empty()) throw Error("eval: --nearest-image needs --nearest");
  if (!g.nearest.empty() && !eval::is_dataset_path(g.nearest)) throw Error(g.nearest, "--nearest takes a dataset (.ifds)");
  if (g.points < 1 || g.points > 1000000) throw Error("eval: --points must be between 1 and 1000000");
  if (g.seed < 0) throw Error("eval: --seed must be 0 or positive");
  if (limit < 0) throw Error("eval: --limit must be >= 0");
  if (subset != "first" && subset != "random") throw Error("eval: --subset must be first or random");
  if (g.nearest_pairs < 1 || g.nearest_pairs > 1000) throw Error("eval: --nearest-pairs must be between 1 and 1000");
  if (threads < 0) throw Error("eval: --threads must be 0 (every core) or positive");
  if (g.geometry != "tokens" && g.geometry != "float") throw Error("eval: --reference-geometry must be tokens or float");
  if (t.precision != "fp32" && t.precision != "bf16") throw Error("eval: --precision must be fp32 or bf16");
  const std::string noise_problem = row_noise_problem(t.noise, {"--repeat-noise", "--flat-noise"});
  if (!noise_problem.empty()) throw Error("eval: " + noise_problem);
  g.split = t.split = parse_split(split_text);
  g.samples_split = parse_split(samples_split_text);
  g.nearest_split = parse_split(nearest_split_text);
  g.subset = {size_t(limit), subset == "random", uint64_t(g.seed)};
  g.jobs = threads > 0 ? int(threads) : hardware_jobs();
  t.threads = threads;

  json out = {{"settings", {{"split", split_text}, {"threads", g.jobs}}}};
  std::string report;
  if (generation) report += run_generation(g, out);
  if (teacher) report += (report.empty() ? "" : "\n") + run_teacher(t, out);
  std::fwrite(report.data(), 1, report.size(), stdout);
  std::fflush(stdout);
  if (!json_out.empty()) {
    write_file_atomic(json_out, out.dump(2) + "\n");
    std::printf("wrote %s\n", json_out.c_str());
  }
  return 0;
}

}  // namespace iflame::cli
