// Checkpoints: a folder per step (`step-00001234/`) holding model.safetensors (reference key
// names), optimizer.safetensors and state.json (step, data position, best validation loss,
// config). Written into a temporary folder that is renamed into place last, so a half-written
// checkpoint is never seen; state.json is written last inside it, as the completion marker.
#pragma once
#include <optional>
#include <string>

#include "model/model.h"
#include "train/data.h"
#include "train/optim.h"

namespace iflame {

struct TrainState {
  int64_t step = 0;
  DataPosition data;
  double best_val_loss = 1e30;
  std::string config_text;
};

// Writes checkpoint `state.step` under `run_dir`, then keeps only the newest `keep_last`.
std::string save_checkpoint(const std::string& run_dir, IFlameModelImpl& model, const Optimizer& optimizer,
                            const TrainState& state, int64_t keep_last);
// Also writes run_dir/best/model.safetensors (atomically).
void save_best(const std::string& run_dir, IFlameModelImpl& model, const TrainState& state);

// The newest complete checkpoint folder under `run_dir`, or "" when there is none.
std::string latest_checkpoint(const std::string& run_dir);
// Loads model weights, optimizer state and the train state from a checkpoint folder.
TrainState load_checkpoint(const std::string& dir, IFlameModelImpl& model, Optimizer& optimizer);

}  // namespace iflame
