#include "dataset/stats.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace iflame {

UnigramBaseline unigram_baseline(const DatasetReader& data, int64_t max_faces, bool drop_repeated_faces) {
  const TokenizerConfig cfg = data.tokenizer_config();
  const size_t vocab = size_t(cfg.vocab_size());
  UnigramBaseline out;
  auto for_targets = [&](Split split, int64_t& meshes, auto&& fn) {
    for (size_t i : data.indices(split)) {
      const DatasetMesh m = data[i];
      if (max_faces > 0 && int64_t(m.num_faces) > max_faces) continue;
      ++meshes;
      std::vector<int64_t> seq = m.sequence(cfg);
      if (drop_repeated_faces) drop_repeated_face_rows(seq, cfg);
      for (size_t t = kTokensPerFace; t < seq.size(); ++t) {
        if (seq[t] != cfg.pad()) fn(seq[t]);
      }
    }
  };
  std::vector<int64_t> counts(vocab, 0);
  for_targets(Split::kTrain, out.train_meshes, [&](int64_t tok) {
    ++counts[size_t(tok)];
    ++out.train_targets;
  });
  if (out.train_targets == 0) throw Error(data.path() + ": no training meshes to count tokens from");
  const size_t best = size_t(std::max_element(counts.begin(), counts.end()) - counts.begin());
  const double total = double(out.train_targets) + double(vocab);
  double nll = 0;
  int64_t hits = 0;
  for_targets(Split::kVal, out.val_meshes, [&](int64_t tok) {
    nll -= std::log((double(counts[size_t(tok)]) + 1.0) / total);
    hits += size_t(tok) == best;
    ++out.val_targets;
  });
  if (out.val_targets == 0) throw Error(data.path() + ": no validation meshes to score the baseline on");
  out.cross_entropy = nll / double(out.val_targets);
  out.perplexity = std::exp(out.cross_entropy);
  out.accuracy = double(hits) / double(out.val_targets);
  return out;
}

}  // namespace iflame
