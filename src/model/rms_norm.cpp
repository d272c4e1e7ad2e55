#include "model/rms_norm.h"

#include "kernels/rms_norm.h"
#include "model/dispatch.h"

namespace iflame::kernels {

using torch::Tensor;

namespace {

class FusedRmsNorm : public torch::autograd::Function<FusedRmsNorm> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& weight, double eps) {
    const int64_t E = x.size(-1), rows = x.numel() / std::max<int64_t>(E, 1);
    Tensor w = weight.to(torch::kFloat).contiguous();
    Tensor y = torch::empty_like(x), inv = torch::empty({rows}, x.options().dtype(torch::kFloat));
    dispatch_float_or_bf16(x, [&](auto tag) {
      using T = decltype(tag);
      rms::forward_rows<T>(x.data_ptr<T>(), w.data_ptr<float>(), y.data_ptr<T>(), inv.data_ptr<float>(), rows, E, float(eps));
    });
    ctx->save_for_backward({x, w, inv});
    ctx->saved_data["weight_dtype"] = int64_t(weight.scalar_type());
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &w = saved[1], &inv = saved[2];
    const Tensor g = grads[0].to(x.scalar_type()).contiguous();
    const int64_t E = x.size(-1), rows = inv.size(0);
    Tensor dx = torch::empty_like(x), dw = torch::empty({E}, w.options());
    dispatch_float_or_bf16(x, [&](auto tag) {
      using T = decltype(tag);
      rms::backward_rows<T>(x.data_ptr<T>(), w.data_ptr<float>(), g.data_ptr<T>(), inv.data_ptr<float>(), dx.data_ptr<T>(),
                       dw.data_ptr<float>(), rows, E);
    });
    const auto weight_dtype = c10::ScalarType(ctx->saved_data["weight_dtype"].toInt());
    return {dx, dw.to(weight_dtype), Tensor()};
  }
};

}  // namespace

Tensor rms_norm_reference(const Tensor& x, const Tensor& weight, double eps) {
  Tensor xf = x.to(torch::kFloat);
  Tensor normed = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
  return (normed * weight.to(torch::kFloat)).to(x.scalar_type());
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  const bool fused = x.device().is_cpu() && weight.device().is_cpu() && x.is_contiguous() && x.dim() >= 1 &&
                     x.size(-1) == weight.numel() && x.numel() > 0 &&
                     (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16);
  if (!fused) return rms_norm_reference(x, weight, eps);
  return FusedRmsNorm::apply(x, weight, eps);
}

}  // namespace iflame::kernels
