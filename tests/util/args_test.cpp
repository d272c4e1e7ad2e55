#include "util/args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "error_text.h"

namespace iflame {
namespace {

// Parses `words` (after the command name) into a fresh parser with one switch that starts `on`.
struct Parsed {
  bool value;
  bool given;
};
Parsed parse_switch(std::vector<std::string> words, bool on) {
  bool value = on;
  ArgParser args("demo", "a demo");
  args.flag("loops", &value, "a switch");
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  args.parse(int(argv.size()), argv.data());
  return {value, args.given("loops")};
}

TEST(ArgParser, SwitchesTurnOnAndOffAndCountAsGiven) {
  EXPECT_FALSE(parse_switch({}, false).value);
  EXPECT_FALSE(parse_switch({}, true).given);
  EXPECT_TRUE(parse_switch({}, true).value);
  EXPECT_TRUE(parse_switch({"--loops"}, false).value);
  EXPECT_TRUE(parse_switch({"--loops=true"}, false).value);
  const Parsed off = parse_switch({"--loops=false"}, true);
  EXPECT_FALSE(off.value);
  EXPECT_TRUE(off.given);
}

TEST(ArgParser, ASwitchRefusesAnyOtherValueNamingIt) {
  for (const char* word : {"--loops=yes", "--loops=", "--loops=0"}) {
    const std::string text = test::error_text([&] { parse_switch({word}, false); });
    EXPECT_NE(text.find("--loops"), std::string::npos) << word << " was accepted, or the refusal names nothing";
  }
}

TEST(WrapWords, BreaksAtSpacesWithinTheWidthAndIndentsTheRest) {
  EXPECT_EQ(wrap_words("list: ", "a bb ccc dd", 12, "  "), "list: a bb\n  ccc dd");
  EXPECT_EQ(wrap_words("", "a  b", 80, ""), "a b");
  EXPECT_EQ(wrap_words("x ", "", 80, ""), "x ");
  EXPECT_EQ(wrap_words("  A {", "aa bb cc dd", 9, "    "), "  A {aa\n    bb cc\n    dd");
  // A word longer than the width gets a line of its own rather than being cut.
  EXPECT_EQ(wrap_words("", "a verylongword b", 5, ""), "a\nverylongword\nb");
}

}  // namespace
}  // namespace iflame
