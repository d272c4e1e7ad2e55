// The child side of `iflame bench train` (one configuration in this process), the matmul rate
// measurement, and the memory estimate used to skip configurations that cannot fit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "bench/bench.h"

#include "kernels/threads.h"
#include "model/kernels.h"
#include "model/loss.h"
#include "model/model.h"
#include "train/optim.h"
#include "util/error.h"
#include "util/measure.h"

namespace iflame::bench {

using torch::Tensor;
using Clock = std::chrono::steady_clock;

namespace {

// Forward and backward time of `fn` (which returns the output to differentiate) in ms, the
// best of `reps` runs; `grad` is the upstream gradient (random, the output's shape).
template <typename Fn>
std::pair<double, double> time_fwd_bwd(Fn fn, int64_t reps, bool bf16) {
  double best_f = 1e300, best_b = 1e300;
  for (int64_t r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    Tensor y;
    {
      compat::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, bf16);
      y = fn();
    }
    const double f = ms_since(t0);
    Tensor g = torch::randn_like(y);
    auto t1 = Clock::now();
    y.backward(g);
    const double b = ms_since(t1);
    best_f = std::min(best_f, f);
    best_b = std::min(best_b, b);
  }
  return {best_f, best_b};
}

// Each distinct (positions, kind) of blocks, timed in isolation: the whole block, its attention
// kernel alone and its SwiGLU (with norm2) alone, forward and backward separately.
nlohmann::json profile_blocks(IFlameModel& model, const TrainSpec& spec) {
  const ModelConfig& cfg = model->config;
  const int64_t B = spec.batch, E = cfg.dim, H = cfg.heads, D = cfg.head_dim();
  auto blocks = model->named_blocks();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : block_groups(cfg, spec.tokens())) {
    Block block{nullptr};
    for (auto& [name, b] : blocks) {
      if (b->attn->kind == g.kind) {
        block = b;
        break;
      }
    }
    if (!block) continue;
    const int64_t T = g.positions;
    const RopeTable& rope = model->rope(T, torch::kCPU);
    Tensor cos = rope.cos.narrow(0, 0, T), sin = rope.sin.narrow(0, 0, T);
    const int64_t reps = 2;
    auto act_dtype = spec.bf16 ? torch::kBFloat16 : torch::kFloat;
    Tensor x = torch::randn({B, T, E}).requires_grad_();
    auto block_t = time_fwd_bwd([&] { return block->forward(x, cos, sin); }, reps, spec.bf16);
    Tensor q = torch::randn({B, H, T, D}, act_dtype).requires_grad_();
    Tensor k = torch::randn({B, H, T, D}, act_dtype).requires_grad_();
    Tensor v = torch::randn({B, H, T, D}, act_dtype).requires_grad_();
    auto kernel_t = time_fwd_bwd(
        [&] {
          return g.kind == AttnKind::Full ? kernels::causal_attention(q, k, v)
                                          : kernels::linear_attention(q, k, v, block->attn->slopes);
        },
        reps, spec.bf16);
    auto ffn_t = time_fwd_bwd([&] { return block->feed_forward(block->norm2(x)); }, reps, spec.bf16);
    const double attn_flops = g.kind == AttnKind::Full ? full_attention_flops(T, E) : linear_attention_flops(T, H, D);
    const double ffn_flops = 2.0 * 3.0 * double(E) * double(cfg.hidden()) * double(T);
    out.push_back({{"positions", T},
                   {"kind", g.kind == AttnKind::Full ? "full" : "linear"},
                   {"count", g.count},
                   {"block_fwd_ms", block_t.first},
                   {"block_bwd_ms", block_t.second},
                   {"kernel_fwd_ms", kernel_t.first},
                   {"kernel_bwd_ms", kernel_t.second},
                   {"ffn_fwd_ms", ffn_t.first},
                   {"ffn_bwd_ms", ffn_t.second},
                   {"kernel_fwd_flops", attn_flops * double(B)},
                   {"ffn_fwd_flops", ffn_flops * double(B)}});
  }
  return out;
}

}  // namespace

std::string libtorch_version() { return compat::torch_version(); }

ModelConfig TrainSpec::model() const {
  ModelConfig c = model_preset(size, arch);
  if (dim > 0) c.dim = dim;
  if (heads > 0) c.heads = heads;
  c.validate();
  return c;
}

