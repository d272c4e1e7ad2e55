// Errors: every failure that reaches a user names the file (or thing) and what is wrong with it.
#pragma once
#include <stdexcept>
#include <string>

namespace iflame {

// Thrown for bad input (a mesh, dataset, checkpoint, config). `what()` is a complete sentence
// prefixed by the path, e.g. "chair.obj: face 12 refers to vertex 90 but there are 40 vertices".
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  Error(const std::string& path, const std::string& message)
      : std::runtime_error(path.empty() ? message : path + ": " + message), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace iflame
