// Headless Chromium for the tests of web pages (the gallery of `iflame view`, the page of
// `iflame serve`): finding the browser and running a shell command for its output.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

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

struct ShellRun {
  int code = -1;
  std::string out;
};
inline ShellRun run_shell(const std::string& cmd) {
  ShellRun r;
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// Software WebGL (SwiftShader: CI machines have no GPU) and a private profile in `profile_dir`,
// so that parallel tests do not hand their pages to each other's browser.
inline std::string headless_chromium(const std::string& chromium, const std::string& profile_dir) {
  return "timeout 120 '" + chromium + "' --headless --no-sandbox --disable-gpu --use-angle=swiftshader "
         "--enable-unsafe-swiftshader --allow-file-access-from-files --hide-scrollbars --no-first-run "
         "--window-size=1000,700 --user-data-dir='" + profile_dir + "' --enable-logging=stderr ";
}

}  // namespace iflame::test
