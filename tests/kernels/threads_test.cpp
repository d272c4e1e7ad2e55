// kernels/threads.h: one call sets ATen's pool and OpenBLAS's pool alike.
#include "kernels/threads.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <thread>

#include "blas_test_util.h"

namespace iflame {
namespace {

TEST(ComputeThreads, AtenAndBlasPoolsFollowTheRequest) {
  const test::BlasThreadsGetter blas_threads = test::openblas_threads_getter();
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
