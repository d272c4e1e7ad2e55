#include "test_paths.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace iflame::test {

std::string shared_dir() {
  if (const char* env = std::getenv("IFLAME_SHARED_DIR")) return env;
  return IFLAME_SHARED_DIR;
}
std::string reference_dir() { return shared_dir() + "/reference/iflame-dev"; }
std::string source_dir() { return IFLAME_SOURCE_DIR; }
std::string iflame_binary() { return IFLAME_BINARY; }

std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "iflame";
  auto dir = std::filesystem::temp_directory_path() / ("iflame-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

CliRun run_iflame(const std::string& args) { return run_shell("'" + iflame_binary() + "' " + args + " 2>&1"); }

CliRun run_shell(const std::string& command) {
  CliRun r;
  std::FILE* p = ::popen(command.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace iflame::test
