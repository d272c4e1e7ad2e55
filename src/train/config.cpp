#include "train/config.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <type_traits>
#include <variant>

#include "train/row_noise.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {

using C = TrainConfig;
const std::vector<TrainKey> kTrainKeys = {
    // name                      member                       resumable  help
    {"model.preset",            &C::model_preset,            false, "tiny (E=64), small (E=256) or ref (E=512, H=16: the paper's 75.7M model)"},
    {"model.arch",              &C::model_arch,              false, "iflame, or a baseline: full (24 full-attention layers) / linear (24 linear)"},
    {"model.dim",               &C::model_dim,               false, "width E (0 = the preset's)"},
    {"model.heads",             &C::model_heads,             false, "attention heads H (0 = the preset's); E/H divisible by 4"},
    {"model.pattern",           &C::model_pattern,           false, "attention kinds of one stage's blocks, L linear / F full (iFlame: LLLF)"},
    {"model.blocks_per_stage",  &C::model_blocks_per_stage,  false, "blocks in each of the 6 hourglass stages"},
    {"model.baseline_layers",   &C::model_baseline_layers,   false, "depth of the full/linear baselines"},
    {"data.train",              &C::data_train,              true,  "dataset file written by `iflame prepare` (train and val splits)"},
    {"data.max_faces",          &C::data_max_faces,          false, "skip meshes with more faces"},
    {"data.augment",            &C::data_augment,            false, "true: the reference's scale/shift augmentation before quantizing"},
    {"data.drop_repeated_faces", &C::data_drop_repeated_faces, true,
     "true: train and validate without face rows that repeat an earlier one (the reference keeps them)"},
    {"data.repeat_noise",       &C::data_repeat_noise,       true,
     "probability in [0, 1) of inserting, before a training face row, an unscored copy of an earlier row: "
     "teaches the model to go on after a repeated face, as its own samples hold them (validation is clean)"},
    {"data.flat_noise",         &C::data_flat_noise,         true,
     "probability of inserting, before a training face row, an unscored flat row (corners on one line) made "
     "from an earlier row, as samples hold them; with data.repeat_noise below 1"},
    {"data.flat_fan",           &C::data_flat_fan,           true,
     "probability in [0, 1) that a flat noise row is followed by another of the same collapsed fan (the same "
     "first corner, the others further along its line), as looping samples write them; runs of up to 16"},
    {"data.batch_tokens",       &C::data_batch_tokens,       false, "padded tokens per micro-batch; batches group similar lengths"},
    {"data.batch_size",         &C::data_batch_size,         false, "at most this many sequences per micro-batch"},
    {"train.steps",             &C::train_steps,             true,  "optimizer steps"},
    {"train.seed",              &C::train_seed,              false, "seed of the data order, augmentation and initialization"},
    {"train.precision",         &C::train_precision,         false, "bf16 (autocast) or fp32"},
    {"train.threads",           &C::train_threads,           true,  "CPU threads (0 = all cores), shared by the data-parallel workers of a host"},
    {"train.device",            &C::train_device,            true,  "cpu, cuda (data parallel: worker i of a host on cuda:i; NCCL) or cuda:N"},
    {"train.recompute",         &C::train_recompute,         true,
     "none, linear or all: blocks that keep only their input and run again in the backward (less memory, "
     "about one extra forward of those blocks)"},
    {"train.max_bad_steps",     &C::train_max_bad_steps,     true,  "stop after this many non-finite steps in a row"},
    {"train.peak_gflops",       &C::train_peak_gflops,       true,  "MFU denominator: bf16 matmul GFLOP/s of one worker (0 = measure ~0.5 s at start)"},
    {"train.init",              &C::train_init,              true,
     "weights a new run starts from instead of a random initialization (safetensors with the reference's key "
     "names: a checkpoint's model.safetensors, best/, or an exported model; the shapes must match model.*); "
     "a resumed run takes its own checkpoint instead"},
    {"train.init_step",         &C::train_init_step,         true,
     "step of the schedule a run started from train.init begins at: the learning rate and step count go on "
     "from there, the optimizer state and the data order start afresh"},
    {"train.unlikelihood",      &C::train_unlikelihood,      true,
     "weight of an unlikelihood term (0 = off): at every coordinate of a face row (the noise rows' too), "
     "-log(1 - p) of each coordinate that would copy an earlier face row or leave the face without area "
     "(never a scored target), per target as the cross-entropy: teaches the model not to write what its "
     "samples loop on"},
    {"optim.kind",              &C::optim_kind,              false, "muon (Muon for matrices + AdamW for head/vectors, as the reference) or adamw"},
    {"optim.lr",                &C::optim_lr,                false, "peak learning rate"},
    {"optim.warmup",            &C::optim_warmup,            false, "warmup as a fraction of train.steps, then cosine to 0"},
    {"optim.weight_decay",      &C::optim_weight_decay,      false, "decoupled weight decay"},
    {"optim.grad_clip",         &C::optim_grad_clip,         false, "global gradient-norm clip (0 = off)"},
    {"optim.accum",             &C::optim_accum,             false, "micro-batches accumulated per optimizer step"},
    {"optim.rewarmup",          &C::optim_rewarmup,          false,
     "after a start at train.init_step > 0, the learning rate ramps up again over this many steps "
     "(the optimizer's moments start empty)"},
    {"eval.every",              &C::eval_every,              true,  "validate every N steps (0 = only at the end)"},
    {"eval.batches",            &C::eval_batches,            true,  "validation micro-batches per evaluation (0 = the whole split)"},
    {"out.dir",                 &C::out_dir,                 true,  "run folder: checkpoints, log.jsonl"},
    {"out.save_every",          &C::out_save_every,          true,  "checkpoint every N steps (and at the end)"},
    {"out.keep_last",           &C::out_keep_last,           true,  "checkpoints kept besides the best"},
    {"out.keep_every",          &C::out_keep_every,          true,  "also keep every checkpoint whose step is a multiple of this for good (0 = none)"},
    {"log.every",               &C::log_every,               true,  "print a step line every N steps"},
};

