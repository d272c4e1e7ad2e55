#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "model/flops.h"
#include "model/loss.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/distributed.h"
#include "train/evaluate.h"
#include "train/matmul_rate.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/progress.h"

namespace iflame {

using torch::Tensor;

namespace {

struct EvalResult {
  double loss = 0, token_accuracy = 0, face_accuracy = 0;
  int64_t targets = 0;
};

// Validation: the teacher-forced metrics of train/evaluate.h over the first eval.batches batches.
EvalResult evaluate(IFlameModelImpl& model, const DatasetReader& data, const std::vector<size_t>& val,
                    const TrainConfig& cfg, bool bf16) {
  TeacherForcedOptions options;
  options.batch_tokens = cfg.data_batch_tokens;
  options.batch_size = cfg.data_batch_size;
  options.max_faces = cfg.data_max_faces;
  options.max_batches = cfg.eval_batches;
  options.bf16 = bf16;
  const TeacherForcedResult t = evaluate_teacher_forced(model, data, val, options);
  return {t.loss, t.token_accuracy, t.face_accuracy, t.targets};
}

// The bf16 matmul rate of this worker in GFLOP/s. CPU: 2048^3 as `iflame bench matmul`,
// measured once per thread count (~0.5 s). CUDA: 8192^3 on the device, best of 5 (`.item()`
// waits for the kernels, in any LibTorch version).
double measured_peak_gflops(const torch::Device& device) {
  if (device.is_cuda()) {
    torch::NoGradGuard no_grad;
    const int64_t n = 8192;
    const auto opts = torch::dtype(torch::kBFloat16).device(device);
    Tensor a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
    (void)torch::matmul(a, b).sum().item<float>();  // warm-up: cuBLAS handles, clocks
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      (void)torch::matmul(a, b).sum().item<float>();
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, 2.0 * double(n) * double(n) * double(n) / s * 1e-9);
    }
    return best;
  }
  static std::map<int, double> cache;
  const int threads = at::get_num_threads();
  auto it = cache.find(threads);
  if (it != cache.end()) return it->second;
  return cache[threads] = measure_matmul("peak", 1, 2048, 2048, 2048, /*bf16=*/true, /*reps=*/2).best_gflops;
}

}  // namespace

torch::Device training_device(const std::string& name, int64_t local_rank) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) != 0) throw Error("train.device must be cpu, cuda or cuda:N, got '" + name + "'");
  if (!torch::cuda::is_available()) {
    throw Error("train.device = " + name + ": CUDA is not available (a CPU-only LibTorch, or no GPU on this machine)");
  }
  const int64_t index = name == "cuda" ? local_rank : std::stoll(name.substr(5));
  const int64_t count = int64_t(torch::cuda::device_count());
  if (index < 0 || index >= count) {
    throw Error("train.device = " + name + ": GPU " + std::to_string(index) + " does not exist (" +
                std::to_string(count) + " visible)");
  }
  return torch::Device(torch::kCUDA, c10::DeviceIndex(index));
}

