// Shared set-up for the LibTorch subcommands: the device and the model's sampling defaults
// (threads: kernels/threads.h).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "generate/sampler.h"
#include "model/torch_compat.h"
#include "util/args.h"

namespace iflame::cli {

// "cpu", "cuda", "cuda:1" or "auto" (CUDA when available); throws iflame::Error otherwise.
torch::Device parse_device(const std::string& name);

// Sets each option the command line did not give from the model's "sample.<option>" metadata
// (sample.temperature, sample.top-p, sample.min-p, sample.top-k, sample.max-faces given by the
// caller, and every switch of sampling_switches() into `switches`: sample.order-constraints,
// sample.distinct-faces, ...). Returns the options so set. A malformed value is an error naming
// the file and key.
std::vector<std::string> apply_sampling_defaults(const std::map<std::string, std::string>& metadata,
                                                 const std::string& path, const ArgParser& args,
                                                 const std::vector<std::pair<std::string, double*>>& numbers,
                                                 const std::vector<std::pair<std::string, int64_t*>>& integers,
                                                 SamplingOptions& switches);

}  // namespace iflame::cli
