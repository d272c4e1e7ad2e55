// iflame logits: raw logits for raw token files, parallel or cached (the parity tool).
#include <cstdio>
#include <cstring>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "generate/decoder.h"
#include "kernels/threads.h"
#include "model/weights.h"
#include "util/args.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame::cli {

int run_logits(int argc, char** argv) {
  std::string weights, tokens_path, out_path, device_name = "cpu";
  int64_t batch = 1, heads = 16, threads = 0, prompt = 9;
  bool cached = false;
  ArgParser args("logits",
                 "Runs the model over token sequences and writes the logits.\n"
                 "Tokens: raw little-endian int64 [B, L]; output: raw float32 [B, L, V]. Position p of the\n"
                 "output is the prediction after reading tokens 0..p. Without --cached, the parallel\n"
                 "forward; with --cached, the cached decoder (prefill of --prompt tokens, then one token at\n"
                 "a time, teacher forced).");
  args.option("weights", &weights, "model weights (.safetensors)")
      .option("tokens", &tokens_path, "token file, int64 [B, L]")
      .option("batch", &batch, "B, the number of sequences in the token file")
      .flag("cached", &cached, "use the cached decoder instead of the parallel forward")
      .option("prompt", &prompt, "with --cached: tokens prefilled at once (a multiple of 9)")
      .option("out", &out_path, "output file, float32 [B, L, V]")
      .option("heads", &heads, "attention heads when the weights' metadata does not say")
      .option("threads", &threads, "CPU threads (0 = all cores)")
      .option("device", &device_name, "cpu, cuda or auto");
  if (!args.parse(argc, argv)) return 0;
  if (weights.empty() || tokens_path.empty() || out_path.empty()) throw Error("logits: --weights, --tokens and --out are required");
  set_compute_threads(threads);
  const torch::Device device = parse_device(device_name);

  const auto bytes = read_file_bytes(tokens_path);
  if (batch <= 0 || bytes.size() % (sizeof(int64_t) * size_t(batch)) != 0 || bytes.empty()) {
    throw Error(tokens_path, std::to_string(bytes.size()) + " bytes is not a whole number of int64 rows for --batch " +
                                 std::to_string(batch));
  }
  const int64_t L = int64_t(bytes.size() / sizeof(int64_t)) / batch;
  torch::Tensor tokens = torch::empty({batch, L}, torch::kLong);
  std::memcpy(tokens.data_ptr(), bytes.data(), bytes.size());

  IFlameModel model = load_model(weights, heads);
  model->eval();
  model->to(device);
  if (tokens.min().item<int64_t>() < 0 || tokens.max().item<int64_t>() >= model->config.vocab) {
    throw Error(tokens_path, "token outside the vocabulary [0, " + std::to_string(model->config.vocab) + ")");
  }
  tokens = tokens.to(device);
  torch::NoGradGuard no_grad;
  torch::Tensor logits = cached ? cached_logits(*model, tokens, prompt) : model->forward(tokens);
  logits = logits.to(torch::kCPU, torch::kFloat).contiguous();
  write_file_atomic(out_path, logits.data_ptr(), size_t(logits.numel()) * sizeof(float));
  std::fprintf(stderr, "logits: wrote [%lld, %lld, %lld] float32 to %s (%s)\n", (long long)batch, (long long)L,
               (long long)logits.size(2), out_path.c_str(), cached ? "cached decoder" : "parallel forward");
  return 0;
}

}  // namespace iflame::cli
