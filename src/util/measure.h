// Measurements shared by the benchmark commands (bench train / decode / chamfer): this
// process's CPU time and page faults, and the mean and spread of repeated timings.
#pragma once
#include <vector>

namespace iflame {

struct CpuUsage {
  double user = 0, sys = 0;  // seconds, all threads of this process
  double minor_faults = 0;   // minor page faults
  double seconds() const { return user + sys; }
};
CpuUsage cpu_usage();

// Arithmetic mean (0 for none) and sample standard deviation (0 for fewer than two).
double mean_of(const std::vector<double>& v);
double std_of(const std::vector<double>& v);

}  // namespace iflame
