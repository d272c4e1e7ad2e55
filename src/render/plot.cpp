#include "render/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "render/font.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame::render {
namespace {

// matplotlib's "tab10", which reads well on white and in print.
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},  {148, 103, 189},
                            {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
constexpr Rgb kAxis{40, 40, 40}, kGrid{226, 226, 226}, kMinorGrid{243, 243, 243}, kText{40, 40, 40};

struct Range {
  double lo = 0, hi = 1;
};

// Coverage-blended thick segment, clipped to [cx0, cx1) x [cy0, cy1).
void draw_segment(Image& img, double ax, double ay, double bx, double by, double hw, Rgb c, int cx0, int cy0, int cx1, int cy1) {
  const int x0 = std::max(cx0, int(std::floor(std::min(ax, bx) - hw - 1))), x1 = std::min(cx1 - 1, int(std::ceil(std::max(ax, bx) + hw + 1)));
  const int y0 = std::max(cy0, int(std::floor(std::min(ay, by) - hw - 1))), y1 = std::min(cy1 - 1, int(std::ceil(std::max(ay, by) + hw + 1)));
  const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      const double px = x + 0.5 - ax, py = y + 0.5 - ay;
      const double t = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
      const double ex = px - t * dx, ey = py - t * dy;
      const double cov = std::clamp(hw + 0.5 - std::sqrt(ex * ex + ey * ey), 0.0, 1.0);
      if (cov > 0) img.blend(x, y, c, cov);
    }
  }
}

Image downsample(const Image& big, int ss) {
  Image out(big.width / ss, big.height / ss);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int acc[3] = {0, 0, 0};
      for (int sy = 0; sy < ss; ++sy) {
        for (int sx = 0; sx < ss; ++sx) {
          const uint8_t* p = big.at(x * ss + sx, y * ss + sy);
          acc[0] += p[0], acc[1] += p[1], acc[2] += p[2];
        }
      }
      uint8_t* o = out.at(x, y);
      for (int k = 0; k < 3; ++k) o[k] = uint8_t((acc[k] + ss * ss / 2) / (ss * ss));
    }
  }
  return out;
}

// Text turned 90 degrees counter-clockwise (reads bottom to top), centered on (cx, cy).
void draw_text_vertical(Image& img, int cx, int cy, const std::string& text, Rgb color, int scale) {
  const int w = text_width(text, scale), h = text_height(scale);
  if (w <= 0) return;
  Image tmp(w, h);
  draw_text(tmp, 0, 0, text, color, scale);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      if (tmp.get(x, y) != kWhite) img.set(cx - h / 2 + y, cy + w / 2 - x, tmp.get(x, y));
    }
  }
}

