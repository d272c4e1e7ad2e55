// The CLI11 version of docs/runs/args/ours.cpp (numbers there).
#include <CLI/CLI.hpp>
#include <cstdio>
int main(int argc, char** argv) {
  std::string in, out = "a.obj", order = "zyx";
  int64_t faces = 800, seed = 1; double temp = 1.0; bool aug = false;
  CLI::App app("A demo.", "demo");
  app.add_option("MESH", in, "input")->required();
  app.add_option("--out", out, "output"); app.add_option("--order", order, "axis order");
  app.add_option("--faces", faces, "max faces"); app.add_option("--seed", seed, "seed");
  app.add_option("--temperature", temp, "T"); app.add_flag("--augment", aug, "aug");
  CLI11_PARSE(app, argc, argv);
  std::printf("%s %s %lld %g %d\n", in.c_str(), out.c_str(), (long long)faces, temp, aug);
}
