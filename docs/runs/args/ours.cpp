// The same seven options through our ArgParser (util/args.h); docs/runs/args/cli11.cpp is the
// CLI11 version. Compile time and binary size, 2026-12-06 (g++ 12 -O2, AMD EPYC Zen 5):
//   g++ -O2 -std=c++17 -Isrc -c docs/runs/args/ours.cpp     0.33 s user (+ util/args.cpp once)
//   g++ -O2 -std=c++17 -c docs/runs/args/cli11.cpp           6.0 s user (libcli11-dev 2.1.2)
//   linked: 64 KB (with args.o) vs 317 KB
#include "util/args.h"
#include <cstdio>
int main(int argc, char** argv) {
  std::string in, out = "a.obj", order = "zyx";
  int64_t faces = 800, seed = 1; double temp = 1.0; bool aug = false;
  iflame::ArgParser args("demo", "A demo.");
  args.positional("MESH", &in, "input").option("out", &out, "output").option("order", &order, "axis order")
      .option("faces", &faces, "max faces").option("seed", &seed, "seed").option("temperature", &temp, "T").flag("augment", &aug, "aug");
  if (!args.parse(argc - 1, argv + 1)) return 0;  // as the CLI passes a subcommand's words
  std::printf("%s %s %lld %g %d\n", in.c_str(), out.c_str(), (long long)faces, temp, aug);
}
