#include "util/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace iflame {
namespace {

constexpr int64_t kRedrawNs = 100'000'000;  // 10 redraws per second at most

int terminal_width(std::FILE* out) {
  winsize ws{};
  if (::ioctl(::fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return int(ws.ws_col);
  if (const char* cols = std::getenv("COLUMNS")) {
    const int c = std::atoi(cols);
    if (c >= 20) return c;
  }
  return 80;
}

}  // namespace

Progress::Progress(std::string label, size_t total, std::FILE* out, int enabled)
    : label_(std::move(label)),
      total_(total),
      out_(out),
      enabled_(enabled < 0 ? is_terminal(out) : enabled > 0),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() { finish(); }

bool Progress::is_terminal(std::FILE* out) {
  if (!out || !::isatty(::fileno(out))) return false;
  const char* term = std::getenv("TERM");
  return !(term && std::strcmp(term, "dumb") == 0);
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::add(size_t n) {
  const size_t now_done = done_.fetch_add(n, std::memory_order_relaxed) + n;
  if (!enabled_) return;
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start_).count();
  int64_t last = last_draw_ns_.load(std::memory_order_relaxed);
  const bool at_end = total_ > 0 && now_done >= total_;
  if (!at_end && now_ns - last < kRedrawNs) return;
  // One thread draws; the others carry on (they never wait for the terminal).
  if (!at_end && !last_draw_ns_.compare_exchange_strong(last, now_ns, std::memory_order_relaxed)) return;
  std::unique_lock<std::mutex> lock(draw_mutex_, std::try_to_lock);
  if (!lock.owns_lock() && !at_end) return;
  if (!lock.owns_lock()) lock.lock();
  draw();
}

void Progress::draw() {
  if (finished_) return;
  const std::string line = format_line(label_, done(), total_, elapsed_s(), terminal_width(out_) - 1);
  std::fprintf(out_, "\r%s\033[K", line.c_str());
  std::fflush(out_);
  drawn_ = true;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(draw_mutex_);
  if (finished_) return;
  finished_ = true;
  if (enabled_ && drawn_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
}

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  if (seconds > 360000) return ">99h";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

std::string Progress::format_rate(double per_second) {
  char buf[32];
  if (!std::isfinite(per_second) || per_second < 0) return "--/s";
  if (per_second >= 99.95) {
    std::snprintf(buf, sizeof buf, "%.0f/s", per_second);
  } else if (per_second >= 9.995) {
    std::snprintf(buf, sizeof buf, "%.1f/s", per_second);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f/s", per_second);
  }
  return buf;
}

std::string Progress::format_line(const std::string& label, size_t done, size_t total, double elapsed_s, int width) {
  const double rate = elapsed_s > 0 ? double(done) / elapsed_s : 0.0;
  std::string tail;
  char buf[96];
  if (total > 0) {
    const size_t shown = std::min(done, total);
    // Fixed-width fields, so the bar does not jump about as the numbers change.
    const int digits = int(std::to_string(total).size());
    std::snprintf(buf, sizeof buf, " %*zu/%zu %3d%%  %8s", digits, shown, total, int(100.0 * double(shown) / double(total)),
                  format_rate(rate).c_str());
    tail = buf;
    const double eta = done >= total ? 0.0 : (rate > 0 ? double(total - done) / rate : -1.0);
    tail += (done >= total ? "  in " + format_duration(elapsed_s) : "  ETA " + format_duration(eta));
  } else {
    std::snprintf(buf, sizeof buf, " %zu  ", done);
    tail = buf + format_rate(rate) + "  " + format_duration(elapsed_s);
  }
  std::string head = label;
  const int bar = total > 0 ? width - int(head.size()) - int(tail.size()) - 3 : 0;  // " [" + "]"
  if (bar >= 10) {
    const int cells = std::min(bar, 40);
    const int filled = int(double(cells) * double(std::min(done, total)) / double(total));
    head += " [" + std::string(size_t(filled), '#') + std::string(size_t(cells - filled), '-') + "]";
  }
  std::string line = head + tail;
  if (width > 0 && int(line.size()) > width) line.resize(size_t(width));
  return line;
}

}  // namespace iflame
