// Optimizers of the reference (spec section 4), written out so that their state is plain
// named tensors (saved in checkpoints as safetensors):
//   Muon  for matrices: momentum 0.95, Nesterov, 5 Newton-Schulz steps with coefficients
//         (3.4445, -4.7750, 2.0315), per-matrix lr * 0.2 * sqrt(max(rows, cols)), decoupled
//         weight decay;
//   AdamW for the output head, vectors and biases (betas 0.95/0.95, eps 1e-8).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "model/torch_compat.h"
#include "train/optim_options.h"

namespace iflame {

class Optimizer {
 public:
  // `params`: name -> parameter. With kind "muon", every 2-D parameter except those whose
  // name starts with `adam_only_prefix` (the output head) goes to Muon.
  Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params, OptimizerOptions options,
            const std::string& adam_only_prefix = "output_proj.");
  void zero_grad();
  void step(double lr);  // lr: the scheduled base learning rate of this step
  int64_t steps() const { return step_; }
  bool uses_muon(const std::string& name) const;

  // State as named tensors ("<param>.exp_avg", "<param>.exp_avg_sq", "<param>.momentum") plus
  // the step count, for checkpoints.
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state, int64_t step);

 private:
  struct Param {
    std::string name;
    torch::Tensor value;
    bool muon = false;
    torch::Tensor m, v;  // Adam moments, or Muon momentum in m
  };
  std::vector<Param> params_;
  OptimizerOptions options_;
  int64_t step_ = 0;
};

// The orthogonalizing Newton-Schulz iteration of Muon on one matrix (rows, cols) or on a batch
// of same-shaped matrices (N, rows, cols), each on its own, with its arithmetic in `dtype`
// (float32 or bfloat16); the result is float32 of g's shape.
torch::Tensor newton_schulz5(const torch::Tensor& g, int steps = 5, torch::ScalarType dtype = torch::kFloat);

// Linear warmup over `warmup` steps, then cosine from `peak` to `floor` at `total`.
double scheduled_lr(int64_t step, int64_t total, int64_t warmup, double peak, double floor = 0.0);
// The factor on scheduled_lr for a run that started at `start_step` > 0 with empty optimizer
// moments (train.init_step): a linear ramp over `rewarmup` steps, then 1. Always 1 for a run
// that started at step 0 (its own warmup does the job).
double rewarmup_factor(int64_t step, int64_t start_step, int64_t rewarmup);

// Clips the global L2 norm of the gradients to `max_norm` (<= 0: no clipping); returns the
// norm before clipping (NaN/Inf when a gradient is not finite).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace iflame
