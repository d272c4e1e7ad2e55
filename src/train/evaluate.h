// Teacher-forced metrics of a model on dataset meshes (spec section 4): mean cross-entropy over
// non-PAD targets (EOS included), perplexity, token accuracy and strict face accuracy (all 9
// tokens of a row right). The trainer's validation and `iflame eval --weights` both use it.
#pragma once
#include <vector>

#include "dataset/format.h"
#include "model/model.h"
#include "train/data.h"

namespace iflame {

class Progress;

struct TeacherForcedOptions {
  int64_t batch_tokens = 16384;  // padded tokens per batch (length-grouped batches, train/data.h)
  int64_t batch_size = 48;       // sequences per batch at most
  int64_t max_faces = 800;       // meshes with more faces are left out
  bool drop_repeated_faces = false;  // score the rows without repeated faces (train/data.h)
  RowNoise noise = {};           // unscored rows in the context (train/data.h insert_noise_rows), seeded by `seed`
  int64_t max_batches = 0;       // stop after this many batches (0: every batch)
  bool bf16 = false;             // bf16 autocast
  uint64_t seed = 12345;         // batch order; fixed so that validation is comparable across steps
  Progress* progress = nullptr;  // if set, counts sequences
};

struct TeacherForcedResult {
  double loss = 0;            // mean cross-entropy (nats) per target
  double perplexity = 0;      // exp(loss)
  double token_accuracy = 0;  // argmax == target over non-PAD targets
  double face_accuracy = 0;   // rows whose 9 targets are all right, over complete rows (EOS row included)
  int64_t sequences = 0, batches = 0, targets = 0, correct = 0, faces = 0, faces_correct = 0;
  int64_t left_out = 0;  // meshes of `indices` with no faces or more than max_faces
};

// Runs the model in eval mode without gradients over the meshes `indices` of `data` (their stored
// canonical rows, no augmentation), on the device of the model's parameters, and restores the
// model's training mode afterwards. Returns zeros (sequences == 0) when no mesh fits max_faces.
TeacherForcedResult evaluate_teacher_forced(IFlameModelImpl& model, const DatasetReader& data,
                                            const std::vector<size_t>& indices, const TeacherForcedOptions& options);

}  // namespace iflame
