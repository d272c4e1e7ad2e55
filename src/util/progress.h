// A progress bar for long loops: count, percent, rate and ETA on one self-overwriting line.
// Drawn only when the stream is a terminal; on a pipe or a log file it prints nothing at all
// (the caller prints its own one-line summary at the end).
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <mutex>
#include <string>

namespace iflame {

class Progress {
 public:
  // `total` = 0 means unknown (no bar, percent or ETA; count and rate only).
  // enabled: -1 = when `out` is a terminal, 0 = never, 1 = always (tests).
  Progress(std::string label, size_t total, std::FILE* out = stderr, int enabled = -1);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Counts `n` more items done; thread-safe. Redraws at most every 100 ms (and at the end).
  void add(size_t n = 1);
  // Erases the bar (if one was drawn) so the next line starts clean. Idempotent.
  void finish();

  size_t done() const { return done_.load(std::memory_order_relaxed); }
  size_t total() const { return total_; }
  double elapsed_s() const;
  bool enabled() const { return enabled_; }

  // The line drawn for a given state, fitted into `width` columns, e.g.
  // "prepare [##########----------] 3512/7020  50%  412/s  ETA 0:08".
  static std::string format_line(const std::string& label, size_t done, size_t total, double elapsed_s, int width);
  // "0:07", "12:34", "1:02:03"; "--:--" for a negative or non-finite value.
  static std::string format_duration(double seconds);
  // "412/s", "41.2/s", "0.41/s" (three significant digits, no exponent).
  static std::string format_rate(double per_second);
  // True when `out` is a terminal (isatty) and TERM is not "dumb".
  static bool is_terminal(std::FILE* out);

 private:
  void draw();

  std::string label_;
  size_t total_;
  std::FILE* out_;
  bool enabled_;
  bool drawn_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::atomic<size_t> done_{0};
  std::atomic<int64_t> last_draw_ns_{0};
  std::mutex draw_mutex_;
};

}  // namespace iflame
