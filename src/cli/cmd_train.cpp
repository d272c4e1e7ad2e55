// iflame train: the trainer with a config file, overrides, presets and resume.
#include <cstdio>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "train/trainer.h"
#include "util/args.h"
#include "util/error.h"

namespace iflame::cli {

int run_train(int argc, char** argv) {
  std::string config_path, preset = "ci", data;
  std::vector<std::string> sets;
  bool resume = false, help_config = false;
  ArgParser args("train",
                 "Trains iFlame (or a baseline) on a dataset from `iflame prepare`. Configuration: the\n"
                 "preset's defaults, then --config FILE (`key = value` lines), then --set key=value\n"
                 "overrides; unknown keys are errors; the effective config is printed and stored in every\n"
                 "checkpoint. Writes OUT/log.jsonl, OUT/step-*/ checkpoints (atomic) and OUT/best/.");
  args.option("config", &config_path, "config file")
      .option("preset", &preset, "defaults to start from: ci, cpu or ref")
      .option("data", &data, "shorthand for --set data.train=DATASET")
      .list("set", &sets, "key=value overrides (repeatable)")
      .flag("resume", &resume, "continue from the newest checkpoint in out.dir")
      .flag("help-config", &help_config, "list every config key with its meaning and exit");
  if (!args.parse(argc, argv)) return 0;
  if (help_config) {
    for (const auto& k : kTrainKeys) std::printf("  %-22s %s\n", k.name, k.help);
    return 0;
  }
  TrainConfig cfg = train_preset(preset);
  if (!config_path.empty()) cfg.load_file(config_path);
  if (!data.empty()) cfg.set("data.train", data);
  for (const std::string& kv : sets) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos) throw Error("--set needs key=value, got '" + kv + "'");
    cfg.set(kv.substr(0, eq), kv.substr(eq + 1));
  }
  configure_threads(cfg.train_threads);
  std::fprintf(stderr, "# effective config\n%s\n", cfg.to_text().c_str());
  TrainResult r = train(cfg, resume);
  std::fprintf(stderr, "train: done, %lld steps, final loss %.4f, val loss %.4f, token acc %.2f%%, face acc %.2f%%\n",
               (long long)r.steps, r.final_loss, r.val_loss, 100 * r.val_token_accuracy, 100 * r.val_face_accuracy);
  if (!r.best_weights.empty()) std::fprintf(stderr, "train: best weights: %s\n", r.best_weights.c_str());
  return 0;
}

}  // namespace iflame::cli
