// Where the shipped default model is found when a command gets no --weights: `iflame sample`
// and `iflame serve` work without flags from a build folder anywhere (through the source path
// recorded at configure time), after `cmake --install` to any prefix, and through IFLAME_MODEL.
#pragma once
#include <string>
#include <vector>

namespace iflame {

inline constexpr const char* kDefaultModelFile = "iflame-default.safetensors";

struct ModelSearch {
  std::string found;               // "" when no place had the model
  std::vector<std::string> tried;  // every path looked at, in order
};

// Looks, in order, at: $IFLAME_MODEL (a file; when set, nothing else is tried), then for
// models/iflame-default.safetensors next to the executable's folder (<bin>/../models,
// <bin>/models), in the installed data folder (<bin>/../share/iflame/models, and the install
// prefix recorded at configure time), and in the source tree recorded at configure time.
ModelSearch find_default_model();

// find_default_model().found, or an iflame::Error that names every place it looked.
std::string default_model_path();

// The folder holding the running executable ("" when /proc/self/exe cannot be read).
std::string executable_dir();

}  // namespace iflame
