// util/blas_threads.h, tested here because it needs LibTorch's BLAS loaded (the core test
// binary has none): OpenBLAS's pool follows the thread count a command asks for.
#include "util/blas_threads.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace iflame {
namespace {

TEST(BlasThreads, OpenBlasPoolFollowsTheRequestedThreads) {
  (void)torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // the BLAS is loaded by now
  using GetThreads = int (*)();
  auto* get = reinterpret_cast<GetThreads>(::dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!get) {
    EXPECT_FALSE(set_blas_threads(1));
    GTEST_SKIP() << "this LibTorch does not use OpenBLAS";
  }
  ASSERT_TRUE(set_blas_threads(1));
  EXPECT_EQ(get(), 1);
  ASSERT_TRUE(set_blas_threads(2));
  EXPECT_EQ(get(), 2);
  ASSERT_TRUE(set_blas_threads(0));  // clamped to one
  EXPECT_EQ(get(), 1);
}

}  // namespace
}  // namespace iflame