std::string format_number(double v, double step) {
  char buf[64];
  const double av = std::abs(v);
  const int step_exp = int(std::floor(std::log10(step) + 1e-9));
  if (av >= 1e6 || (av < 1e-3 && step < 1e-3)) {
    const int sig = std::max(1, int(std::floor(std::log10(av) + 1e-9)) - step_exp + 1);
    std::snprintf(buf, sizeof buf, "%.*e", std::min(sig - 1, 6), v);
    // 1.5e-05 -> 1.5e-5, 2e+06 -> 2e6
    std::string s = buf;
    const size_t e = s.find('e');
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    const bool neg = ex[0] == '-';
    ex = ex.substr(1);
    while (ex.size() > 1 && ex[0] == '0') ex.erase(0, 1);
    return mant + "e" + (neg ? "-" : "") + ex;
  }
  const int decimals = std::clamp(-step_exp, 0, 8);
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  std::vector<double> ticks;
  if (!std::isfinite(lo) || !std::isfinite(hi)) return ticks;
  if (hi < lo) std::swap(lo, hi);
  if (hi - lo <= 0) return {lo};
  const double rough = (hi - lo) / std::max(1, target);
  const int e = int(std::floor(std::log10(rough)));
  const double norm = rough / std::pow(10.0, e);
  const int m = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  // value(k) = k * m * 10^e, computed so decimal ticks come out as the nearest double (0.6,
  // not 0.6000000000000001): divide by an exact power of ten rather than multiply by 10^-n.
  const double p10 = std::pow(10.0, std::abs(e));
  auto value = [&](double k) { return e < 0 ? k * m / p10 : k * m * p10; };
  const double step = value(1);
  for (double k = std::ceil(lo / step - 1e-9); value(k) <= hi + step * 1e-9 && ticks.size() < 100; k += 1) {
    const double v = value(k);
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  if (!(step > 0) || !std::isfinite(step)) step = std::abs(value) > 0 ? std::abs(value) : 1;
  if (std::abs(value) < step * 1e-9) return "0";
  return format_number(value, step);
}

Image plot_lines(const std::vector<Series>& series, const PlotOptions& opt) {
  const int width = std::max(opt.width, 160), height = std::max(opt.height, 120);
  const int ss = std::clamp(opt.supersample, 1, 6);
  const int fs = std::max(1, std::min(width, height) / 270);  // font scale
  const bool log_y = opt.log_y;

  // Data ranges over the drawable points.
  auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0); };
  auto ty = [&](double y) { return log_y ? std::log10(y) : y; };
  Range xr{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}, yr = xr;
  size_t points = 0;
  for (const Series& s : series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!usable(s.x[i], s.y[i])) continue;
      xr.lo = std::min(xr.lo, s.x[i]), xr.hi = std::max(xr.hi, s.x[i]);
      yr.lo = std::min(yr.lo, ty(s.y[i])), yr.hi = std::max(yr.hi, ty(s.y[i]));
      ++points;
    }
  }
  if (points == 0) xr = {0, 1}, yr = {0, 1};
  if (xr.hi - xr.lo <= 0) xr = {xr.lo - std::max(0.5, std::abs(xr.lo) * 0.1), xr.hi + std::max(0.5, std::abs(xr.hi) * 0.1)};
  if (yr.hi - yr.lo <= 0) {
    const double pad = log_y ? 0.5 : std::max(std::abs(yr.lo) * 0.1, 1e-12 + (yr.lo == 0 ? 0.5 : 0));
    yr = {yr.lo - pad, yr.hi + pad};
  }
  {
    const double pad = 0.05 * (yr.hi - yr.lo);
    yr = {yr.lo - pad, yr.hi + pad};
  }

  // Ticks (positions in plotted coordinates) and their labels.
  struct Tick {
    double at;
    std::string label;
  };
  std::vector<Tick> xticks, yticks;
  std::vector<double> yminor;
  {
    const auto xt = nice_ticks(xr.lo, xr.hi, std::max(3, width / (90 * fs)));
    const double step = xt.size() > 1 ? xt[1] - xt[0] : 1;
    for (double v : xt) xticks.push_back({v, tick_label(v, step)});
  }
  const int y_target = std::max(3, height / (60 * fs));
  if (log_y) {
    // Decades first; when that gives too few ticks, 1-2-5 per decade, then 1..9, then plain
    // linear ticks across a narrow range.
    const int k0 = int(std::floor(yr.lo)), k1 = int(std::ceil(yr.hi));
    static const std::vector<std::vector<int>> kMantissas = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
    for (const auto& mantissas : kMantissas) {
      yticks.clear();
      for (int k = k0; k <= k1; ++k) {
        for (int m : mantissas) {
          const double v = k + std::log10(double(m));
          if (v >= yr.lo - 1e-9 && v <= yr.hi + 1e-9) yticks.push_back({v, tick_label(m * std::pow(10.0, k), std::pow(10.0, k))});
        }
      }
      if (yticks.size() >= 3) break;
    }
    if (yticks.size() > size_t(y_target) + 2) {  // many decades: keep every n-th
      const size_t every = (yticks.size() + size_t(y_target) - 1) / size_t(y_target);
      std::vector<Tick> kept;
      for (size_t i = 0; i < yticks.size(); i += every) kept.push_back(yticks[i]);
      yticks.swap(kept);
    } else if (yticks.size() >= 3 && std::abs(yticks[1].at - yticks[0].at - 1) < 1e-9) {
      for (int k = k0; k <= k1; ++k) {  // one tick per decade: minor lines at 2..9
        for (int m = 2; m <= 9; ++m) {
          const double v = k + std::log10(double(m));
          if (v > yr.lo && v < yr.hi) yminor.push_back(v);
        }
      }
    }
    if (yticks.size() < 3) {
      yticks.clear();
      const double lo = std::pow(10.0, yr.lo), hi = std::pow(10.0, yr.hi);
      const auto yt = nice_ticks(lo, hi, y_target);
      const double step = yt.size() > 1 ? yt[1] - yt[0] : lo;
      for (double v : yt) {
        if (v > 0) yticks.push_back({std::log10(v), tick_label(v, step)});
      }
    }
  } else {
    const auto yt = nice_ticks(yr.lo, yr.hi, y_target);
    const double step = yt.size() > 1 ? yt[1] - yt[0] : 1;
    for (double v : yt) yticks.push_back({v, tick_label(v, step)});
  }

  // Layout in output pixels.
  const int th = text_height(fs), gap = 6 * fs;
  int label_w = 0;
  for (const Tick& t : yticks) label_w = std::max(label_w, text_width(t.label, fs));
  const int top = opt.title.empty() ? 3 * gap : th + 3 * gap;
  const int left = gap + (opt.y_label.empty() ? 0 : th + gap) + label_w + gap + 4 * fs;
  const int bottom = height - (gap + (opt.x_label.empty() ? 0 : th + gap) + th + gap + 4 * fs);
  const int right = width - 4 * gap;
  const int pw = std::max(1, right - left), ph = std::max(1, bottom - top);
  auto X = [&](double x) { return left + (x - xr.lo) / (xr.hi - xr.lo) * pw; };
  auto Y = [&](double y) { return bottom - (y - yr.lo) / (yr.hi - yr.lo) * ph; };

  // Grid lines and curves, supersampled.
  Image big(width * ss, height * ss);
  for (double v : yminor) big.fill_rect(left * ss, int(std::lround(Y(v))) * ss, pw * ss, ss, kMinorGrid);
  for (const Tick& t : yticks) big.fill_rect(left * ss, int(std::lround(Y(t.at))) * ss, pw * ss, ss, kGrid);
  for (const Tick& t : xticks) big.fill_rect(int(std::lround(X(t.at))) * ss, top * ss, ss, ph * ss, kGrid);
  const double hw = 0.5 * (1.6 * fs) * ss;
  for (size_t si = 0; si < series.size(); ++si) {
    const Series& s = series[si];
    const Rgb c = kPalette[si % std::size(kPalette)];
    bool have = false;
    double px = 0, py = 0;
    size_t drawn = 0;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!usable(s.x[i], s.y[i])) continue;
      const double qx = X(s.x[i]) * ss, qy = Y(ty(s.y[i])) * ss;
      if (have) draw_segment(big, px, py, qx, qy, hw, c, left * ss, top * ss, right * ss, bottom * ss);
      px = qx, py = qy, have = true;
      ++drawn;
    }
    if (drawn == 1) draw_segment(big, px, py, px, py, 2 * hw, c, left * ss, top * ss, right * ss, bottom * ss);
  }
  Image img = downsample(big, ss);

  // Axes, ticks and labels, crisp at output resolution.
  img.fill_rect(left - fs, top, fs, ph + fs, kAxis);
  img.fill_rect(left - fs, bottom, pw + fs, fs, kAxis);
  for (const Tick& t : yticks) {
    const int y = int(std::lround(Y(t.at)));
    img.fill_rect(left - 4 * fs - fs, y, 4 * fs, fs, kAxis);
    draw_text(img, left - 5 * fs - gap / 2 - text_width(t.label, fs), y - th / 2, t.label, kText, fs);
  }
  int last_x_end = -1000000;
  for (const Tick& t : xticks) {
    const int x = int(std::lround(X(t.at)));
    img.fill_rect(x, bottom + fs, fs, 4 * fs, kAxis);
    const int w = text_width(t.label, fs);
    const int lx = std::clamp(x - w / 2, 0, width - w);
    if (lx < last_x_end + gap) continue;  // would overlap the previous label
    draw_text(img, lx, bottom + 5 * fs + gap / 2, t.label, kText, fs);
    last_x_end = lx + w;
  }
  if (!opt.title.empty()) {
    const std::string t = fit_text(opt.title, width - 2 * gap, fs);
    draw_text(img, (width - text_width(t, fs)) / 2, gap + fs, t, kText, fs);
  }
  if (!opt.x_label.empty()) {
    draw_text(img, left + (pw - text_width(opt.x_label, fs)) / 2, height - gap - th, opt.x_label, kText, fs);
  }
  if (!opt.y_label.empty()) draw_text_vertical(img, gap + th / 2, top + ph / 2, opt.y_label, kText, fs);
  if (points == 0) {
    const std::string msg = "no data";
    draw_text(img, left + (pw - text_width(msg, 2 * fs)) / 2, top + (ph - text_height(2 * fs)) / 2, msg, {150, 150, 150}, 2 * fs);
  }

  // Legend in the top-right corner of the plot area.
  std::vector<size_t> named;
  for (size_t i = 0; i < series.size(); ++i) {
    if (!series[i].name.empty()) named.push_back(i);
  }
  if (!named.empty()) {
    const int swatch = 18 * fs, row_h = th + 5 * fs, pad = 5 * fs;
    int text_w = 0;
    for (size_t i : named) text_w = std::max(text_w, text_width(series[i].name, fs));
    text_w = std::min(text_w, pw / 2);
    const int box_w = pad + swatch + pad + text_w + pad, box_h = pad + int(named.size()) * row_h - 5 * fs + pad;
    const int bx = right - box_w - 2 * gap, by = top + 2 * gap;
    img.fill_rect(bx, by, box_w, box_h, {200, 200, 200});
    img.fill_rect(bx + fs, by + fs, box_w - 2 * fs, box_h - 2 * fs, kWhite);
    for (size_t r = 0; r < named.size(); ++r) {
      const int y = by + pad + int(r) * row_h;
      img.fill_rect(bx + pad, y + th / 2 - fs, swatch, 2 * fs, kPalette[named[r] % std::size(kPalette)]);
      draw_text(img, bx + pad + swatch + pad, y, fit_text(series[named[r]].name, text_w, fs), kText, fs);
    }
  }
  return img;
}

