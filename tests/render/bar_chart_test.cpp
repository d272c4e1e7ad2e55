// Grouped bar charts (plot_bars): bar heights proportional to the values from a zero baseline,
// one color per series, and odd data (NaN, negatives, nothing) still drawn.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "render/plot.h"

namespace iflame::render {
namespace {

constexpr Rgb kFirstSeries{31, 119, 180}, kSecondSeries{255, 127, 14};

// Columns of `img` that hold `color` in rows y0 and below (below the title and legend rows by
// default), and per such column how many pixels of it.
std::vector<std::pair<int, int>> columns_of(const Image& img, Rgb color, int y0 = -1) {
  std::vector<std::pair<int, int>> out;
  for (int x = 0; x < img.width; ++x) {
    int n = 0;
    for (int y = y0 < 0 ? img.height / 6 : y0; y < img.height; ++y) n += img.get(x, y) == color;
    if (n > 0) out.push_back({x, n});
  }
  return out;
}

// The tallest run of `color` among the columns in [x0, x1).
int tallest(const Image& img, Rgb color, int x0, int x1, int y0 = -1) {
  int best = 0;
  for (const auto& [x, n] : columns_of(img, color, y0)) {
    if (x >= x0 && x < x1) best = std::max(best, n);
  }
  return best;
}

TEST(BarChart, HeightsAreProportionalToTheValues) {
  BarOptions opt;
  opt.width = 600;
  opt.height = 420;
  opt.title = "speed vs full";
  opt.y_label = "ratio";
  opt.guide = 1;
  const Image img = plot_bars({"full", "linear", "iflame"}, {{"paper", {1, 0.5, 2}}, {"ours", {1, 3, 1.5}}}, opt);
  ASSERT_EQ(img.width, 600);
  ASSERT_EQ(img.height, 420);
  // Each category is a third of the width; in each, the first series' bar comes before the second's.
  const int third = 600 / 3;
  const int p_full = tallest(img, kFirstSeries, 0, third), p_lin = tallest(img, kFirstSeries, third, 2 * third),
            p_ifl = tallest(img, kFirstSeries, 2 * third, 600);
  const int o_full = tallest(img, kSecondSeries, 0, third), o_lin = tallest(img, kSecondSeries, third, 2 * third);
  ASSERT_GT(p_full, 20);
  EXPECT_NEAR(double(p_lin) / p_full, 0.5, 0.03);
  EXPECT_NEAR(double(p_ifl) / p_full, 2.0, 0.05);
  EXPECT_NEAR(double(o_lin) / o_full, 3.0, 0.1);
  EXPECT_EQ(o_full, p_full);
  const auto first = columns_of(img, kFirstSeries), second = columns_of(img, kSecondSeries);
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  EXPECT_LT(first.front().first, second.front().first);
}

TEST(BarChart, OddDataStillDraws) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // A missing value draws no bar: only the two finite bars of the first series appear.
  const Image img = plot_bars({"a", "b", "c"}, {{"x", {1, nan, 2}}});
  EXPECT_GT(tallest(img, kFirstSeries, 0, img.width / 3), 0);
  EXPECT_EQ(tallest(img, kFirstSeries, img.width / 3, 2 * img.width / 3), 0);
  // Negative values go below the baseline (no title or legend here: count every row); empty
  // inputs give a blank chart of the right size.
  const Image neg = plot_bars({"a", "b"}, {{"", {-1, 1}}});
  const int down = tallest(neg, kFirstSeries, 0, neg.width / 2, 0), up = tallest(neg, kFirstSeries, neg.width / 2, neg.width, 0);
  EXPECT_GT(up, 20);
  EXPECT_NEAR(down, up, 2);
  const Image empty = plot_bars({}, {});
  EXPECT_EQ(empty.width, 600);
  EXPECT_EQ(empty.height, 420);
  const Image all_nan = plot_bars({"a"}, {{"x", {nan}}});
  EXPECT_EQ(tallest(all_nan, kFirstSeries, 0, all_nan.width), 0);
}

}  // namespace
}  // namespace iflame::render
