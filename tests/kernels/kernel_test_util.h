// Helpers of the kernel tests: every instruction set this CPU has, and random inputs.
#pragma once
#include <random>
#include <vector>

#include "kernels/cpu_isa.h"
#include "kernels/decode.h"

namespace iflame {

inline std::vector<decode::Isa> isas() {
  std::vector<decode::Isa> out;
  for (auto isa : {decode::Isa::Generic, decode::Isa::Avx512, decode::Isa::Avx512Bf16}) {
    if (isa <= decode::detected_isa()) out.push_back(isa);
  }
  return out;
}

// Restores the detected instruction set when a test ends.
struct IsaScope {
  explicit IsaScope(decode::Isa isa) { decode::set_isa(isa); }
  ~IsaScope() { decode::set_isa(decode::detected_isa()); }
};

inline std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace iflame
