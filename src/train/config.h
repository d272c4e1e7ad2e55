// Training configuration: defaults, then a config file (`key = value` lines, # comments), then
// `--set key=value` overrides. Every key is documented in kTrainKeys; unknown keys are errors.
#pragma once
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "model/config.h"
#include "train/optim_options.h"

namespace iflame {

struct TrainKey;

struct TrainConfig {
  // model
  std::string model_preset = "tiny";
  std::string model_arch = "iflame";
  int64_t model_dim = 0, model_heads = 0;  // 0 = the preset's
  std::string model_pattern = "LLLF";
  int64_t model_blocks_per_stage = 4, model_baseline_layers = 24;
  // data
  std::string data_train;  // dataset from `iflame prepare`
  int64_t data_max_faces = 800;
  bool data_augment = true;
  bool data_drop_repeated_faces = false;
  double data_repeat_noise = 0, data_flat_noise = 0, data_flat_fan = 0;  // train/data.h insert_noise_rows
  int64_t data_batch_tokens = 16384;  // padded tokens per micro-batch (length-grouped batches)
  int64_t data_batch_size = 48;       // at most this many sequences per micro-batch
  // optimization
  int64_t train_steps = 1000;
  uint64_t train_seed = 0;
  std::string train_precision = "bf16";  // bf16 autocast (CPU: AMX via oneDNN) or fp32
  int64_t train_threads = 0;
  std::string train_device = "cpu";  // cpu, cuda (worker i of a host: cuda:i) or cuda:N
  std::string train_recompute = "none";  // none | linear | all (model/recompute.h)
  int64_t train_max_bad_steps = 10;
  double train_peak_gflops = 0;  // MFU denominator per worker; 0 = measure at startup
  std::string train_init;        // weights a new run starts from ("" = random initialization)
  int64_t train_init_step = 0;   // the schedule step such a run starts at
  double train_unlikelihood = 0;  // weight of the unlikelihood term on face-rule breaks (0 = off)
  std::string optim_kind = "muon";
  double optim_lr = 1e-3, optim_warmup = 0.1, optim_weight_decay = 0.1, optim_grad_clip = 1.0;
  int64_t optim_accum = 1;
  int64_t optim_rewarmup = 100;  // steps of learning-rate ramp after a start at train.init_step > 0
  // evaluation, checkpoints, logs
  int64_t eval_every = 200, eval_batches = 20;
  std::string out_dir = "runs/iflame";
  int64_t out_save_every = 200, out_keep_last = 3, out_keep_every = 0;
  int64_t log_every = 10;

  void set(const std::string& key, const std::string& value);  // throws iflame::Error
  void load_file(const std::string& path);
  // The same from text in memory; `path` names it in errors.
  void load_text(const std::string& text, const std::string& path);
  static constexpr size_t kMaxConfigBytes = 1 << 20;
  std::string to_text() const;  // every key = value, loadable again
  std::string value_text(const TrainKey& key) const;  // one key's value as to_text writes it
  ModelConfig model_config() const;
  OptimizerOptions optimizer_options() const;
};

// One row per config key: the member it sets (its type and default come from TrainConfig),
// whether a resumed run may change it, and its help. set(), to_text(), `--help-config` and the
// resume check all read this one table.
struct TrainKey {
  using Member = std::variant<std::string TrainConfig::*, int64_t TrainConfig::*, uint64_t TrainConfig::*,
                              double TrainConfig::*, bool TrainConfig::*>;
  const char* name;
  Member member;
  bool resumable;  // schedule length, reporting, threads, devices, recomputation, paths
  const char* help;
};
extern const std::vector<TrainKey> kTrainKeys;
// The row of a key, or nullptr for an unknown one.
const TrainKey* find_train_key(const std::string& name);

// Built-in presets: "ci" (seconds), "cpu" (the Debian corpus on this CPU), "ref" (the paper).
TrainConfig train_preset(const std::string& name);

}  // namespace iflame
