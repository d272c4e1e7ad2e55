#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "util/error.h"
#include "util/fs.h"

namespace iflame {

namespace {

// The reference implementation refuses headers above 100 MB.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

struct DTypeName {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeName kDTypes[] = {
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8}, {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1},
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// numel of SHAPE, or false when a dimension is negative or the product overflows int64.
bool checked_numel(const std::vector<int64_t>& shape, int64_t* numel) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return false;
    n *= d;
  }
  *numel = n;
  return true;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

DType dtype_from_name(const std::string& name) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  throw Error("unknown or unsupported tensor dtype '" + name + "'");
}

const char* dtype_name(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;  // +-0
    } else {
      // Subnormal: mantissa * 2^-24. Normalize so the leading 1 becomes the implicit bit.
      int shift = 0;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        ++shift;
      }
      mantissa &= 0x3ffu;
      bits = sign | (uint32_t(127 - 15 + 1 - shift) << 23) | (mantissa << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf, or NaN keeping its payload
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bfloat16_to_float(uint16_t b) {
  const uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_bfloat16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu)) return uint16_t((bits >> 16) | 0x0040u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return uint16_t(bits >> 16);
}

TensorData to_bfloat16(const TensorData& tensor) {
  const std::vector<float> values = to_float32(tensor);
  TensorData out;
  out.dtype = DType::BF16;
  out.shape = tensor.shape;
  out.bytes.resize(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t b = float_to_bfloat16(values[i]);
    out.bytes[2 * i] = uint8_t(b & 0xff);
    out.bytes[2 * i + 1] = uint8_t(b >> 8);
  }
  return out;
}

std::vector<float> to_float32(const TensorData& tensor) {
  const size_t n = tensor.bytes.size() / std::max<size_t>(1, dtype_size(tensor.dtype));
  std::vector<float> out(n);
  const uint8_t* p = tensor.bytes.data();
  switch (tensor.dtype) {
    case DType::F32:
      if (n) std::memcpy(out.data(), p, n * 4);
      break;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = float(d);
      }
      break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t bits = uint16_t(p[2 * i] | (p[2 * i + 1] << 8));
        out[i] = tensor.dtype == DType::F16 ? half_to_float(bits) : bfloat16_to_float(bits);
      }
      break;
    default:
      throw Error(std::string("cannot convert a ") + dtype_name(tensor.dtype) +
                  " tensor to float32: expected F16, BF16, F32 or F64");
  }
  return out;
}

bool is_floating(DType dtype) {
  return dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F32 || dtype == DType::F64;
}

namespace {

// Adds FILE (read from PATH) into SUMS, after checking it matches FIRST tensor by tensor.
void accumulate_into(const SafetensorsFile& first, const SafetensorsFile& file, const std::string& path,
                     std::map<std::string, std::vector<double>>& sums) {
  for (const auto& [name, tensor] : file.tensors) {
    const auto it = first.tensors.find(name);
    if (it == first.tensors.end()) throw Error(path, "tensor '" + name + "' is not in the first file");
    const TensorData& ref = it->second;
    if (tensor.shape != ref.shape) throw Error(path, "tensor '" + name + "' has another shape than in the first file");
    if (!is_floating(ref.dtype) || !is_floating(tensor.dtype)) {
      if (tensor.dtype != ref.dtype || tensor.bytes != ref.bytes) {
        throw Error(path, "non-floating tensor '" + name + "' differs from the first file's; only floating tensors are averaged");
      }
      continue;
    }
    const std::vector<float> values = to_float32(tensor);
    std::vector<double>& sum = sums[name];
    sum.resize(values.size(), 0.0);
    for (size_t i = 0; i < values.size(); ++i) sum[i] += values[i];
  }
  if (file.tensors.size() != first.tensors.size()) {
    for (const auto& [name, tensor] : first.tensors) {
      if (!file.tensors.count(name)) throw Error(path, "tensor '" + name + "' of the first file is missing");
    }
  }
}

}  // namespace

