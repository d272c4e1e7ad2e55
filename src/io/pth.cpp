#include "io/pth.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <unordered_map>

#include "io/zip.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {

namespace {

// ---------------------------------------------------------------------------------------------
// Values of the pickle machine. Containers live in an arena owned by the machine and refer to
// each other by plain pointers, so a hostile pickle (deep nesting, reference cycles) can neither
// overflow the stack on destruction nor leak.
// ---------------------------------------------------------------------------------------------

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Set, Global, Storage, Tensor, Object };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Set: return "set";
    case Kind::Global: return "class or function";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
    case Kind::Object: return "object";
  }
  return "?";
}

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

struct DTypeAlias {
  const char* name;
  DType dtype;
};
// Typed storage classes (persistent ids; the same names in PyTorch 1.x and 2.x).
constexpr DTypeAlias kStorageTypes[] = {
    {"FloatStorage", DType::F32}, {"DoubleStorage", DType::F64}, {"HalfStorage", DType::F16},
    {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
    {"ShortStorage", DType::I16}, {"CharStorage", DType::I8}, {"ByteStorage", DType::U8},
    {"BoolStorage", DType::BOOL}, {"UntypedStorage", DType::U8},
};
// dtype globals (`torch.float32` ...), as _rebuild_tensor_v3 receives them.
constexpr DTypeAlias kTorchDTypes[] = {
    {"float32", DType::F32}, {"float", DType::F32},   {"float64", DType::F64}, {"double", DType::F64},
    {"float16", DType::F16}, {"half", DType::F16},    {"bfloat16", DType::BF16}, {"int64", DType::I64},
    {"long", DType::I64},    {"int32", DType::I32},   {"int", DType::I32},     {"int16", DType::I16},
    {"short", DType::I16},   {"int8", DType::I8},     {"uint8", DType::U8},    {"bool", DType::BOOL},
};

const char* opcode_name(uint8_t op) {
  switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return nullptr;
  }
}

// "an int", "a str", ...
std::string a_kind(Kind k) {
  const std::string name = kind_name(k);
  return (std::string("aeiou").find(name[0]) != std::string::npos ? "an " : "a ") + name;
}

std::string hex_byte(uint8_t b) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

