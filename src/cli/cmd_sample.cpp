// iflame sample: generate meshes with the cached decoder and write them out.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "generate/generate.h"
#include "mesh/load.h"
#include "mesh/write.h"
#include "model/weights.h"
#include "render/png.h"
#include "render/render.h"
#include "util/args.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame::cli {

int run_sample(int argc, char** argv) {
  std::string weights, prompt_path, out_dir = "samples", tokens_out, format = "obj", device_name = "cpu",
              precision = "fp32";
  int64_t n = 4, batch = 8, top_k = 50, seed = 0, max_faces = 800, max_new_tokens = 0, heads = 16, threads = 0, bits = 7;
  double temperature = 1.0, top_p = 0.95;
  bool greedy = false, no_constraints = false, no_previews = false, order_constraints = false;
  ArgParser args("sample",
                 "Generates meshes token by token with the cached hybrid decoder. Sequences decode in\n"
                 "batches; each stops at its own EOS row (or --max-faces) and frees its slot. Each sample i\n"
                 "uses its own seeded generator, so the same --seed gives the same meshes at any --batch.\n"
                 "Outputs DIR/sample_NNN.obj (decoded: dequantized, vertices merged, input winding), a PNG\n"
                 "preview of each (DIR/sample_NNN.png), one grid of all (DIR/grid.png) and DIR/summary.json.\n"
                 "Grammar constraints are on by default; --order-constraints also keeps the tokenizer's canonical\n"
                 "order. Either way the end of the run reports how often the unconstrained model would have broken\n"
                 "each rule. On the CPU, decoding runs fused kernels (fp32, or bf16 weights and K/V with\n"
                 "--precision bf16).");
  args.option("weights", &weights, "model weights (.safetensors)")
      .option("n", &n, "number of meshes")
      .option("batch", &batch, "sequences decoded together")
      .option("temperature", &temperature, "softmax temperature")
      .option("top-k", &top_k, "keep the k most likely tokens (0 = off)")
      .option("top-p", &top_p, "nucleus sampling mass (1 = off)")
      .option("seed", &seed, "random seed")
      .option("prompt", &prompt_path, "a mesh whose canonical face rows start every sequence (partial mesh to complete)")
      .option("max-faces", &max_faces, "end a sequence after this many faces")
      .option("max-new-tokens", &max_new_tokens, "stop after this many new tokens (0 = no limit)")
      .flag("greedy", &greedy, "argmax decoding")
      .flag("no-constraints", &no_constraints, "do not mask tokens the mesh grammar forbids (and do not stop at EOS)")
      .flag("order-constraints", &order_constraints,
            "also keep the tokenizer's canonical order (first vertex of a face the smallest, faces sorted), so "
            "every output re-tokenizes to itself; off by default: samples follow the model's own distribution")
      .option("out", &out_dir, "output folder")
      .option("format", &format, "mesh files to write: obj, ply or both")
      .flag("no-previews", &no_previews, "do not write the PNG previews (sample_NNN.png and grid.png)")
      .option("tokens-out", &tokens_out, "also write all token rows, prompt included, as raw int64 [N, L] (PAD-filled)")
      .option("heads", &heads, "attention heads when the weights' metadata does not say")
      .option("bits", &bits, "tokenizer quantization bits (must match the model)")
      .option("precision", &precision,
              "fp32 | bf16 (weights and K/V stored in bfloat16: half the memory traffic; on CPUs with\n"
              "AVX512-BF16 the matmuls also round their inputs to bfloat16, as autocast does; sums in fp32)")
      .option("threads", &threads, "CPU threads (0 = all cores)")
      .option("device", &device_name, "cpu, cuda or auto");
  if (!args.parse(argc, argv)) return 0;
  if (weights.empty()) throw Error("sample: --weights is required");
  if (n <= 0 || batch <= 0) throw Error("sample: --n and --batch must be positive");
  if (format != "obj" && format != "ply" && format != "both") throw Error("sample: --format must be obj, ply or both");
  if (precision != "fp32" && precision != "bf16") throw Error("sample: --precision must be fp32 or bf16");
  if (order_constraints && no_constraints) throw Error("sample: --order-constraints needs the grammar constraints (drop --no-constraints)");
  configure_threads(threads);
  const torch::Device device = parse_device(device_name);

  TokenizerConfig tokenizer;
  tokenizer.bits = int(bits);
  IFlameModel model = load_model(weights, heads);
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
  opts.sampling.greedy = greedy;
  opts.sampling.constraints = !no_constraints;
  opts.sampling.order = order_constraints;
  opts.stop_at_eos = !no_constraints;
  opts.bf16 = precision == "bf16";
  if (!prompt_path.empty()) {
    std::vector<int64_t> seq = encode_sequence(canonicalize(load_mesh(prompt_path), tokenizer), tokenizer);
    seq.resize(seq.size() - kTokensPerFace);  // drop the EOS row: the model continues the mesh
    opts.prompt = seq;
    std::fprintf(stderr, "sample: prompt %s: %zu faces\n", prompt_path.c_str(), seq.size() / 9 - 1);
  }

  std::filesystem::create_directories(out_dir);
  nlohmann::json summary;
  summary["weights"] = weights;
  summary["samples"] = nlohmann::json::array();
  int64_t written = 0;
  std::vector<Mesh> previews;
  std::vector<std::string> captions;
  auto on_done = [&](int64_t index, const GeneratedSequence& seq) {
    const Mesh mesh = decode_tokens(seq.tokens, tokenizer);
    char name[64];
    std::snprintf(name, sizeof name, "sample_%03lld", (long long)index);
    nlohmann::json entry = {{"index", index}, {"new_tokens", seq.new_tokens}, {"ended_with_eos", seq.ended_with_eos},
                            {"faces", mesh.faces.size()}, {"vertices", mesh.vertices.size()}};
    if (mesh.faces.empty()) {
      std::fprintf(stderr, "  %s: no faces decoded (%lld tokens), no mesh written\n", name, (long long)seq.new_tokens);
    } else {
      if (format != "ply") write_obj(mesh, out_dir + "/" + name + ".obj", "generated by iflame sample, seed " + std::to_string(seed));
      if (format != "obj") write_ply(mesh, out_dir + "/" + name + ".ply");
      entry["file"] = std::string(name) + (format == "ply" ? ".ply" : ".obj");
      ++written;
      if (!no_previews) {
        render::write_png(out_dir + "/" + name + ".png", render::render_views(mesh, render::default_views(3), 320));
        previews.push_back(mesh);
        captions.push_back(std::string(name) + "\n" + std::to_string(mesh.faces.size()) + " faces");
      }
      std::fprintf(stderr, "  %s: %zu faces, %zu vertices, %lld tokens%s\n", name, mesh.faces.size(), mesh.vertices.size(),
                   (long long)seq.new_tokens, seq.ended_with_eos ? "" : " (no EOS: hit the limit)");
    }
    summary["samples"].push_back(entry);
  };

  GenerateStats stats;
  std::vector<GeneratedSequence> seqs = generate(*model, tokenizer, opts, &stats, on_done);

  if (!previews.empty()) render::write_png(out_dir + "/grid.png", render::render_grid(previews, {}, captions));
  if (!tokens_out.empty()) {
    size_t L = 0;
    for (const auto& s : seqs) L = std::max(L, s.tokens.size());
    std::vector<int64_t> flat(seqs.size() * L, tokenizer.pad());
    for (size_t i = 0; i < seqs.size(); ++i) std::copy(seqs[i].tokens.begin(), seqs[i].tokens.end(), flat.begin() + i * L);
    write_file_atomic(tokens_out, flat.data(), flat.size() * sizeof(int64_t));
  }
  const double tps = stats.seconds > 0 ? double(stats.tokens) / stats.seconds : 0;
  const RuleStats& rules = stats.rules;
  const double viol = rules.steps ? 100.0 * double(rules.argmax_violations) / double(rules.steps) : 0;
  const double mass = rules.steps ? 100.0 * rules.disallowed_mass / double(rules.steps) : 0;
  const double order_viol = rules.order_steps ? 100.0 * double(rules.order_argmax_violations) / double(rules.order_steps) : 0;
  const double order_mass = rules.order_steps ? 100.0 * rules.order_disallowed_mass / double(rules.order_steps) : 0;
  summary["tokens"] = stats.tokens;
  summary["seconds"] = stats.seconds;
  summary["tokens_per_second"] = tps;
  summary["peak_cache_bytes"] = stats.peak_cache_bytes;
  summary["precision"] = precision;
  summary["grammar"] = {{"constraints", !no_constraints},
                        {"steps", rules.steps},
                        {"unconstrained_argmax_violations", rules.argmax_violations},
                        {"mean_disallowed_probability", rules.steps ? rules.disallowed_mass / double(rules.steps) : 0}};
  summary["canonical_order"] = {
      {"constraints", order_constraints},
      {"steps", rules.order_steps},
      {"unconstrained_argmax_violations", rules.order_argmax_violations},
      {"mean_disallowed_probability", rules.order_steps ? rules.order_disallowed_mass / double(rules.order_steps) : 0}};
  write_file_atomic(out_dir + "/summary.json", summary.dump(1) + "\n");
  std::fprintf(stderr,
               "sample: %lld meshes written to %s/, %lld tokens in %.1f s (%.1f tokens/s)\n"
               "sample: the unconstrained argmax would have broken the grammar at %.2f%% of steps "
               "(mean disallowed probability %.2f%%)\n"
               "sample: and the canonical order at %.2f%% of the %lld steps whose row was in order so far "
               "(mean probability out of order %.2f%%; order constraints %s)\n",
               (long long)written, out_dir.c_str(), (long long)stats.tokens, stats.seconds, tps, viol, mass, order_viol,
               (long long)rules.order_steps, order_mass, order_constraints ? "on" : "off");
  return 0;
}

}  // namespace iflame::cli
