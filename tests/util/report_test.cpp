// The Markdown tables and number formatting every table-printing command shares.
#include "util/report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

TEST(UtilReport, MarkdownTablePadsAndRightAlignsAllButTheFirstColumn) {
  EXPECT_EQ(markdown_table({"arch", "tok/s"}, {{"iflame", "120.0"}, {"full", "20.3"}}),
            "| arch   | tok/s |\n"
            "| ------ | ----: |\n"
            "| iflame | 120.0 |\n"
            "| full   |  20.3 |\n");
  // Short rows get empty cells; columns are at least 3 wide.
  EXPECT_EQ(markdown_table({"a", "b"}, {{"x"}}), "| a   | b   |\n| --- | --: |\n| x   |     |\n");
}

TEST(UtilReport, FormatsOneNumberAndTheDate) {
  EXPECT_EQ(fmt("%.2f%%", 12.345), "12.35%");
  const std::string d = today();
  ASSERT_EQ(d.size(), 10u);
  EXPECT_EQ(d[4], '-');
  EXPECT_EQ(d[7], '-');
}

TEST(UtilReport, SplitsCommaListsSkippingEmptyItems) {
  EXPECT_EQ(split_commas("a,,b,"), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(split_commas("").empty());
}

TEST(UtilReport, IntListsCheckTheLowerBoundAndNameTheOption) {
  EXPECT_EQ(int_list("0,800,,4000", "--faces", 0), (std::vector<int64_t>{0, 800, 4000}));
  EXPECT_THROW(int_list("0,1", "--batch", 1), Error);
  EXPECT_THROW(int_list("", "--batch", 1), Error);
  EXPECT_THROW(int_list("12x", "--batch", 1), Error);
  EXPECT_THROW(int_list("99999999999999999999", "--batch", 1), Error);
  try {
    int_list("1,-3", "--faces", 1);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--faces needs integers >= 1, got '-3'"), std::string::npos) << e.what();
  }
}

TEST(UtilReport, EmitWritesTheFileTooAndNamesOneItCannotWrite) {
  const std::string path = test::temp_dir() + "/out.md";
  testing::internal::CaptureStdout();
  emit("| a |\n", path);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "| a |\n");
  std::ifstream in(path);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), "| a |\n");
  testing::internal::CaptureStdout();
  try {
    emit("x", "/nonexistent-dir/out.md");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/out.md"), std::string::npos) << e.what();
  }
  testing::internal::GetCapturedStdout();
}

}  // namespace
}  // namespace iflame
