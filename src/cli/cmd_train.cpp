// iflame train: the trainer with a config file, overrides, presets and resume; data parallel
// with --nproc (local workers) or --rank/--world-size/--master-addr/--master-port (hosts).
#include <cstdio>

#include "cli/commands.h"
#include "cli/runtime.h"
#include "kernels/threads.h"
#include "train/distributed.h"
#include "train/trainer.h"
#include "util/args.h"
#include "util/error.h"
#include "util/memory.h"

namespace iflame::cli {

namespace {

// The command line for the workers: this one without --nproc.
std::vector<std::string> worker_arguments(int argc, char** argv) {
  std::vector<std::string> out{"train"};
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--nproc") {
      ++i;
      continue;
    }
    if (a.rfind("--nproc=", 0) == 0) continue;
    out.push_back(a);
  }
  return out;
}

}  // namespace

int run_train(int argc, char** argv) {
  std::string config_path, preset = "ci", data, master_addr;
  std::vector<std::string> sets;
  bool resume = false, overwrite = false, help_config = false;
  int64_t nproc = 1, rank = -1, world_size = -1, master_port = -1;
  ArgParser args("train",
                 "Trains iFlame (or a baseline) on a dataset from `iflame prepare`. Configuration: the\n"
                 "preset's defaults, then --config FILE (`key = value` lines), then --set key=value\n"
                 "overrides; unknown keys are errors; the effective config is printed and stored in every\n"
                 "checkpoint. Writes OUT/log.jsonl, OUT/step-*/ checkpoints (atomic) and OUT/best/.\n"
                 "A run owns its folder (OUT/run.json): a new run refuses a non-empty folder unless given\n"
                 "--resume (continue that run; its config may change only in the keys --help-config marks\n"
                 "resumable) or --overwrite (move the old run aside first).\n\n"
                 "Data parallel: --nproc N runs N workers on this host (train.threads shared among them).\n"
                 "On several hosts, start one worker per rank with --rank/--world-size/--master-addr/\n"
                 "--master-port (or RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; LOCAL_WORLD_SIZE workers\n"
                 "per host share its threads; GLOO_SOCKET_IFNAME picks the network interface;\n"
                 "IFLAME_DIST_TIMEOUT is how many seconds a collective waits, default 3600). Every step\n"
                 "uses the same micro-batches as one process would (data.batch_size / data.batch_tokens\n"
                 "are global), split across the workers; rank 0 logs, validates and checkpoints.");
  args.option("config", &config_path, "config file")
      .option("preset", &preset, "defaults to start from: ci, cpu or ref")
      .option("data", &data, "shorthand for --set data.train=DATASET")
      .list("set", &sets, "key=value overrides (repeatable)")
      .flag("resume", &resume, "continue the run in out.dir from its newest checkpoint")
      .flag("overwrite", &overwrite, "start over: move a non-empty out.dir aside (to OUT.old-N) first")
      .flag("help-config", &help_config, "list every config key with its meaning and exit")
      .option("nproc", &nproc, "data-parallel workers to start on this host")
      .option("rank", &rank, "this worker's rank (multi-host; -1: $RANK or 0)")
      .option("world-size", &world_size, "number of workers in all (multi-host; -1: $WORLD_SIZE or 1)")
      .option("master-addr", &master_addr, "host of rank 0, which serves the rendezvous store ($MASTER_ADDR or 127.0.0.1)")
      .option("master-port", &master_port, "port of the store (-1: $MASTER_PORT or 29500)");
  if (!args.parse(argc, argv)) return 0;
  if (help_config) {
    for (const auto& k : kTrainKeys) {
      std::printf("  %-22s %s%s\n", k.name, k.help, k.resumable ? " [resumable]" : "");
    }
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
  if (nproc < 1) throw Error("--nproc must be at least 1");
  if (resume && overwrite) throw Error("train: --resume continues the run in out.dir, --overwrite replaces it; give one");
  if (nproc > 1) {
    if (rank >= 0 || world_size >= 0) throw Error("--nproc starts its own ranks; drop --rank / --world-size");
    return launch_local_workers(nproc, worker_arguments(argc, argv), master_addr.empty() ? "127.0.0.1" : master_addr);
  }

  keep_freed_memory();  // large temporaries reuse heap memory instead of page-faulting each step
  DistOptions dist;
  dist.read_environment();
  if (rank >= 0) dist.rank = rank;
  if (world_size >= 0) dist.world_size = world_size;
  if (!master_addr.empty()) dist.master_addr = master_addr;
  if (master_port >= 0) dist.master_port = master_port;
  dist.cuda = cfg.train_device != "cpu";  // gradients live on the GPU: NCCL
  dist.validate();
  set_compute_threads(worker_threads(cfg.train_threads, dist.local_world_size));
  const bool main = dist.rank == 0;
  if (main) std::fprintf(stderr, "# effective config\n%s\n", cfg.to_text().c_str());
  TrainResult r;
  try {
    Distributed group(dist);
    r = train(cfg, resume ? RunStart::kResume : overwrite ? RunStart::kOverwrite : RunStart::kFresh, &group);
  } catch (const Error& e) {
    if (!dist.distributed()) throw;
    throw Error("rank " + std::to_string(dist.rank) + ": " + e.what());
  }
  if (!main) return 0;
  std::fprintf(stderr, "train: done, %lld steps, final loss %.4f, val loss %.4f, token acc %.2f%%, face acc %.2f%%\n",
               (long long)r.steps, r.final_loss, r.val_loss, 100 * r.val_token_accuracy, 100 * r.val_face_accuracy);
  if (!r.best_weights.empty()) std::fprintf(stderr, "train: best weights: %s\n", r.best_weights.c_str());
  return 0;
}

}  // namespace iflame::cli