// Random coordinate tokens (0..128) framed as a real sequence: 9 BOS, faces * 9, 9 EOS.
static Tensor make_sequence_batch(int64_t faces, int64_t batch, uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  Tensor body = torch::randint(0, 129, {batch, faces * 9}, gen, torch::kLong);
  Tensor bos = torch::full({batch, 9}, 130, torch::kLong), eos = torch::full({batch, 9}, 131, torch::kLong);
  return torch::cat({bos, body, eos}, 1);
}

std::vector<std::string> child_arguments(const TrainSpec& s) {
  std::vector<std::string> a = {"bench", "train", "--child",  "--size",    s.size,
                                "--archs",   arch_name(s.arch),      "--faces", std::to_string(s.faces),
                                "--batch",   std::to_string(s.batch), "--steps", std::to_string(s.steps),
                                "--warmup",  std::to_string(s.warmup), "--dtype", s.bf16 ? "bf16" : "fp32",
                                "--threads", std::to_string(s.threads), "--optimizer", s.optimizer,
                                "--seed",    std::to_string(s.seed)};
  if (s.dim > 0) a.insert(a.end(), {"--dim", std::to_string(s.dim)});
  if (s.heads > 0) a.insert(a.end(), {"--heads", std::to_string(s.heads)});
  if (s.idle) a.push_back("--idle");
  if (s.profile) a.push_back("--profile");
  if (s.recompute != Recompute::None) a.insert(a.end(), {"--recompute", recompute_name(s.recompute)});
  if (s.glibc_malloc) a.insert(a.end(), {"--malloc", "glibc"});
  return a;
}

double estimate_peak_bytes(const ModelConfig& cfg, const TrainSpec& spec) {
  // Calibrated on this project's CPU runs (docs/benchmarks.md): bytes kept per position per
  // block for backward, in bf16 autocast (the residual stream and norms stay fp32). Generous
  // on purpose: this only decides what is clearly out of reach.
  const double E = double(cfg.dim), hid = double(cfg.hidden());
  const double scale = spec.bf16 ? 1.0 : 1.8;
  // Measured at `small`, 800 faces (docs/benchmarks.md): 19.7 KB per position-block with full
  // attention, 24.8 KB with linear attention; the formula gives 19.4 and 25.2 KB there.
  double per_full = scale * (52.0 * E + 9.0 * hid);
  double per_linear = per_full + scale * (10.0 * double(kLinearAttentionChunk * cfg.heads) + 8.0 * E);
  double act = 0, transient = 0;
  for (const auto& g : block_groups(cfg, spec.tokens())) {
    const double per = g.kind == AttnKind::Full ? per_full : per_linear;
    if (recomputes(spec.recompute, g.kind)) {
      // Only the block's fp32 input is kept; one block's activations exist while it is re-run.
      act += double(g.positions) * double(g.count) * 4.0 * E;
      transient = std::max(transient, double(g.positions) * per);
    } else {
      act += double(g.positions) * double(g.count) * per;
    }
  }
  // With freed memory kept in the heap (keep_freed_memory), a block re-run in the backward
  // often gets fresh heap for its activations before earlier ones' space can be reused:
  // measured at `ref`, 4000 faces, recompute linear: 8633-9106 MB against 7766 estimated
  // without this term.
  act += transient * (spec.glibc_malloc ? 1.0 : 2.0);
  act += double(spec.tokens()) * double(cfg.vocab) * 16.0;  // logits, log-softmax and their grads
  act *= double(spec.batch);
  const double params = double(block_matmul_weights(cfg) + 8 * cfg.dim) * double(cfg.num_layers()) +
                        2.0 * double(cfg.dim * cfg.vocab);
  const double state = params * 4.0 * (spec.optimizer != "none" ? 4.0 : 2.0);  // weights, grads (+ two moments)
  return 250e6 + state + act;  // + the LibTorch runtime
}

