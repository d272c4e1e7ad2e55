#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "error_text.h"
#include "io/io_test_util.h"
#include "test_paths.h"
#include "util/error.h"

namespace iflame {
namespace {

using test::read_bytes;
using test::write_bytes;

TensorData make_tensor(DType dtype, std::vector<int64_t> shape, uint8_t seed = 1) {
  TensorData t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(size_t(t.numel()) * dtype_size(dtype));
  for (size_t i = 0; i < t.bytes.size(); ++i) t.bytes[i] = uint8_t(seed + i * 7);
  if (dtype == DType::BOOL) {
    for (auto& b : t.bytes) b &= 1;
  }
  return t;
}

void expect_same(const SafetensorsFile& a, const SafetensorsFile& b) {
  EXPECT_EQ(a.metadata, b.metadata);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    auto it = b.tensors.find(name);
    ASSERT_NE(it, b.tensors.end()) << name;
    EXPECT_EQ(t.dtype, it->second.dtype) << name;
    EXPECT_EQ(t.shape, it->second.shape) << name;
    EXPECT_EQ(t.bytes, it->second.bytes) << name;
  }
}

// 8-byte length + HEADER + DATA.
std::string file_with_header(const std::string& header, const std::string& data = "") {
  std::string out;
  test::ZipWriterForTests::put64(out, header.size());
  return out + header + data;
}

TEST(SafetensorsTest, DTypeNames) {
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8, DType::U8,
                  DType::BOOL}) {
    EXPECT_EQ(dtype_from_name(dtype_name(d)), d);
  }
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::BOOL), 1u);
  EXPECT_THROW(dtype_from_name("F8_E4M3"), Error);
  EXPECT_THROW(dtype_from_name("f32"), Error);
}

TEST(SafetensorsTest, ReferenceWeightsRoundTrip) {
  const std::string path = test::reference_dir() + "/weights.safetensors";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no reference data at " << path;
  const SafetensorsFile file = read_safetensors(path);
  EXPECT_EQ(file.tensors.size(), 311u);
  const TensorData& emb = file.tensors.at("embedding.weight");
  EXPECT_EQ(emb.dtype, DType::F32);
  EXPECT_EQ(emb.shape, (std::vector<int64_t>{132, 64}));
  EXPECT_EQ(file.metadata.at("embed_dim"), "64");
  EXPECT_EQ(file.metadata.at("num_categories"), "132");
  EXPECT_EQ(file.metadata.at("format"), "pt");
  int64_t params = 0;
  for (const auto& [name, t] : file.tensors) {
    EXPECT_EQ(t.dtype, DType::F32) << name;
    params += t.numel();
  }
  EXPECT_EQ(params, 1207590);  // README: 1,207,590 parameters

  // to_float32 of F32 data is the data.
  const std::vector<float> values = to_float32(emb);
  ASSERT_EQ(values.size(), size_t(132 * 64));
  EXPECT_EQ(std::memcmp(values.data(), emb.bytes.data(), emb.bytes.size()), 0);

  const std::string dir = test::temp_dir();
  write_safetensors(file, dir + "/a.safetensors");
  const SafetensorsFile again = read_safetensors(dir + "/a.safetensors");
  expect_same(file, again);
  write_safetensors(again, dir + "/b.safetensors");
  EXPECT_EQ(read_bytes(dir + "/a.safetensors"), read_bytes(dir + "/b.safetensors"));  // deterministic
  EXPECT_FALSE(std::filesystem::exists(dir + "/a.safetensors.tmp." + std::to_string(::getpid())));
}

TEST(SafetensorsTest, RoundTripEveryDType) {
  SafetensorsFile file;
  uint8_t seed = 3;
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8, DType::U8,
                  DType::BOOL}) {
    file.tensors[std::string("t_") + dtype_name(d)] = make_tensor(d, {2, 3}, seed++);
  }
  file.tensors["scalar"] = make_tensor(DType::F32, {});
  file.tensors["empty"] = make_tensor(DType::F32, {0, 5});
  file.tensors["empty2"] = make_tensor(DType::I64, {3, 0});
  file.tensors["a.unicode.näme"] = make_tensor(DType::U8, {4});
  file.metadata = {{"format", "pt"}, {"note", "quote \" and \\ and \n newline"}};
  const std::vector<uint8_t> bytes = serialize_safetensors(file);
  const SafetensorsFile back = parse_safetensors(bytes.data(), bytes.size(), "mem");
  expect_same(file, back);
  EXPECT_EQ(back.tensors.at("scalar").numel(), 1);
  EXPECT_EQ(back.tensors.at("empty").numel(), 0);
}

