// The training loop (spec section 4): length-grouped batches, augmentation, Muon + AdamW,
// warmup + cosine, clipping, accumulation, bf16 autocast, validation, checkpoints, resume.
#pragma once
#include "model/torch_compat.h"
#include "train/checkpoint.h"
#include "train/config.h"

namespace iflame {

struct TrainResult {
  int64_t steps = 0;
  double final_loss = 0;
  double val_loss = 0, val_token_accuracy = 0, val_face_accuracy = 0;
  std::string best_weights;  // run_dir/best/model.safetensors when validation ran
};

class Distributed;

// train.device for this worker: "cpu", "cuda:N", or "cuda" = cuda:<local rank> (one GPU per
// worker of a host). Throws iflame::Error when CUDA is asked for and not available.
torch::Device training_device(const std::string& name, int64_t local_rank);

// Trains per `config`. out.dir is claimed as train/checkpoint.h's claim_run_folder says: a
// fresh run refuses a folder that holds another run, kOverwrite moves it aside first. With
// kResume, continues from the run's newest complete checkpoint (if any): same data order, same
// augmentation, so the loss curve continues exactly; a config that differs from the saved one
// in a key resumable_key() does not accept is refused, with the differences listed.
//
// With `dist` (data parallel, one call per worker): every optimizer step processes the same
// micro-batches as a single process with this config, each rank taking its share of every
// micro-batch's sequences; gradients are summed over the ranks so that the step equals the
// single process's token-weighted mean (up to float rounding). data.batch_size and
// data.batch_tokens are therefore global, not per worker. Rank 0 alone prints, validates,
// writes log.jsonl and checkpoints; it also loads the checkpoint on resume and broadcasts
// the weights, optimizer state and data position to the others.
TrainResult train(const TrainConfig& config, RunStart start, Distributed* dist = nullptr);

}  // namespace iflame
