#include "kernels/cpu_isa.h"

#include <atomic>
#include <string>

#include "util/error.h"

namespace iflame::cpu {

namespace {

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  if (!avx512) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? Isa::Avx2 : Isa::Generic;
  return __builtin_cpu_supports("avx512bf16") ? Isa::Avx512Bf16 : Isa::Avx512;
#else
  return Isa::Generic;
#endif
}

std::atomic<int> g_forced_isa{-1};

}  // namespace

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() {
  const int forced = g_forced_isa.load(std::memory_order_relaxed);
  return forced < 0 ? detected_isa() : Isa(forced);
}

void set_isa(Isa isa) {
  if (isa > detected_isa()) throw Error(std::string("CPU kernels: this CPU cannot run ") + isa_name(isa));
  g_forced_isa.store(int(isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Avx512Bf16: return "avx512-bf16";
    default: return "generic";
  }
}

}  // namespace iflame::cpu
