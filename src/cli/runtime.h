// Shared set-up for the LibTorch subcommands: threads and device.
#pragma once
#include <string>

#include "model/torch_compat.h"

namespace iflame::cli {

// LibTorch starts with one intra-op thread here; use every core unless told otherwise
// (threads <= 0), and one inter-op thread to avoid oversubscription.
void configure_threads(int64_t threads);

// "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); throws iflame::Error otherwise.
torch::Device parse_device(const std::string& name);

}  // namespace iflame::cli
