#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
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
  options.drop_repeated_faces = cfg.data_drop_repeated_faces;
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

namespace {

// What one optimizer step did.
struct StepStats {
  double loss = 0, lr = 0, grad_norm = 0, ms = 0, flops = 0;
  double unlikelihood = 0;  // the unlikelihood term per target (train.unlikelihood), unweighted
  int64_t targets = 0;
  bool finite = true;
};

// One training run, cut into its parts: the constructor sets everything up (data, model,
// optimizer, run folder, resume, the other ranks, the MFU denominator, the log); step() is one
// optimizer step; report() logs and prints it; validate_and_checkpoint() does what is due after it.
class Trainer {
 public:
  Trainer(const TrainConfig& cfg, RunStart start, Distributed& group);
  bool done() const { return state_.step >= cfg_.train_steps; }
  StepStats step();
  void report(const StepStats& s);
  void validate_and_checkpoint();
  TrainResult finish();

 private:
  bool resume();
  void start_from_init();
  void sync_ranks();
  void print_banner() const;
  void log_line(const nlohmann::json& j);
  int64_t targets_of(const Tensor& tokens) const;
  // Small tensors for collectives live where the backend wants them (NCCL: on the GPU).
  Tensor comm(Tensor t) const { return t.to(device_); }

  const TrainConfig& cfg_;
  Distributed& group_;
  const bool main_;
  const int64_t world_;
  DatasetReader data_;
  TokenizerConfig tk_;
  ModelConfig mc_;
  torch::Device device_;
  IFlameModel model_{nullptr};
  std::vector<Tensor> params_;
  std::unique_ptr<Optimizer> optimizer_;
  bool bf16_;
  RunFolder run_;
  TrainState state_;
  double peak_gflops_ = 0;
  bool peak_given_ = false;
  std::vector<size_t> val_idx_;
  std::unique_ptr<BatchStream> stream_;
  std::string log_path_;
  std::ofstream log_;
  int64_t warmup_ = 0, bad_in_a_row_ = 0;
  TrainResult result_;
  std::unique_ptr<Progress> progress_;
};

const std::string& training_data_path(const TrainConfig& cfg) {
  if (cfg.data_train.empty()) throw Error("train: data.train is not set (a dataset from `iflame prepare`)");
  return cfg.data_train;
}

Trainer::Trainer(const TrainConfig& cfg, RunStart start, Distributed& group)
    : cfg_(cfg),
      group_(group),
      main_(group.is_main()),
      world_(group.world_size()),
      data_(training_data_path(cfg)),
      tk_(data_.tokenizer_config()),
      mc_(cfg.model_config()),
      device_(training_device(cfg.train_device, group.local_rank())),
      bf16_(cfg.train_precision == "bf16") {
  if (data_.num_train() == 0) throw Error(cfg.data_train, "the dataset has no training meshes");
  mc_.vocab = tk_.vocab_size();
  mc_.pad_token = tk_.pad();
  torch::manual_seed(cfg.train_seed);
  model_ = IFlameModel(mc_);
  model_->to(device_);  // before the optimizer allocates its state next to the parameters
  model_->train();
  model_->recompute = recompute_from_name(cfg.train_recompute);
  std::vector<std::pair<std::string, Tensor>> named;
  for (auto& item : model_->named_parameters()) {
    named.emplace_back(item.key(), item.value());
    params_.push_back(item.value());
  }
  optimizer_ = std::make_unique<Optimizer>(named, cfg.optimizer_options());

  // A new run takes its train.init weights before it claims the folder, so that a file that
  // does not fit leaves no trace; --resume only when the folder has no checkpoint yet.
  const bool init = main_ && !cfg.train_init.empty();
  if (init && start != RunStart::kResume) start_from_init();
  if (main_) {
    run_ = claim_run_folder(cfg.out_dir, start);
    if (!run_.moved_to.empty()) std::fprintf(stderr, "train: --overwrite: moved the old run to %s\n", run_.moved_to.c_str());
  }
  state_.config_text = cfg.to_text();
  const bool resumed = start == RunStart::kResume && main_ && resume();
  if (init && start == RunStart::kResume && !resumed) start_from_init();
  if (world_ > 1) sync_ranks();
  // MFU denominator: the bf16 matmul rate of every worker together.
  peak_given_ = cfg.train_peak_gflops > 0;
  Tensor peak = comm(torch::tensor({peak_given_ ? cfg.train_peak_gflops : measured_peak_gflops(device_)}, torch::kDouble));
  group_.all_reduce_sum(peak);
  peak_gflops_ = peak.item<double>();
  if (main_) print_banner();

  const auto train_idx = data_.indices(Split::kTrain);
  val_idx_ = data_.indices(Split::kVal);
  stream_ = std::make_unique<BatchStream>(data_, train_idx,
                                          BatchPlanOptions{cfg.data_batch_tokens, cfg.data_batch_size, cfg.data_max_faces,
                                                           cfg.data_drop_repeated_faces,
                                                           RowNoise{cfg.data_repeat_noise, cfg.data_flat_noise, cfg.data_flat_fan},
                                                           cfg.train_unlikelihood > 0},
                                          cfg.data_augment, cfg.train_seed, state_.data, group_.rank(), world_);
  log_path_ = cfg.out_dir + "/log.jsonl";
  if (main_) {
    drop_partial_last_line(log_path_);
    log_.open(log_path_, std::ios::app);
  }
  if (!resumed) {
    log_line({{"event", "start"}, {"config", state_.config_text}, {"params", model_->num_parameters()},
              {"workers", world_}, {"peak_gflops", peak_gflops_}, {"step", state_.step}});
  } else {
    log_line({{"event", "resume"}, {"step", state_.step}, {"workers", world_}});
  }
  warmup_ = int64_t(cfg.optim_warmup * double(cfg.train_steps));
  progress_ = std::make_unique<Progress>("train", size_t(cfg.train_steps - state_.step), stderr, main_ ? -1 : 0);
}

// Rank 0: continue from the run's newest complete checkpoint, refusing a changed config.
// False when the folder has no checkpoint yet (the run starts as a new one).
bool Trainer::resume() {
  const std::string ckpt = latest_checkpoint(run_);
  if (ckpt.empty()) {
    std::fprintf(stderr, "train: --resume: no checkpoint in %s, starting fresh\n", cfg_.out_dir.c_str());
    return false;
  }
  state_ = load_checkpoint(ckpt, *model_, *optimizer_);
  const std::vector<std::string> diff = config_differences(state_.config_text, cfg_.to_text());
  if (!diff.empty()) {
    std::string text;
    for (const std::string& d : diff) text += "\n  " + d;
    throw Error(cfg_.out_dir, "--resume with a config that differs from the run's (" + ckpt + "):" + text +
                                  "\nOnly the keys marked 'resumable' in `iflame train --help-config` may change.");
  }
  // Another dataset file or other rows: the best validation loss so far was measured on other
  // data, so best/ starts again from the next evaluation.
  for (const std::string& d : config_differences(state_.config_text, cfg_.to_text(), /*with_resumable=*/true)) {
    if (d.rfind("data.", 0) != 0) continue;
    std::fprintf(stderr, "train: the data changed (%s): best/ is replaced at the next validation\n", d.c_str());
    state_.best_val_loss = 1e30;
  }
  state_.config_text = cfg_.to_text();
  std::fprintf(stderr, "train: resumed from %s (step %lld)\n", ckpt.c_str(), (long long)state_.step);
  return true;
}

// Rank 0, a new run with train.init: the weights of that file, at step train.init_step of the
// schedule; the optimizer state and the data order start empty.
void Trainer::start_from_init() {
  const std::string& path = cfg_.train_init;
  if (cfg_.train_init_step >= cfg_.train_steps) {
    throw Error("config: train.init_step (" + std::to_string(cfg_.train_init_step) + ") must be below train.steps (" +
                std::to_string(cfg_.train_steps) + ")");
  }
  const SafetensorsFile file = read_safetensors(path);
  // load_weights checks every shape; the heads, which no shape shows, come from the metadata.
  // The whole inferred config is compared, so that the error names what differs.
  ModelConfig inferred;
  try {
    inferred = infer_config(file, mc_.heads);
  } catch (const Error& e) {
    throw Error(path, e.what());
  }
  auto have = inferred.to_metadata(), want = mc_.to_metadata();
  if (mc_.arch == Arch::IFlame) {  // it has no baseline layers
    have.erase("baseline_layers");
    want.erase("baseline_layers");
  }
  for (const auto& [key, value] : want) {
    if (have[key] != value) {
      throw Error(path, "has " + key + " = " + have[key] + ", the run's model has " + value + " (model.* of the config)");
    }
  }
  load_weights(*model_, file, path);
  state_.step = state_.start_step = cfg_.train_init_step;
  std::fprintf(stderr, "train: starting from %s at step %lld\n", path.c_str(), (long long)state_.step);
}

// Every rank starts from rank 0's weights, optimizer state and data position.
void Trainer::sync_ranks() {
  std::vector<Tensor> tensors = params_;
  for (const auto& [name, t] : optimizer_->state()) tensors.push_back(t);
  group_.broadcast_coalesced(tensors);
  Tensor pos = comm(torch::tensor({state_.step, state_.data.epoch, state_.data.batch, optimizer_->steps(), state_.start_step},
                                  torch::kLong));
  group_.broadcast(pos);
  state_.step = pos[0].item<int64_t>();
  state_.start_step = pos[4].item<int64_t>();
  state_.data.epoch = pos[1].item<int64_t>();
  state_.data.batch = pos[2].item<int64_t>();
  if (!main_) optimizer_->load_state(optimizer_->state(), pos[3].item<int64_t>());
}

void Trainer::print_banner() const {
  std::fprintf(stderr, "train: %s\n%s", arch_name(mc_.arch), mc_.describe().c_str());
  std::fprintf(stderr, "parameters    = %.2fM\ndataset       = %s (%zu train, %zu val)\ndevice        = %s\n",
               double(model_->num_parameters()) / 1e6, cfg_.data_train.c_str(), data_.num_train(), data_.num_val(),
               device_.str().c_str());
  if (world_ > 1) {
    std::fprintf(stderr, "workers       = %lld (%s), %d threads each\n", (long long)world_, group_.backend(),
                 at::get_num_threads());
  }
  std::fprintf(stderr, "peak          = %.1f GFLOP/s (bf16 matmul, %s%s)\n", peak_gflops_,
               peak_given_ ? "train.peak_gflops" : "measured", world_ > 1 ? ", all workers" : "");
}

void Trainer::log_line(const nlohmann::json& j) {
  if (!main_) return;
  log_ << j.dump() << "\n";
  log_.flush();
  if (!log_) throw Error(log_path_, std::string("cannot append to the log: ") + std::strerror(errno));
}

int64_t Trainer::targets_of(const Tensor& tokens) const {
  if (tokens.numel() == 0) return 0;  // this rank's share of a small batch was empty
  return tokens.narrow(1, 9, tokens.size(1) - 9).ne(tk_.pad()).sum().item<int64_t>();
}

StepStats Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  StepStats s;
  std::vector<TokenBatch> micro;
  for (int64_t a = 0; a < cfg_.optim_accum; ++a) {
    micro.push_back(stream_->next().to(device_));
    s.targets += targets_of(micro.back().targets);
  }
  if (world_ > 1) {  // the weights below are shares of the whole step's targets
    Tensor t = comm(torch::tensor({s.targets}, torch::kLong));
    group_.all_reduce_sum(t);
    s.targets = t.item<int64_t>();
  }
  optimizer_->zero_grad();
  for (const TokenBatch& b : micro) {
    if (b.inputs.numel() == 0) continue;
    LossStats ls;
    Tensor objective, unlikelihood;
    {
      compat::AutocastGuard autocast(device_.type(), torch::kBFloat16, bf16_);
      const Tensor logits = model_->forward(b.inputs);
      ls = sequence_loss(logits, b.targets, tk_.pad(), /*metrics=*/false);
      objective = ls.loss;
      if (b.unlikely.defined()) {  // a sum over the listed tokens, per target as the cross-entropy
        unlikelihood = unlikelihood_sum(logits, b.unlikely) / double(std::max<int64_t>(targets_of(b.targets), 1));
        objective = objective + cfg_.train_unlikelihood * unlikelihood;
      }
    }
    const double weight = double(targets_of(b.targets)) / double(std::max<int64_t>(s.targets, 1));
    (objective * weight).backward();
    s.loss += ls.loss.item<double>() * weight;
    if (unlikelihood.defined()) s.unlikelihood += unlikelihood.item<double>() * weight;
    s.flops += train_flops(mc_, b.inputs.size(1), b.inputs.size(0)).train;
  }
  if (world_ > 1) {
    group_.all_reduce_gradients(params_);
    Tensor t = comm(torch::tensor({s.loss, s.flops, s.unlikelihood}, torch::kDouble));
    group_.all_reduce_sum(t);
    s.loss = t[0].item<double>();
    s.flops = t[1].item<double>();
    s.unlikelihood = t[2].item<double>();
  }
  s.lr = scheduled_lr(state_.step, cfg_.train_steps, warmup_, cfg_.optim_lr) *
         rewarmup_factor(state_.step, state_.start_step, cfg_.optim_rewarmup);
  s.grad_norm = clip_grad_norm(params_, cfg_.optim_grad_clip);
  s.finite = std::isfinite(s.loss) && std::isfinite(s.grad_norm);
  if (s.finite) {
    optimizer_->step(s.lr);
    bad_in_a_row_ = 0;
  } else {
    ++bad_in_a_row_;
    log_line({{"step", state_.step + 1}, {"skipped", "non-finite loss or gradient"}, {"loss", std::to_string(s.loss)}});
    if (main_) {
      std::fprintf(stderr, "train: step %lld skipped: non-finite loss or gradients (%lld in a row)\n",
                   (long long)(state_.step + 1), (long long)bad_in_a_row_);
    }
    if (bad_in_a_row_ >= cfg_.train_max_bad_steps) {
      throw Error("train: " + std::to_string(bad_in_a_row_) + " non-finite steps in a row; stopping. Lower optim.lr " +
                  "or use train.precision = fp32");
    }
  }
  ++state_.step;
  state_.data = stream_->position();
  s.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

void Trainer::report(const StepStats& s) {
  const double tps = double(s.targets) / (s.ms / 1000.0);
  const double gflops = s.flops / (s.ms / 1000.0) * 1e-9;
  const double mfu = peak_gflops_ > 0 ? gflops / peak_gflops_ : 0;
  if (s.finite) {
    result_.final_loss = s.loss;
    nlohmann::json line = {{"step", state_.step}, {"loss", s.loss}, {"lr", s.lr}, {"grad_norm", s.grad_norm}, {"ms", s.ms},
                           {"tokens_per_s", tps}, {"gflops", gflops}, {"mfu", mfu}, {"epoch", state_.data.epoch}};
    if (cfg_.train_unlikelihood > 0) line["unlikelihood"] = s.unlikelihood;
    log_line(line);
  }
  if (!main_) return;  // rank 0 alone reports
  progress_->add(1);
  if (cfg_.log_every > 0 && (state_.step % cfg_.log_every == 0 || state_.step == cfg_.train_steps)) {
    progress_->finish();
    char unlikely[32] = "";
    if (cfg_.train_unlikelihood > 0) std::snprintf(unlikely, sizeof unlikely, " | unlikely %.4f", s.unlikelihood);
    std::fprintf(stderr,
                 "step %6lld/%lld | loss %.4f%s | lr %.2e | norm %.3f | %7.0f ms | %7.0f tok/s | MFU %4.1f%% | epoch %lld\n",
                 (long long)state_.step, (long long)cfg_.train_steps, s.loss, unlikely, s.lr, s.grad_norm, s.ms, tps,
                 100 * mfu, (long long)state_.data.epoch);
  }
}

// Rank 0 alone validates and checkpoints, when due and after the last step.
void Trainer::validate_and_checkpoint() {
  if (!main_) return;
  const bool last = state_.step == cfg_.train_steps;
  if ((cfg_.eval_every > 0 && state_.step % cfg_.eval_every == 0) || last) {
    const EvalResult ev = evaluate(*model_, data_, val_idx_, cfg_, bf16_);
    if (ev.targets > 0) {
      result_.val_loss = ev.loss;
      result_.val_token_accuracy = ev.token_accuracy;
      result_.val_face_accuracy = ev.face_accuracy;
      log_line({{"step", state_.step}, {"val_loss", ev.loss}, {"val_token_accuracy", ev.token_accuracy},
                {"val_face_accuracy", ev.face_accuracy}});
      progress_->finish();
      std::fprintf(stderr, "val  %6lld | loss %.4f | token acc %.2f%% | face acc %.2f%%\n", (long long)state_.step,
                   ev.loss, 100 * ev.token_accuracy, 100 * ev.face_accuracy);
      if (ev.loss < state_.best_val_loss) {
        state_.best_val_loss = ev.loss;
        save_best(cfg_.out_dir, *model_, state_);
        result_.best_weights = cfg_.out_dir + "/best/model.safetensors";
      }
    }
  }
  if ((cfg_.out_save_every > 0 && state_.step % cfg_.out_save_every == 0) || last) {
    save_checkpoint(run_, *model_, *optimizer_, state_, cfg_.out_keep_last, cfg_.out_keep_every);
  }
}

TrainResult Trainer::finish() {
  progress_->finish();
  result_.steps = state_.step;
  if (main_ && result_.best_weights.empty() && std::filesystem::exists(cfg_.out_dir + "/best/model.safetensors")) {
    result_.best_weights = cfg_.out_dir + "/best/model.safetensors";
  }
  return result_;
}

}  // namespace

TrainResult train(const TrainConfig& cfg, RunStart start, Distributed* dist) {
  Distributed single{DistOptions{}};  // world size 1: its collectives do nothing
  Trainer trainer(cfg, start, dist ? *dist : single);
  while (!trainer.done()) {
    trainer.report(trainer.step());
    trainer.validate_and_checkpoint();
  }
  return trainer.finish();
}

}  // namespace iflame