TEST(SafetensorsTest, HeaderLayout) {
  SafetensorsFile file;
  file.tensors["b"] = make_tensor(DType::F32, {3});
  file.tensors["a"] = make_tensor(DType::F16, {1});
  file.tensors["c"] = make_tensor(DType::I8, {5});
  file.metadata["k"] = "v";
  const std::vector<uint8_t> bytes = serialize_safetensors(file);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[size_t(i)];
  EXPECT_EQ(n % 8, 0u);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(n));
  EXPECT_EQ(header.rfind("{\"__metadata__\":{\"k\":\"v\"},\"a\":", 0), 0u) << header;
  const std::string trimmed = header.substr(0, header.find_last_not_of(' ') + 1);
  EXPECT_EQ(trimmed.back(), '}');
  EXPECT_EQ(header.size() - trimmed.size(), (8 - trimmed.size() % 8) % 8);  // space padding only
  // Data in name order: a (2 bytes), b (12), c (5).
  EXPECT_NE(header.find("\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}"), std::string::npos) << header;
  EXPECT_NE(header.find("\"data_offsets\":[2,14]"), std::string::npos);
  EXPECT_NE(header.find("\"data_offsets\":[14,19]"), std::string::npos);
  EXPECT_EQ(bytes.size(), 8 + n + 19);
  // No metadata: no __metadata__ key.
  file.metadata.clear();
  const std::vector<uint8_t> plain = serialize_safetensors(file);
  EXPECT_EQ(std::string(plain.begin(), plain.end()).find("__metadata__"), std::string::npos);
}

TEST(SafetensorsTest, WriterRejectsInconsistentTensors) {
  SafetensorsFile file;
  file.tensors["x"] = make_tensor(DType::F32, {2});
  file.tensors["x"].bytes.pop_back();
  EXPECT_THROW(serialize_safetensors(file, "out.safetensors"), Error);
  file.tensors["x"].shape = {-1};
  file.tensors["x"].bytes.clear();
  EXPECT_THROW(serialize_safetensors(file), Error);
  file.tensors.clear();
  file.tensors["__metadata__"] = make_tensor(DType::F32, {1});
  EXPECT_THROW(serialize_safetensors(file), Error);
  file.tensors.clear();
  file.tensors[std::string("bad\xff utf8")] = make_tensor(DType::F32, {1});
  try {
    serialize_safetensors(file, "out.safetensors");
    FAIL() << "invalid UTF-8 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out.safetensors"), std::string::npos);
  }
}

// Reference fp16 decoding in double: (-1)^s 2^(e-15) (1 + m/1024), subnormals m 2^-24.
double half_reference(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? std::ldexp(double(m), -24) : std::ldexp(1.0 + m / 1024.0, e - 15);
  return s ? -v : v;
}

