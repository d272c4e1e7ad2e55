#include "train/optim.h"

#include <cmath>
#include <map>

#include "util/error.h"

namespace iflame {

using torch::Tensor;

Tensor newton_schulz5(const Tensor& g, int steps, torch::ScalarType dtype) {
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  const bool single = g.dim() == 2;
  Tensor x = single ? g.unsqueeze(0) : g;  // (N, r, c)
  const bool tall = x.size(1) > x.size(2);
  if (tall) x = x.transpose(1, 2);  // (N, r, c) with r <= c: X X^T is the smaller product
  const Tensor norm = x.to(torch::kFloat).flatten(1).norm(2, {1}).view({-1, 1, 1});  // each matrix's own
  x = (x.to(torch::kFloat) / (norm + 1e-7)).to(dtype);
  for (int i = 0; i < steps; ++i) {
    Tensor A = torch::matmul(x, x.transpose(1, 2));  // (N, r, r)
    Tensor B = b * A + c * torch::matmul(A, A);
    x = a * x + torch::matmul(B, x);
  }
  x = x.to(torch::kFloat);
  if (tall) x = x.transpose(1, 2);
  return single ? x.squeeze(0) : x;
}

double scheduled_lr(int64_t step, int64_t total, int64_t warmup, double peak, double floor) {
  if (warmup > 0 && step < warmup) return peak * double(step + 1) / double(warmup);
  const double progress = total > warmup ? std::min(1.0, double(step - warmup) / double(total - warmup)) : 1.0;
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

double rewarmup_factor(int64_t step, int64_t start_step, int64_t rewarmup) {
  if (start_step <= 0 || rewarmup <= 0 || step < start_step) return 1.0;
  return std::min(1.0, double(step - start_step + 1) / double(rewarmup));
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  double sq = 0;
  for (const auto& p : params) {
    if (p.grad().defined()) sq += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
  }
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& p : params) {
      if (p.grad().defined()) p.grad().mul_(scale);
    }
  }
  return norm;
}

Optimizer::Optimizer(std::vector<std::pair<std::string, Tensor>> params, OptimizerOptions options,
                     const std::string& adam_only_prefix)
    : options_(std::move(options)) {
  if (options_.kind != "muon" && options_.kind != "adamw") throw Error("optimizer must be muon or adamw, got '" + options_.kind + "'");
  for (auto& [name, value] : params) {
    Param p;
    p.name = name;
    p.value = value;
    p.muon = options_.kind == "muon" && value.dim() == 2 && name.rfind(adam_only_prefix, 0) != 0;
    p.m = torch::zeros_like(value, value.options().dtype(torch::kFloat));
    if (!p.muon) p.v = torch::zeros_like(value, value.options().dtype(torch::kFloat));
    params_.push_back(std::move(p));
  }
}

bool Optimizer::uses_muon(const std::string& name) const {
  for (const auto& p : params_) {
    if (p.name == name) return p.muon;
  }
  return false;
}

void Optimizer::zero_grad() {
  for (auto& p : params_) {
    if (p.value.grad().defined()) p.value.mutable_grad().zero_();
  }
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double bc1 = 1.0 - std::pow(options_.beta1, double(step_));
  const double bc2 = 1.0 - std::pow(options_.beta2, double(step_));
  // Muon's matrices by shape (a tall one as its transpose): each group runs Newton-Schulz as one
  // batch of matmuls, far cheaper than a call per matrix at small widths.
  std::map<std::pair<int64_t, int64_t>, std::vector<std::pair<Param*, Tensor>>> muon_groups;
  for (auto& p : params_) {
    Tensor g = p.value.grad();
    if (!g.defined()) continue;
    g = g.to(torch::kFloat);
    if (p.muon) {
      p.m.mul_(options_.muon_momentum).add_(g);
      Tensor nesterov = g.add(p.m, options_.muon_momentum);
      if (nesterov.size(0) > nesterov.size(1)) nesterov = nesterov.t();
      muon_groups[{nesterov.size(0), nesterov.size(1)}].emplace_back(&p, nesterov);
    } else {
      p.m.mul_(options_.beta1).add_(g, 1.0 - options_.beta1);
      p.v.mul_(options_.beta2).addcmul_(g, g, 1.0 - options_.beta2);
      Tensor denom = (p.v / bc2).sqrt_().add_(options_.eps);
      p.value.mul_(1.0 - lr * options_.weight_decay);
      p.value.addcdiv_(p.m, denom, -lr / bc1);
    }
  }
  const auto ns_dtype = options_.ns_bf16 ? torch::kBFloat16 : torch::kFloat;
  for (auto& [shape, group] : muon_groups) {
    std::vector<Tensor> stacked;
    for (const auto& [p, g] : group) stacked.push_back(g);
    const Tensor updates = newton_schulz5(torch::stack(stacked), options_.ns_steps, ns_dtype);  // (N, r, c)
    for (size_t i = 0; i < group.size(); ++i) {
      Param& p = *group[i].first;
      Tensor update = updates[int64_t(i)];
      if (update.sizes() != p.value.sizes()) update = update.t();  // a tall matrix, transposed back
      const double scaled = lr * 0.2 * std::sqrt(double(std::max(p.value.size(0), p.value.size(1))));
      p.value.mul_(1.0 - lr * options_.weight_decay);
      p.value.add_(update.to(p.value.scalar_type()), -scaled);
    }
  }
}

std::map<std::string, Tensor> Optimizer::state() const {
  std::map<std::string, Tensor> out;
  for (const auto& p : params_) {
    out[p.name + (p.muon ? ".momentum" : ".exp_avg")] = p.m;
    if (!p.muon) out[p.name + ".exp_avg_sq"] = p.v;
  }
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state, int64_t step) {
  torch::NoGradGuard no_grad;
  auto take = [&](const std::string& key, Tensor& dst) {
    auto it = state.find(key);
    if (it == state.end()) throw Error("optimizer state has no '" + key + "' (a checkpoint of another optimizer?)");
    if (it->second.sizes() != dst.sizes()) throw Error("optimizer state '" + key + "' has the wrong shape");
    dst.copy_(it->second);
  };
  for (auto& p : params_) {
    take(p.name + (p.muon ? ".momentum" : ".exp_avg"), p.m);
    if (!p.muon) take(p.name + ".exp_avg_sq", p.v);
  }
  step_ = step;
}

}  // namespace iflame
