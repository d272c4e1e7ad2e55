// The training loop (spec section 4): length-grouped batches, augmentation, Muon + AdamW,
// warmup + cosine, clipping, accumulation, bf16 autocast, validation, checkpoints, resume.
#pragma once
#include "train/config.h"

namespace iflame {

struct TrainResult {
  int64_t steps = 0;
  double final_loss = 0;
  double val_loss = 0, val_token_accuracy = 0, val_face_accuracy = 0;
  std::string best_weights;  // run_dir/best/model.safetensors when validation ran
};

// Trains per `config`. With `resume`, continues from the newest complete checkpoint in
// out.dir (if any): same data order, same augmentation, so the loss curve continues exactly.
TrainResult train(const TrainConfig& config, bool resume);

}  // namespace iflame
