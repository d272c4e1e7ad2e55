// The restricted pickle machine of the `.pth` reader: protocols 0-4 minus extensions and
// out-of-band buffers. No code runs: the only callables it knows rebuild dicts, tuples and
// tensor references (torch._utils._rebuild_tensor*, persistent storage ids); anything else
// becomes an inert object. Everything it allocates is budgeted against the pickle's size.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/safetensors.h"

namespace iflame::pickle {

// Values of the pickle machine. Containers live in an arena owned by the machine and refer to
// each other by plain pointers, so a hostile pickle (deep nesting, reference cycles) can neither
// overflow the stack on destruction nor leak.

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Set, Global, Storage, Tensor, Object };

const char* kind_name(Kind k);
std::string a_kind(Kind k);  // "an int", "a str", ...

struct Obj;

struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;  // Bool, Int
  double f = 0;   // Float
  Obj* o = nullptr;
};

struct StorageRef {
  std::string key, type_name, location;
  bool supported = false;
  DType dtype = DType::U8;  // element type (U8 for an untyped storage)
  uint64_t nbytes = 0;      // numel x element size, from the persistent id
};

struct TensorRef {
  const Obj* storage = nullptr;
  DType dtype = DType::F32;
  int64_t offset = 0;  // in elements of dtype
  std::vector<int64_t> shape, stride;
  bool negate = false;  // the neg bit (metadata {"neg": True})
};

// Kept small (a pickle can create one per byte); the rarely needed parts hang off pointers.
struct Obj {
  std::string s;  // Str / Bytes contents; Global "module.name"; Object: its class, or the function
  std::vector<Value> items;                      // Tuple, List, Set (and list-like objects)
  std::vector<std::pair<Value, Value>> entries;  // Dict (and dict-like objects)
  std::unique_ptr<std::unordered_map<std::string, size_t>> str_index;  // Dict: str key -> entries index
  std::unique_ptr<StorageRef> storage;  // Storage
  std::unique_ptr<TensorRef> tensor;    // Tensor
  bool tensor_like = false;             // Object: a tensor this reader cannot convert (s says why)
};

// Runs one pickle. The values run() returns point into the machine's arena: they stay valid as
// long as the Machine lives. Throws iflame::Error naming `path`, `record`, the opcode and the
// byte offset of the first problem.
class Machine {
 public:
  Machine(const uint8_t* data, size_t size, std::string path, std::string record);
  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;
  Value run();

  // What the machine may allocate: a few opcodes can copy a memoized container or string
  // (builtins.tuple, torch.Size, _codecs.encode, STACK_GLOBAL), so without a cap a small pickle
  // could ask for terabytes. A valid pickle needs at most about one Obj (~120 bytes) per input
  // byte, which the per-byte allowance covers.
  static constexpr uint64_t kMemoryPerInputByte = 128;
  static constexpr uint64_t kMemoryFloor = uint64_t(64) << 20;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace iflame::pickle
