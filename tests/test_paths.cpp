#include "test_paths.h"

#include <gtest/gtest.h>
#include <unistd.h>

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

}  // namespace iflame::test
