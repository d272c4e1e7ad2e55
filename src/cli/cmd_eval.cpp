// iflame eval: generation-quality metrics of sampled meshes against reference meshes (COV, MMD,
// 1-NNA, JSD; spec section 6) with mesh statistics of both sets, and/or teacher-forced metrics
// of a model on a dataset split (loss, perplexity, token and strict face accuracy).
#include <algorithm>
#include <chrono>
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
#include "model/weights.h"
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
std::vector<eval::EvalItem> load_side(const std::string& what, const std::string& path, bool dataset_ok, Split split,
                                      eval::DatasetGeometry geometry, size_t limit, int threads, std::string& described) {
  if (eval::is_dataset_path(path)) {
    if (!dataset_ok) throw Error(path, "--" + what + " takes a folder of meshes, not a dataset");
    DatasetReader data(path);
    described = path + " (" + split_name(split) + " split, " +
                (geometry == eval::DatasetGeometry::kTokens ? "decoded token rows" : "float geometry") + ")";
    auto items = eval::load_dataset_split(data, split, limit, geometry);
    if (items.empty()) throw Error(path, std::string("the ") + split_name(split) + " split is empty");
    return items;
  }
  std::vector<std::string> files = eval::list_mesh_files(path);
  if (files.empty()) throw Error(path, "no mesh files in this folder");
  if (limit > 0 && files.size() > limit) files.resize(limit);
  described = path;
  return eval::load_mesh_files(files, path, threads);
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
          {"boundary_edges", s.boundary_edges},
          {"non_manifold_edges", s.non_manifold_edges},
          {"meshes_with_degenerate_faces", s.with_degenerate},
          {"meshes_with_duplicate_faces", s.with_duplicates},
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
          std::to_string(s.non_manifold_edges)};
}

}  // namespace

