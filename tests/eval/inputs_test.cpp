// Which inputs a set takes: the first N in path order, or a seeded random N (kept in order).
#include "eval/inputs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace iflame::eval {
namespace {

TEST(EvalInputs, SubsetsAreTheFirstOrASeededRandomChoiceInOrder) {
  EXPECT_EQ(subset_positions(4, {}), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(subset_positions(4, {2, false, 0}), (std::vector<size_t>{0, 1}));
  EXPECT_EQ(subset_positions(3, {5, true, 1}), (std::vector<size_t>{0, 1, 2}));  // fewer than asked: all
  const auto a = subset_positions(1000, {100, true, 7});
  ASSERT_EQ(a.size(), 100u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::set<size_t>(a.begin(), a.end()).size(), 100u);
  EXPECT_GT(a.back(), 500u);  // spread over the whole range, not the first 100
  EXPECT_EQ(subset_positions(1000, {100, true, 7}), a);  // the same seed, the same choice
  EXPECT_NE(subset_positions(1000, {100, true, 8}), a);
}

}  // namespace
}  // namespace iflame::eval