const TrainKey* find_train_key(const std::string& name) {
  for (const TrainKey& k : kTrainKeys) {
    if (name == k.name) return &k;
  }
  return nullptr;
}

namespace {

int64_t to_int(const std::string& key, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end) throw Error("config key " + key + " needs an integer, got '" + v + "'");
  if (errno == ERANGE) throw Error("config key " + key + ": " + v + " is out of range");
  return x;
}
uint64_t to_uint(const std::string& key, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || *end) throw Error("config key " + key + " needs a non-negative integer, got '" + v + "'");
  if (errno == ERANGE) throw Error("config key " + key + ": " + v + " is out of range");
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

void TrainConfig::set(const std::string& key, const std::string& raw) {
  const TrainKey* k = find_train_key(key);
  if (!k) throw Error("unknown config key '" + key + "' (see `iflame train --help-config`)");
  // Values are written back as `key = value` lines (checkpoints, --resume checks), where
  // surrounding blanks are trimmed and '#' starts a comment: such values could not load back.
  const std::string v = trim(raw);
  if (v.find_first_of("#\n\r", 0) != std::string::npos || v.find('\0') != std::string::npos) {
    throw Error("config key " + key + ": a value cannot contain '#', a line break or a NUL byte");
  }
  std::visit(
      [&](auto member) {
        using T = std::decay_t<decltype(this->*member)>;
        if constexpr (std::is_same_v<T, std::string>) this->*member = v;
        else if constexpr (std::is_same_v<T, bool>) this->*member = to_bool(key, v);
        else if constexpr (std::is_same_v<T, double>) this->*member = to_double(key, v);
        else if constexpr (std::is_same_v<T, uint64_t>) this->*member = to_uint(key, v);
        else this->*member = to_int(key, v);
      },
      k->member);
  if (train_precision != "bf16" && train_precision != "fp32") throw Error("train.precision must be bf16 or fp32");
  if (!valid_device_name(train_device)) {
    throw Error("train.device must be cpu, cuda or cuda:N, got '" + train_device + "'");
  }
  (void)recompute_from_name(train_recompute);  // validates
  // The preset, the architecture and the pattern's letters, checked by the model's own rules.
  try {
    ModelConfig model_rules = iflame::model_preset(model_preset, arch_from_name(model_arch));
    model_rules.stage_pattern = model_pattern;
    model_rules.validate();
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (setting " + key + " = " + v + ")");
  }
  if (model_pattern.size() > 64) throw Error("model.pattern must be at most 64 letters, got " + std::to_string(model_pattern.size()));
  if (optim_kind != "muon" && optim_kind != "adamw") throw Error("optim.kind must be muon or adamw, got '" + optim_kind + "'");
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
  require(train_init_step >= 0, "train.init_step must be >= 0");
  require(std::isfinite(train_unlikelihood) && train_unlikelihood >= 0 && train_unlikelihood <= 100,
          "train.unlikelihood must be a weight in [0, 100] (0 = off)");
  require(optim_rewarmup >= 0, "optim.rewarmup must be >= 0 (0 = none)");
  const std::string noise_problem =
      row_noise_problem({data_repeat_noise, data_flat_noise, data_flat_fan}, {"data.repeat_noise", "data.flat_noise"});
  require(noise_problem.empty(), noise_problem.c_str());
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
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxConfigBytes) {
    throw Error(path, std::to_string(size) + " bytes is not a config file (a config is `key = value` lines, at most " +
                          std::to_string(kMaxConfigBytes) + " bytes)");
  }
  load_text(read_file_text(path), path);
}

void TrainConfig::load_text(const std::string& text, const std::string& path) {
  if (text.size() > kMaxConfigBytes) throw Error(path, "longer than a config file may be (" + std::to_string(kMaxConfigBytes) + " bytes)");
  std::istringstream in(text);
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

std::string TrainConfig::value_text(const TrainKey& key) const {
  std::ostringstream s;
  std::visit(
      [&](auto member) {
        if constexpr (std::is_same_v<std::decay_t<decltype(this->*member)>, bool>) s << (this->*member ? "true" : "false");
        else s << this->*member;
      },
      key.member);
  return s.str();
}

std::string TrainConfig::to_text() const {
  std::string text;
  for (const TrainKey& k : kTrainKeys) text += std::string(k.name) + " = " + value_text(k) + "\n";
  return text;
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
  o.ns_bf16 = train_precision == "bf16";  // fp32 training keeps every step in float32
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