int run_eval(int argc, char** argv) {
  std::string samples_dir, reference, split_text = "val", json_out, geometry_text = "tokens", kernel = "auto";
  std::string weights, dataset, precision = "fp32", device_name = "cpu";
  int64_t points = int64_t(eval::kDefaultPoints), seed = 0, limit = 0, threads = 0;
  int64_t heads = 16, max_faces = 800, batch_tokens = 16384, batch_size = 48, max_batches = 0;
  ArgParser args("eval",
                 "Generation quality (spec section 6, PointFlow's protocol, Chamfer path): every mesh is\n"
                 "centered on its bounding box and scaled to longest side 1, then --points surface points are\n"
                 "sampled (area-weighted, seeded). With S the samples and R the references:\n"
                 "  COV    share of references that are some sample's nearest reference (higher is better)\n"
                 "  MMD    mean over references of the Chamfer distance to the nearest sample (lower; x10^3)\n"
                 "  1-NNA  leave-one-out 1-NN accuracy over S u R (50% ideal; 0% copies; 100% disjoint)\n"
                 "  JSD    Jensen-Shannon divergence of the 28^3 occupancy histograms (lower; has a floor)\n"
                 "plus mesh statistics of both sets (degenerate/duplicate faces, non-manifold edges,\n"
                 "watertight share). Unreadable meshes are reported by name and skipped.\n\n"
                 "Teacher forcing: with --weights W --dataset D.ifds, the model's loss, perplexity, token\n"
                 "accuracy and strict face accuracy on a split (as validation during training).\n\n"
                 "examples:\n"
                 "  iflame eval --samples samples/ --reference corpus.ifds --split val --json eval.json\n"
                 "  iflame eval --weights run/best/model.safetensors --dataset corpus.ifds");
  args.option("samples", &samples_dir, "folder of generated meshes (searched recursively)")
      .option("reference", &reference, "folder of reference meshes, or a prepared dataset (.ifds)")
      .option("split", &split_text, "dataset split for --reference and --dataset: val or train")
      .option("reference-geometry", &geometry_text,
              "dataset references: tokens (the canonical quantized mesh) or float (before quantization)")
      .option("points", &points, "surface points per mesh")
      .option("seed", &seed, "sampling seed")
      .option("limit", &limit, "at most this many meshes per set (0: all; folders in path order)")
      .option("kernel", &kernel, "Chamfer kernel: auto, avx512, avx2 or generic")
      .option("weights", &weights, "teacher forcing: model weights (.safetensors)")
      .option("dataset", &dataset, "teacher forcing: prepared dataset (.ifds)")
      .option("max-faces", &max_faces, "teacher forcing: leave out meshes with more faces")
      .option("batch-tokens", &batch_tokens, "teacher forcing: padded tokens per batch")
      .option("batch-size", &batch_size, "teacher forcing: sequences per batch at most")
      .option("max-batches", &max_batches, "teacher forcing: stop after this many batches (0: all)")
      .option("precision", &precision, "teacher forcing: fp32 or bf16 (autocast)")
      .option("heads", &heads, "teacher forcing: attention heads when the weights' metadata does not say")
      .option("device", &device_name, "teacher forcing: cpu, cuda or auto")
      .option("json", &json_out, "write every number (and every skipped file) to this JSON file")
      .option("threads", &threads, "threads (0: every core)");
  if (!args.parse(argc, argv)) return 0;
  const bool generation = !samples_dir.empty() || !reference.empty();
  const bool teacher = !weights.empty() || !dataset.empty();
  if (!generation && !teacher) {
    throw Error("eval: give --samples DIR --reference DIR|DATA.ifds, or --weights W --dataset DATA.ifds (see --help)");
  }
  if (generation && (samples_dir.empty() || reference.empty())) throw Error("eval: --samples and --reference go together");
  if (teacher && (weights.empty() || dataset.empty())) throw Error("eval: --weights and --dataset go together");
  if (points < 1 || points > 1000000) throw Error("eval: --points must be between 1 and 1000000");
  if (limit < 0) throw Error("eval: --limit must be >= 0");
  if (geometry_text != "tokens" && geometry_text != "float") throw Error("eval: --reference-geometry must be tokens or float");
  if (precision != "fp32" && precision != "bf16") throw Error("eval: --precision must be fp32 or bf16");
  const Split split = parse_split(split_text);
  const int jobs = threads > 0 ? int(threads) : hardware_jobs();

  json out = {{"settings", {{"split", split_text}, {"threads", jobs}}}};
  std::string report;

  if (generation) {
    const std::string kernel_name = eval::resolve_chamfer_kernel(kernel);
    const auto geometry = geometry_text == "tokens" ? eval::DatasetGeometry::kTokens : eval::DatasetGeometry::kFloat;
    const auto t_load = std::chrono::steady_clock::now();
    std::string samples_desc, reference_desc;
    const auto sample_items = load_side("samples", samples_dir, false, split, geometry, size_t(limit), jobs, samples_desc);
    const auto reference_items = load_side("reference", reference, true, split, geometry, size_t(limit), jobs, reference_desc);
    const double load_s = seconds_since(t_load);

    const auto t_sample = std::chrono::steady_clock::now();
    // Separate streams: a sample that copies a reference mesh still gets its own points.
    const eval::CloudSet S = eval::sample_set(sample_items, size_t(points), uint64_t(seed), /*stream=*/0, jobs);
    const eval::CloudSet R = eval::sample_set(reference_items, size_t(points), uint64_t(seed), /*stream=*/1, jobs);
    const double sample_s = seconds_since(t_sample);
    const json sample_problems = report_problems("samples", sample_items, S);
    const json reference_problems = report_problems("reference", reference_items, R);
    if (S.clouds.empty()) throw Error(samples_dir, "no usable sample meshes (every file failed to load or has no area)");
    if (R.clouds.empty()) throw Error(reference, "no usable reference meshes");

    const size_t pairs = eval::generation_metric_pairs(S.clouds.size(), R.clouds.size());
    Progress progress("eval chamfer", pairs);
    eval::ChamferOptions copt;
    copt.threads = jobs;
    copt.kernel = kernel_name;
    copt.progress = &progress;
    const auto t_metrics = std::chrono::steady_clock::now();
    const eval::GenerationMetrics m = eval::generation_metrics(S.clouds, R.clouds, copt);
    const double metrics_s = seconds_since(t_metrics);
    progress.finish();

    out["settings"].update({{"samples", samples_dir}, {"reference", reference}, {"reference_geometry", geometry_text},
                            {"points", points}, {"seed", seed}, {"limit", limit}, {"chamfer_kernel", kernel_name},
                            {"jsd_resolution", 28}});
    out["samples"] = stats_json(S.stats);
    out["samples"].update(sample_problems);
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
      << reference_desc << "), " << points << " points per mesh, seed " << seed << "\n\n"
      << markdown_table({"set", "inputs", "usable", "failed", "mean faces", "mean verts", "watertight", "degenerate faces",
                "duplicate faces", "non-manifold edges"},
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
      << fmt("%.1f", metrics_s) << " s (" << pairs << " Chamfer pairs, " << kernel_name << " kernel, " << jobs
      << " threads)\n";
    report += s.str();
  }

  if (teacher) {
    configure_threads(threads);
    const torch::Device device = parse_device(device_name);
    DatasetReader data(dataset);
    IFlameModel model = load_model(weights, heads);
    if (model->config.vocab != data.tokenizer_config().vocab_size()) {
      throw Error(weights, "model vocabulary " + std::to_string(model->config.vocab) + " does not fit the dataset's (" +
                               std::to_string(data.tokenizer_config().vocab_size()) + ", " + dataset + ")");
    }
    model->to(device);
    const auto indices = data.indices(split);
    if (indices.empty()) throw Error(dataset, std::string("the ") + split_name(split) + " split is empty");
    TeacherForcedOptions topt;
    topt.batch_tokens = batch_tokens;
    topt.batch_size = batch_size;
    topt.max_faces = max_faces;
    topt.max_batches = max_batches;
    topt.bf16 = precision == "bf16";
    Progress progress("eval teacher forcing", indices.size());
    topt.progress = &progress;
    const auto t0 = std::chrono::steady_clock::now();
    const TeacherForcedResult r = evaluate_teacher_forced(*model, data, indices, topt);
    const double secs = seconds_since(t0);
    progress.finish();
    if (r.sequences == 0) {
      throw Error(dataset, std::string("no ") + split_name(split) + " meshes with 1.." + std::to_string(max_faces) + " faces");
    }
    out["settings"].update({{"weights", weights}, {"dataset", dataset}, {"max_faces", max_faces},
                            {"batch_tokens", batch_tokens}, {"batch_size", batch_size}, {"max_batches", max_batches},
                            {"precision", precision}, {"device", device_name}});
    out["teacher_forced"] = {{"loss", r.loss},
                             {"perplexity", r.perplexity},
                             {"token_accuracy", r.token_accuracy},
                             {"face_accuracy", r.face_accuracy},
                             {"sequences", r.sequences},
                             {"batches", r.batches},
                             {"targets", r.targets},
                             {"faces", r.faces},
                             {"left_out", r.left_out},
                             {"seconds", secs}};
    // What a model must beat: the train split's token frequencies, scored on the val split.
    // A plain struct and a flag: GCC 12 reports a false maybe-uninitialized through c10::optional.
    UnigramBaseline uni;
    const bool has_unigram = split == Split::kVal && data.num_train() > 0;
    const UnigramBaseline* unigram = nullptr;
    if (has_unigram) {
      uni = unigram_baseline(data, max_faces);
      unigram = &uni;
      out["unigram_baseline"] = {{"loss", unigram->cross_entropy}, {"perplexity", unigram->perplexity},
                                 {"token_accuracy", unigram->accuracy}, {"val_targets", unigram->val_targets},
                                 {"train_targets", unigram->train_targets}};
    }
    auto baseline = [&](double v, const char* f) { return unigram ? fmt(f, v) : std::string("-"); };
    std::ostringstream s;
    if (!report.empty()) s << "\n";
    s << "iflame eval: teacher forcing, " << weights << " on " << dataset << " (" << split_name(split) << " split, "
      << r.sequences << " meshes, " << r.targets << " targets" << (r.left_out ? ", " + std::to_string(r.left_out) +
                                                                                  " left out: no faces or > " +
                                                                                  std::to_string(max_faces)
                                                                            : std::string())
      << ", " << precision << ")\n\n"
      << markdown_table({"metric", "model", "unigram baseline"},
               {{"loss (nats/token)", fmt("%.4f", r.loss), baseline(unigram ? unigram->cross_entropy : 0, "%.4f")},
                {"perplexity", fmt("%.3f", r.perplexity), baseline(unigram ? unigram->perplexity : 0, "%.3f")},
                {"token accuracy", fmt("%.2f%%", 100 * r.token_accuracy), baseline(unigram ? 100 * unigram->accuracy : 0, "%.2f%%")},
                {"face accuracy (all 9 tokens)", fmt("%.2f%%", 100 * r.face_accuracy), "-"}})
      << "\n" << (unigram ? "unigram baseline: train-split token frequencies (add-one) scored on every val target (" +
                                   std::to_string(unigram->val_targets) + ")\n"
                             : std::string())
      << fmt("%.1f", secs) << " s\n";
    report += s.str();
  }

  std::fwrite(report.data(), 1, report.size(), stdout);
  std::fflush(stdout);
  if (!json_out.empty()) {
    write_file_atomic(json_out, out.dump(2) + "\n");
    std::printf("wrote %s\n", json_out.c_str());
  }
  return 0;
}

}  // namespace iflame::cli
