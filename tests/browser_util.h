// Headless Chromium for the tests of web pages (the gallery of `iflame view`, the page of
// `iflame serve`): finding the browser and its command line (run it with test::run_shell).
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "test_paths.h"

namespace iflame::test {

// $IFLAME_CHROMIUM, else the first Chromium-like browser on PATH; "" when there is none.
inline std::string find_chromium() {
  if (const char* env = std::getenv("IFLAME_CHROMIUM"); env && *env) return env;
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  std::vector<std::string> dirs_list;
  while (std::getline(dirs, dir, ':')) dirs_list.push_back(dir);
  for (const char* name : {"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}) {
    for (const std::string& d : dirs_list) {
      const std::string p = d + "/" + name;
      if (!d.empty() && ::access(p.c_str(), X_OK) == 0) return p;
    }
  }
  return "";
}

// Software WebGL (SwiftShader: CI machines have no GPU) and a private profile in `profile_dir`,
// so that parallel tests do not hand their pages to each other's browser.
inline std::string headless_chromium(const std::string& chromium, const std::string& profile_dir) {
  return "timeout 120 '" + chromium + "' --headless --no-sandbox --disable-gpu --use-angle=swiftshader "
         "--enable-unsafe-swiftshader --allow-file-access-from-files --hide-scrollbars --no-first-run "
         "--window-size=1000,700 --user-data-dir='" + profile_dir + "' --enable-logging=stderr ";
}

}  // namespace iflame::test
