#include "util/measure.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

namespace iflame {
namespace {

TEST(Measure, MeanAndSampleStandardDeviation) {
  EXPECT_EQ(mean_of({}), 0.0);
  EXPECT_EQ(std_of({5.0}), 0.0);
  EXPECT_DOUBLE_EQ(mean_of({1, 2, 3, 4}), 2.5);
  EXPECT_DOUBLE_EQ(std_of({2, 4, 4, 4, 5, 5, 7, 9}), std::sqrt(32.0 / 7.0));
}

TEST(Measure, CpuUsageGrowsWithWork) {
  const CpuUsage a = cpu_usage();
  // Spin for ~50 ms of CPU time (wall time is an upper bound of our own CPU time).
  volatile double sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(50)) sink = sink + 1.0;
  const CpuUsage b = cpu_usage();
  EXPECT_GT(b.seconds(), a.seconds());
  EXPECT_GE(b.user, a.user);
  EXPECT_GE(b.minor_faults, a.minor_faults);
  EXPECT_DOUBLE_EQ(b.seconds(), b.user + b.sys);
}

}  // namespace
}  // namespace iflame
