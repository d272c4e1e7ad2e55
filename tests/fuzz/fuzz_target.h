// What every libFuzzer harness of tests/fuzz/ shares: the one allowed failure is an
// iflame::Error (a clear message naming the input); any other exception, a crash, a sanitizer
// report, a leak or an allocation beyond libFuzzer's -rss_limit_mb is a bug it reports.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "util/error.h"

namespace iflame::fuzz {

// Runs `parse()`; returns normally for success or an iflame::Error, and aborts (a finding) for
// anything else, printing what was thrown.
template <typename F>
void expect_parse_or_error(F&& parse) {
  try {
    parse();
  } catch (const Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "not an iflame::Error: %s\n", e.what());
    std::abort();
  }
}

// A checked invariant of a parser's output: abort (a finding) when it does not hold.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// Writes the input to a file of its own (for readers that take a path), removed on destruction.
class TempFile {
 public:
  TempFile(const uint8_t* data, size_t size, const char* suffix);
  ~TempFile();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace iflame::fuzz
