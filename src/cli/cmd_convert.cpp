// iflame convert IN.pth|IN.safetensors OUT.safetensors [--dtype ...] [--meta K=V...] [--average W...]:
// a PyTorch checkpoint to safetensors, or a safetensors file re-written (another dtype, added
// metadata, averaged with other checkpoints: how the shipped model is made from a run's weights).
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "io/pth.h"
#include "io/safetensors.h"
#include "util/args.h"
#include "util/error.h"

namespace iflame::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// safetensors -> safetensors: floating tensors to `dtype` (f32, bf16 or keep), metadata added.
void rewrite_safetensors(SafetensorsFile file, const std::string& out_path, const std::string& dtype,
                         const std::map<std::string, std::string>& meta, bool quiet) {
  size_t changed = 0;
  for (auto& [name, tensor] : file.tensors) {
    if (!is_floating(tensor.dtype) || dtype == "keep") continue;
    if (dtype == "bf16" && tensor.dtype != DType::BF16) {
      tensor = to_bfloat16(tensor);
      ++changed;
    } else if (dtype == "f32" && tensor.dtype != DType::F32) {
      const std::vector<float> values = to_float32(tensor);
      tensor.dtype = DType::F32;
      tensor.bytes.assign(reinterpret_cast<const uint8_t*>(values.data()),
                          reinterpret_cast<const uint8_t*>(values.data() + values.size()));
      ++changed;
    }
  }
  for (const auto& [k, v] : meta) file.metadata[k] = v;
  write_safetensors(file, out_path);
  if (!quiet) {
    std::printf("wrote %s: %zu tensors (%zu converted to %s), %zu metadata entries\n", out_path.c_str(),
                file.tensors.size(), changed, dtype.c_str(), file.metadata.size());
  }
}

}  // namespace

int run_convert(int argc, char** argv) {
  std::string in_path, out_path, dtype = "f32";
  std::vector<std::string> meta_items, average_with;
  bool quiet = false;
  ArgParser args("convert",
                 "Converts a PyTorch checkpoint written by torch.save (the zip format of PyTorch 1.6 and later,\n"
                 "including 2.x) to a safetensors file, without Python or LibTorch. The checkpoint may be a\n"
                 "state dict or a dict holding one under \"model\", \"state_dict\" or \"model_state_dict\"\n"
                 "(other entries such as \"epoch\" or \"optimizer\" are skipped and listed). The `_orig_mod.`\n"
                 "key component of torch.compile is removed, and a `module.` prefix shared by all keys\n"
                 "(DataParallel/DDP). Views, transposed and offset tensors are written contiguous. The\n"
                 "output is written atomically, tensors in name order, with metadata format=pt.\n"
                 "Not supported: the legacy (pre-1.6) format, TorchScript archives, pickled nn.Modules,\n"
                 "compressed zip entries, complex/quantized/sparse tensors.\n"
                 "\n"
                 "IN may also be a .safetensors file: it is re-written with its floating tensors in --dtype\n"
                 "(f32, bf16 rounded to nearest even, or keep) and the --meta entries added, e.g. to ship\n"
                 "a trained model with its sampling defaults:\n"
                 "  iflame convert run/best/model.safetensors m.safetensors --dtype bf16 --meta sample.top-p=0.9\n"
                 "With --average, OUT holds the element-wise mean of IN and every --average file (checkpoint\n"
                 "averaging, which smooths out the step-to-step noise of training at a high learning rate):\n"
                 "  iflame convert run/step-00006000/model.safetensors avg.safetensors \\\n"
                 "      --average run/step-00006150/model.safetensors --average run/step-00006300/model.safetensors\n"
                 "All files need the same tensors and shapes; the means are f32 before --dtype applies, and\n"
                 "non-floating tensors must be equal in every file.");
  args.positional("IN", &in_path, "the .pth / .pt / .ckpt file written by torch.save")
      .positional("OUT", &out_path, "the .safetensors file to write")
      .option("dtype", &dtype,
              "f32 (F16, BF16 and F64 tensors become F32; integer and bool tensors are kept), keep, or\n"
              "      bf16 (safetensors input only)")
      .list("meta", &meta_items, "KEY=VALUE metadata to add (safetensors input only; repeatable)")
      .list("average", &average_with, "another .safetensors checkpoint to average with IN (repeatable)")
      .flag("quiet", &quiet, "print only errors");
  if (!args.parse(argc, argv)) return 0;
  if (ends_with(in_path, ".safetensors")) {
    if (dtype != "f32" && dtype != "bf16" && dtype != "keep") throw Error("--dtype must be f32, bf16 or keep, got '" + dtype + "'");
    std::map<std::string, std::string> meta;
    for (const std::string& item : meta_items) {
      const size_t eq = item.find('=');
      if (eq == std::string::npos || eq == 0) throw Error("--meta needs KEY=VALUE, got '" + item + "'");
      meta[item.substr(0, eq)] = item.substr(eq + 1);
    }
    std::vector<std::string> inputs{in_path};
    for (const std::string& path : average_with) {
      if (!ends_with(path, ".safetensors")) throw Error("--average needs .safetensors files, got '" + path + "'");
      inputs.push_back(path);
    }
    SafetensorsFile file = inputs.size() > 1 ? average_safetensors(inputs) : read_safetensors(in_path);
    if (inputs.size() > 1 && !quiet) std::printf("averaged %zu checkpoints\n", inputs.size());
    rewrite_safetensors(std::move(file), out_path, dtype, meta, quiet);
    return 0;
  }
  if (!average_with.empty()) throw Error("--average needs a .safetensors input");
  if (dtype != "f32" && dtype != "keep") throw Error("--dtype must be f32 or keep for a .pth input, got '" + dtype + "'");
  if (!meta_items.empty()) throw Error("--meta needs a .safetensors input");

  ConvertOptions options;
  options.keep_dtype = dtype == "keep";
  const ConvertSummary s = convert_pth_to_safetensors(in_path, out_path, options);
  if (quiet) return 0;
  for (const auto& note : s.notes) std::printf("note: %s\n", note.c_str());
  auto dtypes = [](const std::map<std::string, size_t>& m) {
    std::string text;
    for (const auto& [name, count] : m) text += (text.empty() ? "" : ", ") + name + " x" + std::to_string(count);
    return text.empty() ? std::string("none") : text;
  };
  std::printf("%s: %zu tensors, %lld parameters%s; dtypes %s\n", in_path.c_str(), s.tensors, static_cast<long long>(s.values),
              s.container.empty() ? "" : (" (from \"" + s.container + "\")").c_str(), dtypes(s.in_dtypes).c_str());
  std::printf("wrote %s (dtypes %s)\n", out_path.c_str(), dtypes(s.out_dtypes).c_str());
  return 0;
}

}  // namespace iflame::cli