nlohmann::json run_train(const TrainSpec& spec) {
  set_compute_threads(spec.threads);
  const ModelConfig cfg = spec.model();
  torch::manual_seed(spec.seed);
  IFlameModel model(cfg);
  model->train();
  model->recompute = spec.recompute;
  nlohmann::json j = {{"arch", arch_name(spec.arch)},
                      {"size", spec.size},
                      {"dim", cfg.dim},
                      {"heads", cfg.heads},
                      {"params", model->num_parameters()},
                      {"faces", spec.faces},
                      {"tokens", spec.tokens()},
                      {"batch", spec.batch},
                      {"dtype", spec.bf16 ? "bf16" : "fp32"},
                      {"threads", at::get_num_threads()},
                      {"optimizer", spec.optimizer},
                      {"recompute", recompute_name(spec.recompute)},
                      {"rss_model_kb", current_rss_kb()}};
  if (spec.idle) {
    j["idle"] = true;
    j["peak_rss_kb"] = peak_rss_kb();
    return j;
  }
  const FlopCount flops = train_flops(cfg, spec.tokens(), spec.batch);
  j["flops_per_step"] = flops.train;
  j["flops_forward"] = flops.forward();
  j["estimate_peak_bytes"] = estimate_peak_bytes(cfg, spec);

  Tensor tokens = make_sequence_batch(spec.faces, spec.batch, spec.seed);
  std::unique_ptr<torch::optim::AdamW> adamw;
  if (spec.optimizer == "adamw") {
    adamw = std::make_unique<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(1e-4));
  }
  std::unique_ptr<Optimizer> muon;  // as iflame train builds it
  std::vector<Tensor> params;
  if (spec.optimizer == "muon") {
    std::vector<std::pair<std::string, Tensor>> named;
    for (auto& item : model->named_parameters()) {
      named.emplace_back(item.key(), item.value());
      params.push_back(item.value());
    }
    OptimizerOptions options;
    options.ns_bf16 = spec.bf16;  // as train.precision sets it
    muon = std::make_unique<Optimizer>(named, options);
  }

  std::vector<double> step_ms, fwd_ms, loss_ms, bwd_ms, opt_ms;
  double loss_value = 0;
  CpuUsage cpu0;
  Clock::time_point wall0;
  for (int64_t s = 0; s < spec.warmup + spec.steps; ++s) {
    if (s == spec.warmup) {
      cpu0 = cpu_usage();
      wall0 = Clock::now();
    }
    auto t0 = Clock::now();
    Tensor logits;
    {
      compat::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, spec.bf16);
      logits = model->forward(tokens);
    }
    auto t1 = Clock::now();
    Tensor loss = sequence_loss(logits, tokens, cfg.pad_token, /*metrics=*/false).loss;
    auto t2 = Clock::now();
    loss.backward();
    auto t3 = Clock::now();
    if (adamw) {
      adamw->step();
      adamw->zero_grad();
    } else if (muon) {
      clip_grad_norm(params, 1.0);
      muon->step(1e-3);
      muon->zero_grad();
    } else {
      model->zero_grad();
    }
    auto t4 = Clock::now();
    loss_value = loss.item<double>();
    logits = Tensor();
    if (s < spec.warmup) continue;
    auto ms = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    step_ms.push_back(ms(t0, t4));
    fwd_ms.push_back(ms(t0, t1));
    loss_ms.push_back(ms(t1, t2));
    bwd_ms.push_back(ms(t2, t3));
    opt_ms.push_back(ms(t3, t4));
  }
  const double wall = std::chrono::duration<double>(Clock::now() - wall0).count();
  const double threads = double(at::get_num_threads());
  const CpuUsage cpu1 = cpu_usage();
  const double cpu = (cpu1.user - cpu0.user) + (cpu1.sys - cpu0.sys), n = double(std::max<int64_t>(spec.steps, 1));
  j["cpu_utilization"] = cpu / (wall * threads);
  j["cpu_ms"] = 1000.0 * cpu / n;                             // CPU time per step, all threads
  j["sys_ms"] = 1000.0 * (cpu1.sys - cpu0.sys) / n;           // of which in the kernel (page faults)
  j["page_faults"] = (cpu1.minor_faults - cpu0.minor_faults) / n;         // minor faults per step
  j["step_ms"] = step_ms;
  j["mean_ms"] = mean_of(step_ms);
  j["std_ms"] = std_of(step_ms);
  j["forward_ms"] = mean_of(fwd_ms);
  j["loss_ms"] = mean_of(loss_ms);
  j["backward_ms"] = mean_of(bwd_ms);
  j["optimizer_ms"] = mean_of(opt_ms);
  j["loss"] = loss_value;
  j["peak_rss_kb"] = peak_rss_kb();  // before profiling, which runs blocks in isolation
  if (spec.profile) j["profile"] = profile_blocks(model, spec);
  return j;
}

}  // namespace iflame::bench
