#include "io/pickle.h"

#include <cstring>
#include <limits>

#include "util/error.h"

namespace iflame::pickle {

namespace {

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

std::string hex_byte(uint8_t b) {
  const char* digits = "0123456789abcdef";
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

}  // namespace

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

// "an int", "a str", ...
std::string a_kind(Kind k) {
  const std::string name = kind_name(k);
  return (std::string("aeiou").find(name[0]) != std::string::npos ? "an " : "a ") + name;
}

// ---------------------------------------------------------------------------------------------
// The pickle machine (protocols 0-4 minus extensions and out-of-band buffers).
// ---------------------------------------------------------------------------------------------

class Machine::Impl {
 public:
  Impl(const uint8_t* data, size_t size, std::string path, std::string record)
      : data_(data), size_(size), path_(std::move(path)), record_(std::move(record)),
        budget_(kMemoryPerInputByte * uint64_t(size) + kMemoryFloor) {}

  Value run();

 private:
  // One family of opcodes each: true when op_ was one of theirs (and it ran).
  bool stack_op();
  bool constant_op();
  bool container_op();
  bool object_op();
  bool memo_op();
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

Value Machine::Impl::persistent_load(const Value& pid) {
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

Value Machine::Impl::rebuild_tensor(const std::string& function, const std::vector<Value>& a, int version) {
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

Value Machine::Impl::call(const Value& callable, const Value& args, int depth) {
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

// Framing and the stack: PROTO, FRAME, MARK, POP, POP_MARK, DUP.
bool Machine::Impl::stack_op() {
  switch (op_) {
    case 0x80: take(1); break;  // PROTO: every protocol's opcodes are understood
    case 0x95: take(8); break;  // FRAME: framing is only a read-ahead hint
    case '(': marks_.push_back(stack_.size()); break;
    case '0': pop(); break;
    case '1': pop_mark(); break;
    case '2': {
      const Value v = top();
      push(v);
      break;
    }
    default: return false;
  }
  return true;
}

// Constants: None, bools, ints, floats, strings and bytes in every encoding.
bool Machine::Impl::constant_op() {
  switch (op_) {
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
    default: return false;
  }
  return true;
}

// Containers: empty ones, building them from the stack, adding items.
bool Machine::Impl::container_op() {
  switch (op_) {
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
    default: return false;
  }
  return true;
}

// Globals, calls, objects and their state, persistent ids (torch storages).
bool Machine::Impl::object_op() {
  switch (op_) {
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
    default: return false;
  }
  return true;
}

// The memo: PUT, MEMOIZE and GET in every encoding.
bool Machine::Impl::memo_op() {
  switch (op_) {
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
    default: return false;
  }
  return true;
}

// The machine: reads opcodes until STOP, each run by the family of opcodes it belongs to.
Value Machine::Impl::run() {
  for (;;) {
    if (pos_ >= size_) {
      op_ = 0;
      op_pos_ = pos_;
      throw Error(path_, record_ + ": the pickle ends without STOP (truncated?)");
    }
    op_pos_ = pos_;
    op_ = data_[pos_++];
    if (op_ == '.') return pop();  // STOP
    if (stack_op() || constant_op() || container_op() || object_op() || memo_op()) continue;
    const char* name = opcode_name(op_);
    fail(name ? std::string("unsupported pickle opcode ") + name : "unknown pickle opcode " + hex_byte(op_));
  }
}

Machine::Machine(const uint8_t* data, size_t size, std::string path, std::string record)
    : impl_(std::make_unique<Impl>(data, size, std::move(path), std::move(record))) {}
Machine::~Machine() = default;
Value Machine::run() { return impl_->run(); }

}  // namespace iflame::pickle