Image plot_bars(const std::vector<std::string>& categories, const std::vector<BarSeries>& series, const BarOptions& opt) {
  const int width = std::max(opt.width, 160), height = std::max(opt.height, 120);
  const int fs = std::max(1, std::min(width, height) / 200);  // font scale
  const int th = text_height(fs), gap = 6 * fs;
  const size_t nc = categories.size(), ns = series.size();
  auto value_of = [&](size_t s, size_t c) {
    return c < series[s].values.size() ? series[s].values[c] : std::numeric_limits<double>::quiet_NaN();
  };

  // The y range always includes 0 (and the guide), with headroom for the value labels.
  double lo = 0, hi = opt.guide > 0 ? opt.guide : 0;
  for (size_t s = 0; s < ns; ++s) {
    for (size_t c = 0; c < nc; ++c) {
      const double v = value_of(s, c);
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    }
  }
  if (hi - lo <= 0) hi = lo + 1;
  const double room = 0.15 * (hi - lo);
  if (hi > 0) hi += room;
  if (lo < 0) lo -= room;

  // Layout: title, legend row, plot area, category labels.
  bool any_named = false;
  for (const BarSeries& s : series) any_named |= !s.name.empty();
  const int top = gap + (opt.title.empty() ? 0 : th + gap) + (any_named ? th + gap : 0) + gap;
  const int bottom = height - (gap + th + gap + 4 * fs);
  const int ph = std::max(1, bottom - top);
  const auto yt = nice_ticks(lo, hi, std::max(3, ph / (45 * fs)));
  const double step = yt.size() > 1 ? yt[1] - yt[0] : 1;
  int label_w = 0;
  for (double v : yt) label_w = std::max(label_w, text_width(tick_label(v, step), fs));
  const int left = gap + (opt.y_label.empty() ? 0 : th + gap) + label_w + gap + 4 * fs;
  const int right = width - 2 * gap;
  const int pw = std::max(1, right - left);
  auto Y = [&](double y) { return int(std::lround(bottom - (y - lo) / (hi - lo) * ph)); };

  Image img(width, height);
  for (double v : yt) {
    if (v >= lo && v <= hi) img.fill_rect(left, Y(v), pw, fs, kGrid);
  }
  if (opt.guide > 0) {  // dashed, under the bars and their labels
    const int y = Y(opt.guide);
    for (int x = left; x < right; x += 10 * fs) img.fill_rect(x, y, std::min(6 * fs, right - x), fs, {90, 90, 90});
  }
  const double group_w = nc > 0 ? double(pw) / double(nc) : double(pw);
  const double bar_w = ns > 0 ? 0.8 * group_w / double(ns) : 0.0;
  for (size_t c = 0; c < nc; ++c) {
    for (size_t s = 0; s < ns; ++s) {
      const double v = value_of(s, c);
      const int x0 = int(std::lround(left + c * group_w + 0.1 * group_w + s * bar_w));
      const int x1 = int(std::lround(left + c * group_w + 0.1 * group_w + (s + 1) * bar_w)) - std::max(1, fs);
      const int xm = (x0 + x1) / 2;
      std::string label = "n/a";
      Rgb label_color{150, 150, 150};
      int label_y = Y(0) - th - gap / 2;
      if (std::isfinite(v)) {
        const int y0 = std::min(Y(0), Y(v)), y1 = std::max(Y(0), Y(v));
        img.fill_rect(x0, y0, std::max(1, x1 - x0), std::max(1, y1 - y0), kPalette[s % std::size(kPalette)]);
        char buf[64];
        std::snprintf(buf, sizeof buf, opt.value_format.c_str(), v);
        label = buf;
        label_color = kText;
        label_y = v >= 0 ? y0 - th - gap / 2 : y1 + gap / 2;
      }
      // Labels wider than their bar shrink a size so that neighbours do not run together.
      const int ls = text_width(label, fs) > int(bar_w) - 2 * fs && fs > 1 ? fs - 1 : fs;
      if (ls < fs && label_y < Y(0)) label_y += th - text_height(ls);
      draw_text(img, xm - text_width(label, ls) / 2, label_y, label, label_color, ls);
    }
    const std::string name = fit_text(categories[c], int(group_w) - gap, fs);
    draw_text(img, int(std::lround(left + (c + 0.5) * group_w)) - text_width(name, fs) / 2, bottom + 4 * fs + gap, name,
              kText, fs);
  }
  // Axes, y ticks, titles and the legend, as plot_lines draws them.
  img.fill_rect(left - fs, top, fs, ph + fs, kAxis);
  img.fill_rect(left - fs, Y(0), pw + fs, fs, kAxis);
  for (double v : yt) {
    if (v < lo || v > hi) continue;
    const std::string t = tick_label(v, step);
    img.fill_rect(left - 5 * fs, Y(v), 4 * fs, fs, kAxis);
    draw_text(img, left - 5 * fs - gap / 2 - text_width(t, fs), Y(v) - th / 2, t, kText, fs);
  }
  int y = gap;
  if (!opt.title.empty()) {
    const std::string t = fit_text(opt.title, width - 2 * gap, fs);
    draw_text(img, (width - text_width(t, fs)) / 2, y, t, kText, fs);
    y += th + gap;
  }
  if (any_named) {
    const int swatch = 3 * th / 2;
    int total = 0;
    for (const BarSeries& s : series) total += swatch + fs * 3 + text_width(s.name, fs) + 3 * gap;
    int x = std::max(gap, (width - total) / 2);
    for (size_t s = 0; s < ns; ++s) {
      img.fill_rect(x, y, swatch, th, kPalette[s % std::size(kPalette)]);
      x += swatch + 3 * fs;
      draw_text(img, x, y, series[s].name, kText, fs);
      x += text_width(series[s].name, fs) + 3 * gap;
    }
  }
  if (!opt.y_label.empty()) draw_text_vertical(img, gap + th / 2, top + ph / 2, opt.y_label, kText, fs);
  return img;
}

