// Training config files (`key = value` lines): any text is a config or an iflame::Error, and a
// config that loads writes text that loads back to the same config.
#include <string>

#include "fuzz_target.h"
#include "train/config.h"

using namespace iflame;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  fuzz::expect_parse_or_error([&] {
    TrainConfig config;
    config.load_text(text, "fuzz.conf");
    TrainConfig again;
    again.load_text(config.to_text(), "again.conf");
    fuzz::require(again.to_text() == config.to_text(), "to_text loads back to the same config");
  });
  return 0;
}
