// The cache as the decoders use it: the model's HybridCache (model/cache.h, the memory) plus the
// decode policy, which path runs each step and the fused kernels' packed weights.
#pragma once
#include <memory>

#include "model/cache.h"

namespace iflame {

// How decode_step runs one token. Auto: the fused CPU kernels of generate/fast_decode.h when
// the cache lives on the CPU with float32 or bfloat16 K/V (weights packed in the same
// precision), else LibTorch's per-op Block::step path. Torch: always the per-op path (the
// reference the fused kernels are tested against, and `iflame bench decode --path torch`).
enum class DecodePath { Auto, Torch };

struct FastDecodeState;  // generate/fast_decode.cpp: the packed weights in use, scratch buffers

struct DecodeCache : HybridCache {
  using HybridCache::HybridCache;
  DecodePath path = DecodePath::Auto;
  std::shared_ptr<FastDecodeState> fast;  // set by the fused decoder on first use
};

}  // namespace iflame
