#include "model/recompute.h"

#include "model/torch_compat.h"

namespace iflame {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

namespace {

struct BlockCheckpoint : public torch::autograd::Function<BlockCheckpoint> {
  // Function::apply runs this with grad recording off: nothing inside the block is kept.
  static Tensor forward(AutogradContext* ctx, const Tensor& x, BlockImpl* block, const Tensor& cos, const Tensor& sin) {
    const c10::DeviceType device = x.device().type();
    // The block outlives the graph (the model owns it); IValue has no raw-pointer type.
    ctx->saved_data["block"] = int64_t(reinterpret_cast<intptr_t>(block));
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    ctx->saved_data["autocast"] = compat::autocast_enabled(device);
    ctx->saved_data["autocast_dtype"] = int64_t(compat::autocast_dtype(device));
    ctx->save_for_backward({x});
    return block->forward(x, cos, sin, nullptr, "", nullptr);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto* block = reinterpret_cast<BlockImpl*>(intptr_t(ctx->saved_data["block"].toInt()));
    const Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    const Tensor cos = ctx->saved_data["cos"].toTensor(), sin = ctx->saved_data["sin"].toTensor();
    Tensor out;
    {
      torch::AutoGradMode grad_mode(true);
      compat::AutocastGuard autocast(x.device().type(), c10::ScalarType(ctx->saved_data["autocast_dtype"].toInt()),
                                     ctx->saved_data["autocast"].toBool());
      out = block->forward(x, cos, sin, nullptr, "", nullptr);
    }
    // Reentrant backward through the recomputed block: parameter gradients accumulate in .grad.
    torch::autograd::backward({out}, {grad_out[0]});
    return {x.grad(), Tensor(), Tensor(), Tensor()};  // one per forward argument
  }
};

}  // namespace

Tensor checkpointed_block(BlockImpl& block, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return block.forward(x, cos, sin, nullptr, "", nullptr);
  return BlockCheckpoint::apply(x, &block, cos, sin);
}

}  // namespace iflame
