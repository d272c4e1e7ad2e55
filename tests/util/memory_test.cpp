// keep_freed_memory: large blocks come from the heap and stay there after free.
#include "util/memory.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "test_paths.h"

namespace iflame {
namespace {

#if defined(__GLIBC__)
TEST(Memory, KeepFreedMemoryServesLargeBlocksFromTheHeapAndKeepsThem) {
  IFLAME_SKIP_UNDER_ASAN("it replaces glibc's malloc, whose tuning this checks");
  keep_freed_memory();
  constexpr size_t kBytes = size_t(64) << 20;  // above glibc's largest default mmap threshold
  const size_t mapped_before = mallinfo2().hblkhd;
  char* p = static_cast<char*>(std::malloc(kBytes));
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, kBytes);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before) << "the block got its own mmap";
  std::free(p);
  EXPECT_GE(mallinfo2().arena, kBytes) << "the freed block was handed back to the system";
}
#endif

}  // namespace
}  // namespace iflame
