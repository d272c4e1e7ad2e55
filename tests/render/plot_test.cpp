// Line charts and JSONL training logs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "render/plot.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame::render {
namespace {

constexpr Rgb kFirstSeries{31, 119, 180};

// Mean row of the pixels drawn in (about) the first series' color, over columns [x0, x1).
double series_row(const Image& img, int x0, int x1) {
  double sum = 0;
  size_t n = 0;
  for (int y = 0; y < img.height; ++y) {
    for (int x = x0; x < x1; ++x) {
      const Rgb p = img.get(x, y);
      if (std::abs(p.r - kFirstSeries.r) + std::abs(p.g - kFirstSeries.g) + std::abs(p.b - kFirstSeries.b) < 40) sum += y, ++n;
    }
  }
  return n ? sum / double(n) : -1;
}

TEST(Plot, SizeAndCurvesFollowTheData) {
  PlotOptions opt;
  opt.width = 400;
  opt.height = 300;
  opt.title = "loss";
  opt.x_label = "step";
  opt.y_label = "value";
  const Series up{"up", {0, 1, 2, 3}, {0, 1, 2, 3}}, down{"down", {0, 1, 2, 3}, {3, 2, 1, 0}};
  const Image a = plot_lines({up}, opt), b = plot_lines({down}, opt);
  EXPECT_EQ(a.width, 400);
  EXPECT_EQ(a.height, 300);
  // Rising data: low on the left (large row numbers), high on the right; falling: the reverse.
  const double a_left = series_row(a, 60, 160), a_right = series_row(a, 260, 360);
  const double b_left = series_row(b, 60, 160), b_right = series_row(b, 260, 360);
  ASSERT_GT(a_left, 0);
  ASSERT_GT(b_left, 0);
  EXPECT_GT(a_left, a_right + 40);
  EXPECT_LT(b_left, b_right - 40);
  EXPECT_NE(a.pixels, b.pixels);
  // A second series adds pixels of the second color.
  const Image two = plot_lines({up, down}, opt);
  size_t orange = 0;
  for (int y = 0; y < two.height; ++y) {
    for (int x = 0; x < two.width; ++x) orange += two.get(x, y) == Rgb{255, 127, 14};
  }
  EXPECT_GT(orange, 100u);
}

TEST(Plot, LogAxisAndOddDataDoNotCrash) {
  PlotOptions opt;
  opt.width = 320;
  opt.height = 200;
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  const std::vector<std::vector<Series>> cases = {
      {},
      {Series{"empty", {}, {}}},
      {Series{"one point", {5}, {2}}},
      {Series{"constant", {0, 1, 2}, {4, 4, 4}}},
      {Series{"odd", {0, 1, 2, 3, nan, 5}, {1, nan, -2, inf, 3, 0}}},
      {Series{"mismatched", {0, 1, 2}, {1}}},
      {Series{"wide", {0, 1, 2}, {1e-6, 1, 1e6}}},
  };
  for (bool log_y : {false, true}) {
    opt.log_y = log_y;
    for (const auto& c : cases) {
      const Image img = plot_lines(c, opt);
      EXPECT_EQ(img.width, 320);
      EXPECT_EQ(img.height, 200);
    }
  }
  // On a log axis, the halfway point between 1 and 100 is 10.
  opt.log_y = true;
  const Image img = plot_lines({Series{"", {0, 1, 2}, {1, 10, 100}}}, opt);
  // (x, log10 y) is a straight line: equally spaced columns give equally spaced rows.
  const double r1 = series_row(img, 100, 110), r2 = series_row(img, 180, 190), r3 = series_row(img, 260, 270);
  ASSERT_GT(r1, 0);
  EXPECT_NEAR(r2, 0.5 * (r1 + r3), 2);
  EXPECT_GT(r1 - r3, 50);
}

TEST(Plot, NiceTicksAndLabels) {
  EXPECT_EQ(nice_ticks(0, 10, 5), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(0.13, 0.92, 4), (std::vector<double>{0.2, 0.4, 0.6, 0.8}));
  EXPECT_EQ(nice_ticks(-3, 3, 6), (std::vector<double>{-3, -2, -1, 0, 1, 2, 3}));
  EXPECT_EQ(nice_ticks(5, 5), (std::vector<double>{5}));
  EXPECT_TRUE(nice_ticks(0, std::nan("")).empty());
  EXPECT_EQ(tick_label(0.4, 0.2), "0.4");
  EXPECT_EQ(tick_label(15000, 5000), "15000");
  EXPECT_EQ(tick_label(2.5, 0.5), "2.5");
  EXPECT_EQ(tick_label(1e-12, 0.1), "0");
  EXPECT_EQ(tick_label(0.0001, 0.0001), "1e-4");
  EXPECT_EQ(tick_label(3e7, 1e7), "3e7");
}

TEST(CurveLog, ReadsJsonl) {
  const std::string path = test::temp_dir() + "/train.jsonl";
  write_file_atomic(path,
                    "{\"step\": 0, \"loss\": 5.0, \"lr\": 0.0}\n"
                    "{\"step\": 10, \"loss\": 4.0, \"val_loss\": 4.5, \"lr\": 1e-4}\n"
                    "\n"
                    "{\"step\": 20, \"loss\": 3.0, \"note\": \"text\"}\n"
                    "{\"loss\": 2.0}\n"                  // no step: skipped
                    "[1, 2]\n"                           // not an object
                    "{\"step\": 30, \"val_loss\": 3.5}\n"
                    "{\"step\": 40, \"loss\": 2.");     // half-written last line
  const CurveLog all = read_curve_log(path);
  EXPECT_EQ(all.lines, 7u);
  EXPECT_EQ(all.bad_lines, 2u);
  ASSERT_EQ(all.keys, (std::vector<std::string>{"loss", "val_loss"}));  // "loss" keys, file order
  EXPECT_EQ(all.series[0].x, (std::vector<double>{0, 10, 20}));
  EXPECT_EQ(all.series[0].y, (std::vector<double>{5, 4, 3}));
  EXPECT_EQ(all.series[1].x, (std::vector<double>{10, 30}));

  const CurveLog lr = read_curve_log(path, {"lr"});
  ASSERT_EQ(lr.series.size(), 1u);
  EXPECT_EQ(lr.series[0].y, (std::vector<double>{0, 1e-4}));
  EXPECT_EQ(read_curve_log(path, {"loss"}, "val_loss").series[0].x, (std::vector<double>{4.5}));

  try {
    read_curve_log(path, {"accuracy"});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.jsonl"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("accuracy"), std::string::npos);
  }
  EXPECT_THROW(read_curve_log(path, {}, "epoch"), Error);
  EXPECT_THROW(read_curve_log(test::temp_dir() + "/missing.jsonl"), Error);

  // Without any "loss" key every numeric key is plotted.
  const std::string other = test::temp_dir() + "/other.jsonl";
  write_file_atomic(other, "{\"step\": 1, \"acc\": 0.5, \"tokens\": 100}\n{\"step\": 2, \"acc\": 0.6}\n");
  EXPECT_EQ(read_curve_log(other).keys, (std::vector<std::string>{"acc", "tokens"}));
}

}  // namespace
}  // namespace iflame::render
