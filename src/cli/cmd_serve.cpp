// iflame serve: a mesh-generation server with continuous batching (src/serve/, src/generate/batcher.h).
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "kernels/threads.h"
#include "model/weights.h"
#include "serve/server.h"
#include "util/args.h"
#include "util/default_model.h"
#include "util/error.h"
#include "util/fs.h"
#include "view/gallery.h"

namespace iflame::cli {
namespace {

constexpr int64_t kMaxSlots = 1024, kMaxQueue = 100000, kMaxFacesCap = 100000;

// The web page: web/src/serve.html beside the viewer bundle (web/dist/iflame-viewer.js).
void load_page(const std::string& assets_dir, serve::ServerOptions& options) {
  const std::string script = view::find_viewer_script(assets_dir);
  options.viewer_script = read_file_text(script);
  const std::filesystem::path web = std::filesystem::path(script).parent_path().parent_path();
  options.page_html = read_file_text((web / "src" / "serve.html").string());
}

}  // namespace

int run_serve(int argc, char** argv) {
  std::string weights, host = "127.0.0.1", precision = "fp32", assets;
  int64_t port = 8080, max_batch = 16, max_queue = 64, max_faces = 800, threads = 0, heads = 16, bits = 7,
          max_body_kib = 1024;
  double timeout_s = 300;
  ArgParser args("serve",
                 "Serves mesh generation over HTTP from one loaded model. Requests join the running batch\n"
                 "as slots free up (continuous batching), and faces stream back as they are generated.\n"
                 "  GET  /             a web page: generate meshes and watch them grow\n"
                 "  GET  /health       status, slots, queue and the sampling defaults\n"
                 + wrap_words("  POST /v1/generate  JSON {", serve::known_fields() + "} (prompt: OBJ text);", 100,
                              std::string(21, ' ')) +
                     "\n"
                     "                     answers {obj, faces, tokens, finished, timing}, or with \"stream\": true\n"
                 "                     server-sent events, one per face.\n"
                 "A request with seed S gives the mesh of `iflame sample --seed S` (its first sample), at any load.\n"
                 "Fields left out take the model's sampling defaults (its sample.* metadata). Without --weights\n"
                 "the shipped model is used (see `iflame sample --help`).");
  args.option("weights", &weights, "model weights (.safetensors; default: the shipped model)")
      .option("host", &host, "address to listen on (127.0.0.1: this machine only)")
      .option("port", &port, "TCP port (0: any free port, printed at start)")
      .option("max-batch", &max_batch, "sequence slots decoded together")
      .option("max-queue", &max_queue, "requests waiting for a slot; more get 503 with Retry-After")
      .option("max-faces", &max_faces, "the most faces a request may ask for, its prompt included")
      .option("timeout", &timeout_s, "seconds a request may run before it ends as cancelled")
      .option("max-body-kib", &max_body_kib, "largest request body in KiB (larger: 413)")
      .option("precision", &precision, "fp32 | bf16 (weights and K/V in bfloat16)")
      .option("threads", &threads, "CPU threads for decoding (0 = all cores)")
      .option("heads", &heads, "attention heads when the weights' metadata does not say")
      .option("bits", &bits, "tokenizer quantization bits (must match the model)")
      .option("assets", &assets, "the web/ folder with the page and the viewer bundle (default: found like `iflame view`)");
  if (!args.parse(argc, argv)) return 0;
  if (port < 0 || port > 65535) throw Error("serve: --port must be between 0 and 65535");
  if (max_batch < 1 || max_batch > kMaxSlots) throw Error("serve: --max-batch must be between 1 and " + std::to_string(kMaxSlots));
  if (max_queue < 0 || max_queue > kMaxQueue) throw Error("serve: --max-queue must be between 0 and " + std::to_string(kMaxQueue));
  if (max_faces < 1 || max_faces > kMaxFacesCap) throw Error("serve: --max-faces must be between 1 and " + std::to_string(kMaxFacesCap));
  if (!(timeout_s > 0 && timeout_s <= 86400)) throw Error("serve: --timeout must be above 0 and at most 86400 seconds");
  if (max_body_kib < 1 || max_body_kib > 1024 * 1024) throw Error("serve: --max-body-kib must be between 1 and 1048576");
  if (threads < 0) throw Error("serve: --threads must be 0 (all cores) or positive");
  if (heads <= 0) throw Error("serve: --heads must be positive");
  if (bits < 2 || bits > 15) throw Error("serve: --bits must be between 2 and 15");
  if (precision != "fp32" && precision != "bf16") throw Error("serve: --precision must be fp32 or bf16");
  if (weights.empty()) weights = default_model_path();

  // SIGINT and SIGTERM go to one waiting thread (blocked here, before any thread starts).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  set_compute_threads(threads);
  TokenizerConfig tokenizer;
  tokenizer.bits = int(bits);
  std::map<std::string, std::string> metadata;
  IFlameModel model = load_model(weights, heads, &metadata);
  model->eval();
  if (model->config.vocab != tokenizer.vocab_size()) {
    throw Error(weights, "model vocabulary " + std::to_string(model->config.vocab) + " does not fit --bits " + std::to_string(bits));
  }

  serve::ServerOptions options;
  options.host = host;
  options.port = int(port);
  options.max_body_bytes = size_t(max_body_kib) * 1024;
  options.request_timeout_s = timeout_s;
  options.model_name = std::filesystem::path(weights).filename().string();
  SamplingOptions& d = options.defaults.sampling;
  int64_t default_faces = std::min<int64_t>(800, max_faces);
  apply_sampling_defaults(metadata, weights, args, {{"temperature", &d.temperature}, {"top-p", &d.top_p}, {"min-p", &d.min_p}},
                          {{"top-k", &d.top_k}, {"max-faces", &default_faces}}, d);
  settle_sampling_switches(d, {});  // the server's defaults: none named by a request yet
  options.defaults.max_faces = std::clamp<int64_t>(default_faces, 1, max_faces);
  check_sampling_options(d, model->config.vocab);
  try {
    load_page(assets, options);
  } catch (const Error& e) {
    std::fprintf(stderr, "serve: no web page (%s)\n", e.what());
  }

  BatcherOptions batch_options;
  batch_options.max_batch = max_batch;
  batch_options.max_queue = max_queue;
  batch_options.max_faces = max_faces;
  batch_options.bf16 = precision == "bf16";
  Batcher batcher(model, tokenizer, batch_options);
  serve::Server server(batcher, tokenizer, options);
  const int bound = server.bind();
  std::printf("serve: %s on http://%s:%d/ (%lld slots, queue %lld)\n", options.model_name.c_str(), host.c_str(), bound,
              (long long)max_batch, (long long)max_queue);
  std::fflush(stdout);
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  });
  server.run();
  // Stopped by a signal, or the listener failed: wake the signal thread either way.
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace iflame::cli