CurveLog read_curve_log(const std::string& path, const std::vector<std::string>& keys, const std::string& x_key) {
  const std::string text = read_file_text(path);
  CurveLog log;
  std::vector<nlohmann::ordered_json> rows;
  std::vector<std::string> numeric_keys;  // in order of first appearance
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++log.lines;
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      ++log.bad_lines;
      continue;
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_number() && it.key() != x_key &&
          std::find(numeric_keys.begin(), numeric_keys.end(), it.key()) == numeric_keys.end()) {
        numeric_keys.push_back(it.key());
      }
    }
    rows.push_back(std::move(j));
  }
  const bool any_x = std::any_of(rows.begin(), rows.end(), [&](const nlohmann::ordered_json& j) {
    auto it = j.find(x_key);
    return it != j.end() && it->is_number();
  });
  if (!any_x) throw Error(path, "no line has a numeric \"" + x_key + "\" field to plot against");

  log.keys = keys;
  if (log.keys.empty()) {
    for (const std::string& k : numeric_keys) {
      if (k.find("loss") != std::string::npos) log.keys.push_back(k);
    }
    if (log.keys.empty()) log.keys = numeric_keys;
  }
  for (const std::string& k : log.keys) {
    Series s;
    s.name = k;
    for (const nlohmann::ordered_json& j : rows) {
      auto xi = j.find(x_key), yi = j.find(k);
      if (xi == j.end() || yi == j.end() || !xi->is_number() || !yi->is_number()) continue;
      s.x.push_back(xi->get<double>());
      s.y.push_back(yi->get<double>());
    }
    if (s.x.empty()) {
      std::string seen;
      for (const std::string& n : numeric_keys) seen += (seen.empty() ? "" : ", ") + n;
      throw Error(path, "no line has numeric \"" + k + "\" and \"" + x_key + "\" (numeric keys seen: " + (seen.empty() ? "none" : seen) + ")");
    }
    log.series.push_back(std::move(s));
  }
  return log;
}

}  // namespace iflame::render
