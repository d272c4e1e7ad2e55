// The Markdown tables and number formatting every table-printing command shares.
#include "util/report.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace iflame