TEST(SafetensorsTest, HalfToFloatExhaustive) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t h = uint16_t(bits);
    const float f = half_to_float(h);
    const int e = (h >> 10) & 31, m = h & 1023;
    if (e == 31) {
      if (m == 0) {
        EXPECT_TRUE(std::isinf(f)) << bits;
      } else {
        EXPECT_TRUE(std::isnan(f)) << bits;
      }
      EXPECT_EQ(std::signbit(f), bool(h >> 15)) << bits;
      continue;
    }
    EXPECT_EQ(double(f), half_reference(h)) << bits;
    EXPECT_EQ(std::signbit(f), bool(h >> 15)) << bits;
  }
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0xc000), -2.0f);
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(half_to_float(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(half_to_float(0x03ff), std::ldexp(1023.0f, -24));
  // A quiet NaN keeps its payload bits (0x7e00 -> 0x7fc00000), as torch does.
  const float nan = half_to_float(0x7e00);
  uint32_t nan_bits;
  std::memcpy(&nan_bits, &nan, 4);
  EXPECT_EQ(nan_bits, 0x7fc00000u);
}

TEST(SafetensorsTest, ToFloat32) {
  EXPECT_EQ(bfloat16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(bfloat16_to_float(0xc0a0), -5.0f);
  EXPECT_TRUE(std::isinf(bfloat16_to_float(0x7f80)));
  EXPECT_TRUE(std::isnan(bfloat16_to_float(0x7fc0)));

  TensorData h;
  h.dtype = DType::F16;
  h.shape = {3};
  h.bytes = {0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00};
  EXPECT_EQ(to_float32(h), (std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24)}));
  TensorData b;
  b.dtype = DType::BF16;
  b.shape = {2};
  b.bytes = {0x80, 0x3f, 0x49, 0x40};  // 1.0, 3.140625
  EXPECT_EQ(to_float32(b), (std::vector<float>{1.0f, 3.140625f}));
  TensorData d;
  d.dtype = DType::F64;
  d.shape = {2};
  const double dv[2] = {0.1, -1e300};
  d.bytes.assign(reinterpret_cast<const uint8_t*>(dv), reinterpret_cast<const uint8_t*>(dv) + 16);
  const std::vector<float> df = to_float32(d);
  EXPECT_EQ(df[0], 0.1f);
  EXPECT_TRUE(std::isinf(df[1]) && df[1] < 0);
  TensorData i;
  i.dtype = DType::I64;
  i.shape = {1};
  i.bytes.assign(8, 0);
  EXPECT_THROW(to_float32(i), Error);
}

struct CorruptCase {
  const char* what;
  std::string bytes;
};

