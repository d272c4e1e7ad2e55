// drop_partial_last_line: a line torn by a kill or a full disk is cut, whole lines are kept.
#include "util/fs.h"

#include <gtest/gtest.h>

#include "test_paths.h"

namespace iflame {
namespace {

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
