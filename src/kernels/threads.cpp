#include "kernels/threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <thread>

#include "util/blas_threads.h"

namespace iflame {

void set_compute_threads(int64_t threads) {
  if (threads <= 0) threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  at::set_num_threads(int(threads));
  set_blas_threads(int(threads));  // OpenBLAS's pool, which at::set_num_threads leaves at every core
  static bool interop_set = false;
  if (interop_set) return;
  interop_set = true;
  try {
    at::set_num_interop_threads(1);
  } catch (const std::exception&) {
    // The inter-op pool has started already (a caller used it first): keep it.
  }
}

}  // namespace iflame
