// iflame convert IN.pth OUT.safetensors [--dtype f32|keep]: a PyTorch checkpoint to safetensors.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "io/pth.h"
#include "util/args.h"
#include "util/error.h"

namespace iflame::cli {

int run_convert(int argc, char** argv) {
  std::string in_path, out_path, dtype = "f32";
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
                 "compressed zip entries, complex/quantized/sparse tensors.");
  args.positional("IN", &in_path, "the .pth / .pt / .ckpt file written by torch.save")
      .positional("OUT", &out_path, "the .safetensors file to write")
      .option("dtype", &dtype,
              "f32 (F16, BF16 and F64 tensors become F32; integer and bool tensors are kept) or keep")
      .flag("quiet", &quiet, "print only errors");
  if (!args.parse(argc, argv)) return 0;
  if (dtype != "f32" && dtype != "keep") throw Error("--dtype must be f32 or keep, got '" + dtype + "'");

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
