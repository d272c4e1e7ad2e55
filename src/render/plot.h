// Line charts to images, for training curves: several (x, y) series, axes with "nice" numeric
// ticks in the built-in font, light grid lines, a legend, optional log-scale y. Plus a reader
// for JSONL training logs (one JSON object per line).
#pragma once
#include <string>
#include <vector>

#include "render/png.h"

namespace iflame::render {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite points (and y <= 0 on a log axis) are skipped
};

struct PlotOptions {
  int width = 900, height = 540;
  bool log_y = false;
  std::string title, x_label, y_label;
  int supersample = 3;  // for the anti-aliased curves
};

// Draws the chart. Never throws for odd data: empty series, a single point, constant values and
// non-finite values all give a readable (possibly empty) chart.
Image plot_lines(const std::vector<Series>& series, const PlotOptions& options = {});

// "Nice" tick positions (steps of 1, 2 or 5 times a power of ten) covering [lo, hi], about
// `target` of them; and their labels, with as many decimals as the step needs.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
std::string tick_label(double value, double step);

// Grouped bar charts, for benchmark ratios: one group per category, one bar per series in the
// plot_lines colors, the value over each bar, a y axis that always includes 0, and an optional
// dashed guide line (1 for ratios). A non-finite value draws no bar and "n/a" instead.
struct BarSeries {
  std::string name;
  std::vector<double> values;  // one per category (missing ones count as non-finite)
};

struct BarOptions {
  int width = 600, height = 420;
  std::string title, y_label;
  double guide = 0;                  // horizontal dashed line at this value (0: none)
  std::string value_format = "%.2f";  // printf format of the labels over the bars
};

Image plot_bars(const std::vector<std::string>& categories, const std::vector<BarSeries>& series,
                const BarOptions& options = {});

struct CurveLog {
  std::vector<Series> series;
  size_t lines = 0;          // non-blank lines read
  size_t bad_lines = 0;      // lines that were not a JSON object (e.g. a half-written last line)
  std::vector<std::string> keys;  // the series plotted, in order
};

// Reads a JSONL log: every line a JSON object with numeric fields. Each key in `keys` becomes a
// series of (x_key, key) over the lines that have both as numbers; lines missing the key are
// skipped for that series. With no `keys`, plots every numeric key whose name contains "loss"
// (or, when there is none, every numeric key but `x_key`). Throws iflame::Error naming the file
// when it cannot be read, a requested key never appears, or no line has `x_key`.
CurveLog read_curve_log(const std::string& path, const std::vector<std::string>& keys = {},
                        const std::string& x_key = "step");

}  // namespace iflame::render
