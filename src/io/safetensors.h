// safetensors files (https://github.com/huggingface/safetensors format): 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Torch-free: model/weights.h converts to tensors.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace iflame {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// "F32" <-> DType::F32 etc.; throws iflame::Error for an unknown name.
DType dtype_from_name(const std::string& name);
const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);
// F16, BF16, F32 or F64: the dtypes to_float32 reads.
bool is_floating(DType dtype);

struct TensorData {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // little-endian, row-major, size = numel * dtype_size
  int64_t numel() const;
};

struct SafetensorsFile {
  std::map<std::string, TensorData> tensors;  // sorted by name, as the format writes them
  std::map<std::string, std::string> metadata;
};

// Reads PATH; throws iflame::Error naming the file for a bad header, overlapping or
// out-of-range offsets, a size that does not match dtype x shape, or a truncated file.
SafetensorsFile read_safetensors(const std::string& path);
// Writes atomically (temp file + rename).
void write_safetensors(const SafetensorsFile& file, const std::string& path);

// Converts F16/BF16/F32/F64 tensor data to float32 values (for loading weights).
std::vector<float> to_float32(const TensorData& tensor);

// The element-wise mean of the safetensors files PATHS (checkpoint averaging), read one at a time:
// every file must hold the same tensor names and shapes. Floating tensors (F16/BF16/F32/F64, in
// any mix) are averaged in double precision and returned as F32; other tensors must be equal in
// every file and are kept. The metadata is the first file's. Throws iflame::Error naming the file
// and the tensor for a mismatch, and for an empty list.
SafetensorsFile average_safetensors(const std::vector<std::string>& paths);

// In-memory forms of read_safetensors / write_safetensors (PATH only names the thing in errors).
// parse_safetensors validates exactly as read_safetensors does; serialize_safetensors returns
// the bytes write_safetensors writes: the JSON header (`__metadata__` first when there is any,
// then the tensors in name order, which is also their order in the data section) padded with
// spaces to a multiple of 8 bytes, as the reference implementation does.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& path);
std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& file, const std::string& path = "");

// IEEE half / bfloat16 bit patterns to float (exact: subnormals, infinities and NaNs included).
float half_to_float(uint16_t bits);
float bfloat16_to_float(uint16_t bits);
// float -> bfloat16 bits, rounded to nearest even (NaN stays NaN), as torch's .to(bfloat16).
uint16_t float_to_bfloat16(float value);
// A floating tensor (F16/BF16/F32/F64) as BF16; throws iflame::Error for other dtypes.
TensorData to_bfloat16(const TensorData& tensor);

}  // namespace iflame
