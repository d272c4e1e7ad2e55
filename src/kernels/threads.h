// How many threads the compute uses: ATen's intra-op pool (and so these kernels' parallel
// loops), OpenBLAS's own pool, and one inter-op thread. Every command and benchmark sets it
// through here, so that they all run the same configuration.
#pragma once
#include <cstdint>

namespace iflame {

// threads <= 0: one per hardware thread. The inter-op pool is pinned to 1 the first time (ATen
// allows setting it once, before any parallel work; later calls keep it).
void set_compute_threads(int64_t threads);

}  // namespace iflame
