// Seeded mutation fuzzing of the game-format readers: valid sample files (built in
// formats_test.cpp) get random byte flips, insertions, deletions, truncations and huge counts.
// The only allowed outcomes are a mesh that passes validate_mesh or an iflame::Error; anything
// else (another exception, a crash, a sanitizer report, a huge allocation) is a bug.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mesh/mesh.h"
#include "mesh/readers.h"
#include "test_paths.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame::format_samples {

// A valid sample file by name (pmd3, pmd4, g3d, md2, spm, spm_skinned, pie); defined in
// formats_test.cpp, which builds the same binary.
std::vector<uint8_t> sample_file(const std::string& name);

}  // namespace iflame::format_samples

namespace iflame {
namespace {

using Reader = Mesh (*)(const std::vector<uint8_t>&, const std::string&);

constexpr int kIterations = 3000;  // per sample file; all formats together run well under a second

// rng() % n rather than std::uniform_int_distribution, whose output differs between standard
// libraries; this keeps a failing case reproducible everywhere.
size_t pick(std::mt19937& rng, size_t n) { return n == 0 ? 0 : rng() % n; }

void put(std::vector<uint8_t>& b, size_t at, size_t width, uint32_t v) {
  for (size_t i = 0; i < width && at + i < b.size(); ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Values that stress count and offset handling: overflow edges, sign flips, "just too big".
uint32_t nasty_value(std::mt19937& rng) {
  static const uint32_t values[] = {0,          1,          2,          3,          255,
                                    256,        0xffff,     0x10000,    0x7fffffff, 0x80000000,
                                    0xffffffff, 0xfffffffe, 0x40000000, 0x0aaaaaab, 0x15555556};
  return pick(rng, 4) == 0 ? rng() : values[pick(rng, sizeof(values) / sizeof(values[0]))];
}

// Replaces a random run of digits (or a random token start) with a troublesome number.
void mutate_text_number(std::vector<uint8_t>& b, std::mt19937& rng) {
  static const char* tokens[] = {
      "4294967296", "-1", "99999999999999999999", "nan", "inf", "1e400", "2147483647", "-0", "0", "7", "+", "1e-400"};
  if (b.empty()) return;
  size_t at = pick(rng, b.size());
  while (at < b.size() && !(b[at] >= '0' && b[at] <= '9')) ++at;
  size_t end = at;
  while (end < b.size() && b[end] >= '0' && b[end] <= '9') ++end;
  const std::string t = tokens[pick(rng, sizeof(tokens) / sizeof(tokens[0]))];
  b.erase(b.begin() + at, b.begin() + end);
  b.insert(b.begin() + at, t.begin(), t.end());
}

void mutate(std::vector<uint8_t>& b, std::mt19937& rng, bool text) {
  const int rounds = 1 + static_cast<int>(pick(rng, 3));
  for (int r = 0; r < rounds; ++r) {
    const size_t at = pick(rng, b.size());
    switch (pick(rng, text ? 8 : 7)) {
      case 0:  // flip one bit
        if (!b.empty()) b[at] ^= static_cast<uint8_t>(1u << pick(rng, 8));
        break;
      case 1:  // random byte
        if (!b.empty()) b[at] = static_cast<uint8_t>(rng());
        break;
      case 2: {  // insert random bytes
        const size_t n = 1 + pick(rng, 8);
        for (size_t i = 0; i < n; ++i) b.insert(b.begin() + at, static_cast<uint8_t>(rng()));
        break;
      }
      case 3: {  // delete a range
        const size_t n = std::min(b.size() - at, 1 + pick(rng, 16));
        b.erase(b.begin() + at, b.begin() + at + n);
        break;
      }
      case 4:  // a 32-bit count or offset set to something huge
        put(b, at, 4, nasty_value(rng));
        break;
      case 5:  // a 16-bit count or index set to something huge
        put(b, at, 2, nasty_value(rng));
        break;
      case 6:  // truncate
        b.resize(at);
        break;
      default:
        mutate_text_number(b, rng);
        break;
    }
  }
}

// Runs `read` over mutations of `valid`; fails the test on any outcome other than a valid mesh
// or an iflame::Error. Returns how many mutants were accepted, to show the fuzzing gets past
// the header checks.
int fuzz(Reader read, const std::vector<uint8_t>& valid, uint32_t seed, bool text = false) {
  std::mt19937 rng(seed);
  const std::string path = "fuzz/mutant";
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    std::vector<uint8_t> bytes = valid;
    mutate(bytes, rng, text);
    try {
      const Mesh mesh = read(bytes, path);
      try {
        validate_mesh(mesh, path);
      } catch (const Error& e) {
        ADD_FAILURE() << "seed " << seed << " iteration " << i << ": reader returned an invalid mesh: " << e.what();
        return accepted;
      }
      ++accepted;
    } catch (const Error& e) {
      const std::string message = e.what();
      if (message.rfind(path + ": ", 0) != 0) {
        ADD_FAILURE() << "seed " << seed << " iteration " << i << ": error does not name the file: " << message;
        return accepted;
      }
    } catch (const std::exception& e) {
      ADD_FAILURE() << "seed " << seed << " iteration " << i << ": non-iflame exception: " << e.what();
      return accepted;
    }
  }
  return accepted;
}

TEST(FormatsFuzz, Pmd) {
  EXPECT_GT(fuzz(readers::read_pmd, format_samples::sample_file("pmd3"), 1), 0);
  EXPECT_GT(fuzz(readers::read_pmd, format_samples::sample_file("pmd4"), 2), 0);
}

TEST(FormatsFuzz, G3d) { EXPECT_GT(fuzz(readers::read_g3d, format_samples::sample_file("g3d"), 3), 0); }

TEST(FormatsFuzz, Md2) { EXPECT_GT(fuzz(readers::read_md2, format_samples::sample_file("md2"), 4), 0); }

TEST(FormatsFuzz, Spm) {
  EXPECT_GT(fuzz(readers::read_spm, format_samples::sample_file("spm"), 5), 0);
  EXPECT_GT(fuzz(readers::read_spm, format_samples::sample_file("spm_skinned"), 6), 0);
}

TEST(FormatsFuzz, Pie) { EXPECT_GT(fuzz(readers::read_pie, format_samples::sample_file("pie"), 7, /*text=*/true), 0); }

// The libFuzzer harnesses' seeds (tests/fuzz/corpus/<format>/) are these sample files, so that
// they stay valid when a sample changes; IFLAME_UPDATE_FUZZ_SEEDS=1 rewrites them.
TEST(FormatsFuzz, LibFuzzerSeedsAreTheSampleFiles) {
  const std::pair<const char*, const char*> seeds[] = {{"pmd", "pmd3"}, {"pmd", "pmd4"}, {"g3d", "g3d"}, {"md2", "md2"},
                                                       {"spm", "spm"},  {"spm", "spm_skinned"}, {"pie", "pie"}};
  const bool update = std::getenv("IFLAME_UPDATE_FUZZ_SEEDS") != nullptr;
  for (const auto& [format, name] : seeds) {
    const std::string path = test::source_dir() + "/tests/fuzz/corpus/" + format + "/" + name;
    const std::vector<uint8_t> sample = format_samples::sample_file(name);
    if (update) write_file_atomic(path, sample.data(), sample.size());
    ASSERT_TRUE(std::filesystem::exists(path)) << path << " (run with IFLAME_UPDATE_FUZZ_SEEDS=1)";
    EXPECT_EQ(read_file_bytes(path), sample) << path << " is stale (run with IFLAME_UPDATE_FUZZ_SEEDS=1)";
  }
}

}  // namespace
}  // namespace iflame
