// Where tests find reference data, the source tree, the CLI binary and scratch space.
#pragma once
#include <filesystem>
#include <string>

namespace iflame::test {

std::string shared_dir();     // ../shared (override with IFLAME_SHARED_DIR)
std::string reference_dir();  // shared/reference/iflame-dev
std::string source_dir();
std::string iflame_binary();
// A fresh, empty directory unique to the running test.
std::string temp_dir();

// Runs the iflame binary with `args` (a shell-quoted argument string) and collects its exit
// code and output (stdout and stderr together).
struct CliRun {
  int code = -1;
  std::string out;
};
CliRun run_iflame(const std::string& args);
// Runs a shell command line and collects its exit code and stdout.
CliRun run_shell(const std::string& command);

}  // namespace iflame::test

// Skips the running test, saying why, when the reference data (../shared, or
// IFLAME_SHARED_DIR) is not there, as in a clone without its shared/ folder beside it.
#define IFLAME_REQUIRE_REFERENCE_DATA()                                                              \
  do {                                                                                               \
    if (!std::filesystem::exists(::iflame::test::reference_dir() + "/meta.json")) {                  \
      GTEST_SKIP() << "no reference data at " << ::iflame::test::reference_dir()                     \
                   << " (put shared/ beside the source tree, or set IFLAME_SHARED_DIR)";             \
    }                                                                                                \
  } while (0)

// AddressSanitizer builds (scripts/test.sh's second stage) replace malloc and reserve terabytes
// of address space for shadow memory; tests of malloc tuning or of address-space limits skip
// there, saying why.
#if defined(__SANITIZE_ADDRESS__)
#define IFLAME_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IFLAME_UNDER_ASAN 1
#endif
#endif
#ifdef IFLAME_UNDER_ASAN
#define IFLAME_SKIP_UNDER_ASAN(why) GTEST_SKIP() << "not under AddressSanitizer: " << why
#else
#define IFLAME_SKIP_UNDER_ASAN(why) \
  do {                              \
  } while (0)
#endif
