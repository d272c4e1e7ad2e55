// iflame sample: generate meshes with the cached decoder and write them out.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "generate/generate.h"
#include "dataset/isolated_load.h"
#include "kernels/threads.h"
#include "mesh/write.h"
#include "model/weights.h"
#include "render/png.h"
#include "render/render.h"
#include "util/args.h"
#include "util/error.h"
#include "util/default_model.h"
#include "util/fs.h"
#include "util/report.h"

namespace iflame::cli {
namespace {

// Bounds that keep a typo from asking for unbounded memory or time.
constexpr int64_t kMaxSamples = 1000000, kMaxBatch = 4096, kMaxFaces = 100000;

// Is `name` a file `iflame sample` writes (summary.json, grid.png, sample_NNN.obj/ply/glb/png)?
bool is_sample_output(const std::string& name) {
  if (name == "summary.json" || name == "grid.png") return true;
  const size_t dot = name.rfind('.');
  if (name.rfind("sample_", 0) != 0 || dot == std::string::npos || dot <= 7) return false;
  const std::string ext = name.substr(dot + 1);
  const bool digits = std::all_of(name.begin() + 7, name.begin() + long(dot), [](char c) { return c >= '0' && c <= '9'; });
  return digits && (ext == "obj" || ext == "ply" || ext == "glb" || ext == "png");
}

// An --out folder that holds an earlier run's samples is refused, or with --overwrite emptied of
// them first (so that no file of a larger earlier run is left to be taken for this one's).
void claim_out_dir(const std::string& dir, bool overwrite) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) throw Error(dir, "--out is not a folder");
  std::vector<fs::path> earlier;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && is_sample_output(entry.path().filename().string())) earlier.push_back(entry.path());
  }
  if (earlier.empty()) return;
  if (!overwrite) {
    throw Error(dir, "holds the samples of an earlier run (" + std::to_string(earlier.size()) +
                         " files such as " + earlier.front().filename().string() +
                         "); choose another --out, or --overwrite to replace them");
  }
  for (const fs::path& p : earlier) fs::remove(p, ec);
}

}  // namespace

