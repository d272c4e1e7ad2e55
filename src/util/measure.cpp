#include "util/measure.h"

#include <sys/resource.h>

#include <cmath>

namespace iflame {

CpuUsage cpu_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {double(ru.ru_utime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec),
          double(ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_stime.tv_usec), double(ru.ru_minflt)};
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size() - 1));
}

}  // namespace iflame
