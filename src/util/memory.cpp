#include "util/memory.h"

#include <climits>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace iflame {

void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_MAX, 0);              // no allocation gets its own mmap
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // free space at the top of the heap stays (up to 2 GiB)
#endif
}

}  // namespace iflame
