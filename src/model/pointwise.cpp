#include "model/pointwise.h"

#include "kernels/pointwise.h"
#include "model/dispatch.h"

namespace iflame::kernels {

using torch::Tensor;

namespace {

bool fusable(const Tensor& t) {
  return t.device().is_cpu() && t.is_contiguous() && (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kBFloat16);
}

class FusedRope : public torch::autograd::Function<FusedRope> {
 public:
  // x (B, T, H, D) -> (B, H, T, D)
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& cos, const Tensor& sin) {
    const pointwise::RopeDims dims{x.size(0), x.size(1), x.size(2), x.size(3)};
    Tensor y = torch::empty({dims.B, dims.H, dims.T, dims.D}, x.options());
    dispatch_float_or_bf16(x, [&](auto tag) {
      using S = decltype(tag);
      pointwise::rope_forward<S>(x.data_ptr<S>(), cos.data_ptr<float>(), sin.data_ptr<float>(), y.data_ptr<S>(), dims);
    });
    ctx->save_for_backward({cos, sin});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor dy = grads[0].contiguous();  // (B, H, T, D), the output's shape
    const pointwise::RopeDims dims{dy.size(0), dy.size(2), dy.size(1), dy.size(3)};
    Tensor dx = torch::empty({dims.B, dims.T, dims.H, dims.D}, dy.options());
    dispatch_float_or_bf16(dy, [&](auto tag) {
      using S = decltype(tag);
      pointwise::rope_backward<S>(dy.data_ptr<S>(), saved[0].data_ptr<float>(), saved[1].data_ptr<float>(), dx.data_ptr<S>(),
                                  dims);
    });
    return {dx, Tensor(), Tensor()};
  }
};

class FusedSwiGLU : public torch::autograd::Function<FusedSwiGLU> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& a, const Tensor& b) {
    Tensor y = torch::empty_like(a);
    dispatch_float_or_bf16(a, [&](auto tag) {
      using S = decltype(tag);
      pointwise::swiglu_forward<S>(a.data_ptr<S>(), b.data_ptr<S>(), y.data_ptr<S>(), a.numel());
    });
    ctx->save_for_backward({a, b});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &a = saved[0], &b = saved[1];
    const Tensor dy = grads[0].to(a.scalar_type()).contiguous();
    Tensor da = torch::empty_like(a), db = torch::empty_like(b);
    dispatch_float_or_bf16(a, [&](auto tag) {
      using S = decltype(tag);
      pointwise::swiglu_backward<S>(a.data_ptr<S>(), b.data_ptr<S>(), dy.data_ptr<S>(), da.data_ptr<S>(), db.data_ptr<S>(),
                                    a.numel());
    });
    return {da, db};
  }
};

}  // namespace

Tensor rope_reference(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  Tensor c = cos.to(x.scalar_type()), s = sin.to(x.scalar_type());  // (T, D/2) broadcasts over (B, H)
  return torch::cat({x1 * c + x2 * s, x2 * c - x1 * s}, -1);
}

Tensor rope_heads(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const bool fused = fusable(x) && x.dim() == 4 && x.size(3) % 2 == 0 && x.numel() > 0 && cos.device().is_cpu() &&
                     cos.scalar_type() == torch::kFloat && sin.scalar_type() == torch::kFloat && cos.is_contiguous() &&
                     sin.is_contiguous() && cos.sizes() == sin.sizes() && cos.dim() == 2 && cos.size(0) == x.size(1) &&
                     cos.size(1) == x.size(3) / 2;
  if (!fused) return rope_reference(x.transpose(1, 2), cos, sin);
  return FusedRope::apply(x, cos, sin);
}

Tensor swiglu_gate(const Tensor& a, const Tensor& b) {
  const bool fused = fusable(a) && fusable(b) && a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() && a.numel() > 0;
  if (!fused) return torch::silu(a) * b;
  return FusedSwiGLU::apply(a, b);
}

}  // namespace iflame::kernels
