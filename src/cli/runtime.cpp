#include "cli/runtime.h"

#include <cmath>
#include <cstdlib>

#include "util/error.h"

namespace iflame::cli {

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

std::vector<std::string> apply_sampling_defaults(const std::map<std::string, std::string>& metadata,
                                                 const std::string& path, const ArgParser& args,
                                                 const std::vector<std::pair<std::string, double*>>& numbers,
                                                 const std::vector<std::pair<std::string, int64_t*>>& integers,
                                                 SamplingOptions& switches) {
  std::vector<std::string> applied;
  auto value_of = [&](const std::string& option) -> const std::string* {
    if (args.given(option)) return nullptr;
    auto it = metadata.find("sample." + option);
    return it == metadata.end() ? nullptr : &it->second;
  };
  auto bad = [&](const std::string& option, const std::string& v) {
    return Error(path, "metadata sample." + option + " = '" + v + "' is not a valid value");
  };
  for (const auto& [option, target] : numbers) {
    const std::string* v = value_of(option);
    if (!v) continue;
    char* end = nullptr;
    const double x = std::strtod(v->c_str(), &end);
    if (v->empty() || *end || !std::isfinite(x)) throw bad(option, *v);
    *target = x;
    applied.push_back(option);
  }
  for (const auto& [option, target] : integers) {
    const std::string* v = value_of(option);
    if (!v) continue;
    char* end = nullptr;
    const long long x = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || *end) throw bad(option, *v);
    *target = x;
    applied.push_back(option);
  }
  for (const SamplingSwitch& rule : sampling_switches()) {
    const std::string* v = value_of(rule.option);
    if (!v) continue;
    if (*v != "true" && *v != "false") throw bad(rule.option, *v);
    switches.*rule.member = *v == "true";
    applied.push_back(rule.option);
  }
  return applied;
}

}  // namespace iflame::cli
