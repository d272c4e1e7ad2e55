#include "fuzz_target.h"

#include <unistd.h>

namespace iflame::fuzz {

TempFile::TempFile(const uint8_t* data, size_t size, const char* suffix) {
  const char* dir = std::getenv("TMPDIR");
  path_ = std::string(dir && *dir ? dir : "/tmp") + "/iflame-fuzz-" + std::to_string(::getpid()) + suffix;
  std::FILE* f = std::fopen(path_.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path_.c_str());
    std::abort();
  }
}

TempFile::~TempFile() { std::remove(path_.c_str()); }

}  // namespace iflame::fuzz
