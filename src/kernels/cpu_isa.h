// Which SIMD instruction set the hand-written CPU kernels use (the fused decoder's and the
// flash attention's): chosen at run time from what the CPU supports, lowered by tests to check
// one path against another.
#pragma once

namespace iflame::cpu {

// Ordered: each level includes the one before. Avx2 means AVX2 with FMA; only the flash
// attention has code for it (the decoder runs its portable code there).
enum class Isa { Generic, Avx2, Avx512, Avx512Bf16 };
Isa detected_isa();        // the best this CPU supports
Isa active_isa();          // what the kernels use: detected_isa() unless set_isa() said otherwise
void set_isa(Isa isa);     // tests; throws iflame::Error when asking for more than the CPU has
const char* isa_name(Isa isa);
inline bool avx512() { return active_isa() >= Isa::Avx512; }  // the kernels' AVX-512 paths run

}  // namespace iflame::cpu
