// `iflame bench paper` end to end on the tiny model and a tiny corpus: every comparison has a
// number for all three architectures, (e) trains each on the same tokens, and the chart decodes.
#include <gtest/gtest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "render/png.h"
#include "test_paths.h"
#include "train/train_test_util.h"
#include "util/fs.h"

namespace iflame {
namespace {

// The cells of the first table row whose label starts with `prefix`, without the label.
std::vector<std::string> row_cells(const std::string& out, const std::string& prefix) {
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("| " + prefix, 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream in(line);
    std::string cell;
    while (std::getline(in, cell, '|')) {
      const size_t a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
      cells.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
    }
    // "", label, 3 paper cells, 3 of ours, 2 ratios
    if (cells.size() >= 2) cells.erase(cells.begin(), cells.begin() + 2);
    return cells;
  }
  return {};
}

bool is_number(const std::string& s) { return !s.empty() && std::isdigit(static_cast<unsigned char>(s[0])); }

TEST(PaperBenchSlow, AllFiveComparisonsForAllThreeArchitectures) {
  const std::string dir = test::temp_dir();
  const std::string data = test::make_dataset(dir);
  const std::string out = dir + "/out";
  const auto run = test::run_iflame(
      "bench paper --size tiny --faces 20 --train-faces 20 --train-steps 1 --train-warmup 0 --decode-tokens 9 "
      "--decode-warmup 0 --data " + data + " --train-tokens 400 --quality-max-faces 40 --batch-tokens 1024 "
      "--threads 1 --out " + out);
  ASSERT_EQ(run.code, 0) << run.out;
  for (const std::string prefix : {"(a) generation tokens/s @ 20 faces", "(b) cache per sequence", "(c) training speed",
                                   "(d) training peak memory", "(d) activations", "(e) validation loss",
                                   "(e) validation token accuracy", "(e) validation face accuracy"}) {
    const auto cells = row_cells(run.out, prefix);
    ASSERT_GE(cells.size(), 8u) << prefix << "\n" << run.out;
    for (int i = 3; i < 6; ++i) EXPECT_TRUE(is_number(cells[size_t(i)])) << prefix << ": '" << cells[size_t(i)] << "'\n" << run.out;
  }
  // The paper's numbers sit next to ours.
  const auto a = row_cells(run.out, "(a)"), c = row_cells(run.out, "(c)"), acc = row_cells(run.out, "(e) validation token");
  EXPECT_EQ(a[0], "45.0");
  EXPECT_EQ(a[2], "81.9");
  EXPECT_EQ(c[2], "227 min");
  EXPECT_EQ(acc[1], "71.9%");
  EXPECT_NE(run.out.find("(e) budget: each architecture trained from scratch on the same"), std::string::npos) << run.out;

  // (e): the same tokens for every architecture (same seed, same batches, same augmentation).
  const auto record = nlohmann::json::parse(read_file_text(out + "/paper-bench.json"));
  ASSERT_EQ(record.at("quality").size(), 3u);
  const int64_t targets = record["quality"][0].at("targets").get<int64_t>();
  EXPECT_GE(targets, 400);
  for (const auto& q : record["quality"]) EXPECT_EQ(q.at("targets").get<int64_t>(), targets) << q.dump();
  // (b) is exact: full keeps 16-bit K/V for 24 layers x 36018 positions x E = 64.
  EXPECT_EQ(record.at("cache").at("full").at("kv_bytes").get<int64_t>(), int64_t(2) * 2 * 24 * 36018 * 64);

  // The chart: 3 x 2 panels of 600 x 420.
  const std::string png = out + "/paper-bench.png";
  ASSERT_TRUE(std::filesystem::exists(png));
  std::ifstream f(png, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const render::Image img = render::decode_png(bytes, png);
  EXPECT_EQ(img.width, 1800);
  EXPECT_EQ(img.height, 840);
  EXPECT_TRUE(std::filesystem::exists(out + "/paper-bench.md"));
}

}  // namespace
}  // namespace iflame
