// Activation recomputation (gradient checkpointing) per block: the block's forward runs without
// recording a graph and keeps only its input; the backward runs the block again, under the
// autocast state of the original forward, and back-propagates through that copy (parameter
// gradients accumulate into .grad as usual). PyTorch's reentrant torch.utils.checkpoint, which
// LibTorch's C++ API does not have.
//
// `linear` recomputes only the linear-attention blocks: they are cheap to run again (no
// quadratic term) and are 18 of iFlame's 24 blocks, so most activation memory goes for about
// one extra forward of the dense layers. `all` recomputes every block.
#pragma once
#include "model/layers.h"

namespace iflame {

// (The Recompute policy enum lives in model/config.h, torch-free.)

// block.forward(x, cos, sin) through a checkpoint. Only when the graph is being recorded and x
// requires grad; otherwise it is the plain forward.
torch::Tensor checkpointed_block(BlockImpl& block, const torch::Tensor& x, const torch::Tensor& cos,
                                 const torch::Tensor& sin);

}  // namespace iflame
