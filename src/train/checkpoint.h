// Checkpoints: a folder per step (`step-00001234/`) holding model.safetensors (reference key
// names), optimizer.safetensors and state.json (step, data position, best validation loss,
// config). Written into a temporary folder that is renamed into place last, so a half-written
// checkpoint is never seen; state.json is written last inside it, as the completion marker.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "train/data.h"
#include "train/optim.h"

namespace iflame {

struct TrainState {
  int64_t step = 0;
  int64_t start_step = 0;  // > 0: the run began there from train.init weights (the learning-rate ramp)
  DataPosition data;
  double best_val_loss = 1e30;
  std::string config_text;
};

// How a run takes its folder: a fresh run needs an empty (or missing) one; a resumed run
// continues the run that owns it; an overwriting run first moves the folder aside.
enum class RunStart { kFresh, kResume, kOverwrite };

// The run that owns a folder: RUN/run.json holds its id, and each of its checkpoints carries
// it, so that resuming and pruning never take another run's checkpoints.
struct RunFolder {
  std::string dir;
  std::shared_ptr<int> lock;  // RUN/.lock, flock'ed for the run's lifetime (closed with the last copy)
  std::string run_id;
  bool legacy = false;    // resumed a folder from before run ids: its unmarked checkpoints are its own
  std::string moved_to;  // kOverwrite: where the old folder went
};
// Claims `dir` for a run. kFresh: throws iflame::Error naming the folder when it is not empty
// (and offering --resume or --overwrite); kOverwrite: renames a non-empty folder to
// DIR.old-N (the first N free) first; kResume: adopts the folder's run (a new id when it has
// none). Creates the folder and run.json as needed. Holds an exclusive lock on RUN/.lock for as
// long as the returned RunFolder (or a copy) lives, and refuses a folder that another live
// process holds; a killed process's lock ends with it. Temporary checkpoint folders that a
// killed run left behind are removed.
RunFolder claim_run_folder(const std::string& dir, RunStart start);

// Writes checkpoint `state.step` under `run.dir`, then keeps only the newest `keep_last` of
// this run's own checkpoints, and those whose step is a multiple of `keep_every` (> 0). The
// folder is renamed into place and its parent fsync'd.
std::string save_checkpoint(const RunFolder& run, IFlameModelImpl& model, const Optimizer& optimizer,
                            const TrainState& state, int64_t keep_last, int64_t keep_every = 0);
// Also writes run_dir/best/model.safetensors (atomically).
void save_best(const std::string& run_dir, IFlameModelImpl& model, const TrainState& state);

// The newest complete checkpoint folder of the run, or "" when there is none.
std::string latest_checkpoint(const RunFolder& run);
// The newest complete checkpoint folder under `run_dir` of any run (tools and tests).
std::string latest_checkpoint(const std::string& run_dir);

// Config keys that may differ when a run is resumed (schedule length, reporting, threads,
// devices, recomputation, paths): the others change what is trained and are refused.
bool resumable_key(const std::string& key);
// The `key = value` lines of two config texts that differ, as "key: saved A, now B" (keys
// that resumable_key accepts are left out unless `with_resumable`).
std::vector<std::string> config_differences(const std::string& saved, const std::string& now,
                                            bool with_resumable = false);
// Loads model weights, optimizer state and the train state from a checkpoint folder.
TrainState load_checkpoint(const std::string& dir, IFlameModelImpl& model, Optimizer& optimizer);

}  // namespace iflame
