// drop_partial_last_line: a line torn by a kill or a full disk is cut, whole lines are kept.
// read_file_bytes: pipes are read, endless devices and folders are refused with the path named.
#include "util/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "error_text.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

std::string error_of_reading(const std::string& path, size_t max_stream_bytes) {
  return test::error_text([&] { read_file_bytes(path, max_stream_bytes); });
}

TEST(Fs, ReadFileBytesStopsAtADeviceThatNeverEnds) {
  const std::string e = error_of_reading("/dev/zero", 1 << 20);
  EXPECT_NE(e.find("/dev/zero"), std::string::npos) << e;
  EXPECT_NE(e.find("not a regular file"), std::string::npos) << e;
  const std::string dir = test::temp_dir();
  EXPECT_NE(error_of_reading(dir, 1 << 20).find("is a folder"), std::string::npos);
}

TEST(Fs, ReadFileBytesReadsAPipeAndARegularFileWhole) {
  const std::string dir = test::temp_dir();
  const std::string fifo = dir + "/pipe";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::thread writer([&] { std::ofstream(fifo) << "key = value\n"; });
  const std::vector<uint8_t> got = read_file_bytes(fifo, 1 << 20);
  writer.join();
  EXPECT_EQ(std::string(got.begin(), got.end()), "key = value\n");
  // A regular file is read at its size, whatever the stream limit.
  const std::string file = dir + "/big";
  std::ofstream(file) << std::string(3000, 'x');
  EXPECT_EQ(read_file_bytes(file, 1000).size(), 3000u);
}

TEST(Fs, DropPartialLastLineCutsOnlyATornLine) {
  const std::string path = test::temp_dir() + "/log.jsonl";
  const std::pair<std::string, std::string> cases[] = {
      {"{\"step\":1}\n{\"step\":2}\n", "{\"step\":1}\n{\"step\":2}\n"},  // whole: untouched
      {"{\"step\":1}\n{\"st", "{\"step\":1}\n"},                           // torn: cut
      {"{\"st", ""},                                                       // only a torn line
      {"", ""},
  };
  for (const auto& [before, after] : cases) {
    write_file_atomic(path, before);
    drop_partial_last_line(path);
    EXPECT_EQ(read_file_text(path), after) << before;
  }
  drop_partial_last_line(path + ".missing");  // nothing to do, no error
}

}  // namespace
}  // namespace iflame
