// Where tests find reference data, the source tree, the CLI binary and scratch space.
#pragma once
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