std::vector<CorruptCase> corrupt_cases() {
  const std::string f32x2(8, '\x01');
  std::string huge_len, beyond_len, zero_len;
  test::ZipWriterForTests::put64(huge_len, 200'000'000);
  huge_len += "{}";
  test::ZipWriterForTests::put64(beyond_len, 64);
  beyond_len += "{\"a\":1}";
  test::ZipWriterForTests::put64(zero_len, 0);
  const std::string ok = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  return {
      {"empty file", ""},
      {"shorter than the length field", "\x08\x00\x00"},
      {"zero header length", zero_len},
      {"header length beyond 100 MB", huge_len},
      {"header length beyond the file", beyond_len},
      {"header not an object", file_with_header("[1,2]")},
      {"invalid JSON", file_with_header("{\"a\":")},
      {"trailing garbage in JSON", file_with_header("{} x")},
      {"invalid UTF-8", file_with_header("{\"\xff\xfe\":{}}")},
      {"duplicate key", file_with_header("{\"a\":{" + ok + "},\"a\":{" + ok + "}}", f32x2)},
      {"entry not an object", file_with_header("{\"a\":1}")},
      {"missing dtype", file_with_header(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", f32x2)},
      {"missing shape", file_with_header(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", f32x2)},
      {"missing data_offsets", file_with_header(R"({"a":{"dtype":"F32","shape":[2]}})", f32x2)},
      {"dtype not a string", file_with_header(R"({"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", f32x2)},
      {"unknown dtype", file_with_header(R"({"a":{"dtype":"F8_E5M2","shape":[8],"data_offsets":[0,8]}})", f32x2)},
      {"negative dimension", file_with_header(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f32x2)},
      {"fractional dimension", file_with_header(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", f32x2)},
      {"shape not an array", file_with_header(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", f32x2)},
      {"numel overflow", file_with_header(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", f32x2)},
      {"one offset", file_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}})", f32x2)},
      {"three offsets", file_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}})", f32x2)},
      {"negative offset", file_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", f32x2)},
      {"end before begin", file_with_header(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f32x2)},
      {"offsets past the data", file_with_header(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", f32x2)},
      {"size does not match shape", file_with_header(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f32x2)},
      {"overlapping tensors",
       file_with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        f32x2)},
      {"hole between tensors",
       file_with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[6,8]}})",
                        f32x2)},
      {"trailing data", file_with_header("{\"a\":{" + ok + "}}", f32x2 + "xx")},
      {"metadata not an object", file_with_header("{\"__metadata__\":[\"x\"],\"a\":{" + ok + "}}", f32x2)},
      {"metadata value not a string", file_with_header("{\"__metadata__\":{\"epoch\":3},\"a\":{" + ok + "}}", f32x2)},
  };
}

TensorData f32_tensor(std::vector<float> values) {
  TensorData t;
  t.dtype = DType::F32;
  t.shape = {int64_t(values.size())};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

TEST(SafetensorsTest, AverageIsTheElementwiseMeanOfFloatingTensors) {
  const std::string dir = test::temp_dir();
  const std::vector<std::vector<float>> weights = {{1.0f, -2.0f, 0.5f}, {3.0f, 2.0f, 0.25f}, {2.0f, 6.0f, -3.0f}};
  const TensorData step_counter = make_tensor(DType::I64, {2}, 9);
  std::vector<std::string> paths;
  for (size_t f = 0; f < weights.size(); ++f) {
    SafetensorsFile file;
    file.tensors["w"] = f32_tensor(weights[f]);
    file.tensors["h"] = to_bfloat16(f32_tensor({float(f), 1.5f}));  // dtypes may differ by file
    if (f == 1) file.tensors["h"] = f32_tensor({float(f), 1.5f});
    file.tensors["step"] = step_counter;
    file.metadata["index"] = std::to_string(f);
    paths.push_back(dir + "/w" + std::to_string(f) + ".safetensors");
    write_safetensors(file, paths.back());
  }
  const SafetensorsFile mean = average_safetensors(paths);
  EXPECT_EQ(mean.metadata.at("index"), "0");  // the first file's
  EXPECT_EQ(mean.tensors.at("w").dtype, DType::F32);
  EXPECT_EQ(to_float32(mean.tensors.at("w")), (std::vector<float>{2.0f, 2.0f, -0.75f}));
  EXPECT_EQ(to_float32(mean.tensors.at("h")), (std::vector<float>{1.0f, 1.5f}));
  EXPECT_EQ(mean.tensors.at("step").bytes, step_counter.bytes);
  EXPECT_EQ(to_float32(average_safetensors({paths[1]}).tensors.at("w")), weights[1]);

  // Mismatches name the file and the tensor.
  auto write_variant = [&](const std::string& name, auto&& change) {
    SafetensorsFile file = read_safetensors(paths[0]);
    change(file);
    write_safetensors(file, dir + "/" + name);
    return dir + "/" + name;
  };
  const std::string wider = write_variant("wider.safetensors", [](SafetensorsFile& f) { f.tensors["w"] = f32_tensor({1, 2, 3, 4}); });
  const std::string missing = write_variant("missing.safetensors", [](SafetensorsFile& f) { f.tensors.erase("h"); });
  const std::string extra = write_variant("extra.safetensors", [](SafetensorsFile& f) { f.tensors["x"] = f32_tensor({1}); });
  const std::string counter = write_variant("counter.safetensors", [](SafetensorsFile& f) { f.tensors["step"] = make_tensor(DType::I64, {2}, 3); });
  const std::vector<std::pair<std::string, std::string>> cases = {
      {wider, "'w' has another shape"}, {missing, "'h' of the first file is missing"},
      {extra, "'x' is not in the first file"}, {counter, "non-floating tensor 'step' differs"}};
  for (const auto& [path, what] : cases) {
    const std::string second = path;  // (C++17 lambdas cannot capture a structured binding)
    const std::string text = test::error_text([&] { average_safetensors({paths[0], second}); });
    EXPECT_NE(text.find(path), std::string::npos) << text;
    EXPECT_NE(text.find(what), std::string::npos) << text;
  }
  EXPECT_NE(test::error_text([] { average_safetensors({}); }), "");
}

TEST(ConvertCli, AveragesCheckpoints) {
  const std::string dir = test::temp_dir();
  for (int f = 0; f < 2; ++f) {
    SafetensorsFile file;
    file.tensors["w"] = f32_tensor({float(f), 2.0f + 2.0f * float(f)});
    write_safetensors(file, dir + "/" + std::to_string(f) + ".safetensors");
  }
  const std::string a = dir + "/0.safetensors", b = dir + "/1.safetensors", out = dir + "/mean.safetensors";
  const auto r = test::run_iflame("convert '" + a + "' '" + out + "' --average '" + b + "' --dtype bf16 --meta k=v");
  ASSERT_EQ(r.code, 0) << r.out;
  const SafetensorsFile mean = read_safetensors(out);
  EXPECT_EQ(mean.tensors.at("w").dtype, DType::BF16);
  EXPECT_EQ(to_float32(mean.tensors.at("w")), (std::vector<float>{0.5f, 3.0f}));
  EXPECT_EQ(mean.metadata.at("k"), "v");

  const auto not_safetensors = test::run_iflame("convert '" + a + "' '" + dir + "/x.safetensors' --average '" + dir + "/m.pth'");
  EXPECT_EQ(not_safetensors.code, 1);
  EXPECT_NE(not_safetensors.out.find("--average needs .safetensors files, got '" + dir + "/m.pth'"), std::string::npos)
      << not_safetensors.out;
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.safetensors"));
  const auto pth_input = test::run_iflame("convert '" + dir + "/m.pth' '" + dir + "/x.safetensors' --average '" + a + "'");
  EXPECT_EQ(pth_input.code, 1);
  EXPECT_NE(pth_input.out.find("--average needs a .safetensors input"), std::string::npos) << pth_input.out;
}

TEST(SafetensorsTest, CorruptFilesThrowWithPath) {
  const std::string dir = test::temp_dir();
  int index = 0;
  for (const auto& c : corrupt_cases()) {
    const std::string path = dir + "/corrupt_" + std::to_string(index++) + ".safetensors";
    write_bytes(path, c.bytes);
    try {
      read_safetensors(path);
      ADD_FAILURE() << c.what << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << c.what << ": " << e.what();
      EXPECT_EQ(e.path(), path) << c.what;
    }
  }
  EXPECT_THROW(read_safetensors(dir + "/missing.safetensors"), Error);
}

TEST(SafetensorsTest, ValidEdgeCasesAccepted) {
  // Zero-size tensors may share any offset; an empty data section is fine; extra entry keys
  // are ignored; trailing spaces pad the header.
  const std::string header =
      R"({"e1":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"e2":{"dtype":"I64","shape":[2,0],"data_offsets":[0,0]},)"
      R"("x":{"dtype":"U8","shape":[3],"data_offsets":[0,3],"extra":true}}    )";
  const std::string bytes = file_with_header(header, "abc");
  const SafetensorsFile f = parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem");
  EXPECT_EQ(f.tensors.size(), 3u);
  EXPECT_EQ(f.tensors.at("x").bytes, (std::vector<uint8_t>{'a', 'b', 'c'}));
  const std::string empty = file_with_header("{}");
  EXPECT_TRUE(parse_safetensors(reinterpret_cast<const uint8_t*>(empty.data()), empty.size(), "mem").tensors.empty());
}

TEST(SafetensorsFuzz, MutationsNeverCrash) {
  SafetensorsFile file;
  file.tensors["w"] = make_tensor(DType::F32, {2, 3});
  file.tensors["h"] = make_tensor(DType::F16, {4});
  file.tensors["i"] = make_tensor(DType::I64, {1});
  file.metadata["format"] = "pt";
  const std::vector<uint8_t> good = serialize_safetensors(file);
  std::mt19937 rng(20250316);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> bytes = good;
    const int edits = 1 + int(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 4) {
        case 0: bytes[at] = uint8_t(rng()); break;
        case 1: bytes[at] ^= uint8_t(1u << (rng() % 8)); break;
        case 2: bytes.resize(at); break;
        default: bytes.insert(bytes.begin() + std::ptrdiff_t(at), uint8_t("0123456789,[]{}\"-"[rng() % 17])); break;
      }
      if (bytes.empty()) break;
    }
    try {
      parse_safetensors(bytes.data(), bytes.size(), "fuzz");
      ++accepted;
    } catch (const Error&) {
    }
  }
  EXPECT_LT(accepted, 3000);
}

}  // namespace
}  // namespace iflame