int run_sample(int argc, char** argv) {
  std::string weights, prompt_path, out_dir = "samples", tokens_out, format = "obj", device_name = "cpu",
              precision = "fp32";
  int64_t n = 4, batch = 8, top_k = 50, seed = 0, max_faces = 800, max_new_tokens = 0, heads = 16, threads = 0, bits = 7;
  double temperature = 1.0, top_p = 0.95, min_p = 0.0;
  bool greedy = false, no_constraints = false, no_previews = false, overwrite = false;
  SamplingOptions switches;  // the on/off rules (sampling_switches()); its numbers are unused
  std::string switch_keys;
  for (const SamplingSwitch& rule : sampling_switches()) switch_keys += std::string(" sample.") + rule.option + ",";
  ArgParser args("sample",
                 "Generates meshes token by token with the cached hybrid decoder. Sequences decode in\n"
                 "batches; each stops at its own EOS row (or --max-faces) and frees its slot. Each sample i\n"
                 "uses its own seeded generator, so the same --seed gives the same meshes at any --batch.\n"
                 "Outputs DIR/sample_NNN.obj (decoded: dequantized, vertices merged, input winding), a PNG\n"
                 "preview of each (DIR/sample_NNN.png), one grid of all (DIR/grid.png) and DIR/summary.json.\n"
                 "Grammar constraints are on by default; --order-constraints also keeps the tokenizer's canonical\n"
                 "order. Either way the end of the run reports how often the unconstrained model would have broken\n"
                 "each rule. On the CPU, decoding runs fused kernels (fp32, or bf16 weights and K/V with\n"
                 "--precision bf16).\n"
                 "\n"
                 "Without --weights the shipped model is used: $IFLAME_MODEL when set, else\n"
                 "models/iflame-default.safetensors beside the build folder, in the install prefix\n"
                 "(share/iflame/models) or in the source tree this binary was configured from. A model may carry\n"
                 + wrap_words("", "its sampling defaults in its metadata (sample.temperature, sample.top-p, sample.min-p, "
                              "sample.top-k, sample.max-faces," + switch_keys.substr(0, switch_keys.size() - 1) +
                                  "); options given here win, and a switch the model turns on is turned off with "
                                  "--NAME=false.",
                              96, "") +
                     "\n"
                 "Every sample's \"finished\" in summary.json says what ended it: eos (the model), max_faces or\n"
                 "max_new_tokens (a cap).");
  args.option("weights", &weights, "model weights (.safetensors; default: the shipped model, see below)")
      .option("n", &n, "number of meshes")
      .option("batch", &batch, "sequences decoded together")
      .option("temperature", &temperature, "softmax temperature")
      .option("top-k", &top_k, "keep the k most likely tokens (0 = off)")
      .option("top-p", &top_p, "nucleus sampling mass (1 = off)")
      .option("min-p", &min_p, "keep the tokens at least this fraction as likely as the most likely one (0 = off)")
      .option("seed", &seed, "random seed")
      .option("prompt", &prompt_path, "a mesh whose canonical face rows start every sequence (partial mesh to complete)")
      .option("max-faces", &max_faces, "end a sequence after this many faces")
      .option("max-new-tokens", &max_new_tokens, "stop after this many new tokens (0 = no limit)")
      .flag("greedy", &greedy, "argmax decoding")
      .flag("no-constraints", &no_constraints, "do not mask tokens the mesh grammar forbids (and do not stop at EOS)");
  for (const SamplingSwitch& rule : sampling_switches()) args.flag(rule.option, &(switches.*rule.member), rule.help);
  args.option("out", &out_dir, "output folder (one that holds an earlier run's samples is refused)")
      .flag("overwrite", &overwrite, "replace the samples of an earlier run in --out")
      .option("format", &format, "mesh files to write: a comma list of obj, ply, glb (both = obj,ply)")
      .flag("no-previews", &no_previews, "do not write the PNG previews (sample_NNN.png, and grid.png of the first 64)")
      .option("tokens-out", &tokens_out, "also write all token rows, prompt included, as raw int64 [N, L] (PAD-filled)")
      .option("heads", &heads, "attention heads when the weights' metadata does not say")
      .option("bits", &bits, "tokenizer quantization bits (must match the model)")
      .option("precision", &precision,
              "fp32 | bf16 (weights and K/V stored in bfloat16: half the memory traffic; on CPUs with\n"
              "AVX512-BF16 the matmuls also round their inputs to bfloat16, as autocast does; sums in fp32)")
      .option("threads", &threads, "CPU threads (0 = all cores)")
      .option("device", &device_name, "cpu, cuda or auto");
  if (!args.parse(argc, argv)) return 0;
  if (n <= 0 || n > kMaxSamples) throw Error("sample: --n must be between 1 and " + std::to_string(kMaxSamples));
  if (batch <= 0 || batch > kMaxBatch) throw Error("sample: --batch must be between 1 and " + std::to_string(kMaxBatch));
  if (max_new_tokens < 0) throw Error("sample: --max-new-tokens must be 0 (no limit) or positive");
  if (seed < 0) throw Error("sample: --seed must be 0 or positive");
  if (threads < 0) throw Error("sample: --threads must be 0 (all cores) or positive");
  if (heads <= 0) throw Error("sample: --heads must be positive");
  if (bits < 2 || bits > 15) throw Error("sample: --bits must be between 2 and 15");
  std::vector<std::string> formats;  // file extensions, in the order given
  for (const std::string& f : split_commas(format == "both" ? "obj,ply" : format)) {
    if (f != "obj" && f != "ply" && f != "glb") throw Error("sample: --format: '" + f + "' is not obj, ply or glb");
    if (std::find(formats.begin(), formats.end(), f) == formats.end()) formats.push_back(f);
  }
  if (formats.empty()) throw Error("sample: --format must name at least one of obj, ply, glb");
  if (precision != "fp32" && precision != "bf16") throw Error("sample: --precision must be fp32 or bf16");
  if (switches.order && no_constraints) throw Error("sample: --order-constraints needs the grammar constraints (drop --no-constraints)");
  if (switches.distinct_faces && no_constraints) throw Error("sample: --distinct-faces needs the grammar constraints (drop --no-constraints)");
  TokenizerConfig tokenizer;
  tokenizer.bits = int(bits);
  auto check_max_faces = [&] {
    if (max_faces < 1 || max_faces > kMaxFaces) {
      throw Error("sample: --max-faces must be between 1 and " + std::to_string(kMaxFaces));
    }
  };
  // The sampling options as given, before any model is looked for: a bad value is reported as
  // such even when there is no model (the model's own defaults are checked again below).
  if (args.given("max-faces")) check_max_faces();
  {
    SamplingOptions given;
    given.temperature = temperature;
    given.top_k = top_k;
    given.top_p = top_p;
    given.min_p = min_p;
    check_sampling_options(given, tokenizer.vocab_size());
  }
  if (weights.empty()) {
    weights = default_model_path();
    std::fprintf(stderr, "sample: the default model %s\n", weights.c_str());
  }
  set_compute_threads(threads);
  const torch::Device device = parse_device(device_name);

  std::map<std::string, std::string> metadata;
  IFlameModel model = load_model(weights, heads, &metadata);
  // The model's own sampling defaults, for the options the command line did not set.
  const std::vector<std::string> from_model = apply_sampling_defaults(
      metadata, weights, args, {{"temperature", &temperature}, {"top-p", &top_p}, {"min-p", &min_p}},
      {{"top-k", &top_k}, {"max-faces", &max_faces}}, switches);
  check_max_faces();
  if (!from_model.empty()) {
    std::string list;
    for (const std::string& o : from_model) list += " --" + o;
    std::fprintf(stderr, "sample: defaults from the model's metadata:%s\n", list.c_str());
  }
  if (model->config.vocab != tokenizer.vocab_size()) {
    throw Error(weights, "model vocabulary " + std::to_string(model->config.vocab) + " does not fit --bits " +
                             std::to_string(bits) + " (vocabulary " + std::to_string(tokenizer.vocab_size()) + ")");
  }
  model->eval();
  model->to(device);

  GenerateOptions opts;
  opts.count = n;
  opts.batch = batch;
  opts.seed = uint64_t(seed);
  opts.max_faces = max_faces;
  opts.max_new_tokens = max_new_tokens;
  opts.sampling.temperature = temperature;
  opts.sampling.top_k = top_k;
  opts.sampling.top_p = top_p;
  opts.sampling.min_p = min_p;
  opts.sampling.greedy = greedy;
  opts.sampling.constraints = !no_constraints;
  for (const SamplingSwitch& rule : sampling_switches()) opts.sampling.*rule.member = switches.*rule.member;
  auto named = [&](bool SamplingOptions::*member) { return args.given(sampling_switch(member).option); };
  settle_sampling_switches(opts.sampling, {named(&SamplingOptions::order), named(&SamplingOptions::distinct_faces)});
  check_sampling_options(opts.sampling, model->config.vocab);
  opts.stop_at_eos = !no_constraints;
  opts.bf16 = precision == "bf16";
  if (!prompt_path.empty()) {
    opts.prompt = encode_prompt(canonicalize(load_untrusted_mesh(prompt_path), tokenizer), tokenizer);
    std::fprintf(stderr, "sample: prompt %s: %zu faces\n", prompt_path.c_str(), prompt_faces(opts.prompt.size()));
  }

  claim_out_dir(out_dir, overwrite);
  std::filesystem::create_directories(out_dir);
  nlohmann::json summary;
  summary["weights"] = weights;
  summary["samples"] = nlohmann::json::array();
  int64_t written = 0;
  // grid.png: the first kGridSamples samples by index (they finish out of order); empty meshes
  // are left out.
  constexpr int64_t kGridSamples = 64;
  std::vector<Mesh> previews(size_t(std::min(n, kGridSamples)));
  std::vector<std::string> captions(previews.size());
  auto on_done = [&](int64_t index, const GeneratedSequence& seq) {
    const Mesh mesh = decode_tokens(seq.tokens, tokenizer);
    char name[64];
    std::snprintf(name, sizeof name, "sample_%03lld", (long long)index);
    nlohmann::json entry = {{"index", index},
                            {"new_tokens", seq.new_tokens},
                            {"finished", finish_name(seq.finished)},
                            {"faces", mesh.faces.size()},
                            {"vertices", mesh.vertices.size()}};
    if (mesh.faces.empty()) {
      std::fprintf(stderr, "  %s: no faces decoded (%lld tokens), no mesh written\n", name, (long long)seq.new_tokens);
    } else {
      for (const std::string& f : formats) {
        const std::string path = out_dir + "/" + name + "." + f;
        if (f == "obj") write_obj(mesh, path, "generated by iflame sample, seed " + std::to_string(seed));
        else write_mesh(mesh, path);
      }
      entry["file"] = std::string(name) + "." + formats.front();
      ++written;
      if (!no_previews) {
        render::write_png(out_dir + "/" + name + ".png", render::render_views(mesh, render::default_views(3), 320));
        if (index < kGridSamples) {
          previews[size_t(index)] = mesh;
          captions[size_t(index)] = std::string(name) + "\n" + std::to_string(mesh.faces.size()) + " faces" +
                                    (seq.finished == Finish::kEos ? "" : " (cap)");
        }
      }
      std::fprintf(stderr, "  %s: %zu faces, %zu vertices, %lld tokens%s\n", name, mesh.faces.size(), mesh.vertices.size(),
                   (long long)seq.new_tokens,
                   seq.finished == Finish::kEos ? "" : (std::string(" (no EOS: ended by ") + finish_name(seq.finished) + ")").c_str());
    }
    summary["samples"].push_back(entry);
  };

  GenerateStats stats;
  std::vector<GeneratedSequence> seqs = generate(*model, tokenizer, opts, &stats, on_done);

  std::vector<Mesh> grid;
  std::vector<std::string> grid_captions;
  for (size_t i = 0; i < previews.size(); ++i) {
    if (previews[i].faces.empty()) continue;
    grid.push_back(std::move(previews[i]));
    grid_captions.push_back(captions[i]);
  }
  if (!grid.empty()) render::write_png(out_dir + "/grid.png", render::render_grid(grid, {}, grid_captions));
  // The summary lists samples in index order too.
  std::sort(summary["samples"].begin(), summary["samples"].end(),
            [](const nlohmann::json& a, const nlohmann::json& b) { return a.at("index") < b.at("index"); });
  if (!tokens_out.empty()) {
    size_t L = 0;
    for (const auto& s : seqs) L = std::max(L, s.tokens.size());
    std::vector<int64_t> flat(seqs.size() * L, tokenizer.pad());
    for (size_t i = 0; i < seqs.size(); ++i) std::copy(seqs[i].tokens.begin(), seqs[i].tokens.end(), flat.begin() + i * L);
    write_file_atomic(tokens_out, flat.data(), flat.size() * sizeof(int64_t));
  }
  const double tps = stats.seconds > 0 ? double(stats.tokens) / stats.seconds : 0;
  const RuleStats& rules = stats.rules;
  auto argmax_percent = [](const RuleCount& c) { return c.steps ? 100.0 * double(c.argmax_violations) / double(c.steps) : 0.0; };
  auto mean_mass = [](const RuleCount& c) { return c.steps ? c.disallowed_mass / double(c.steps) : 0.0; };
  std::map<std::string, int64_t> finished;
  for (const auto& seq : seqs) ++finished[finish_name(seq.finished)];
  summary["finished"] = finished;
  summary["tokens"] = stats.tokens;
  summary["seconds"] = stats.seconds;
  summary["tokens_per_second"] = tps;
  summary["peak_cache_bytes"] = stats.peak_cache_bytes;
  summary["precision"] = precision;
  summary["grammar"] = {{"constraints", !no_constraints},
                        {"steps", rules.grammar.steps},
                        {"unconstrained_argmax_violations", rules.grammar.argmax_violations},
                        {"mean_disallowed_probability", mean_mass(rules.grammar)}};
  summary["canonical_order"] = {
      {"constraints", opts.sampling.order},
      {"distinct_faces", opts.sampling.distinct_faces},
      {"steps", rules.order.steps},
      {"unconstrained_argmax_violations", rules.order.argmax_violations},
      {"mean_disallowed_probability", mean_mass(rules.order)}};
  summary["repeated_faces"] = {
      {"masked", opts.sampling.no_repeat_faces},
      {"steps", rules.repeat.steps},
      {"argmax_repeats", rules.repeat.argmax_violations},
      {"mean_repeat_probability", mean_mass(rules.repeat)}};
  summary["sampling"] = {{"temperature", opts.sampling.temperature}, {"top_k", opts.sampling.top_k},
                         {"top_p", opts.sampling.top_p},             {"min_p", opts.sampling.min_p},
                         {"greedy", opts.sampling.greedy},           {"max_faces", max_faces}};
  for (const SamplingSwitch& rule : sampling_switches()) summary["sampling"][rule.field] = opts.sampling.*rule.member;
  summary["degenerate_faces"] = {{"masked", opts.sampling.no_degenerate_faces},
                                 {"steps", rules.degenerate.steps},
                                 {"argmax_degenerate", rules.degenerate.argmax_violations},
                                 {"mean_degenerate_probability", mean_mass(rules.degenerate)}};
  write_file_atomic(out_dir + "/summary.json", summary.dump(1) + "\n");
  std::fprintf(stderr,
               "sample: %lld meshes written to %s/, %lld tokens in %.1f s (%.1f tokens/s)\n"
               "sample: the unconstrained argmax would have broken the grammar at %.2f%% of steps "
               "(mean disallowed probability %.2f%%)\n"
               "sample: and the canonical order at %.2f%% of the %lld steps whose row was in order so far "
               "(mean probability out of order %.2f%%; order constraints %s)\n"
               "sample: and would have repeated an earlier face at %.2f%% of the %lld face ends "
               "(mean probability of a repeat %.2f%%; repeats masked %s)\n"
               "sample: and would have made a face degenerate at %.2f%% of the %lld corner coordinates that can "
               "(mean probability %.2f%%; degenerate faces masked %s)\n",
               (long long)written, out_dir.c_str(), (long long)stats.tokens, stats.seconds, tps,
               argmax_percent(rules.grammar), 100 * mean_mass(rules.grammar), argmax_percent(rules.order),
               (long long)rules.order.steps, 100 * mean_mass(rules.order), opts.sampling.order ? "on" : "off",
               argmax_percent(rules.repeat), (long long)rules.repeat.steps, 100 * mean_mass(rules.repeat),
               opts.sampling.no_repeat_faces ? "on" : "off", argmax_percent(rules.degenerate),
               (long long)rules.degenerate.steps, 100 * mean_mass(rules.degenerate),
               opts.sampling.no_degenerate_faces ? "on" : "off");
  return 0;
}

}  // namespace iflame::cli
