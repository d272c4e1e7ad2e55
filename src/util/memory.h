// Process-wide memory allocator settings.
#pragma once

namespace iflame {

// Keeps memory the process frees in its heap for reuse instead of handing it back to the
// system. By default glibc serves each allocation above its mmap threshold (32 MiB at most)
// with a fresh mmap and unmaps it on free, so every large temporary tensor of a training step
// page-faults all of its pages again: at `ref`, 800 faces, that was ~1M page faults and a
// quarter of the CPU time in the kernel per step (docs/history.md). Peak resident memory
// does not grow: freed blocks are reused. Training calls this at start-up; no effect on
// C libraries other than glibc.
void keep_freed_memory();

}  // namespace iflame
