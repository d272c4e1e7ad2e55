#include "io/pth.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <random>

#include "io/io_test_util.h"
#include "io/zip.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

using test::make_checkpoint;
using test::PickleWriter;
using test::read_bytes;
using test::TestZipEntry;
using test::write_bytes;
using test::ZipWriterForTests;

std::string fixture(const std::string& name) { return test::source_dir() + "/tests/data/pth/" + name; }

PthStateDict parse(const std::string& bytes, const std::string& path = "test.pth") {
  return parse_pth(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

// parse(BYTES) must throw iflame::Error whose message contains NEEDLE and the path.
void expect_error(const std::string& bytes, const std::string& needle) {
  try {
    parse(bytes, "case.pth");
    ADD_FAILURE() << "accepted; expected an error mentioning '" << needle << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_EQ(what.rfind("case.pth: ", 0), 0u) << what;
  }
}

void expect_matches(const PthStateDict& sd, const std::string& expected_path) {
  const SafetensorsFile expected = read_safetensors(expected_path);
  ASSERT_EQ(sd.tensors.size(), expected.tensors.size()) << expected_path;
  for (const auto& [name, t] : sd.tensors) {
    auto it = expected.tensors.find(name);
    ASSERT_NE(it, expected.tensors.end()) << name;
    EXPECT_EQ(dtype_name(t.dtype), std::string(dtype_name(it->second.dtype))) << name;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_EQ(t.bytes, it->second.bytes) << name;
  }
}

std::vector<std::string> names(const PthStateDict& sd) {
  std::vector<std::string> out;
  for (const auto& [name, t] : sd.tensors) out.push_back(name);
  return out;
}

bool has_note(const PthStateDict& sd, const std::string& needle) {
  for (const auto& n : sd.notes) {
    if (n.find(needle) != std::string::npos) return true;
  }
  return false;
}

std::vector<float> floats(const TensorData& t) { return to_float32(t); }

// The records of a zip file, in order.
std::vector<TestZipEntry> unzip(const std::string& bytes) {
  ZipReader zip(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "unzip");
  std::vector<TestZipEntry> out;
  for (const auto& e : zip.entries()) {
    const auto span = zip.read(e);
    out.push_back({e.name, std::string(reinterpret_cast<const char*>(span.data), span.size), 0});
  }
  return out;
}

// A state dict pickle {key: tensor, ...} from (key, tensor-emitting function) pairs.
std::string state_dict_pickle(const std::vector<std::pair<std::string, std::function<void(PickleWriter&)>>>& items) {
  PickleWriter p;
  p.op('}').op('(');
  for (const auto& [key, emit] : items) {
    p.str(key);
    emit(p);
  }
  return p.op('u').op('.').bytes();
}

// --- Fixtures written by tools/make_pth_fixtures.py (PyTorch 1.13) ---------------------------------

TEST(PthTest, PlainDict) {
  const PthStateDict sd = read_pth(fixture("plain_dict.pth"));
  expect_matches(sd, fixture("plain_dict.expected.safetensors"));
  EXPECT_EQ(names(sd), (std::vector<std::string>{"weight", "bias", "step", "mask", "ids", "empty"}));  // file order
  EXPECT_EQ(sd.container, "");
  EXPECT_TRUE(sd.notes.empty());
  EXPECT_TRUE(sd.tensors[2].second.shape.empty());  // 0-dim
}

TEST(PthTest, ModuleStateDict) {
  const PthStateDict sd = read_pth(fixture("ordered_dict.pth"));
  expect_matches(sd, fixture("ordered_dict.expected.safetensors"));
  EXPECT_EQ(sd.tensors.size(), 9u);
  EXPECT_EQ(sd.tensors.back().first, "2.num_batches_tracked");
  EXPECT_EQ(sd.tensors.back().second.dtype, DType::I64);
}

TEST(PthTest, HalfBFloat16Double) {
  const PthStateDict sd = read_pth(fixture("half_bf16.pth"));
  expect_matches(sd, fixture("half_bf16.expected.safetensors"));
  // Default conversion to float32 agrees bit for bit with torch's .float().
  SafetensorsFile f32 = state_dict_to_safetensors(read_pth(fixture("half_bf16.pth")), {}, "half_bf16.pth");
  const SafetensorsFile expected = read_safetensors(fixture("half_bf16.f32.expected.safetensors"));
  ASSERT_EQ(f32.tensors.size(), expected.tensors.size());
  for (const auto& [name, t] : expected.tensors) {
    EXPECT_EQ(f32.tensors.at(name).dtype, DType::F32);
    EXPECT_EQ(f32.tensors.at(name).shape, t.shape) << name;
    EXPECT_EQ(f32.tensors.at(name).bytes, t.bytes) << name;
  }
  EXPECT_EQ(f32.metadata.at("format"), "pt");
}

TEST(PthTest, ViewsStridesAndSharedStorage) {
  const PthStateDict sd = read_pth(fixture("views.pth"));
  expect_matches(sd, fixture("views.expected.safetensors"));
  for (const auto& [name, t] : sd.tensors) {
    if (name == "t") {
      EXPECT_EQ(t.shape, (std::vector<int64_t>{6, 4}));
      // t[i][j] = base[j][i] = 0.5 * (6 j + i) - 3
      const auto v = floats(t);
      EXPECT_EQ(v[1], 0.5f * 6 - 3);
      EXPECT_EQ(v[4], 0.5f * 1 - 3);
    }
  }
}

TEST(PthTest, WrappedCheckpointWithCompiledKeys) {
  const PthStateDict sd = read_pth(fixture("wrapped.pth"));
  expect_matches(sd, fixture("wrapped.expected.safetensors"));
  EXPECT_EQ(sd.container, "model");
  EXPECT_EQ(names(sd), (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"}));
  EXPECT_TRUE(has_note(sd, "'epoch' (int 3)"));
  EXPECT_TRUE(has_note(sd, "'optimizer'"));
  EXPECT_TRUE(has_note(sd, "'config'"));
  EXPECT_TRUE(has_note(sd, "_orig_mod."));
}

TEST(PthTest, ArchiveFolderName) {
  const PthStateDict sd = read_pth(fixture("archive_default.pth"));
  expect_matches(sd, fixture("archive_default.expected.safetensors"));
}

TEST(PthTest, PyTorch2Spellings) {
  const PthStateDict sd = read_pth(fixture("torch2x.pth"));
  expect_matches(sd, fixture("torch2x.expected.safetensors"));
  EXPECT_EQ(names(sd), (std::vector<std::string>{"u3", "u3_view", "u3_bf16", "typed_meta", "param", "param_state", "neg", "subclass"}));
}

TEST(PthTest, BigEndianByteOrder) {
  const PthStateDict sd = read_pth(fixture("bigendian.pth"));
  expect_matches(sd, fixture("bigendian.expected.safetensors"));
  int64_t l[3];
  std::memcpy(l, sd.tensors[1].second.bytes.data(), 24);
  EXPECT_EQ(l[0], 1);
  EXPECT_EQ(l[1], -2);
  EXPECT_EQ(l[2], int64_t(1) << 40);
}

TEST(PthTest, RefusesLegacyAndTorchScript) {
  expect_error(read_bytes(fixture("legacy.pth")), "legacy");
  expect_error(read_bytes(fixture("torchscript.pt")), "TorchScript");
}

// --- Damaged files ---------------------------------------------------------------------------------

TEST(PthTest, NotAZip) {
  expect_error("", "not a zip");
  expect_error("hello, this is not a checkpoint at all......................", "not a zip");
  std::string garbage(4096, '\0');
  std::mt19937 rng(7);
  for (auto& c : garbage) c = char(rng());
  expect_error(garbage, "not a zip");
  EXPECT_THROW(read_pth(fixture("does_not_exist.pth")), Error);
}

TEST(PthTest, TruncatedAtEveryLength) {
  const std::string good = read_bytes(fixture("plain_dict.pth"));
  ASSERT_GT(good.size(), 1000u);
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_THROW(parse(good.substr(0, n)), Error) << n;
  }
  expect_error(good.substr(0, good.size() / 2), "truncated zip");
}

TEST(PthTest, ZipWithoutDataPkl) {
  const std::string zip = ZipWriterForTests::build({{"archive/version", "3\n", 0}, {"archive/data/0", "abcd", 0}});
  expect_error(zip, "data.pkl");
  expect_error(ZipWriterForTests::build({}), "data.pkl");
}

TEST(PthTest, Zip64Records) {
  const std::vector<TestZipEntry> entries = unzip(read_bytes(fixture("plain_dict.pth")));
  const std::string zip64 = ZipWriterForTests::build(entries, true);
  const std::string plain = ZipWriterForTests::build(entries, false);
  expect_matches(parse(zip64), fixture("plain_dict.expected.safetensors"));
  expect_matches(parse(plain), fixture("plain_dict.expected.safetensors"));
  // The ZIP64 end record must be where the locator says.
  std::string broken = zip64;
  const size_t locator = broken.size() - 22 - 20;
  broken[locator + 8] = char(broken[locator + 8] + 1);
  expect_error(broken, "ZIP64");
}

TEST(PthTest, CompressedEntryRefused) {
  std::vector<TestZipEntry> entries = unzip(read_bytes(fixture("plain_dict.pth")));
  for (auto& e : entries) {
    if (e.name.find("data/0") != std::string::npos) e.method = 8;
  }
  expect_error(ZipWriterForTests::build(entries), "compressed");
}

TEST(PthTest, CrcMismatchDetected) {
  std::string bytes = read_bytes(fixture("plain_dict.pth"));
  ZipReader zip(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "x");
  const ZipEntry* e = nullptr;
  for (const auto& entry : zip.entries()) {
    if (entry.name.find("/data/") != std::string::npos && entry.size > 0) e = &entry;
  }
  ASSERT_NE(e, nullptr);
  const size_t at = size_t(zip.read(*e).data - reinterpret_cast<const uint8_t*>(bytes.data()));
  bytes[at] = char(bytes[at] ^ 0x40);
  expect_error(bytes, "CRC");
}

TEST(PthTest, UnsupportedOpcodeIsNamed) {
  const std::string ext1 = PickleWriter().op('}').op(0x82).op(1).op('.').bytes();
  expect_error(make_checkpoint(ext1, {}), "unsupported pickle opcode EXT1");
  const std::string unknown = PickleWriter().op('}').op(0xff).op('.').bytes();
  expect_error(make_checkpoint(unknown, {}), "unknown pickle opcode 0xff");
  const std::string no_stop = PickleWriter().op('}').bytes();
  expect_error(make_checkpoint(no_stop, {}), "without STOP");
  const std::string underflow = PickleWriter().op('s').op('.').bytes();
  expect_error(make_checkpoint(underflow, {}), "underflow");
  const std::string bad_memo = PickleWriter().op('h').op(5).op('.').bytes();
  expect_error(make_checkpoint(bad_memo, {}), "memo");
}

TEST(PthTest, MissingStorageRecord) {
  const std::string pkl = state_dict_pickle({{"w", [](PickleWriter& p) { p.tensor("FloatStorage", "7", 4, 0, {4}, {1}); }}});
  expect_error(make_checkpoint(pkl, {{"0", test::floats_bytes({1, 2, 3, 4})}}), "archive/data/7' is missing");
}

TEST(PthTest, StorageTooSmallForSizeAndStride) {
  const std::string data = test::floats_bytes({1, 2, 3, 4, 5, 6});
  const std::string pkl = state_dict_pickle({{"w", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 6, 0, {3, 4}, {4, 1}); }}});
  expect_error(make_checkpoint(pkl, {{"0", data}}), "needs 48 bytes");
  const std::string offset = state_dict_pickle({{"w", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 6, 5, {2}, {1}); }}});
  expect_error(make_checkpoint(offset, {{"0", data}}), "only 24");
  // The record itself is shorter than the persistent id's element count.
  const std::string short_record = state_dict_pickle({{"w", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 6, 0, {2}, {1}); }}});
  expect_error(make_checkpoint(short_record, {{"0", data.substr(0, 20)}}), "has 20 bytes");
}

