#include "util/args.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util/error.h"

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
    try {
      parse_switch({word}, false);
      ADD_FAILURE() << word << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--loops"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace iflame
