// The fused CPU decoder: decode_step for a CPU cache in float32 or bfloat16, on the kernels of
// kernels/decode.h instead of LibTorch ops (one LibTorch op costs microseconds, and a
// token of the `ref` model needs ~1000 of them on the per-op path).
//
// Weights are packed once per (model, precision) into panels (fused q/k/v, fused SwiGLU
// gate/up, the head kept in float32) and kept in a process-wide registry while the model
// lives. Every step checks the parameters' data pointers and version counters (bumped by
// every in-place change: load_weights, optimizer steps, to()), and repacks when they moved;
// writes through `.data()` or raw pointers bypass version counting and are not seen.
// --precision bf16 stores weights and K/V in bfloat16; arithmetic is float32 except the matmuls'
// inputs on CPUs with AVX512-BF16 (kernels/decode.h).
#pragma once
#include <vector>

#include "generate/decode_cache.h"
#include "model/model.h"

namespace iflame {

// True when decode_step would use the fused kernels for this model and cache: path Auto, the
// cache on the CPU with float32 or bfloat16 K/V, the model's parameters float32 on the CPU.
bool fast_decode_supported(const IFlameModelImpl& model, const DecodeCache& cache);
// The model's half of that test (parameters float32 on the CPU): a fresh CPU cache of float32 or
// bfloat16 K/V on path Auto then passes the whole.
bool fast_decode_supported(const IFlameModelImpl& model);

// One decode step on the fused kernels (the contract of decode_step in generate/decoder.h).
torch::Tensor fast_decode_step(IFlameModelImpl& model, DecodeCache& cache, const torch::Tensor& token);

// A ragged step for continuous batching: compact row i is the cache's row rows[i], which consumes
// tokens[i] at its own position positions[i] (rows need not share a position; each runs the
// hourglass stages its own position completes). Returns the logits (rows.size(), V). Leaves
// cache.position alone: the caller tracks each row's position. A row's result does not depend
// on which other rows run with it.
torch::Tensor fast_decode_rows(IFlameModelImpl& model, DecodeCache& cache, const std::vector<int64_t>& rows,
                               const std::vector<int64_t>& positions, const std::vector<int64_t>& tokens);

// Bytes of the packed weights the fused decoder holds for `model` (0 if none yet).
int64_t fast_decode_weight_bytes(const IFlameModelImpl& model);

}  // namespace iflame