TEST(PthTest, HandMadeStridesOffsetsAndModulePrefix) {
  const std::string data = test::floats_bytes({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11});
  const std::string pkl = state_dict_pickle({
      {"module.t", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 12, 0, {4, 3}, {1, 4}); }},
      {"module.off", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 12, 7, {2, 2}, {2, 1}); }},
      {"module.rev", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 12, 1, {2, 2, 2}, {6, 1, 3}); }},
      {"module.bcast", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 12, 11, {2, 3}, {0, 0}); }},
      {"module.size1", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 12, 2, {1, 3}, {99, 1}); }},
      {"module.empty", [](PickleWriter& p) { p.tensor("FloatStorage", "0", 12, 400, {0, 3}, {3, 1}); }},
  });
  const PthStateDict sd = parse(make_checkpoint(pkl, {{"0", data}}));
  EXPECT_EQ(names(sd), (std::vector<std::string>{"t", "off", "rev", "bcast", "size1", "empty"}));
  EXPECT_TRUE(has_note(sd, "module."));
  EXPECT_EQ(floats(sd.tensors[0].second), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(floats(sd.tensors[1].second), (std::vector<float>{7, 8, 9, 10}));
  EXPECT_EQ(floats(sd.tensors[2].second), (std::vector<float>{1, 4, 2, 5, 7, 10, 8, 11}));
  EXPECT_EQ(floats(sd.tensors[3].second), (std::vector<float>(6, 11)));
  EXPECT_EQ(floats(sd.tensors[4].second), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(sd.tensors[5].second.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(sd.tensors[5].second.bytes.empty());
}

TEST(PthTest, ZeroSizedAndScalarTensors) {
  const std::string pkl = state_dict_pickle({
      {"scalar", [](PickleWriter& p) { p.tensor("LongStorage", "0", 1, 0, {}, {}); }},
      {"none", [](PickleWriter& p) { p.tensor("LongStorage", "1", 0, 0, {0}, {1}); }},
  });
  std::string one(8, '\0');
  one[0] = 42;
  const PthStateDict sd = parse(make_checkpoint(pkl, {{"0", one}, {"1", ""}}));
  ASSERT_EQ(sd.tensors.size(), 2u);
  EXPECT_EQ(sd.tensors[0].second.numel(), 1);
  EXPECT_EQ(sd.tensors[0].second.bytes[0], 42);
  EXPECT_EQ(sd.tensors[1].second.numel(), 0);
}

TEST(PthTest, NestedStateDictSelection) {
  const std::string data = test::floats_bytes({1, 2});
  auto tensor = [](PickleWriter& p) { p.tensor("FloatStorage", "0", 2, 0, {2}, {1}); };
  // {"state_dict": {"a": t}, "ema": {"a": t}, "step": 5}
  PickleWriter p;
  p.op('}').op('(').str("state_dict").op('}').op('(').str("a");
  tensor(p);
  p.op('u').str("ema").op('}').op('(').str("a");
  tensor(p);
  p.op('u').str("step").integer(5).op('u').op('.');
  const PthStateDict sd = parse(make_checkpoint(p.bytes(), {{"0", data}}));
  EXPECT_EQ(sd.container, "state_dict");
  EXPECT_EQ(names(sd), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(has_note(sd, "'ema'"));
  EXPECT_TRUE(has_note(sd, "'step' (int 5)"));

  // A top level with tensors and a "model" entry that is not a dict of tensors: top level wins.
  PickleWriter q;
  q.op('}').op('(').str("model").str("resnet").str("w");
  tensor(q);
  q.op('u').op('.');
  const PthStateDict top = parse(make_checkpoint(q.bytes(), {{"0", data}}));
  EXPECT_EQ(top.container, "");
  EXPECT_EQ(names(top), (std::vector<std::string>{"w"}));
  EXPECT_TRUE(has_note(top, "'model'"));
}

TEST(PthTest, StructuralErrors) {
  const std::string data = test::floats_bytes({1, 2});
  // Not a dict.
  expect_error(make_checkpoint(PickleWriter().op(']').op('.').bytes(), {}), "not a dict of tensors");
  // No tensors.
  expect_error(make_checkpoint(PickleWriter().op('}').str("epoch").integer(3).op('s').op('.').bytes(), {}), "no tensors");
  // Two keys that collide after removing _orig_mod.
  auto tensor = [](PickleWriter& p) { p.tensor("FloatStorage", "0", 2, 0, {2}, {1}); };
  expect_error(make_checkpoint(state_dict_pickle({{"_orig_mod.a", tensor}, {"a", tensor}}), {{"0", data}}), "two tensors");
  // A complex tensor in the state dict cannot be converted...
  auto complex = [](PickleWriter& p) { p.tensor("ComplexFloatStorage", "1", 1, 0, {1}, {1}); };
  expect_error(make_checkpoint(state_dict_pickle({{"a", tensor}, {"c", complex}}), {{"0", data}, {"1", data}}), "ComplexFloatStorage");
  // ...but one outside the selected state dict does not matter.
  PickleWriter p;
  p.op('}').op('(').str("model").op('}').op('(').str("a");
  tensor(p);
  p.op('u').str("extra").op('}').str("c");
  complex(p);
  p.op('s').op('u').op('.');
  EXPECT_EQ(parse(make_checkpoint(p.bytes(), {{"0", data}, {"1", data}})).tensors.size(), 1u);
  // Bad persistent ids and rebuild arguments.
  expect_error(make_checkpoint(PickleWriter().str("x").op('Q').op('.').bytes(), {}), "persistent id");
  const std::string few_args = PickleWriter()
                                   .op('}')
                                   .str("a")
                                   .global("torch._utils", "_rebuild_tensor_v2")
                                   .op('(')
                                   .storage("FloatStorage", "0", 2)
                                   .integer(0)
                                   .op('t')
                                   .op('R')
                                   .op('s')
                                   .op('.')
                                   .bytes();
  expect_error(make_checkpoint(few_args, {{"0", data}}), "_rebuild_tensor_v2 takes 6 or 7 arguments");
  // Huge broadcast tensors are refused before allocating.
  auto huge = [](PickleWriter& w) { w.tensor("FloatStorage", "0", 2, 0, {int64_t(1) << 30, int64_t(1) << 30}, {0, 0}); };
  expect_error(make_checkpoint(state_dict_pickle({{"h", huge}}), {{"0", data}}), "far more");
  auto overflow = [](PickleWriter& w) { w.tensor("FloatStorage", "0", 2, 0, {int64_t(1) << 40, int64_t(1) << 40}, {1, 1}); };
  expect_error(make_checkpoint(state_dict_pickle({{"h", overflow}}), {{"0", data}}), "too many elements");
  // Unknown byteorder.
  std::vector<TestZipEntry> entries = unzip(make_checkpoint(state_dict_pickle({{"a", tensor}}), {{"0", data}}));
  entries.push_back({"archive/byteorder", "middle", 0});
  expect_error(ZipWriterForTests::build(entries), "byteorder");
}

TEST(PthTest, OtherPickleSpellings) {
  // Protocol-0 text opcodes, memo PUT/GET, DICT/LIST/TUPLE, LONG1, FRAME, STACK_GLOBAL,
  // BINUNICODE8, MEMOIZE, BINFLOAT, unknown classes via NEWOBJ + BUILD, sets.
  PickleWriter p;
  p.op(0x95).raw(std::string(8, '\0'));  // FRAME
  p.op('(');
  p.op('S').raw("'epoch'\n").op('I').raw("3\n");
  p.op('V').raw("flag\n").op('I').raw("01\n");
  p.op('V').raw("big\n").op('L').raw("123456789012L\n");
  p.op('V').raw("lr\n").op('F').raw("0.5\n");
  p.op('V').raw("g\n").op('G').raw(std::string("\x3f\xf0\0\0\0\0\0\0", 8));
  p.op('V').raw("args\n").str("argparse").str("Namespace").op(0x93).op(0x94).op(')').op(0x81).op('}').str("x").integer(1).op('s').op('b');
  p.op('V').raw("s\n").op(0x8f).op('(').integer(1).integer(2).op(0x90);
  p.op('V').raw("l\n").op('(').integer(-5).op(0x8a).op(2).raw(std::string("\x00\x80", 2)).op('l').op('p').raw("40\n");
  p.op('V').raw("again\n").op('g').raw("40\n");
  p.op('V').raw("w\n");
  p.op(0x8d).raw(std::string("\x0c\0\0\0\0\0\0\0", 8)).raw("torch._utils").op('q').op(9).op(0x8c).op(18).raw("_rebuild_tensor_v2").op(0x93);
  p.op('(').storage("FloatStorage", "0", 2).integer(0).op('(').integer(2).op('t').integer(1).op(0x85).integer(7).op('0');
  p.op(0x89).op(0x88).op('0').op('}').op('t').op('R');
  p.op('d').op('.');
  const PthStateDict sd = parse(make_checkpoint(p.bytes(), {{"0", test::floats_bytes({3, 4})}}));
  ASSERT_EQ(names(sd), (std::vector<std::string>{"w"}));
  EXPECT_EQ(floats(sd.tensors[0].second), (std::vector<float>{3, 4}));
  EXPECT_TRUE(has_note(sd, "'args' (an object of class argparse.Namespace)"));
  EXPECT_TRUE(has_note(sd, "'l' (list of 2)"));
}

TEST(PthTest, HostilePicklesDoNotCrash) {
  // 200k nested tuples: no recursion anywhere, so no stack overflow.
  PickleWriter deep;
  deep.op(')');
  for (int i = 0; i < 200000; ++i) deep.op(0x85);
  expect_error(make_checkpoint(deep.op('.').bytes(), {}), "not a dict of tensors");
  // A list containing itself, and a dict containing itself.
  expect_error(make_checkpoint(PickleWriter().op(']').op('q').op(0).op('h').op(0).op('a').op('.').bytes(), {}), "not a dict");
  const PthStateDict cycle_note = [] {
    const std::string data = test::floats_bytes({1, 2});
    PickleWriter p;
    p.op('}').op('q').op(0).op('(').str("self").op('h').op(0).str("w");
    p.tensor("FloatStorage", "0", 2, 0, {2}, {1});
    p.op('u').op('.');
    return parse(make_checkpoint(p.bytes(), {{"0", data}}));
  }();
  EXPECT_EQ(names(cycle_note), (std::vector<std::string>{"w"}));
  // Lengths far beyond the data.
  expect_error(make_checkpoint(PickleWriter().op('X').raw("\xff\xff\xff\x7f").op('.').bytes(), {}), "truncated pickle");
  expect_error(make_checkpoint(PickleWriter().op(0x8d).raw(std::string(8, '\xff')).op('.').bytes(), {}), "truncated pickle");
  expect_error(make_checkpoint(PickleWriter().op(0x8b).raw("\xff\xff\xff\xff").op('.').bytes(), {}), "truncated pickle");
  expect_error(make_checkpoint(PickleWriter().op(0x8a).op(9).raw(std::string(9, '\x01')).op('.').bytes(), {}), "too large");
}

// Opcodes that copy a memoized value (builtins.tuple / torch.Size of a list, _codecs.encode of a
// str, STACK_GLOBAL of two strs) turn a few input bytes into a whole copy. Each file below is
// about 1 MB and, without the machine's memory budget, would ask for 100+ GB.
TEST(PthTest, AmplifyingPicklesHitTheMemoryBudget) {
  constexpr int kItems = 100000, kCopies = 100000;
  // memo[0] = a list of kItems Nones; memo[1] = the callable; then kCopies x f((memo[0],)).
  const auto amplifier = [&](const std::function<void(PickleWriter&)>& make_value, const std::string& module,
                             const std::string& name) {
    PickleWriter p;
    p.op(']');  // the result list, which collects every copy
    make_value(p);
    p.op('r').raw(std::string("\x00\x00\x00\x00", 4)).op('0');
    p.global(module, name).op('r').raw(std::string("\x01\x00\x00\x00", 4)).op('0');
    p.op('(');
    for (int i = 0; i < kCopies; ++i) p.op('h').op(1).op('h').op(0).op(0x85).op('R');
    return make_checkpoint(p.op('e').op('.').bytes(), {});
  };
  const auto big_list = [&](PickleWriter& p) {
    p.op(']').op('(');
    for (int i = 0; i < kItems; ++i) p.op('N');
    p.op('e');
  };
  const auto big_str = [&](PickleWriter& p) { p.str(std::string(kItems * 8, 'x')); };
  for (const auto& [bytes, what] : std::vector<std::pair<std::string, std::string>>{
           {amplifier(big_list, "builtins", "tuple"), "builtins.tuple"},
           {amplifier(big_list, "torch", "Size"), "torch.Size"},
           {amplifier(big_str, "_codecs", "encode"), "_codecs.encode"},
       }) {
    SCOPED_TRACE(what);
    EXPECT_LT(bytes.size(), size_t(2) << 20);
    expect_error(bytes, "MiB of objects");
  }
  // STACK_GLOBAL joins two memoized strs: 1 MB of module name, copied per opcode.
  PickleWriter g;
  g.op(']').str(std::string(1 << 20, 'm')).op('r').raw(std::string(4, '\0')).op('0').op('(');
  for (int i = 0; i < kCopies; ++i) g.op('j').raw(std::string(4, '\0')).str("n").op(0x93);
  expect_error(make_checkpoint(g.op('e').op('.').bytes(), {}), "MiB of objects");
}

// Mutates the file bytes (zip layer) and, re-zipped with valid CRCs, the pickle (VM layer).
TEST(PthFuzz, MutatedCheckpointsNeverCrash) {
  const auto start = std::chrono::steady_clock::now();
  std::mt19937 rng(16532025);
  int accepted = 0, total = 0;
  for (const char* name : {"plain_dict.pth", "torch2x.pth", "wrapped.pth"}) {
    const std::string good = read_bytes(fixture(name));
    const std::vector<TestZipEntry> entries = unzip(good);
    auto mutate = [&](std::string s) {
      const int edits = 1 + int(rng() % 4);
      for (int k = 0; k < edits && !s.empty(); ++k) {
        const size_t at = rng() % s.size();
        switch (rng() % 6) {
          case 0: s[at] = char(rng()); break;
          case 1: s[at] = char(s[at] ^ (1 << (rng() % 8))); break;
          case 2: s.resize(at); break;
          case 3: s.erase(at, 1 + rng() % 8); break;
          case 4: s.insert(at, 1, char(rng())); break;
          default: {
            static const char kOpcodes[] = "()tRQqhu.}X\x85\x86\x88\x89K";
            s[at] = kOpcodes[rng() % (sizeof kOpcodes - 1)];  // UBSan caught "% 18" reading past the end
            break;
          }
        }
      }
      return s;
    };
    for (int iter = 0; iter < 1000; ++iter) {
      std::string bytes;
      if (iter % 2 == 0) {
        bytes = mutate(good);
      } else {
        std::vector<TestZipEntry> e = entries;
        e[0].data = mutate(e[0].data);  // data.pkl comes first in every fixture
        bytes = ZipWriterForTests::build(e);
      }
      ++total;
      try {
        parse(bytes);
        ++accepted;
      } catch (const Error&) {
      }
    }
  }
  EXPECT_LT(accepted, total);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0);
}

// --- Conversion ------------------------------------------------------------------------------------

TEST(ConvertTest, DefaultConvertsFloatsToF32) {
  const std::string out = test::temp_dir() + "/half.safetensors";
  const ConvertSummary s = convert_pth_to_safetensors(fixture("half_bf16.pth"), out);
  EXPECT_EQ(s.tensors, 4u);
  EXPECT_EQ(s.values, 13 + 6 + 12 + 3);
  EXPECT_EQ(s.in_dtypes, (std::map<std::string, size_t>{{"BF16", 1}, {"F16", 2}, {"F64", 1}}));
  EXPECT_EQ(s.out_dtypes, (std::map<std::string, size_t>{{"F32", 4}}));
  const SafetensorsFile got = read_safetensors(out);
  const SafetensorsFile expected = read_safetensors(fixture("half_bf16.f32.expected.safetensors"));
  for (const auto& [name, t] : expected.tensors) EXPECT_EQ(got.tensors.at(name).bytes, t.bytes) << name;
  EXPECT_EQ(got.metadata.at("format"), "pt");
  EXPECT_EQ(got.metadata.at("source"), "half_bf16.pth");
}

TEST(ConvertTest, KeepDTypesAndIntegers) {
  const std::string dir = test::temp_dir();
  ConvertOptions keep;
  keep.keep_dtype = true;
  convert_pth_to_safetensors(fixture("half_bf16.pth"), dir + "/keep.safetensors", keep);
  const SafetensorsFile got = read_safetensors(dir + "/keep.safetensors");
  const SafetensorsFile expected = read_safetensors(fixture("half_bf16.expected.safetensors"));
  for (const auto& [name, t] : expected.tensors) {
    EXPECT_EQ(got.tensors.at(name).dtype, t.dtype) << name;
    EXPECT_EQ(got.tensors.at(name).bytes, t.bytes) << name;
  }
  // Integer and bool tensors stay as they are under the default too.
  const ConvertSummary s = convert_pth_to_safetensors(fixture("plain_dict.pth"), dir + "/plain.safetensors");
  EXPECT_EQ(s.out_dtypes, (std::map<std::string, size_t>{{"BOOL", 1}, {"F32", 3}, {"I32", 1}, {"I64", 1}}));
  const SafetensorsFile plain = read_safetensors(dir + "/plain.safetensors");
  const SafetensorsFile plain_expected = read_safetensors(fixture("plain_dict.expected.safetensors"));
  for (const auto& [name, t] : plain_expected.tensors) EXPECT_EQ(plain.tensors.at(name).bytes, t.bytes) << name;
}

TEST(ConvertTest, RefusesToOverwriteItsInput) {
  const std::string dir = test::temp_dir();
  const std::string in = dir + "/model.pth";
  write_bytes(in, read_bytes(fixture("plain_dict.pth")));
  EXPECT_THROW(convert_pth_to_safetensors(in, in), Error);
  EXPECT_EQ(read_bytes(in), read_bytes(fixture("plain_dict.pth")));
  // A failed conversion leaves no output behind.
  EXPECT_THROW(convert_pth_to_safetensors(fixture("legacy.pth"), dir + "/x.safetensors"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
}

int run(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Each run of the binary costs about a second (LibTorch loads), so only three.
TEST(ConvertTest, CommandLine) {
  const std::string bin = test::iflame_binary();
  if (!std::filesystem::exists(bin)) GTEST_SKIP() << "no iflame binary at " << bin;
  const std::string dir = test::temp_dir();
  const std::string log = dir + "/log.txt";
  ASSERT_EQ(run("'" + bin + "' convert '" + fixture("wrapped.pth") + "' '" + dir + "/w.safetensors' > '" + log + "' 2>&1"), 0)
      << read_bytes(log);
  const std::string text = read_bytes(log);
  EXPECT_NE(text.find("4 tensors, 11 parameters (from \"model\")"), std::string::npos) << text;
  EXPECT_NE(text.find("note: skipped top-level entry 'epoch'"), std::string::npos) << text;
  EXPECT_EQ(read_safetensors(dir + "/w.safetensors").tensors.size(), 4u);

  EXPECT_EQ(run("'" + bin + "' convert '" + fixture("half_bf16.pth") + "' '" + dir + "/h.safetensors' --dtype keep --quiet > '" +
                log + "' 2>&1"),
            0);
  EXPECT_EQ(read_bytes(log), "");
  EXPECT_EQ(read_safetensors(dir + "/h.safetensors").tensors.at("h").dtype, DType::F16);

  EXPECT_EQ(run("'" + bin + "' convert '" + fixture("legacy.pth") + "' '" + dir + "/l.safetensors' > '" + log + "' 2>&1"), 1);
  EXPECT_NE(read_bytes(log).find("legacy"), std::string::npos) << read_bytes(log);
}

}  // namespace
}  // namespace iflame
