// `iflame bench decode`: cached-decoding speed and cache memory of iFlame vs the baselines.
// Torch-free header (the CLI includes it without LibTorch's headers).
//
//   (a) exact cache bytes per sequence vs length (K/V, linear states + rings), measured from
//       the HybridCache's own allocations, and iFlame's K/V against the full baseline's;
//   (b) decode throughput (tokens/s) at a given context, each (arch, faces, batch) in its own
//       child process (this binary again, `bench decode --child ...`, one JSON line);
//       `--mode generate` instead times whole generations from 9 BOS to --faces faces (the
//       average context is then half the final length), as `iflame sample` runs them.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/config.h"

namespace iflame::bench {

// One decoding configuration, run in this process (the child side of `bench decode`).
struct DecodeSpec {
  std::string size = "ref";
  Arch arch = Arch::IFlame;
  int64_t faces = 800;      // context: 9 BOS + faces x 9 tokens already in the cache
                            // (generate: the faces every sequence is generated to)
  bool generate = false;    // --mode generate: whole generations from scratch, not one context
  int64_t batch = 1;
  int64_t tokens = 27;      // timed decode steps (a multiple of 9: whole faces)
  int64_t warmup = 9;       // untimed steps first (a multiple of 9)
  bool bf16 = false;        // --precision bf16: weights and K/V in bfloat16 (see generate/fast_decode.h)
  bool torch_path = false;  // --path torch: LibTorch's per-op Block::step instead of the fused kernels
  bool greedy = false;      // argmax instead of iflame sample's default sampling
  int64_t threads = 0;      // <= 0: every hardware thread
  bool count_ops = false;   // count top-level ATen ops per step (RecordFunction)
  uint64_t seed = 1;

  int64_t context_tokens() const { return 9 + 9 * faces; }
};

// Runs the configuration and returns one JSON object (fields in docs/benchmarks.md).
nlohmann::json run_decode(const DecodeSpec& spec);
std::vector<std::string> decode_child_arguments(const DecodeSpec& spec);

// Bytes of a HybridCache for one sequence of `tokens` tokens, as allocated: {kv, state}.
std::pair<int64_t, int64_t> cache_bytes_per_sequence(const ModelConfig& config, int64_t tokens, bool bf16_kv);

}  // namespace iflame::bench
