// The fused CPU kernels' element types: each takes float32 or bfloat16 tensors (callers check
// which) and calls the kernel template for the tensor's type.
#pragma once
#include "model/torch_compat.h"

namespace iflame::kernels {

// Calls fn(float()) for a float32 tensor, fn(c10::BFloat16()) otherwise.
template <class Fn>
void dispatch_float_or_bf16(const torch::Tensor& x, Fn&& fn) {
  if (x.scalar_type() == torch::kFloat) {
    fn(float());
  } else {
    fn(c10::BFloat16());
  }
}

}  // namespace iflame::kernels
