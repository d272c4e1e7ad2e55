// Measurements shared by the benchmark commands (bench train / decode / chamfer / attention):
// this process's CPU time and page faults, the mean and spread of repeated timings, and
// milliseconds since a time point.
#pragma once
#include <chrono>
#include <vector>

namespace iflame {

struct CpuUsage {
  double user = 0, sys = 0;  // seconds, all threads of this process
  double minor_faults = 0;   // minor page faults
  double seconds() const { return user + sys; }
};
CpuUsage cpu_usage();

// Milliseconds since t0 on the steady clock.
inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Arithmetic mean (0 for none) and sample standard deviation (0 for fewer than two).
double mean_of(const std::vector<double>& v);
double std_of(const std::vector<double>& v);

}  // namespace iflame
