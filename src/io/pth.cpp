#include "io/pth.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <unordered_map>

#include "io/pickle.h"
#include "io/zip.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {

namespace {

using pickle::a_kind;
using pickle::Kind;
using pickle::kind_name;
using pickle::Obj;
using pickle::StorageRef;
using pickle::TensorRef;
using pickle::Value;

std::string shape_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// ---------------------------------------------------------------------------------------------
// The checkpoint: archive layout, storages, flattening, materializing.
// ---------------------------------------------------------------------------------------------

bool is_legacy_torch_file(const uint8_t* data, size_t size) {
  // PROTO 2, LONG1 of 10 bytes: the magic number 0x1950a86a20f9469cfc6c of the old format.
  static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return size >= sizeof magic && std::memcmp(data, magic, sizeof magic) == 0;
}

bool is_dictlike(const Value& v) { return v.kind == Kind::Dict || (v.kind == Kind::Object && !v.o->entries.empty()); }
bool is_tensorish(const Value& v) { return v.kind == Kind::Tensor || (v.kind == Kind::Object && v.o->tensor_like); }

size_t count_tensors(const Value& dict) {
  size_t n = 0;
  for (const auto& e : dict.o->entries) n += is_tensorish(e.second);
  return n;
}

const Value* lookup(const Value& dict, const std::string& key) {
  if (!dict.o->str_index) return nullptr;
  auto it = dict.o->str_index->find(key);
  return it == dict.o->str_index->end() ? nullptr : &dict.o->entries[it->second].second;
}

std::string describe(const Value& v) {
  if (v.kind == Kind::Object) return v.o->tensor_like ? v.o->s : "an object of class " + v.o->s;
  if (v.kind == Kind::Dict || v.kind == Kind::List || v.kind == Kind::Tuple) {
    return std::string(kind_name(v.kind)) + " of " + std::to_string(v.kind == Kind::Dict ? v.o->entries.size() : v.o->items.size());
  }
  if (v.kind == Kind::Int) return "int " + std::to_string(v.i);
  if (v.kind == Kind::Str) return "str '" + v.o->s.substr(0, 40) + (v.o->s.size() > 40 ? "...'" : "'");
  return a_kind(v.kind);
}

std::string key_text(const Value& k) {
  if (k.kind == Kind::Str) return k.o->s;
  if (k.kind == Kind::Int) return std::to_string(k.i);
  return std::string("<") + kind_name(k.kind) + ">";
}

// Removes the `_orig_mod.` component (torch.compile wrappers) wherever it starts a component.
std::string strip_orig_mod(const std::string& key) {
  static const std::string tag = "_orig_mod.";
  std::string out;
  size_t i = 0;
  while (i < key.size()) {
    if ((i == 0 || key[i - 1] == '.') && key.compare(i, tag.size(), tag) == 0) {
      i += tag.size();
      continue;
    }
    out += key[i++];
  }
  return out;
}

class PthReader {
 public:
  PthReader(const uint8_t* data, size_t size, const std::string& path) : data_(data), size_(size), path_(path) {}

  PthStateDict read();

 private:
  ZipReader::Span storage_record(const StorageRef& s, const std::string& tensor);
  TensorData materialize(const TensorRef& t, const std::string& name);

