#include "train/data.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <numeric>
#include <random>

#include "tokenizer/face_rules.h"
#include "util/error.h"

namespace iflame {

namespace {

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

size_t tokens_of(const DatasetReader& data, size_t i) { return sequence_tokens(data[i].num_faces); }

}  // namespace

std::vector<std::vector<size_t>> plan_epoch(const DatasetReader& data, const std::vector<size_t>& indices,
                                            const BatchPlanOptions& options, uint64_t seed, int64_t epoch) {
  std::vector<size_t> order;
  for (size_t i : indices) {
    if (int64_t(data[i].num_faces) <= options.max_faces && data[i].num_faces > 0) order.push_back(i);
  }
  if (order.empty()) throw Error(data.path(), "no meshes with 1.." + std::to_string(options.max_faces) + " faces to train on");
  std::mt19937_64 rng(mix(seed, uint64_t(epoch)));
  std::shuffle(order.begin(), order.end(), rng);
  // Sort within windows of shuffled meshes so batches hold similar lengths, then shuffle batches.
  const size_t window = size_t(std::max<int64_t>(options.batch_size, 1)) * 50;
  for (size_t w = 0; w < order.size(); w += window) {
    auto end = order.begin() + std::min(order.size(), w + window);
    std::stable_sort(order.begin() + w, end, [&](size_t a, size_t b) { return tokens_of(data, a) < tokens_of(data, b); });
  }
  std::vector<std::vector<size_t>> batches;
  std::vector<size_t> cur;
  size_t longest = 0;
  for (size_t i : order) {
    const size_t len = tokens_of(data, i);
    const size_t new_longest = std::max(longest, len);
    if (!cur.empty() && (int64_t((cur.size() + 1) * new_longest) > options.batch_tokens ||
                         int64_t(cur.size()) >= options.batch_size)) {
      batches.push_back(std::move(cur));
      cur.clear();
      longest = 0;
    }
    cur.push_back(i);
    longest = std::max(longest, len);
  }
  if (!cur.empty()) batches.push_back(std::move(cur));
  std::shuffle(batches.begin(), batches.end(), rng);
  return batches;
}

namespace {

// The flat row of insert_noise_rows from face row `src`, or false when no third corner fits the grid.
bool flat_row(const int64_t* src, int64_t* out, const TokenizerConfig& config) {
  const int64_t *v0 = src, *v1 = src + 3, *v2 = src + 6;
  // Third corners in order of preference, each with the corner whose line through v0 holds it.
  struct Candidate {
    const int64_t* corner;
    std::array<int64_t, 3> third;
    bool whole;  // the midpoint is on the grid only when every sum is even
  };
  const bool even = (v0[0] + v1[0]) % 2 == 0 && (v0[1] + v1[1]) % 2 == 0 && (v0[2] + v1[2]) % 2 == 0;
  const Candidate candidates[] = {
      {v1, {2 * v1[0] - v0[0], 2 * v1[1] - v0[1], 2 * v1[2] - v0[2]}, true},
      {v2, {2 * v2[0] - v0[0], 2 * v2[1] - v0[1], 2 * v2[2] - v0[2]}, true},
      {v1, {(v0[0] + v1[0]) / 2, (v0[1] + v1[1]) / 2, (v0[2] + v1[2]) / 2}, even},
  };
  for (const Candidate& c : candidates) {
    if (!c.whole || !std::all_of(c.third.begin(), c.third.end(), [&](int64_t t) { return config.is_coordinate(t); })) continue;
    std::copy_n(v0, 3, out);
    std::copy_n(c.corner, 3, out + 3);
    std::copy_n(c.third.begin(), 3, out + 6);
    return true;
  }
  return false;
}

// The next row of a collapsed fan after flat row `prev` = (A, B, C), all on one line: (A, C, D)
// with D one to four grid steps beyond C, away from A. False when D would leave the grid.
bool next_fan_row(const int64_t* prev, int64_t* out, std::mt19937_64& rng, const TokenizerConfig& config) {
  const int64_t *a = prev, *c = prev + 6;
  const int64_t away[3] = {c[0] - a[0], c[1] - a[1], c[2] - a[2]};
  const int64_t g = std::gcd(std::gcd(std::abs(away[0]), std::abs(away[1])), std::abs(away[2]));
  if (g == 0) return false;
  const int64_t k = std::uniform_int_distribution<int64_t>(1, 4)(rng);
  std::copy_n(a, 3, out);
  std::copy_n(c, 3, out + 3);
  for (int i = 0; i < 3; ++i) {
    out[6 + i] = c[i] + k * away[i] / g;
    if (!config.is_coordinate(out[6 + i])) return false;
  }
  return true;
}

}  // namespace

std::vector<int64_t> insert_noise_rows(std::vector<int64_t>& seq, const RowNoise& noise, size_t max_face_rows,
                                       std::mt19937_64& rng, const TokenizerConfig& config) {
  constexpr size_t kReach = 32;    // how far back a source row may be
  constexpr int kMaxFanRows = 16;  // rows a collapsed fan adds after its first flat row
  const size_t rows = seq.size() / kTokensPerFace;
  size_t face_rows = 0;
  for (size_t r = 0; r < rows; ++r) face_rows += is_face_row(&seq[r * kTokensPerFace], config);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::bernoulli_distribution previous(0.5);
  std::vector<int64_t> inputs, targets;
  std::vector<size_t> earlier;  // offsets in `seq` of the face rows passed so far
  for (size_t r = 0; r < rows; ++r) {
    const int64_t* row = &seq[r * kTokensPerFace];
    const bool face = is_face_row(row, config);
    const double u = face && !earlier.empty() && face_rows < max_face_rows ? uniform(rng) : 1.0;
    if (u < noise.copy + noise.flat) {
      const size_t back = previous(rng) ? 1 : std::uniform_int_distribution<size_t>(1, std::min(earlier.size(), kReach))(rng);
      const int64_t* src = &seq[earlier[earlier.size() - back]];
      std::array<int64_t, kTokensPerFace> inserted;
      const bool flat = u >= noise.copy && flat_row(src, inserted.data(), config);
      if (!flat) std::copy_n(src, kTokensPerFace, inserted.begin());
      inputs.insert(inputs.end(), inserted.begin(), inserted.end());
      targets.insert(targets.end(), kTokensPerFace, config.pad());
      ++face_rows;
      // A collapsed fan goes on from a flat row, while the grid and the face cap allow.
      for (int more = 0; flat && noise.fan > 0 && more < kMaxFanRows && face_rows < max_face_rows && uniform(rng) < noise.fan;
           ++more) {
        std::array<int64_t, kTokensPerFace> next;
        if (!next_fan_row(inserted.data(), next.data(), rng, config)) break;
        inserted = next;
        inputs.insert(inputs.end(), inserted.begin(), inserted.end());
        targets.insert(targets.end(), kTokensPerFace, config.pad());
        ++face_rows;
      }
    }
    inputs.insert(inputs.end(), row, row + kTokensPerFace);
    targets.insert(targets.end(), row, row + kTokensPerFace);
    if (face) earlier.push_back(r * kTokensPerFace);
  }
  const auto tail = seq.begin() + std::ptrdiff_t(rows * kTokensPerFace);  // a partial row, kept as it is
  inputs.insert(inputs.end(), tail, seq.end());
  targets.insert(targets.end(), tail, seq.end());
  seq = std::move(inputs);
  return targets;
}

TokenBatch TokenBatch::to(const torch::Device& device) const {
  TokenBatch out;
  out.inputs = inputs.to(device);
  out.targets = targets.is_same(inputs) ? out.inputs : targets.to(device);
  if (unlikely.defined()) out.unlikely = unlikely.to(device);
  return out;
}

TokenBatch make_batch(const DatasetReader& data, const std::vector<size_t>& batch, bool augment, uint64_t seed,
                      int64_t epoch, const BatchPlanOptions& options) {
  const TokenizerConfig tk = data.tokenizer_config();
  std::vector<std::vector<int64_t>> seqs, targets;
  size_t L = 0;
  for (size_t i : batch) {
    const DatasetMesh m = data[i];
    std::vector<int64_t> seq;
    if (augment) {
      std::mt19937_64 rng(mix(mix(seed, uint64_t(epoch)), uint64_t(i)));
      try {
        const CanonicalMesh cm = canonicalize_normalized(augment_mesh(m.to_mesh(), rng), tk);
        if (!cm.faces.empty() && int64_t(cm.faces.size()) <= options.max_faces) seq = encode_sequence(cm, tk);
      } catch (const Error&) {
        // A degenerate augmented mesh: fall back to the stored rows below.
      }
    }
    if (seq.empty()) seq = m.sequence(tk);
    if (options.drop_repeated_faces) drop_repeated_face_rows(seq, tk);
    if (options.noise.any()) {
      std::mt19937_64 rng(mix(mix(mix(seed, uint64_t(epoch)), uint64_t(i)), 0x7265706561747321ull));
      targets.push_back(insert_noise_rows(seq, options.noise, size_t(options.max_faces), rng, tk));
    }
    L = std::max(L, seq.size());
    seqs.push_back(std::move(seq));
  }
  auto to_tensor = [&](const std::vector<std::vector<int64_t>>& rows) {  // (B, L), PAD-filled
    torch::Tensor out = torch::full({int64_t(rows.size()), int64_t(L)}, int64_t(tk.pad()), torch::kLong);
    auto acc = out.accessor<int64_t, 2>();
    for (size_t b = 0; b < rows.size(); ++b) {
      for (size_t t = 0; t < rows[b].size(); ++t) acc[int64_t(b)][int64_t(t)] = rows[b][t];
    }
    return out;
  };
  TokenBatch out;
  out.inputs = to_tensor(seqs);
  out.targets = targets.empty() ? out.inputs : to_tensor(targets);
  if (options.unlikely) {
    std::vector<int64_t> pairs;  // (b L + t, v), flattened
    for (size_t b = 0; b < seqs.size(); ++b) {
      const std::vector<int64_t>& seq = seqs[b];
      const std::vector<int64_t>& target = targets.empty() ? seq : targets[b];
      for (size_t t = kTokensPerFace; t < seq.size(); ++t) {
        // Noise rows too (unscored: their targets are PAD): at the last coordinate of an
        // inserted copy or flat row, the token in the input is exactly what the model must not
        // write there, as in its looping samples.
        for (int64_t v : unlikely_coordinates(seq.data(), int64_t(t), tk)) {
          if (v == target[t]) continue;  // a scored target (real data holds a few flat faces)
          pairs.push_back(int64_t(b * L + t));
          pairs.push_back(v);
        }
      }
    }
    out.unlikely = torch::tensor(pairs, torch::kLong).reshape({-1, 2});
  }
  return out;
}

BatchStream::BatchStream(const DatasetReader& data, std::vector<size_t> indices, BatchPlanOptions options,
                         bool augment, uint64_t seed, DataPosition start, int64_t shard, int64_t shards)
    : data_(data),
      indices_(std::move(indices)),
      options_(options),
      augment_(augment),
      seed_(seed),
      pos_(start),
      shard_(shard),
      shards_(shards) {
  if (shards_ < 1 || shard_ < 0 || shard_ >= shards_) throw Error("BatchStream: shard " + std::to_string(shard_) + " of " + std::to_string(shards_));
  plan_ = plan_epoch(data_, indices_, options_, seed_, pos_.epoch);
}

TokenBatch BatchStream::next() {
  if (pos_.batch >= int64_t(plan_.size())) {
    ++pos_.epoch;
    pos_.batch = 0;
    plan_ = plan_epoch(data_, indices_, options_, seed_, pos_.epoch);
  }
  const std::vector<size_t>& planned = plan_[size_t(pos_.batch)];
  TokenBatch batch;
  if (shards_ == 1) {
    batch = make_batch(data_, planned, augment_, seed_, pos_.epoch, options_);
  } else {
    const size_t n = planned.size(), begin = n * size_t(shard_) / size_t(shards_),
                 end = n * size_t(shard_ + 1) / size_t(shards_);
    const std::vector<size_t> part(planned.begin() + std::ptrdiff_t(begin), planned.begin() + std::ptrdiff_t(end));
    if (part.empty()) {
      batch.inputs = batch.targets = torch::zeros({0, 0}, torch::kLong);
    } else {
      batch = make_batch(data_, part, augment_, seed_, pos_.epoch, options_);
    }
  }
  ++pos_.batch;
  return batch;
}

}  // namespace iflame
