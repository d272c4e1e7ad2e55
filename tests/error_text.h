// Tests of refusals read the message: the file or option it names and what is wrong.
#pragma once
#include <string>

#include "util/error.h"

namespace iflame::test {

// The message of the iflame::Error that `fn` throws, or "" when it throws none.
template <class Fn>
std::string error_text(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace iflame::test