  const uint8_t* data_;
  size_t size_;
  std::string path_;
  std::unique_ptr<ZipReader> zip_;
  std::string prefix_;
  bool big_endian_ = false;
  std::unordered_map<std::string, ZipReader::Span> records_;
  uint64_t output_bytes_ = 0;
};

ZipReader::Span PthReader::storage_record(const StorageRef& s, const std::string& tensor) {
  auto it = records_.find(s.key);
  if (it == records_.end()) {
    const std::string name = prefix_ + "data/" + s.key;
    const ZipEntry* entry = zip_->find(name);
    if (!entry) {
      throw Error(path_, "tensor '" + tensor + "': its storage record '" + name + "' is missing from the archive" +
                             (s.location == "meta" ? " (a meta tensor has no data)" : ""));
    }
    it = records_.emplace(s.key, zip_->read(*entry)).first;
  }
  if (it->second.size < s.nbytes) {
    throw Error(path_, "tensor '" + tensor + "': storage record 'data/" + s.key + "' has " + std::to_string(it->second.size) +
                           " bytes, but its persistent id declares " + std::to_string(s.nbytes) + " (" + s.type_name + ")");
  }
  return it->second;
}

TensorData PthReader::materialize(const TensorRef& t, const std::string& name) {
  const StorageRef& s = *t.storage->storage;
  TensorData out;
  out.dtype = t.dtype;
  out.shape = t.shape;
  const uint64_t es = dtype_size(t.dtype);
  const std::string where = "tensor '" + name + "' (" + dtype_name(t.dtype) + " size " + shape_text(t.shape) + ", stride " +
                            shape_text(t.stride) + ", storage offset " + std::to_string(t.offset) + ")";
  // numel, and the last storage element the view touches, with overflow checks.
  const uint64_t limit = uint64_t(std::numeric_limits<int64_t>::max());
  uint64_t numel = 1, last = uint64_t(t.offset);
  for (size_t d = 0; d < t.shape.size(); ++d) {
    const uint64_t n = uint64_t(t.shape[d]);
    if (n != 0 && numel > limit / n) throw Error(path_, where + ": too many elements");
    numel *= n;
  }
  if (numel == 0) return out;  // needs no data (nor its record)
  for (size_t d = 0; d < t.shape.size(); ++d) {
    const uint64_t n = uint64_t(t.shape[d]) - 1, st = uint64_t(t.stride[d]);
    if (st != 0 && n > (limit - last) / st) throw Error(path_, where + ": stride overflows");
    last += n * st;
  }
  if (numel > limit / es || last >= limit / es) throw Error(path_, where + ": too large");
  const ZipReader::Span record = storage_record(s, name);
  if ((last + 1) * es > s.nbytes) {
    throw Error(path_, where + " needs " + std::to_string((last + 1) * es) + " bytes of storage 'data/" + s.key +
                           "', but the storage has only " + std::to_string(s.nbytes));
  }
  // Broadcast (zero) strides can make a tiny storage describe a huge tensor: refuse output far
  // beyond what the file could plausibly hold.
  const uint64_t bytes = numel * es;
  output_bytes_ += bytes;
  if (output_bytes_ > 8 * uint64_t(size_) + (uint64_t(256) << 20)) {
    throw Error(path_, where + ": the expanded tensors would take " + std::to_string(output_bytes_) +
                           " bytes, far more than the file holds (broadcast strides?)");
  }
  out.bytes.resize(size_t(bytes));
  const uint8_t* src = record.data;

  // Contiguous (size-1 dimensions may have any stride): one copy.
  bool contiguous = true;
  int64_t expected = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.stride[d] != expected) contiguous = false;
    expected *= t.shape[d];
  }
  if (contiguous) {
    std::memcpy(out.bytes.data(), src + uint64_t(t.offset) * es, size_t(bytes));
  } else {
    const size_t rank = t.shape.size();
    std::vector<int64_t> index(rank, 0);
    uint64_t at = uint64_t(t.offset);
    const uint64_t inner = rank ? uint64_t(t.shape[rank - 1]) : 1, inner_stride = rank ? uint64_t(t.stride[rank - 1]) : 0;
    uint8_t* dst = out.bytes.data();
    for (uint64_t done = 0; done < numel; done += inner) {
      for (uint64_t k = 0; k < inner; ++k) {
        std::memcpy(dst, src + (at + k * inner_stride) * es, size_t(es));
        dst += es;
      }
      // Advance the multi-index over the outer dimensions.
      for (size_t d = rank >= 1 ? rank - 1 : 0; d-- > 0;) {
        at += uint64_t(t.stride[d]);
        if (++index[d] < t.shape[d]) break;
        at -= uint64_t(t.stride[d]) * uint64_t(t.shape[d]);
        index[d] = 0;
      }
    }
  }
  if (big_endian_ && es > 1) {
    for (size_t k = 0; k < out.bytes.size(); k += es) std::reverse(out.bytes.begin() + std::ptrdiff_t(k), out.bytes.begin() + std::ptrdiff_t(k + es));
  }
  if (t.negate) {
    if (t.dtype != DType::F32 && t.dtype != DType::F64 && t.dtype != DType::F16 && t.dtype != DType::BF16) {
      throw Error(path_, where + " has the negative bit set, which is only supported for floating-point tensors");
    }
    for (size_t k = es - 1; k < out.bytes.size(); k += es) out.bytes[k] ^= 0x80;  // flip the sign bits
  }
  return out;
}