TrainResult train(const TrainConfig& cfg, RunStart start, Distributed* dist) {
  Distributed single{DistOptions{}};  // world size 1: its collectives do nothing
  Distributed& group = dist ? *dist : single;
  const bool main = group.is_main();
  const int64_t world = group.world_size();
  if (cfg.data_train.empty()) throw Error("train: data.train is not set (a dataset from `iflame prepare`)");
  DatasetReader data(cfg.data_train);
  if (data.num_train() == 0) throw Error(cfg.data_train, "the dataset has no training meshes");
  const TokenizerConfig tk = data.tokenizer_config();
  ModelConfig mc = cfg.model_config();
  mc.vocab = tk.vocab_size();
  mc.pad_token = tk.pad();

  const torch::Device device = training_device(cfg.train_device, group.local_rank());
  // Small tensors for collectives live where the backend wants them (NCCL: on the GPU).
  auto comm = [&](Tensor t) { return t.to(device); };

  torch::manual_seed(cfg.train_seed);
  IFlameModel model(mc);
  model->to(device);  // before the optimizer allocates its state next to the parameters
  model->train();
  model->recompute = recompute_from_name(cfg.train_recompute);
  std::vector<std::pair<std::string, Tensor>> named;
  std::vector<Tensor> params;
  for (auto& item : model->named_parameters()) {
    named.emplace_back(item.key(), item.value());
    params.push_back(item.value());
  }
  Optimizer optimizer(named, cfg.optimizer_options());
  const bool bf16 = cfg.train_precision == "bf16";

  RunFolder run;
  if (main) {
    run = claim_run_folder(cfg.out_dir, start);
    if (!run.moved_to.empty()) std::fprintf(stderr, "train: --overwrite: moved the old run to %s\n", run.moved_to.c_str());
  }
  TrainState state;
  state.config_text = cfg.to_text();
  if (start == RunStart::kResume && main) {
    const std::string ckpt = latest_checkpoint(run);
    if (!ckpt.empty()) {
      state = load_checkpoint(ckpt, *model, optimizer);
      const std::vector<std::string> diff = config_differences(state.config_text, cfg.to_text());
      if (!diff.empty()) {
        std::string text;
        for (const std::string& d : diff) text += "\n  " + d;
        throw Error(cfg.out_dir, "--resume with a config that differs from the run's (" + ckpt + "):" + text +
                                     "\nOnly the keys marked 'resumable' in `iflame train --help-config` may change.");
      }
      state.config_text = cfg.to_text();
      std::fprintf(stderr, "train: resumed from %s (step %lld)\n", ckpt.c_str(), (long long)state.step);
    } else {
      std::fprintf(stderr, "train: --resume: no checkpoint in %s, starting fresh\n", cfg.out_dir.c_str());
    }
  }
  if (world > 1) {
    // Every rank starts from rank 0's weights, optimizer state and data position.
    std::vector<Tensor> tensors = params;
    for (const auto& [name, t] : optimizer.state()) tensors.push_back(t);
    group.broadcast_coalesced(tensors);
    Tensor pos = comm(torch::tensor({state.step, state.data.epoch, state.data.batch, optimizer.steps()}, torch::kLong));
    group.broadcast(pos);
    state.step = pos[0].item<int64_t>();
    state.data.epoch = pos[1].item<int64_t>();
    state.data.batch = pos[2].item<int64_t>();
    if (!main) optimizer.load_state(optimizer.state(), pos[3].item<int64_t>());
  }
  // MFU denominator: the bf16 matmul rate of every worker together.
  const bool peak_given = cfg.train_peak_gflops > 0;
  Tensor peak_t = comm(torch::tensor({peak_given ? cfg.train_peak_gflops : measured_peak_gflops(device)}, torch::kDouble));
  group.all_reduce_sum(peak_t);
  const double peak_gflops = peak_t.item<double>();
  if (main) {
    std::fprintf(stderr, "train: %s\n%s", arch_name(mc.arch), mc.describe().c_str());
    std::fprintf(stderr, "parameters    = %.2fM\ndataset       = %s (%zu train, %zu val)\ndevice        = %s\n",
                 double(model->num_parameters()) / 1e6, cfg.data_train.c_str(), data.num_train(), data.num_val(),
                 device.str().c_str());
    if (world > 1) {
      std::fprintf(stderr, "workers       = %lld (%s), %d threads each\n", (long long)world, group.backend(),
                   at::get_num_threads());
    }
    std::fprintf(stderr, "peak          = %.1f GFLOP/s (bf16 matmul, %s%s)\n", peak_gflops,
                 peak_given ? "train.peak_gflops" : "measured", world > 1 ? ", all workers" : "");
  }

  const auto train_idx = data.indices(Split::kTrain), val_idx = data.indices(Split::kVal);
  BatchStream stream(data, train_idx, {cfg.data_batch_tokens, cfg.data_batch_size, cfg.data_max_faces},
                     cfg.data_augment, cfg.train_seed, state.data, group.rank(), world);
  const std::string log_path = cfg.out_dir + "/log.jsonl";
  std::ofstream log;
  if (main) {
    drop_partial_last_line(log_path);
    log.open(log_path, std::ios::app);
  }
  auto log_line = [&](const nlohmann::json& j) {
    if (!main) return;
    log << j.dump() << "\n";
    log.flush();
    if (!log) throw Error(log_path, std::string("cannot append to the log: ") + std::strerror(errno));
  };
  if (state.step == 0) {
    log_line({{"event", "start"}, {"config", state.config_text}, {"params", model->num_parameters()},
              {"workers", world}, {"peak_gflops", peak_gflops}});
  } else {
    log_line({{"event", "resume"}, {"step", state.step}, {"workers", world}});
  }

  auto targets_of = [&](const Tensor& tokens) -> int64_t {
    if (tokens.numel() == 0) return 0;  // this rank's share of a small batch was empty
    return tokens.narrow(1, 9, tokens.size(1) - 9).ne(tk.pad()).sum().item<int64_t>();
  };
  const int64_t warmup = int64_t(cfg.optim_warmup * double(cfg.train_steps));
  TrainResult result;
  int64_t bad_in_a_row = 0;
  Progress progress("train", size_t(cfg.train_steps - state.step), stderr, main ? -1 : 0);
  while (state.step < cfg.train_steps) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Tensor> micro;
    int64_t total_targets = 0;
    for (int64_t a = 0; a < cfg.optim_accum; ++a) {
      micro.push_back(stream.next().to(device));
      total_targets += targets_of(micro.back());
    }
    if (world > 1) {  // the weights below are shares of the whole step's targets
      Tensor t = comm(torch::tensor({total_targets}, torch::kLong));
      group.all_reduce_sum(t);
      total_targets = t.item<int64_t>();
    }
    optimizer.zero_grad();
    double loss_sum = 0, flops = 0;
    for (const Tensor& tokens : micro) {
      if (tokens.numel() == 0) continue;
      LossStats s;
      {
        compat::AutocastGuard autocast(device.type(), torch::kBFloat16, bf16);
        s = sequence_loss(model->forward(tokens), tokens, tk.pad(), /*metrics=*/false);
      }
      const int64_t n = targets_of(tokens);
      const double weight = double(n) / double(std::max<int64_t>(total_targets, 1));
      (s.loss * weight).backward();
      loss_sum += s.loss.item<double>() * weight;
      flops += train_flops(mc, tokens.size(1), tokens.size(0)).train;
    }
    if (world > 1) {
      group.all_reduce_gradients(params);
      Tensor t = comm(torch::tensor({loss_sum, flops}, torch::kDouble));
      group.all_reduce_sum(t);
      loss_sum = t[0].item<double>();
      flops = t[1].item<double>();
    }
    const double lr = scheduled_lr(state.step, cfg.train_steps, warmup, cfg.optim_lr);
    const double norm = clip_grad_norm(params, cfg.optim_grad_clip);
    const bool finite = std::isfinite(loss_sum) && std::isfinite(norm);
    if (finite) {
      optimizer.step(lr);
      bad_in_a_row = 0;
    } else {
      ++bad_in_a_row;
      log_line({{"step", state.step + 1}, {"skipped", "non-finite loss or gradient"}, {"loss", std::to_string(loss_sum)}});
      if (main) {
        std::fprintf(stderr, "train: step %lld skipped: non-finite loss or gradients (%lld in a row)\n",
                     (long long)(state.step + 1), (long long)bad_in_a_row);
      }
      if (bad_in_a_row >= cfg.train_max_bad_steps) {
        throw Error("train: " + std::to_string(bad_in_a_row) + " non-finite steps in a row; stopping. Lower optim.lr " +
                    "or use train.precision = fp32");
      }
    }
    ++state.step;
    state.data = stream.position();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double tps = double(total_targets) / (ms / 1000.0);
    const double gflops = flops / (ms / 1000.0) * 1e-9;
    const double mfu = peak_gflops > 0 ? gflops / peak_gflops : 0;
    if (finite) {
      result.final_loss = loss_sum;
      log_line({{"step", state.step}, {"loss", loss_sum}, {"lr", lr}, {"grad_norm", norm}, {"ms", ms},
                {"tokens_per_s", tps}, {"gflops", gflops}, {"mfu", mfu}, {"epoch", state.data.epoch}});
    }
    if (!main) continue;  // rank 0 alone reports, validates and checkpoints
    progress.add(1);
    if (cfg.log_every > 0 && (state.step % cfg.log_every == 0 || state.step == cfg.train_steps)) {
      progress.finish();
      std::fprintf(stderr,
                   "step %6lld/%lld | loss %.4f | lr %.2e | norm %.3f | %7.0f ms | %7.0f tok/s | MFU %4.1f%% | epoch %lld\n",
                   (long long)state.step, (long long)cfg.train_steps, loss_sum, lr, norm, ms, tps, 100 * mfu,
                   (long long)state.data.epoch);
    }
    const bool last = state.step == cfg.train_steps;
    if ((cfg.eval_every > 0 && state.step % cfg.eval_every == 0) || last) {
      EvalResult ev = evaluate(*model, data, val_idx, cfg, bf16);
      if (ev.targets > 0) {
        result.val_loss = ev.loss;
        result.val_token_accuracy = ev.token_accuracy;
        result.val_face_accuracy = ev.face_accuracy;
        log_line({{"step", state.step}, {"val_loss", ev.loss}, {"val_token_accuracy", ev.token_accuracy},
                  {"val_face_accuracy", ev.face_accuracy}});
        progress.finish();
        std::fprintf(stderr, "val  %6lld | loss %.4f | token acc %.2f%% | face acc %.2f%%\n", (long long)state.step,
                     ev.loss, 100 * ev.token_accuracy, 100 * ev.face_accuracy);
        if (ev.loss < state.best_val_loss) {
          state.best_val_loss = ev.loss;
          save_best(cfg.out_dir, *model, state);
          result.best_weights = cfg.out_dir + "/best/model.safetensors";
        }
      }
    }
    if ((cfg.out_save_every > 0 && state.step % cfg.out_save_every == 0) || last) {
      save_checkpoint(run, *model, optimizer, state, cfg.out_keep_last, cfg.out_keep_every);
    }
  }
  progress.finish();
  result.steps = state.step;
  if (main && result.best_weights.empty() && std::filesystem::exists(cfg.out_dir + "/best/model.safetensors")) {
    result.best_weights = cfg.out_dir + "/best/model.safetensors";
  }
  return result;
}

}  // namespace iflame
