#include "train/config.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace iflame {

const std::vector<TrainKey> kTrainKeys = {
    {"model.preset", "tiny (E=64), small (E=256) or ref (E=512, H=16: the paper's 75.7M model)"},
    {"model.arch", "iflame, or a baseline: full (24 full-attention layers) / linear (24 linear)"},
    {"model.dim", "width E (0 = the preset's)"},
    {"model.heads", "attention heads H (0 = the preset's); E/H divisible by 4"},
    {"model.pattern", "attention kinds of one stage's blocks, L linear / F full (iFlame: LLLF)"},
    {"model.blocks_per_stage", "blocks in each of the 6 hourglass stages"},
    {"model.baseline_layers", "depth of the full/linear baselines"},
    {"data.train", "dataset file written by `iflame prepare` (train and val splits)"},
    {"data.max_faces", "skip meshes with more faces"},
    {"data.augment", "true: the reference's scale/shift augmentation before quantizing"},
    {"data.batch_tokens", "padded tokens per micro-batch; batches group similar lengths"},
    {"data.batch_size", "at most this many sequences per micro-batch"},
    {"train.steps", "optimizer steps"},
    {"train.seed", "seed of the data order, augmentation and initialization"},
    {"train.precision", "bf16 (autocast) or fp32"},
    {"train.threads", "CPU threads (0 = all cores), shared by the data-parallel workers of a host"},
    {"train.device", "cpu, cuda (data parallel: worker i of a host on cuda:i; NCCL) or cuda:N"},
    {"train.recompute",
     "none, linear or all: blocks that keep only their input and run again in the backward (less memory, "
     "about one extra forward of those blocks)"},
    {"train.max_bad_steps", "stop after this many non-finite steps in a row"},
    {"train.peak_gflops", "MFU denominator: bf16 matmul GFLOP/s of one worker (0 = measure ~0.5 s at start)"},
    {"optim.kind", "muon (Muon for matrices + AdamW for head/vectors, as the reference) or adamw"},
    {"optim.lr", "peak learning rate"},
    {"optim.warmup", "warmup as a fraction of train.steps, then cosine to 0"},
    {"optim.weight_decay", "decoupled weight decay"},
    {"optim.grad_clip", "global gradient-norm clip (0 = off)"},
    {"optim.accum", "micro-batches accumulated per optimizer step"},
    {"eval.every", "validate every N steps (0 = only at the end)"},
    {"eval.batches", "validation micro-batches per evaluation (0 = the whole split)"},
    {"out.dir", "run folder: checkpoints, log.jsonl"},
    {"out.save_every", "checkpoint every N steps (and at the end)"},
    {"out.keep_last", "checkpoints kept besides the best"},
    {"out.keep_every", "also keep every checkpoint whose step is a multiple of this for good (0 = none)"},
    {"log.every", "print a step line every N steps"},
};

namespace {

int64_t to_int(const std::string& key, const std::string& v) {
  char* end = nullptr;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end) throw Error("config key " + key + " needs an integer, got '" + v + "'");
  return x;
}
double to_double(const std::string& key, const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end) throw Error("config key " + key + " needs a number, got '" + v + "'");
  return x;
}
bool to_bool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1") return true;
  if (v == "false" || v == "0") return false;
  throw Error("config key " + key + " needs true or false, got '" + v + "'");
}
bool valid_device_name(const std::string& d) {
  if (d == "cpu" || d == "cuda") return true;
  if (d.rfind("cuda:", 0) != 0 || d.size() == 5) return false;
  return d.find_first_not_of("0123456789", 5) == std::string::npos;
}
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

