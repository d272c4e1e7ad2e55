// util/progress.h and util/parallel.h (the pieces `prepare` runs on).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <vector>

#include "util/parallel.h"
#include "util/progress.h"

namespace iflame {
namespace {

TEST(ParallelFor, RunsEveryIndexOnce) {
  for (int jobs : {0, 1, 2, 7}) {
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(hits.size(), jobs, [&](size_t i) { hits[i]++; });
    for (const auto& h : hits) ASSERT_EQ(h.load(), 1) << "jobs " << jobs;
  }
  parallel_for(0, 4, [](size_t) { FAIL(); });
}

TEST(ParallelFor, RethrowsTheFirstErrorAndStops) {
  // Indices after the throwing one wait for the throw and then take 1 ms each, so a loop that
  // kept going would need seconds, while one that stops starts at most one more index per
  // thread. (Without the wait, a thread preempted holding index 10 let the others finish.)
  const size_t n = 10000;
  std::atomic<bool> thrown{false};
  std::atomic<size_t> ran{0};
  EXPECT_THROW(parallel_for(n, 3,
                            [&](size_t i) {
                              ran++;
                              if (i == 10) {
                                thrown = true;
                                throw std::runtime_error("boom");
                              }
                              if (i < 10) return;
                              while (!thrown) std::this_thread::yield();
                              std::this_thread::sleep_for(std::chrono::milliseconds(1));
                            }),
               std::runtime_error);
  EXPECT_LT(ran.load(), size_t(100));
}

TEST(ThreadPool, RunsTasksAndWaits) {
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  std::atomic<int> sum{0};
  for (int i = 1; i <= 100; ++i) pool.submit([&sum, i] { sum += i; });
  pool.wait();
  EXPECT_EQ(sum.load(), 5050);
  pool.submit([] { throw std::runtime_error("task failed"); });
  EXPECT_THROW(pool.wait(), std::runtime_error);
  pool.submit([&sum] { sum += 1; });
  pool.wait();  // the error was reported once
  EXPECT_EQ(sum.load(), 5051);
}

TEST(Progress, FormatsCountRateAndEta) {
  EXPECT_EQ(Progress::format_duration(7.2), "0:07");
  EXPECT_EQ(Progress::format_duration(754), "12:34");
  EXPECT_EQ(Progress::format_duration(3723), "1:02:03");
  EXPECT_EQ(Progress::format_duration(-1), "--:--");
  EXPECT_EQ(Progress::format_rate(412.3), "412/s");
  EXPECT_EQ(Progress::format_rate(41.23), "41.2/s");
  EXPECT_EQ(Progress::format_rate(0.4123), "0.41/s");
  const std::string line = Progress::format_line("prepare", 3500, 7000, 10.0, 80);
  EXPECT_NE(line.find("3500/7000"), std::string::npos) << line;
  EXPECT_NE(line.find(" 50%"), std::string::npos) << line;
  EXPECT_NE(line.find("350/s"), std::string::npos) << line;
  EXPECT_NE(line.find("ETA 0:10"), std::string::npos) << line;
  EXPECT_NE(line.find("[####"), std::string::npos) << line;
  EXPECT_LE(line.size(), 80u);
  EXPECT_LE(Progress::format_line("prepare", 1, 7000, 1.0, 30).size(), 30u);  // narrow terminal: no bar, cut
  EXPECT_NE(Progress::format_line("x", 7000, 7000, 20.0, 80).find("in 0:20"), std::string::npos);
  EXPECT_NE(Progress::format_line("x", 12, 0, 2.0, 80).find("6.00/s"), std::string::npos);  // unknown total
}

TEST(Progress, SilentWhenNotATerminal) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    Progress p("x", 10, f);  // a file is not a terminal
    EXPECT_FALSE(p.enabled());
    for (int i = 0; i < 10; ++i) p.add();
    EXPECT_EQ(p.done(), 10u);
  }
  EXPECT_EQ(std::ftell(f), 0L);
  {
    Progress p("x", 4, f, 1);  // forced on: draws and erases its line
    parallel_for(4, 2, [&](size_t) { p.add(); });
    p.finish();
  }
  EXPECT_GT(std::ftell(f), 0L);
  std::fclose(f);
}

}  // namespace
}  // namespace iflame
