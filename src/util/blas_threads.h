// The BLAS library's own thread pool. Debian's LibTorch calls OpenBLAS (pthreads build) for
// float32 matmuls, and OpenBLAS keeps a pool sized to every core that at::set_num_threads does
// not touch: a 1-thread training worker then still runs 2 BLAS threads that spin in
// sched_yield while they wait, taking the other worker's core (perf: a third of the CPU time
// of two 1-thread runs side by side went to the scheduler).
#pragma once

namespace iflame {

// Sets OpenBLAS's thread count when OpenBLAS is loaded (found at run time, so builds against
// MKL or without BLAS are unaffected). Returns false when there is no OpenBLAS to configure.
bool set_blas_threads(int threads);

}  // namespace iflame
