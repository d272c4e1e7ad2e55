// RMSNorm as one fused CPU kernel with its own backward (spec section 2: computed in float32,
// output in the input's dtype). The composite form (to float, pow, mean, rsqrt, two products,
// cast back: 8 tensor ops forward and about twice that backward, each a pass over (rows, E))
// cost a tenth of a training step at small widths, where each pass is a few cheap bytes per
// element.
#pragma once
#include "model/torch_compat.h"

namespace iflame::kernels {

// y = float(x) * rsqrt(mean(float(x)^2, -1) + eps) * float(weight), cast to x's dtype.
// The fused kernel runs for contiguous float32 / bfloat16 CPU inputs (the training and decoding
// cases); everything else takes the composite form (rms_norm_reference).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// The composite form, as the reference writes it.
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace iflame::kernels
