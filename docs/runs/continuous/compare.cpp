// Side by side: generate() with continuous batching (a finished sample's slot takes the next
// sample) and in lockstep batches (each drained to its longest sample), on a real model whose
// samples end at many lengths. Same seeds, so both must give the same tokens. Build in a tree
// at the commit that added GenerateOptions::continuous, after building the `iflame` target:
//   g++ -O2 -std=c++17 -fopenmp -Isrc -I/usr/include/torch/csrc/api/include docs/runs/continuous/compare.cpp \
//     build/src/libiflame_nn.a build/src/libiflame_core.a -ltorch -ltorch_cpu -lc10 -lassimp -lz -o compare
//   ./compare WEIGHTS N BATCH THREADS ROUNDS
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "generate/generate.h"
#include "kernels/threads.h"
#include "model/weights.h"

using namespace iflame;

int main(int argc, char** argv) {
  if (argc != 6) return std::fprintf(stderr, "usage: compare WEIGHTS N BATCH THREADS ROUNDS\n"), 2;
  set_compute_threads(std::atoll(argv[4]));
  IFlameModel model = load_model(argv[1]);
  model->eval();
  GenerateOptions opts;
  opts.count = std::atoll(argv[2]);
  opts.batch = std::atoll(argv[3]);
  opts.seed = 1;
  std::vector<std::vector<int64_t>> first;
  std::printf("| round | mode | samples | tokens | seconds | tokens/s |\n|---:|---|---:|---:|---:|---:|\n");
  for (int round = 0; round < std::atoi(argv[5]); ++round) {
    for (bool continuous : {true, false}) {
      opts.continuous = continuous;
      GenerateStats stats;
      const auto seqs = generate(*model, TokenizerConfig{}, opts, &stats);
      std::printf("| %d | %s | %lld | %lld | %.1f | %.0f |\n", round, continuous ? "continuous" : "lockstep",
                  (long long)opts.count, (long long)stats.tokens, stats.seconds, double(stats.tokens) / stats.seconds);
      std::fflush(stdout);
      for (size_t i = 0; i < seqs.size(); ++i) {
        if (first.size() < seqs.size()) first.push_back(seqs[i].tokens);
        else if (first[i] != seqs[i].tokens) std::printf("sample %zu differs between the modes\n", i);
      }
    }
  }
}
