// OpenBLAS's own thread count, for tests of the thread settings: null when this LibTorch's BLAS
// is not OpenBLAS. Runs a matmul first, so that the BLAS is loaded by the time it is looked up.
#pragma once
#include <dlfcn.h>
#include <torch/torch.h>

namespace iflame::test {

using BlasThreadsGetter = int (*)();

inline BlasThreadsGetter openblas_threads_getter() {
  (void)torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));
  return reinterpret_cast<BlasThreadsGetter>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
}

}  // namespace iflame::test
