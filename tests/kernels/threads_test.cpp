// kernels/threads.h: one call sets ATen's pool and OpenBLAS's pool alike.
#include "kernels/threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>

namespace iflame {
namespace {

TEST(ComputeThreads, AtenAndBlasPoolsFollowTheRequest) {
  (void)torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // the BLAS is loaded by now
  using GetThreads = int (*)();
  auto* blas_threads = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int before = at::get_num_threads();

  set_compute_threads(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  if (blas_threads) {
    EXPECT_EQ(blas_threads(), 1);
  }
  set_compute_threads(0);  // every core
  EXPECT_EQ(at::get_num_threads(), cores);
  if (blas_threads) {
    EXPECT_EQ(blas_threads(), cores);
  }
  set_compute_threads(2);  // later calls leave the inter-op pool (settable once) alone
  EXPECT_EQ(at::get_num_threads(), 2);
  set_compute_threads(before);
}

}  // namespace
}  // namespace iflame
