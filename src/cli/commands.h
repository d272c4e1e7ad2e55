// The subcommands of the `iflame` binary, one source file each (cmd_<name>.cpp).
// Each gets the arguments after its name and returns the process exit code.
#pragma once

namespace iflame::cli {

int run_tokenize(int argc, char** argv);
int run_logits(int argc, char** argv);
int run_sample(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_prepare(int argc, char** argv);
int run_train(int argc, char** argv);
int run_convert(int argc, char** argv);
int run_bench(int argc, char** argv);
int run_render(int argc, char** argv);
int run_view(int argc, char** argv);
int run_serve(int argc, char** argv);

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int, char**);
};

// In the order `iflame --help` lists them.
inline constexpr Command kCommands[] = {
    {"tokenize", "print a mesh's canonical form and its token rows", run_tokenize},
    {"logits", "write a model's logits for token files (parallel or cached; parity checks)", run_logits},
    {"sample", "generate meshes (batched cached decoding, top-k/top-p, grammar constraints)", run_sample},
    {"eval", "generation metrics (COV, MMD, 1-NNA, JSD, mesh stats) and teacher-forced accuracy", run_eval},
    {"prepare", "build a training dataset from folders of meshes", run_prepare},
    {"train", "train iFlame or a baseline on a prepared dataset (checkpoints, resume)", run_train},
    {"convert", "convert a PyTorch .pth state dict to safetensors", run_convert},
    {"bench", "benchmarks: training speed and memory of iFlame vs the baselines", run_bench},
    {"render", "render meshes to PNG (shaded, with edges, several views) and grids", run_render},
    {"view", "write an HTML gallery of meshes with an interactive 3D viewer (three.js)", run_view},
    {"serve", "an HTTP server: continuous batching, faces streamed as generated, a web page", run_serve},
};

}  // namespace iflame::cli
