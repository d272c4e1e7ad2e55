// The one place where LibTorch 1.13 (Debian) and 2.x (GPU machines) differ for us.
// Everything else in the project uses these names and never checks versions itself.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#define IFLAME_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace iflame::compat {

// 1.13 spells it c10::optional; 2.x aliases it to std::optional. Use this alias everywhere.
template <typename T>
using optional = c10::optional<T>;
inline constexpr auto nullopt = c10::nullopt;

// Read-only data pointer: `const_data_ptr` exists only in 2.x.
template <typename T>
inline const T* cdata(const torch::Tensor& t) {
  return t.data_ptr<T>();
}

// Fused scaled-dot-product attention exists from 2.0 on (flash / memory-efficient kernels on CUDA).
inline constexpr bool has_sdpa = IFLAME_TORCH_AT_LEAST(2, 0);

#if IFLAME_TORCH_AT_LEAST(2, 0)
// q, k, v: (B, H, T, D) -> (B, H, T, D), causal, scale 1/sqrt(D).
inline torch::Tensor sdpa_causal(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true);
}
#endif

inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace iflame::compat