std::string shape_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// ---------------------------------------------------------------------------------------------
// The pickle machine (protocols 0-4 minus extensions and out-of-band buffers).
// ---------------------------------------------------------------------------------------------

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, std::string path, std::string record)
      : data_(data), size_(size), path_(std::move(path)), record_(std::move(record)),
        budget_(kMemoryPerInputByte * uint64_t(size) + kMemoryFloor) {}

  // What the machine may allocate: a few opcodes can copy a memoized container or string
  // (builtins.tuple, torch.Size, _codecs.encode, STACK_GLOBAL), so without a cap a small pickle
  // could ask for terabytes. A valid pickle needs at most about one Obj (~120 bytes) per input
  // byte, which the per-byte allowance covers.
  static constexpr uint64_t kMemoryPerInputByte = 128;
  static constexpr uint64_t kMemoryFloor = uint64_t(64) << 20;

  Value run();

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const char* name = opcode_name(op_);
    throw Error(path_, record_ + ": " + what + " (" + (name ? std::string(name) + " " : "") + "at byte " + std::to_string(op_pos_) + ")");
  }

  // --- input
  const uint8_t* take(uint64_t n) {
    if (n > size_ - pos_) fail("truncated pickle: needs " + std::to_string(n) + " more bytes");
    const uint8_t* p = data_ + pos_;
    pos_ += size_t(n);
    return p;
  }
  uint64_t read_uint(int bytes) {
    const uint8_t* p = take(uint64_t(bytes));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  }
  std::string read_string(uint64_t n) {
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), size_t(n));
  }
  std::string read_line() {
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (!nl) fail("truncated pickle: unterminated text line");
    const size_t end = size_t(static_cast<const uint8_t*>(nl) - data_);
    std::string line(reinterpret_cast<const char*>(data_ + pos_), end - pos_);
    pos_ = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }
  int64_t parse_decimal(std::string text) {
    if (!text.empty() && text.back() == 'L') text.pop_back();
    if (text.empty()) fail("empty number");
    size_t i = text[0] == '-' || text[0] == '+' ? 1 : 0;
    if (i == text.size()) fail("bad number '" + text + "'");
    uint64_t v = 0;
    for (; i < text.size(); ++i) {
      if (text[i] < '0' || text[i] > '9') fail("bad number '" + text + "'");
      if (v > (uint64_t(1) << 63) / 10) fail("integer too large");
      v = v * 10 + uint64_t(text[i] - '0');
    }
    if (text[0] == '-') {
      if (v > (uint64_t(1) << 63)) fail("integer too large");
      return int64_t(0 - v);
    }
    if (v > uint64_t(std::numeric_limits<int64_t>::max())) fail("integer too large");
    return int64_t(v);
  }
  // LONG1 / LONG4: little-endian two's complement of N bytes; must fit in int64.
  int64_t read_long(uint64_t n) {
    const uint8_t* p = take(n);
    if (n == 0) return 0;
    const bool negative = p[n - 1] & 0x80;
    for (uint64_t k = 8; k < n; ++k) {
      if (p[k] != (negative ? 0xff : 0x00)) fail("integer too large for 64 bits");
    }
    if (n >= 8 && bool(p[7] & 0x80) != negative) fail("integer too large for 64 bits");
    uint64_t v = negative ? ~uint64_t(0) : 0;
    for (uint64_t k = std::min<uint64_t>(n, 8); k-- > 0;) v = (v << 8) | p[k];
    int64_t out;
    std::memcpy(&out, &v, sizeof out);
    return out;
  }

  // --- values
  // Counts `bytes` against the budget; fails before the allocation that would pass it.
  void charge(uint64_t bytes) {
    if (bytes > budget_ - used_) {
      fail("the pickle asks for more than " + std::to_string(budget_ >> 20) + " MiB of objects (" +
           std::to_string(kMemoryPerInputByte) + " bytes per byte of its " + std::to_string(size_) +
           " plus 64 MiB); a crafted or corrupt file copies its containers over and over");
    }
    used_ += bytes;
  }
  Obj* alloc() {
    charge(sizeof(Obj) + sizeof(std::unique_ptr<Obj>));
    arena_.push_back(std::make_unique<Obj>());
    return arena_.back().get();
  }
  Value make(Kind kind) {
    Value v;
    v.kind = kind;
    v.o = alloc();
    return v;
  }
  Value make_str(Kind kind, std::string s) {
    charge(s.size());
    Value v = make(kind);
    v.o->s = std::move(s);
    return v;
  }
  static Value make_int(Kind kind, int64_t i) {
    Value v;
    v.kind = kind;
    v.i = i;
    return v;
  }
  Value make_object(const std::string& name, bool tensor_like = false) {
    Value v = make_str(Kind::Object, name);
    v.o->tensor_like = tensor_like;
    return v;
  }

  // --- stack
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(const Value& v) { stack_.push_back(v); }
  Value pop() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    Value v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value& top() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<Value> pop_mark() {
    if (marks_.empty()) fail("no MARK on the pickle stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(stack_.begin() + std::ptrdiff_t(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  Value memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
    return it->second;
  }
  Value sequence(Kind kind, std::vector<Value> items) {
    charge(items.size() * sizeof(Value));
    Value v = make(kind);
    v.o->items = std::move(items);
    return v;
  }

  // --- container operations
  void set_item(Value& target, const Value& key, const Value& value) {
    if (target.kind != Kind::Dict && target.kind != Kind::Object) fail("cannot set an item on " + a_kind(target.kind));
    Obj* d = target.o;
    charge(sizeof(std::pair<Value, Value>) + (key.kind == Kind::Str ? key.o->s.size() + 64 : 0));
    if (key.kind == Kind::Str) {
      if (!d->str_index) d->str_index = std::make_unique<std::unordered_map<std::string, size_t>>();
      auto [it, inserted] = d->str_index->emplace(key.o->s, d->entries.size());
      if (!inserted) {
        d->entries[it->second].second = value;
        return;
      }
    }
    d->entries.emplace_back(key, value);
  }
  void append(Value& target, const Value& value) {
    if (target.kind != Kind::List && target.kind != Kind::Set && target.kind != Kind::Object) {
      fail("cannot append to " + a_kind(target.kind));
    }
    charge(sizeof(Value));
    target.o->items.push_back(value);
  }

  // --- torch
  Value global(const std::string& module, const std::string& name) {
    if (module.empty() || name.empty()) fail("empty global name");
    charge(module.size() + name.size());
    return make_str(Kind::Global, module + "." + name);
  }
  Value persistent_load(const Value& pid);
  Value call(const Value& callable, const Value& args, int depth);
  Value rebuild_tensor(const std::string& function, const std::vector<Value>& a, int version);
  int64_t as_int(const Value& v, const char* what) {
    if (v.kind != Kind::Int && v.kind != Kind::Bool) fail(std::string(what) + " is " + a_kind(v.kind) + ", not an integer");
    return v.i;
  }
  std::vector<int64_t> as_int_list(const Value& v, const char* what) {
    if (v.kind != Kind::Tuple && v.kind != Kind::List) fail(std::string(what) + " is " + a_kind(v.kind) + ", not a tuple");
    charge(v.o->items.size() * sizeof(int64_t));
    std::vector<int64_t> out;
    for (const auto& x : v.o->items) {
      out.push_back(as_int(x, what));
      if (out.back() < 0) fail(std::string(what) + " has a negative entry");
    }
    return out;
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string path_, record_;
  uint8_t op_ = 0;
  size_t op_pos_ = 0;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
  std::vector<std::unique_ptr<Obj>> arena_;
  const uint64_t budget_;
  uint64_t used_ = 0;

};

Value Unpickler::persistent_load(const Value& pid) {
  if (pid.kind != Kind::Tuple || pid.o->items.empty()) fail("unsupported persistent id (expected a tuple)");
  const auto& a = pid.o->items;
  if (a[0].kind != Kind::Str || a[0].o->s != "storage") {
    fail("unsupported persistent id '" + (a[0].kind == Kind::Str ? a[0].o->s : std::string(kind_name(a[0].kind))) +
         "' (expected 'storage')");
  }
  if (a.size() != 5) fail("storage persistent id has " + std::to_string(a.size()) + " fields, expected 5");
  if (a[1].kind != Kind::Global) fail("storage persistent id: the storage type is not a class");
  if (a[2].kind != Kind::Str) fail("storage persistent id: the key is not a string");
  if (a[3].kind != Kind::Str) fail("storage persistent id: the location is not a string");
  const int64_t numel = as_int(a[4], "storage size");
  if (numel < 0) fail("storage persistent id: negative size");

  charge(sizeof(StorageRef) + a[1].o->s.size() + a[2].o->s.size() + a[3].o->s.size());
  Value v = make(Kind::Storage);
  v.o->storage = std::make_unique<StorageRef>();
  StorageRef& s = *v.o->storage;
  s.type_name = a[1].o->s;
  s.key = a[2].o->s;
  s.location = a[3].o->s;
  const std::string& t = s.type_name;
  const size_t dot = t.rfind('.');
  const std::string module = dot == std::string::npos ? "" : t.substr(0, dot);
  const std::string cls = dot == std::string::npos ? t : t.substr(dot + 1);
  if (module == "torch" || module == "torch.cuda" || module == "torch.storage") {
    for (const auto& st : kStorageTypes) {
      if (cls == st.name) {
        s.supported = true;
        s.dtype = st.dtype;
      }
    }
  }
  if (s.supported) {
    const uint64_t es = dtype_size(s.dtype);
    if (uint64_t(numel) > std::numeric_limits<uint64_t>::max() / es) fail("storage persistent id: size too large");
    s.nbytes = uint64_t(numel) * es;
  }
  return v;
}

Value Unpickler::rebuild_tensor(const std::string& function, const std::vector<Value>& a, int version) {
  const size_t needed = version == 1 ? 4 : version == 2 ? 6 : 7;
  if (a.size() < needed || a.size() > needed + 1) {
    fail(function + " takes " + std::to_string(needed) + " or " + std::to_string(needed + 1) + " arguments, got " +
         std::to_string(a.size()));
  }
  if (a[0].kind != Kind::Storage) fail(function + ": the storage argument is " + a_kind(a[0].kind) + ", not a storage");
  const StorageRef& storage = *a[0].o->storage;
  if (!storage.supported) return make_object("a tensor over an unsupported storage type " + storage.type_name, true);

  charge(sizeof(TensorRef));
  Value v = make(Kind::Tensor);
  v.o->tensor = std::make_unique<TensorRef>();
  TensorRef& t = *v.o->tensor;
  t.storage = a[0].o;
  t.offset = as_int(a[1], "storage offset");
  if (t.offset < 0) fail(function + ": negative storage offset");
  t.shape = as_int_list(a[2], "tensor size");
  t.stride = as_int_list(a[3], "tensor stride");
  if (t.shape.size() != t.stride.size()) fail(function + ": size and stride have different lengths");
  t.dtype = storage.dtype;
  if (version == 3) {
    if (a[6].kind != Kind::Global) fail(function + ": the dtype argument is not a torch dtype");
    const std::string& name = a[6].o->s;
    bool known = false;
    if (name.rfind("torch.", 0) == 0) {
      for (const auto& d : kTorchDTypes) {
        if (name.compare(6, std::string::npos, d.name) == 0) {
          t.dtype = d.dtype;
          known = true;
        }
      }
    }
    if (!known) return make_object("a tensor of the unsupported dtype " + name, true);
  }
  if (a.size() == needed + 1) {  // metadata: {"conj": bool, "neg": bool} when set
    const Value& meta = a[needed];
    if (meta.kind == Kind::Dict) {
      for (const auto& [k, val] : meta.o->entries) {
        if (k.kind == Kind::Str && k.o->s == "neg" && val.kind == Kind::Bool && val.i) t.negate = true;
      }
    }
  }
  return v;
}

Value Unpickler::call(const Value& callable, const Value& args, int depth) {
  if (callable.kind != Kind::Global) return make_object("(unknown)");
  const std::string& f = callable.o->s;
  if (args.kind != Kind::Tuple) fail("the arguments of " + f + " are " + a_kind(args.kind) + ", not a tuple");
  const auto& a = args.o->items;

  if (f == "collections.OrderedDict" || f == "builtins.dict" || f == "__builtin__.dict") {
    Value d = make(Kind::Dict);
    if (!a.empty() && (a[0].kind == Kind::List || a[0].kind == Kind::Tuple)) {
      for (const auto& pair : a[0].o->items) {
        if ((pair.kind != Kind::Tuple && pair.kind != Kind::List) || pair.o->items.size() != 2) fail(f + ": items are not pairs");
        set_item(d, pair.o->items[0], pair.o->items[1]);
      }
    }
    return d;
  }
  if (f == "torch._utils._rebuild_tensor") return rebuild_tensor(f, a, 1);
  if (f == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(f, a, 2);
  if (f == "torch._utils._rebuild_tensor_v3") return rebuild_tensor(f, a, 3);
  if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
    if (a.empty()) fail(f + " without arguments");
    return a[0];  // a Parameter is its data
  }
  if (f == "torch._tensor._rebuild_from_type_v2") {  // (func, new_type, args, state): a subclass
    if (a.size() != 4) fail(f + " takes 4 arguments");
    if (depth > 8) fail(f + " nested too deeply");
    return call(a[0], a[2], depth + 1);
  }
  if (f == "torch.Size" || f == "builtins.tuple" || f == "__builtin__.tuple") {
    if (a.size() == 1 && (a[0].kind == Kind::Tuple || a[0].kind == Kind::List)) return sequence(Kind::Tuple, a[0].o->items);
    return sequence(Kind::Tuple, {});
  }
  if (f == "_codecs.encode" && !a.empty() && a[0].kind == Kind::Str) return make_str(Kind::Bytes, a[0].o->s);
  if (f.rfind("torch._utils._rebuild_", 0) == 0) {
    // Quantized, sparse, nested, meta, wrapper-subclass or device tensors.
    return make_object("a tensor rebuilt by " + f + ", which is not supported", true);
  }
  return make_object(f);
}

Value Unpickler::run() {
  for (;;) {
    if (pos_ >= size_) {
      op_ = 0;
      op_pos_ = pos_;
      throw Error(path_, record_ + ": the pickle ends without STOP (truncated?)");
    }
    op_pos_ = pos_;
    op_ = data_[pos_++];
    switch (op_) {
      case 0x80: take(1); break;  // PROTO: every protocol's opcodes are understood
      case 0x95: take(8); break;  // FRAME: framing is only a read-ahead hint
      case '.': {
        Value v = pop();
        return v;
      }
      case '(': marks_.push_back(stack_.size()); break;
      case '0': pop(); break;
      case '1': pop_mark(); break;
      case '2': {
        const Value v = top();
        push(v);
        break;
      }
      case 'N': push(Value{}); break;
      case 0x88: push(make_int(Kind::Bool, 1)); break;
      case 0x89: push(make_int(Kind::Bool, 0)); break;
      case 'J': push(make_int(Kind::Int, int32_t(uint32_t(read_uint(4))))); break;
      case 'K': push(make_int(Kind::Int, int64_t(read_uint(1)))); break;
      case 'M': push(make_int(Kind::Int, int64_t(read_uint(2)))); break;
      case 0x8a: push(make_int(Kind::Int, read_long(read_uint(1)))); break;
      case 0x8b: push(make_int(Kind::Int, read_long(read_uint(4)))); break;
      case 'I': {
        const std::string line = read_line();
        if (line == "01" || line == "00") {
          push(make_int(Kind::Bool, line == "01"));
        } else {
          push(make_int(Kind::Int, parse_decimal(line)));
        }
        break;
      }
      case 'L': push(make_int(Kind::Int, parse_decimal(read_line()))); break;
      case 'F': {
        const std::string line = read_line();
        char* end = nullptr;
        Value v;
        v.kind = Kind::Float;
        v.f = std::strtod(line.c_str(), &end);
        if (line.empty() || *end != '\0') fail("bad float '" + line + "'");
        push(v);
        break;
      }
      case 'G': {
        const uint8_t* p = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];  // big-endian
        Value v;
        v.kind = Kind::Float;
        std::memcpy(&v.f, &bits, sizeof v.f);
        push(v);
        break;
      }
      case 'X': push(make_str(Kind::Str, read_string(read_uint(4)))); break;
      case 0x8c: push(make_str(Kind::Str, read_string(read_uint(1)))); break;
      case 0x8d: push(make_str(Kind::Str, read_string(read_uint(8)))); break;
      case 'V': push(make_str(Kind::Str, read_line())); break;
      case 'T': {
        const uint64_t n = read_uint(4);
        if (n > 0x7fffffffu) fail("negative string length");
        push(make_str(Kind::Str, read_string(n)));
        break;
      }
      case 'U': push(make_str(Kind::Str, read_string(read_uint(1)))); break;
      case 'S': {
        std::string line = read_line();
        if (line.size() >= 2 && (line[0] == '\'' || line[0] == '"') && line.back() == line[0]) {
          line = line.substr(1, line.size() - 2);
        }
        push(make_str(Kind::Str, line));
        break;
      }
      case 'B': push(make_str(Kind::Bytes, read_string(read_uint(4)))); break;
      case 'C': push(make_str(Kind::Bytes, read_string(read_uint(1)))); break;
      case 0x8e:
      case 0x96: push(make_str(Kind::Bytes, read_string(read_uint(8)))); break;
      case '}': push(make(Kind::Dict)); break;
      case ']': push(make(Kind::List)); break;
      case ')': push(make(Kind::Tuple)); break;
      case 0x8f: push(make(Kind::Set)); break;
      case 'd': {
        std::vector<Value> items = pop_mark();
        if (items.size() % 2) fail("odd number of items for a dict");
        Value d = make(Kind::Dict);
        for (size_t k = 0; k < items.size(); k += 2) set_item(d, items[k], items[k + 1]);
        push(d);
        break;
      }
      case 'l': push(sequence(Kind::List, pop_mark())); break;
      case 't': push(sequence(Kind::Tuple, pop_mark())); break;
      case 0x91: push(sequence(Kind::Set, pop_mark())); break;
      case 0x85:
      case 0x86:
      case 0x87: {
        const size_t n = size_t(op_ - 0x84);
        std::vector<Value> items(n);
        for (size_t k = n; k-- > 0;) items[k] = pop();
        push(sequence(Kind::Tuple, std::move(items)));
        break;
      }
      case 'a': {
        Value v = pop();
        append(top(), v);
        break;
      }
      case 'e':
      case 0x90: {
        std::vector<Value> items = pop_mark();
        Value& target = top();
        for (const auto& v : items) append(target, v);
        break;
      }
      case 's': {
        Value v = pop();
        Value k = pop();
        set_item(top(), k, v);
        break;
      }
      case 'u': {
        std::vector<Value> items = pop_mark();
        if (items.size() % 2) fail("odd number of items for SETITEMS");
        Value& target = top();
        for (size_t k = 0; k < items.size(); k += 2) set_item(target, items[k], items[k + 1]);
        break;
      }
      case 'c': {
        const std::string module = read_line();
        const std::string name = read_line();
        push(global(module, name));
        break;
      }
      case 0x93: {
        Value name = pop();
        Value module = pop();
        if (name.kind != Kind::Str || module.kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
        push(global(module.o->s, name.o->s));
        break;
      }
      case 'R': {
        Value args = pop();
        Value callable = pop();
        push(call(callable, args, 0));
        break;
      }
      case 0x81:
      case 0x92: {
        if (op_ == 0x92) pop();  // kwargs
        pop();                   // args
        Value cls = pop();
        if (cls.kind == Kind::Global && cls.o->s == "collections.OrderedDict") {
          push(make(Kind::Dict));
        } else {
          push(make_object(cls.kind == Kind::Global ? cls.o->s : "(unknown)"));
        }
        break;
      }
      case 'o': {
        std::vector<Value> items = pop_mark();
        if (items.empty()) fail("OBJ without a class");
        push(make_object(items[0].kind == Kind::Global ? items[0].o->s : "(unknown)"));
        break;
      }
      case 'i': {
        const std::string module = read_line();
        const std::string name = read_line();
        pop_mark();
        push(make_object(module + "." + name));
        break;
      }
      case 'b': {
        pop();  // state: attributes (e.g. an OrderedDict's _metadata) carry no tensors we need
        const Value& target = top();
        if (target.kind != Kind::Dict && target.kind != Kind::Object && target.kind != Kind::Tensor && target.kind != Kind::List) {
          fail("BUILD on " + a_kind(target.kind));
        }
        break;
      }
      case 'Q': {
        Value pid = pop();
        push(persistent_load(pid));
        break;
      }
      case 'q': memo_put(read_uint(1)); break;
      case 'r': memo_put(read_uint(4)); break;
      case 'p': {
        const int64_t index = parse_decimal(read_line());
        if (index < 0) fail("negative memo index");
        memo_put(uint64_t(index));
        break;
      }
      case 0x94: memo_put(memo_.size()); break;
      case 'h': push(memo_get(read_uint(1))); break;
      case 'j': push(memo_get(read_uint(4))); break;
      case 'g': {
        const int64_t index = parse_decimal(read_line());
        if (index < 0) fail("negative memo index");
        push(memo_get(uint64_t(index)));
        break;
      }
      default: {
        const char* name = opcode_name(op_);
        fail(name ? std::string("unsupported pickle opcode ") + name : "unknown pickle opcode " + hex_byte(op_));
      }
    }
  }
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

  const ZipReader::Span pickle = zip_->read(*pkl);
  Unpickler vm(pickle.data, pickle.size, path_, pkl->name);
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