void TrainConfig::set(const std::string& key, const std::string& v) {
  if (key == "model.preset") model_preset = v;
  else if (key == "model.arch") model_arch = v;
  else if (key == "model.dim") model_dim = to_int(key, v);
  else if (key == "model.heads") model_heads = to_int(key, v);
  else if (key == "model.pattern") model_pattern = v;
  else if (key == "model.blocks_per_stage") model_blocks_per_stage = to_int(key, v);
  else if (key == "model.baseline_layers") model_baseline_layers = to_int(key, v);
  else if (key == "data.train") data_train = v;
  else if (key == "data.max_faces") data_max_faces = to_int(key, v);
  else if (key == "data.augment") data_augment = to_bool(key, v);
  else if (key == "data.batch_tokens") data_batch_tokens = to_int(key, v);
  else if (key == "data.batch_size") data_batch_size = to_int(key, v);
  else if (key == "train.steps") train_steps = to_int(key, v);
  else if (key == "train.seed") train_seed = uint64_t(to_int(key, v));
  else if (key == "train.precision") train_precision = v;
  else if (key == "train.threads") train_threads = to_int(key, v);
  else if (key == "train.device") train_device = v;
  else if (key == "train.recompute") train_recompute = v;
  else if (key == "train.max_bad_steps") train_max_bad_steps = to_int(key, v);
  else if (key == "train.peak_gflops") train_peak_gflops = to_double(key, v);
  else if (key == "optim.kind") optim_kind = v;
  else if (key == "optim.lr") optim_lr = to_double(key, v);
  else if (key == "optim.warmup") optim_warmup = to_double(key, v);
  else if (key == "optim.weight_decay") optim_weight_decay = to_double(key, v);
  else if (key == "optim.grad_clip") optim_grad_clip = to_double(key, v);
  else if (key == "optim.accum") optim_accum = to_int(key, v);
  else if (key == "eval.every") eval_every = to_int(key, v);
  else if (key == "eval.batches") eval_batches = to_int(key, v);
  else if (key == "out.dir") out_dir = v;
  else if (key == "out.save_every") out_save_every = to_int(key, v);
  else if (key == "out.keep_last") out_keep_last = to_int(key, v);
  else if (key == "out.keep_every") out_keep_every = to_int(key, v);
  else if (key == "log.every") log_every = to_int(key, v);
  else throw Error("unknown config key '" + key + "' (see `iflame train --help-config`)");
  if (train_precision != "bf16" && train_precision != "fp32") throw Error("train.precision must be bf16 or fp32");
  if (!valid_device_name(train_device)) {
    throw Error("train.device must be cpu, cuda or cuda:N, got '" + train_device + "'");
  }
  (void)recompute_from_name(train_recompute);  // validates
  if (train_peak_gflops < 0) throw Error("config: train.peak_gflops must be >= 0 (0 = measure)");
  if (data_batch_tokens <= 0 || data_batch_size <= 0 || optim_accum <= 0 || train_steps <= 0) {
    throw Error("config: batch sizes, optim.accum and train.steps must be positive");
  }
  auto require = [&](bool ok, const char* what) {
    if (!ok) throw Error(std::string("config: ") + what + " (setting " + key + " = " + v + ")");
  };
  require(std::isfinite(optim_lr) && optim_lr > 0, "optim.lr must be a finite number above 0");
  require(optim_warmup >= 0 && optim_warmup <= 1, "optim.warmup must be a fraction in [0, 1]");
  require(std::isfinite(optim_weight_decay) && optim_weight_decay >= 0, "optim.weight_decay must be >= 0");
  require(std::isfinite(optim_grad_clip) && optim_grad_clip >= 0, "optim.grad_clip must be >= 0 (0 = off)");
  require(data_max_faces >= 1, "data.max_faces must be at least 1");
  require(train_threads >= 0, "train.threads must be >= 0 (0 = all cores)");
  require(train_max_bad_steps >= 1, "train.max_bad_steps must be at least 1");
  require(eval_every >= 0 && eval_batches >= 0, "eval.every and eval.batches must be >= 0");
  require(out_save_every >= 0 && out_keep_every >= 0 && out_keep_last >= 1,
          "out.save_every and out.keep_every must be >= 0, out.keep_last >= 1");
  require(log_every >= 0, "log.every must be >= 0");
  require(model_dim >= 0 && model_dim <= 16384 && model_heads >= 0 && model_heads <= 1024,
          "model.dim must be in [0, 16384] and model.heads in [0, 1024] (0 = the preset's)");
  // Bounds that keep a typo from asking for unbounded memory.
  require(data_max_faces <= 100000 && data_batch_tokens <= (int64_t(1) << 24) && data_batch_size <= 65536,
          "data.max_faces must be <= 100000, data.batch_tokens <= 16777216, data.batch_size <= 65536");
  require(model_blocks_per_stage >= 1 && model_blocks_per_stage <= 64 && model_baseline_layers >= 1 &&
              model_baseline_layers <= 512,
          "model.blocks_per_stage must be in [1, 64] and model.baseline_layers in [1, 512]");
}

