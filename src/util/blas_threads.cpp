#include "util/blas_threads.h"

#include <dlfcn.h>

namespace iflame {

bool set_blas_threads(int threads) {
  using SetThreads = void (*)(int);
  auto* set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (!set) return false;
  set(threads < 1 ? 1 : threads);
  return true;
}

}  // namespace iflame
