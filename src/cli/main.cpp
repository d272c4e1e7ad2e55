// iflame: one binary, one subcommand per file. Errors from bad input end in a one-line
// message that names the file and the problem, and exit code 1 (2 for usage errors).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/commands.h"
#include "util/error.h"

namespace {

void print_help() {
  std::printf(
      "iflame: generate 3D triangle meshes with the iFlame transformer (arXiv 2503.16653)\n\n"
      "usage: iflame COMMAND [options]   (iflame COMMAND --help for details)\n\ncommands:\n");
  for (const auto& c : iflame::cli::kCommands) std::printf("  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  for (const auto& c : iflame::cli::kCommands) {
    if (std::strcmp(argv[1], c.name) != 0) continue;
    try {
      return c.run(argc - 2, argv + 2);
    } catch (const iflame::Error& e) {
      std::fprintf(stderr, "iflame %s: error: %s\n", c.name, e.what());
      return 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "iflame %s: internal error: %s\n", c.name, e.what());
      return 3;
    }
  }
  std::fprintf(stderr, "iflame: unknown command '%s' (see iflame --help)\n", argv[1]);
  return 2;
}
