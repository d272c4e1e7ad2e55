#include "cli/runtime.h"

#include <thread>

#include "util/blas_threads.h"
#include "util/error.h"

namespace iflame::cli {

void configure_threads(int64_t threads) {
  if (threads <= 0) threads = std::max<int64_t>(1, std::thread::hardware_concurrency());
  at::set_num_threads(int(threads));
  set_blas_threads(int(threads));  // OpenBLAS's own pool, which at::set_num_threads leaves at every core
  static bool interop_set = false;  // may only be set once per process
  if (!interop_set) {
    at::set_num_interop_threads(1);
    interop_set = true;
  }
}

torch::Device parse_device(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  try {
    torch::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available()) throw Error("--device " + name + ": CUDA is not available in this build/machine");
    return device;
  } catch (const c10::Error&) {
    throw Error("--device: unknown device '" + name + "' (use cpu, cuda or auto)");
  }
}

}  // namespace iflame::cli
