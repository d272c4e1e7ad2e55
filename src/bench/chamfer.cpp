// iflame bench chamfer: speed of the pairwise Chamfer matrix that `iflame eval` spends its time
// in (|A| x |B| clouds of N points), per kernel, with an accuracy check against float64.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "bench/bench.h"
#include "eval/metrics.h"
#include "mesh/chamfer.h"
#include "util/args.h"
#include "util/error.h"
#include "util/measure.h"
#include "util/parallel.h"
#include "util/progress.h"
#include "util/report.h"

namespace iflame::bench {

namespace {

// `count` clouds of uniform points in [-0.5, 0.5]^3 (the kernel does the same work for any points).
std::vector<PointCloud> random_clouds(size_t count, size_t points, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<PointCloud> out(count, PointCloud(points));
  for (auto& c : out) {
    for (auto& p : c) {
      for (float& v : p) v = float(double(rng() >> 11) * 0x1p-53 - 0.5);
    }
  }
  return out;
}

}  // namespace

int run_chamfer_command(int argc, char** argv) {
  int64_t shapes = 500, points = int64_t(kDefaultPoints), threads = 0, seed = 1, check = 3;
  std::string kernels = "auto", format = "md", out_path;
  ArgParser args("bench chamfer",
                 "Times the |A| x |B| squared-Chamfer matrix of `iflame eval` (--shapes x --shapes random clouds\n"
                 "of --points points) for each kernel, and checks --check pairs against the float64 definition.\n"
                 "A full `iflame eval` of S samples and R references computes S R + S(S-1)/2 + R(R-1)/2 pairs;\n"
                 "the table projects that time for S = R = --shapes.");
  args.option("shapes", &shapes, "clouds per set")
      .option("points", &points, "points per cloud")
      .option("kernels", &kernels, "auto (the fastest here), all, or a comma-separated list of avx512, avx2, generic")
      .option("threads", &threads, "threads (0: every core)")
      .option("seed", &seed, "random seed for the clouds")
      .option("check", &check, "pairs compared with the float64 definition")
      .option("format", &format, "md | json (one line)")
      .option("out", &out_path, "also write the output to this file");
  if (!args.parse(argc, argv)) return 0;
  if (shapes < 1 || points < 1) throw Error("bench chamfer: --shapes and --points must be positive");
  if (format != "md" && format != "json") throw Error("bench chamfer: --format must be md or json");
  const int jobs = threads > 0 ? int(threads) : hardware_jobs();
  std::vector<std::string> list;
  if (kernels == "all") {
    list = chamfer_kernels();
  } else {
    std::stringstream in(kernels);
    std::string k;
    while (std::getline(in, k, ',')) {
      if (!k.empty()) list.push_back(resolve_chamfer_kernel(k));
    }
  }
  if (list.empty()) throw Error("bench chamfer: --kernels names no kernel");

  const auto A = random_clouds(size_t(shapes), size_t(points), uint64_t(seed));
  const auto B = random_clouds(size_t(shapes), size_t(points), uint64_t(seed) + 1);
  const double pairs = double(shapes) * double(shapes);
  const double full_pairs = double(eval::generation_metric_pairs(size_t(shapes), size_t(shapes)));
  const std::string load_before = bench::load_average();

  nlohmann::json rows = nlohmann::json::array();
  std::ostringstream md;
  md << "| kernel | threads | shapes | points | seconds | CPU s | pairs/s | G point pairs/s | full eval (s) | max rel. error |\n"
     << "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const std::string& k : list) {
    ChamferOptions opt;
    opt.threads = jobs;
    opt.kernel = k;
    Progress progress("bench chamfer " + k, size_t(pairs));
    opt.progress = &progress;
    const double c0 = cpu_usage().seconds();
    const auto t0 = std::chrono::steady_clock::now();
    const DistanceMatrix m = pairwise_chamfer(A, B, opt);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = cpu_usage().seconds() - c0;
    progress.finish();
    double max_rel = 0;
    for (int64_t c = 0; c < check; ++c) {
      const size_t i = size_t(c * 7919) % size_t(shapes), j = size_t(c * 104729 + 1) % size_t(shapes);
      const double ref = chamfer_distance(A[i], B[j]);
      max_rel = std::max(max_rel, std::abs(m.at(i, j) - ref) / ref);
    }
    const double point_pairs = pairs * double(points) * double(points);
    rows.push_back({{"kernel", k}, {"threads", jobs}, {"shapes", shapes}, {"points", points}, {"seconds", secs},
                    {"cpu_seconds", cpu}, {"pairs_per_s", pairs / secs}, {"point_pairs_per_s", point_pairs / secs},
                    {"full_eval_seconds", secs * full_pairs / pairs}, {"max_rel_error", max_rel}});
    md << "| " << k << " | " << jobs << " | " << shapes << " | " << points << " | " << fmt("%.2f", secs) << " | "
       << fmt("%.2f", cpu) << " | " << fmt("%.0f", pairs / secs) << " | " << fmt("%.2f", point_pairs / secs * 1e-9) << " | "
       << fmt("%.1f", secs * full_pairs / pairs) << " | " << fmt("%.1e", max_rel) << " |\n";
  }

  std::string text;
  if (format == "json") {
    nlohmann::json j = {{"cpu", cpu_model()}, {"nproc", hardware_threads()},
                        {"load_before", load_before}, {"rows", rows}};
    text = j.dump() + "\n";
  } else {
    text = "iflame bench chamfer: " + cpu_model() + ", " + std::to_string(hardware_threads()) +
           " CPUs, load before " + load_before + "\n" + std::to_string(shapes) + " x " + std::to_string(shapes) +
           " clouds of " + std::to_string(points) + " points (squared Chamfer, row and column minima in one pass)\n\n" +
           md.str();
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
  if (!out_path.empty()) {
    std::ofstream f(out_path);
    if (!f) throw Error(out_path, "cannot write");
    f << text;
  }
  return 0;
}

}  // namespace iflame::bench
