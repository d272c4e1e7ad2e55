#include "util/memory.h"

#include <cstdlib>  // defines __GLIBC__ on glibc systems

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace iflame {

void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);         // no allocation gets its own mmap
  mallopt(M_TRIM_THRESHOLD, -1);  // never give the top of the heap back (-1: no trimming at all)
#endif
}

}  // namespace iflame