void TrainConfig::load_file(const std::string& path) {
  std::istringstream in(read_file_text(path));
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw Error(path, "line " + std::to_string(line_no) + ": expected `key = value`");
    try {
      set(trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
    } catch (const Error& e) {
      throw Error(path, "line " + std::to_string(line_no) + ": " + e.what());
    }
  }
}

std::string TrainConfig::to_text() const {
  std::ostringstream s;
  s << "model.preset = " << model_preset << "\nmodel.arch = " << model_arch << "\nmodel.dim = " << model_dim
    << "\nmodel.heads = " << model_heads << "\nmodel.pattern = " << model_pattern
    << "\nmodel.blocks_per_stage = " << model_blocks_per_stage << "\nmodel.baseline_layers = " << model_baseline_layers
    << "\ndata.train = " << data_train << "\ndata.max_faces = " << data_max_faces
    << "\ndata.augment = " << (data_augment ? "true" : "false") << "\ndata.batch_tokens = " << data_batch_tokens
    << "\ndata.batch_size = " << data_batch_size << "\ntrain.steps = " << train_steps << "\ntrain.seed = " << train_seed
    << "\ntrain.precision = " << train_precision << "\ntrain.threads = " << train_threads
    << "\ntrain.device = " << train_device << "\ntrain.recompute = " << train_recompute
    << "\ntrain.max_bad_steps = " << train_max_bad_steps << "\ntrain.peak_gflops = " << train_peak_gflops
    << "\noptim.kind = " << optim_kind
    << "\noptim.lr = " << optim_lr << "\noptim.warmup = " << optim_warmup << "\noptim.weight_decay = " << optim_weight_decay
    << "\noptim.grad_clip = " << optim_grad_clip << "\noptim.accum = " << optim_accum << "\neval.every = " << eval_every
    << "\neval.batches = " << eval_batches << "\nout.dir = " << out_dir << "\nout.save_every = " << out_save_every
    << "\nout.keep_last = " << out_keep_last << "\nout.keep_every = " << out_keep_every << "\nlog.every = " << log_every
    << "\n";
  return s.str();
}

ModelConfig TrainConfig::model_config() const {
  ModelConfig c = iflame::model_preset(model_preset, arch_from_name(model_arch));
  if (model_dim > 0) c.dim = model_dim;
  if (model_heads > 0) c.heads = model_heads;
  c.stage_pattern = model_pattern;
  c.blocks_per_stage = model_blocks_per_stage;
  c.baseline_layers = model_baseline_layers;
  c.validate();
  return c;
}

OptimizerOptions TrainConfig::optimizer_options() const {
  OptimizerOptions o;
  o.kind = optim_kind;
  o.weight_decay = optim_weight_decay;
  return o;
}

TrainConfig train_preset(const std::string& name) {
  TrainConfig c;
  if (name == "ci") {
    c.model_preset = "tiny";
    c.model_dim = 32, c.model_heads = 2;
    c.model_blocks_per_stage = 2, c.model_pattern = "LF";
    c.train_steps = 8, c.data_batch_tokens = 2048, c.data_batch_size = 8;
    c.eval_every = 4, c.eval_batches = 2, c.out_save_every = 4, c.log_every = 1;
    c.optim_lr = 3e-3, c.data_max_faces = 200;
  } else if (name == "cpu") {
    c.model_preset = "small";
    c.train_steps = 3000, c.data_batch_tokens = 16384, c.data_batch_size = 32;
    c.eval_every = 250, c.eval_batches = 40, c.out_save_every = 250, c.log_every = 10;
  } else if (name == "ref") {
    c.model_preset = "ref";
    c.data_max_faces = 767, c.data_batch_size = 48, c.data_batch_tokens = 48 * 6921;
    c.train_steps = 100000, c.eval_every = 1000, c.out_save_every = 1000;
  } else {
    throw Error("unknown training preset '" + name + "' (ci, cpu or ref)");
  }
  return c;
}

}  // namespace iflame
