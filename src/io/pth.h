// PyTorch checkpoints (`torch.save`, the zip format of PyTorch >= 1.6) read without LibTorch:
// a zip of `<archive>/data.pkl` (a pickle whose tensors refer to storages by persistent id),
// `<archive>/data/<key>` (one raw little-endian record per storage), `<archive>/version` and,
// from PyTorch 2.x, `<archive>/byteorder`. The pickle is interpreted by a small data-only
// virtual machine: nothing is imported or executed; unknown classes become opaque objects.
//
// Tensor spellings understood: `torch._utils._rebuild_tensor` / `_rebuild_tensor_v2` over a
// typed storage (persistent id ('storage', torch.FloatStorage, key, location, numel), what
// PyTorch 1.x and 2.x write for the usual dtypes), `_rebuild_tensor_v3` with a dtype global
// (`torch.float32`, ...) over a `torch.UntypedStorage` whose numel counts bytes (what 2.x writes
// for dtypes without a typed storage class), `_rebuild_parameter[_with_state]` and
// `torch._tensor._rebuild_from_type_v2` around any of these. Strides and storage offsets are
// honoured (views, transposes, tensors sharing a storage); the result is always contiguous.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"

namespace iflame {

struct PthStateDict {
  // Tensors in checkpoint order, keys after the renames listed in `notes`.
  std::vector<std::pair<std::string, TensorData>> tensors;
  // "" for a plain state dict, else the top-level key it was found under ("model", ...).
  std::string container;
  // Human-readable remarks: skipped non-tensor entries, stripped key prefixes.
  std::vector<std::string> notes;
};

// Reads a torch.save checkpoint and flattens it to a state dict: when the top-level dict has
// a dict of tensors under "model", "state_dict" or "model_state_dict" that one is used,
// otherwise the top-level tensor entries. A `_orig_mod.` key component (torch.compile) is
// removed everywhere, and a `module.` prefix (DataParallel/DDP) when every key has it.
// Throws iflame::Error naming PATH for anything it cannot read exactly.
PthStateDict read_pth(const std::string& path);
PthStateDict parse_pth(const uint8_t* data, size_t size, const std::string& path);

struct ConvertOptions {
  // false: floating-point tensors (F16, BF16, F64) become F32; integer and bool tensors are
  // kept. true: every tensor keeps its dtype.
  bool keep_dtype = false;
};

struct ConvertSummary {
  size_t tensors = 0;
  int64_t values = 0;                        // total elements over all tensors
  std::map<std::string, size_t> in_dtypes;   // dtype name -> tensor count, as read
  std::map<std::string, size_t> out_dtypes;  // as written
  std::string container;
  std::vector<std::string> notes;
};

// The safetensors form of a state dict (metadata: format=pt). Duplicate keys are an error.
SafetensorsFile state_dict_to_safetensors(PthStateDict&& state, const ConvertOptions& options,
                                          const std::string& path, ConvertSummary* summary = nullptr);

// read_pth + state_dict_to_safetensors + write_safetensors (atomic).
ConvertSummary convert_pth_to_safetensors(const std::string& in_path, const std::string& out_path,
                                          const ConvertOptions& options = {});

}  // namespace iflame