PthStateDict PthReader::read() {
  if (!ZipReader::looks_like_zip(data_, size_)) {
    if (is_legacy_torch_file(data_, size_)) {
      throw Error(path_, "legacy torch.save format (PyTorch < 1.6, or _use_new_zipfile_serialization=False) is not supported; "
                         "load it in Python and save it again with a current torch.save");
    }
    if (size_ >= 4 && std::memcmp(data_, "PK\x03\x04", 4) == 0) {
      throw Error(path_, "truncated zip archive: the end-of-central-directory record is missing");
    }
    throw Error(path_, "not a PyTorch checkpoint: not a zip archive (torch.save writes a zip file)");
  }
  zip_ = std::make_unique<ZipReader>(data_, size_, path_);

  // <archive>/data.pkl, where <archive> is one top-level folder (its name is free), or data.pkl.
  const ZipEntry* pkl = nullptr;
  for (const auto& e : zip_->entries()) {
    const size_t slash = e.name.find('/');
    const bool at_root = e.name == "data.pkl";
    const bool in_folder = slash != std::string::npos && e.name.compare(slash + 1, std::string::npos, "data.pkl") == 0;
    if (!at_root && !in_folder) continue;
    if (pkl) throw Error(path_, "the archive holds several data.pkl records ('" + pkl->name + "' and '" + e.name + "')");
    pkl = &e;
  }
  if (!pkl) throw Error(path_, "not a torch.save checkpoint: the zip archive has no <archive>/data.pkl record");
  prefix_ = pkl->name.substr(0, pkl->name.size() - std::string("data.pkl").size());
  if (zip_->find(prefix_ + "constants.pkl")) {
    throw Error(path_, "this is a TorchScript archive (torch.jit.save), not a state dict; in Python, save "
                       "torch.jit.load(path).state_dict() with torch.save and convert that");
  }
  if (const ZipEntry* order = zip_->find(prefix_ + "byteorder")) {
    const ZipReader::Span s = zip_->read(*order);
    std::string text(reinterpret_cast<const char*>(s.data), s.size);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    if (text == "big") {
      big_endian_ = true;
    } else if (text != "little") {
      throw Error(path_, "unknown byteorder record '" + text.substr(0, 20) + "' (expected 'little' or 'big')");
    }
  }

  const ZipReader::Span pickled = zip_->read(*pkl);
  pickle::Machine vm(pickled.data, pickled.size, path_, pkl->name);
  const Value top = vm.run();

  PthStateDict result;
  if (!is_dictlike(top)) throw Error(path_, "the checkpoint holds " + describe(top) + ", not a dict of tensors");
  const Value* chosen = &top;
  for (const char* key : {"model", "state_dict", "model_state_dict"}) {
    const Value* v = lookup(top, key);
    if (v && is_dictlike(*v) && count_tensors(*v) > 0) {
      chosen = v;
      result.container = key;
      break;
    }
  }
  if (!result.container.empty()) {
    for (const auto& [k, v] : top.o->entries) {
      if (k.kind == Kind::Str && k.o->s == result.container) continue;
      result.notes.push_back("skipped top-level entry '" + key_text(k) + "' (" + describe(v) + ")");
    }
  }

  std::vector<std::pair<std::string, const TensorRef*>> selected;
  for (const auto& [k, v] : chosen->o->entries) {
    if (!is_tensorish(v)) {
      result.notes.push_back("skipped non-tensor entry '" + key_text(k) + "' (" + describe(v) + ")");
      continue;
    }
    if (k.kind != Kind::Str) {
      result.notes.push_back("skipped a tensor under the non-string key " + key_text(k));
      continue;
    }
    if (v.kind == Kind::Object) throw Error(path_, "tensor '" + k.o->s + "' is " + v.o->s + "; it cannot be converted");
    selected.emplace_back(k.o->s, v.o->tensor.get());
  }
  if (selected.empty()) {
    std::string keys;
    size_t shown = 0;
    for (const auto& [k, v] : top.o->entries) {
      if (shown++ == 8) {
        keys += ", ...";
        break;
      }
      keys += (keys.empty() ? "" : ", ") + key_text(k) + " (" + describe(v) + ")";
    }
    throw Error(path_, "no tensors found in the checkpoint (top level: " + (keys.empty() ? std::string("empty") : keys) +
                           "); a pickled nn.Module cannot be read, save model.state_dict() instead");
  }

  // Key renames: torch.compile's `_orig_mod.`, then a `module.` prefix shared by every key.
  size_t compiled = 0;
  for (auto& entry : selected) {
    std::string renamed = strip_orig_mod(entry.first);
    if (renamed != entry.first) ++compiled;
    entry.first = std::move(renamed);
  }
  if (compiled) result.notes.push_back("removed '_orig_mod.' (torch.compile) from " + std::to_string(compiled) + " keys");
  const bool all_module = std::all_of(selected.begin(), selected.end(), [](const auto& e) {
    return e.first.size() > 7 && e.first.compare(0, 7, "module.") == 0;
  });
  if (all_module) {
    for (auto& entry : selected) entry.first.erase(0, 7);
    result.notes.push_back("removed the 'module.' prefix (DataParallel/DDP) shared by all keys");
  }

  std::unordered_map<std::string, size_t> seen;
  for (const auto& [name, tensor] : selected) {
    if (!seen.emplace(name, result.tensors.size()).second) {
      throw Error(path_, "two tensors are named '" + name + "' (after removing key prefixes)");
    }
    result.tensors.emplace_back(name, materialize(*tensor, name));
  }
  return result;
}

}  // namespace