SafetensorsFile average_safetensors(const std::vector<std::string>& paths) {
  if (paths.empty()) throw Error("average_safetensors: no files to average");
  SafetensorsFile first = read_safetensors(paths[0]);
  std::map<std::string, std::vector<double>> sums;  // floating tensors only
  accumulate_into(first, first, paths[0], sums);
  for (size_t f = 1; f < paths.size(); ++f) accumulate_into(first, read_safetensors(paths[f]), paths[f], sums);
  for (auto& [name, sum] : sums) {
    TensorData& out = first.tensors.at(name);
    out.dtype = DType::F32;
    out.bytes.resize(sum.size() * sizeof(float));
    for (size_t i = 0; i < sum.size(); ++i) {
      const float mean = float(sum[i] / double(paths.size()));
      std::memcpy(out.bytes.data() + i * sizeof(float), &mean, sizeof(float));
    }
  }
  return first;
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& path) {
  if (size < 8) throw Error(path, "not a safetensors file: " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  const uint64_t header_len = read_u64_le(data);
  if (header_len == 0 || header_len > kMaxHeaderSize) {
    throw Error(path, "not a safetensors file: header length " + std::to_string(header_len) +
                          " is outside 1.." + std::to_string(kMaxHeaderSize));
  }
  if (header_len > size - 8) {
    throw Error(path, "truncated safetensors file: the header needs " + std::to_string(header_len) + " bytes but only " +
                          std::to_string(size - 8) + " follow the length");
  }
  const char* header_begin = reinterpret_cast<const char*>(data + 8);
  if (header_begin[0] != '{') throw Error(path, "safetensors header does not start with '{'");

  // Parse, refusing duplicate keys in the top-level object and in __metadata__ (JSON allows
  // them, but then the file would have two readings).
  nlohmann::json header;
  std::vector<std::set<std::string>> seen_keys;
  std::string duplicate;
  try {
    header = nlohmann::json::parse(
        header_begin, header_begin + header_len,
        [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (event == nlohmann::json::parse_event_t::object_start) {
            seen_keys.resize(size_t(depth) + 1);
            seen_keys[size_t(depth)].clear();
          } else if (event == nlohmann::json::parse_event_t::key && depth >= 1 && size_t(depth) <= seen_keys.size()) {
            auto& keys = seen_keys[size_t(depth) - 1];
            if (!keys.insert(parsed.get<std::string>()).second && duplicate.empty()) duplicate = parsed.get<std::string>();
          }
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("safetensors header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw Error(path, "safetensors header is not a JSON object");
  if (!duplicate.empty()) throw Error(path, "safetensors header has the key '" + duplicate + "' twice");

  const uint64_t data_size = size - 8 - header_len;
  const uint8_t* data_begin = data + 8 + header_len;
  SafetensorsFile file;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& value = it.value();
    if (name == "__metadata__") {
      if (!value.is_object()) throw Error(path, "safetensors __metadata__ is not a JSON object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) throw Error(path, "safetensors __metadata__ value for '" + m.key() + "' is not a string");
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!value.is_object()) throw Error(path, where + ": entry is not a JSON object");
    auto dtype_it = value.find("dtype");
    auto shape_it = value.find("shape");
    auto offsets_it = value.find("data_offsets");
    if (dtype_it == value.end() || !dtype_it->is_string()) throw Error(path, where + ": missing or non-string \"dtype\"");
    if (shape_it == value.end() || !shape_it->is_array()) throw Error(path, where + ": missing or non-array \"shape\"");
    if (offsets_it == value.end() || !offsets_it->is_array()) throw Error(path, where + ": missing or non-array \"data_offsets\"");

    TensorData tensor;
    try {
      tensor.dtype = dtype_from_name(dtype_it->get<std::string>());
    } catch (const Error& e) {
      throw Error(path, where + ": " + e.what());
    }
    for (const auto& d : *shape_it) {
      if (!d.is_number_integer()) throw Error(path, where + ": shape entries must be integers");
      if (d.is_number_unsigned() ? d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()) : d.get<int64_t>() < 0) {
        throw Error(path, where + ": shape " + shape_it->dump() + " has a negative or huge dimension");
      }
      tensor.shape.push_back(d.get<int64_t>());
    }
    if (offsets_it->size() != 2 || !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      throw Error(path, where + ": data_offsets must be two non-negative integers, got " + offsets_it->dump());
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>(), end = (*offsets_it)[1].get<uint64_t>();
    if (end < begin) throw Error(path, where + ": data_offsets end " + std::to_string(end) + " is before begin " + std::to_string(begin));
    if (end > data_size) {
      throw Error(path, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                            "] run past the end of the data (" + std::to_string(data_size) + " bytes; truncated file?)");
    }
    int64_t numel = 0;
    if (!checked_numel(tensor.shape, &numel) ||
        uint64_t(numel) > std::numeric_limits<uint64_t>::max() / dtype_size(tensor.dtype)) {
      throw Error(path, where + ": shape " + shape_text(tensor.shape) + " has too many elements");
    }
    const uint64_t expected = uint64_t(numel) * dtype_size(tensor.dtype);
    if (end - begin != expected) {
      throw Error(path, where + ": " + std::to_string(end - begin) + " bytes of data, but " + dtype_name(tensor.dtype) + " " +
                            shape_text(tensor.shape) + " needs " + std::to_string(expected));
    }
    tensor.bytes.assign(data_begin + begin, data_begin + end);
    spans.push_back({begin, end, name});
    file.tensors.emplace(name, std::move(tensor));
  }

  // The format's rule: the data section is exactly covered by the tensors, no overlaps and no
  // holes (so no file can carry hidden bytes).
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  std::string previous;
  for (const auto& s : spans) {
    if (s.begin < covered) {
      throw Error(path, "tensor '" + s.name + "' data [" + std::to_string(s.begin) + ", " + std::to_string(s.end) +
                            ") overlaps tensor '" + previous + "' (ending at " + std::to_string(covered) + ")");
    }
    if (s.begin > covered) {
      throw Error(path, "safetensors data has a hole: bytes [" + std::to_string(covered) + ", " + std::to_string(s.begin) +
                            ") belong to no tensor");
    }
    if (s.end > covered) {
      covered = s.end;
      previous = s.name;
    }
  }
  if (covered != data_size) {
    throw Error(path, "safetensors data has " + std::to_string(data_size - covered) + " trailing bytes that belong to no tensor");
  }
  return file;
}

SafetensorsFile read_safetensors(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return parse_safetensors(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& file, const std::string& path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) {
    auto& meta = header["__metadata__"] = nlohmann::ordered_json::object();
    for (const auto& [k, v] : file.metadata) meta[k] = v;
  }
  uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    if (name == "__metadata__") throw Error(path, "a tensor cannot be named __metadata__");
    int64_t numel = 0;
    if (!checked_numel(tensor.shape, &numel)) throw Error(path, "tensor '" + name + "': bad shape " + shape_text(tensor.shape));
    const size_t size = dtype_size(tensor.dtype);
    if (size == 0 || uint64_t(numel) > std::numeric_limits<uint64_t>::max() / size || uint64_t(numel) * size != tensor.bytes.size()) {
      throw Error(path, "tensor '" + name + "': " + std::to_string(tensor.bytes.size()) + " bytes of data do not match " +
                            dtype_name(tensor.dtype) + " " + shape_text(tensor.shape));
    }
    auto& entry = header[name];
    entry["dtype"] = dtype_name(tensor.dtype);
    entry["shape"] = tensor.shape;
    entry["data_offsets"] = {offset, offset + tensor.bytes.size()};
    offset += tensor.bytes.size();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("cannot write the safetensors header (a name is not valid UTF-8?): ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<uint8_t> out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(n >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  for (const auto& [name, tensor] : file.tensors) out.insert(out.end(), tensor.bytes.begin(), tensor.bytes.end());
  return out;
}

void write_safetensors(const SafetensorsFile& file, const std::string& path) {
  const std::vector<uint8_t> bytes = serialize_safetensors(file, path);
  write_file_atomic(path, bytes.data(), bytes.size());
}

}  // namespace iflame
