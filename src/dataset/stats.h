// Baselines a trained model must beat, computed from a dataset alone.
#pragma once
#include <cstdint>

#include "dataset/format.h"

namespace iflame {

// The unigram baseline: predict every target token from the training split's token
// frequencies (add-one smoothed), scored on the validation split. Targets are what the
// training loss scores (spec 4): every token after the 9 BOS, the 9 EOS included, no PAD.
struct UnigramBaseline {
  double cross_entropy = 0;  // nats per target token on the validation split
  double perplexity = 0;
  double accuracy = 0;       // share of validation targets equal to the most frequent train token
  int64_t train_targets = 0, val_targets = 0;
  int64_t train_meshes = 0, val_meshes = 0;
};

// Meshes with more than `max_faces` faces are left out (0 = no limit), as training does; with
// `drop_repeated_faces`, so are the face rows that repeat an earlier row (data.drop_repeated_faces),
// in both splits, so the baseline is scored on the targets the model is.
UnigramBaseline unigram_baseline(const DatasetReader& data, int64_t max_faces = 0, bool drop_repeated_faces = false);

}  // namespace iflame