PthStateDict parse_pth(const uint8_t* data, size_t size, const std::string& path) {
  PthReader reader(data, size, path);
  return reader.read();
}

PthStateDict read_pth(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return parse_pth(bytes.data(), bytes.size(), path);
}

SafetensorsFile state_dict_to_safetensors(PthStateDict&& state, const ConvertOptions& options, const std::string& path,
                                          ConvertSummary* summary) {
  SafetensorsFile file;
  file.metadata["format"] = "pt";
  ConvertSummary local;
  ConvertSummary& s = summary ? *summary : local;
  s = ConvertSummary{};
  s.container = state.container;
  s.notes = state.notes;
  for (auto& [name, tensor] : state.tensors) {
    if (file.tensors.count(name)) throw Error(path, "two tensors are named '" + name + "'");
    ++s.in_dtypes[dtype_name(tensor.dtype)];
    if (!options.keep_dtype && (tensor.dtype == DType::F16 || tensor.dtype == DType::BF16 || tensor.dtype == DType::F64)) {
      const std::vector<float> values = to_float32(tensor);
      tensor.dtype = DType::F32;
      tensor.bytes.assign(reinterpret_cast<const uint8_t*>(values.data()),
                          reinterpret_cast<const uint8_t*>(values.data()) + values.size() * sizeof(float));
    }
    ++s.out_dtypes[dtype_name(tensor.dtype)];
    s.values += tensor.numel();
    ++s.tensors;
    file.tensors.emplace(name, std::move(tensor));
  }
  state.tensors.clear();
  return file;
}

ConvertSummary convert_pth_to_safetensors(const std::string& in_path, const std::string& out_path, const ConvertOptions& options) {
  std::error_code ec;
  if (std::filesystem::exists(out_path, ec) && std::filesystem::equivalent(in_path, out_path, ec)) {
    throw Error(out_path, "the output would overwrite the input checkpoint");
  }
  ConvertSummary summary;
  SafetensorsFile file = state_dict_to_safetensors(read_pth(in_path), options, in_path, &summary);
  const std::string source = std::filesystem::path(in_path).filename().string();
  file.metadata["source"] = source;
  write_safetensors(file, out_path);
  return summary;
}

}  // namespace iflame
