// Training batches from a prepared dataset: a seeded shuffle per epoch, then batches of
// similar lengths packed to a token budget (the reference pads everything to 769 rows), with
// the reference's augmentation applied per sample before quantizing. Every choice is a pure
// function of (seed, epoch, position), so a resumed run sees exactly the same data.
#pragma once
#include <random>
#include <vector>

#include "dataset/format.h"
#include "model/torch_compat.h"
#include "train/row_noise.h"

namespace iflame {

struct BatchPlanOptions {
  int64_t batch_tokens = 16384;  // padded tokens per batch
  int64_t batch_size = 48;       // sequences per batch at most
  int64_t max_faces = 800;
  bool drop_repeated_faces = false;  // make_batch: drop_repeated_face_rows on every sequence
  RowNoise noise = {};               // make_batch: insert_noise_rows
  bool unlikely = false;             // make_batch: fill TokenBatch::unlikely (train.unlikelihood)
};

// A batch as the trainer uses it: what the model reads and what its loss scores.
struct TokenBatch {
  torch::Tensor inputs;   // (B, L) int64
  torch::Tensor targets;  // (B, L) int64: `inputs`, with PAD where a position is not scored
  // (N, 2) int64 rows (b L + t, v): at position t of sequence b, coordinate v would copy an
  // earlier face row or leave the face without area (tokenizer/face_rules.h), and is not the
  // scored target there; the positions of noise rows count too, their own tokens included.
  // What train.unlikelihood pushes down. Undefined unless BatchPlanOptions::unlikely.
  torch::Tensor unlikely;
  // On `device`; targets that are the inputs themselves (no noise rows) are copied once.
  TokenBatch to(const torch::Device& device) const;
};

// Inserts `noise` rows into `seq`: teacher forcing alone never shows the model a context like
// its own samples once they loop (on copies, then, when those are learned, on flat faces). The
// source row is the face row just before half the time, else one of the 32 before it. A flat
// row keeps the source's first two corners (v0, v1) and puts the third on their line, at
// 2 v1 - v0 (else 2 v2 - v0, else the midpoint; a copy when none is on the grid), so the first
// corner stays the smallest, as the grammar wants. With noise.fan, a flat row may be followed by
// more rows of a collapsed fan: (A, C, D) after (A, B, C), D a few grid steps further along the
// line, as looping samples write them. Rows go in until `seq` holds `max_face_rows`
// face rows. Returns the targets: the new `seq` with PAD over the inserted rows, so the loss
// never teaches a copy or a flat face, only what follows one.
std::vector<int64_t> insert_noise_rows(std::vector<int64_t>& seq, const RowNoise& noise, size_t max_face_rows,
                                       std::mt19937_64& rng, const TokenizerConfig& config);

// The batches of one epoch over `indices`: lists of dataset indices.
std::vector<std::vector<size_t>> plan_epoch(const DatasetReader& data, const std::vector<size_t>& indices,
                                            const BatchPlanOptions& options, uint64_t seed, int64_t epoch);

// Builds the (B, L) int64 token batch: each mesh augmented (seeded by seed/epoch/index) and
// canonicalized, or its stored canonical rows when `augment` is false; PAD-filled to the
// longest sequence. Augmented meshes that exceed options.max_faces fall back to the stored rows;
// with options.drop_repeated_faces, rows that repeat an earlier face are dropped; with
// options.noise, noise rows are inserted (seeded like the augmentation); with options.unlikely,
// `unlikely` lists the coordinates that break the face rules at each face-row position.
TokenBatch make_batch(const DatasetReader& data, const std::vector<size_t>& batch, bool augment, uint64_t seed,
                      int64_t epoch, const BatchPlanOptions& options);

// Position in the data stream, stored in checkpoints.
struct DataPosition {
  int64_t epoch = 0;
  int64_t batch = 0;  // next batch within the epoch
};

// With `shards` > 1 (data parallel), every shard walks the same plan and takes its part of
// each planned batch: shard r gets sequences [r n / shards, (r + 1) n / shards) of a batch of
// n, so the shards together see exactly what one process would (an empty (0, 0) tensor when
// a batch has fewer sequences than shards).
class BatchStream {
 public:
  BatchStream(const DatasetReader& data, std::vector<size_t> indices, BatchPlanOptions options, bool augment,
              uint64_t seed, DataPosition start = {}, int64_t shard = 0, int64_t shards = 1);
  TokenBatch next();  // the next batch (this shard's part), advancing (and starting new epochs as needed)
  DataPosition position() const { return pos_; }
  size_t batches_per_epoch() const { return plan_.size(); }

 private:
  const DatasetReader& data_;
  std::vector<size_t> indices_;
  BatchPlanOptions options_;
  bool augment_;
  uint64_t seed_;
  DataPosition pos_;
  int64_t shard_, shards_;
  std::vector<std::vector<size_t>> plan_;
};

}  // namespace iflame
