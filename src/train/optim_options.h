// The optimizer's settings, apart from the optimizer (no LibTorch), so that the training config
// stays torch-free (its parser is fuzzed in a build without LibTorch).
#pragma once
#include <string>

namespace iflame {

struct OptimizerOptions {
  std::string kind = "muon";  // "muon" (Muon + AdamW split) or "adamw" (AdamW everywhere)
  double weight_decay = 0.1;
  double beta1 = 0.95, beta2 = 0.95, eps = 1e-8;
  double muon_momentum = 0.95;
  int ns_steps = 5;
  // Newton-Schulz in bfloat16 (else float32), as Muon's own code and Moonlight's, whose lr scale
  // the reference uses, run it: X = G.bfloat16().
  bool ns_bf16 = false;
};

}  // namespace iflame
