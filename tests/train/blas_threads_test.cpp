// util/blas_threads.h, tested here because it needs LibTorch's BLAS loaded (the core test
// binary has none): OpenBLAS's pool follows the thread count a command asks for.
#include "util/blas_threads.h"

#include <gtest/gtest.h>

#include "blas_test_util.h"

namespace iflame {
namespace {

TEST(BlasThreads, OpenBlasPoolFollowsTheRequestedThreads) {
  const test::BlasThreadsGetter get = test::openblas_threads_getter();
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
