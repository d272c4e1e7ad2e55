// The dataset file format: round trip, alignment, and clear errors for damaged files.
#include "dataset/format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "test_paths.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace iflame {
namespace {

namespace fs = std::filesystem;

std::vector<DatasetEntry> sample_entries() {
  std::vector<DatasetEntry> entries(3);
  entries[0].name = "megaglest/techs/unit/models/archmage_attack.g3d";
  entries[0].group = "megaglest/techs/unit/models";
  entries[0].source = "megaglest";
  entries[0].split = Split::kTrain;
  entries[0].input_faces = 2;
  entries[0].vertices = {-0.5f, 0.f, 0.f, 0.5f, 0.f, 0.f, 0.f, 0.5f, 0.f, 0.f, 0.f, 0.25f};
  entries[0].triangles = {0, 1, 2, 0, 2, 3};
  entries[0].tokens = {64, 0, 64, 64, 128, 64, 96, 64, 128, 64, 0, 64, 96, 64, 128, 64, 128, 64};
  entries[1].name = "x/odd name with spaces/ünïcode.obj";  // odd lengths move the alignment
  entries[1].group = "x";
  entries[1].source = "x";
  entries[1].split = Split::kVal;
  entries[1].input_faces = 7;
  entries[1].vertices = {0.1f, 0.2f, 0.3f, -0.1f, -0.2f, -0.3f, 0.5f, -0.5f, 0.f};
  entries[1].triangles = {2, 1, 0};
  entries[1].tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  entries[2].name = "empty/geometry.obj";  // no arrays at all is legal in the format
  entries[2].group = "";
  entries[2].source = "";
  entries[2].split = Split::kTrain;
  return entries;
}

std::string write_sample(const std::string& dir) {
  const std::string path = dir + "/sample.ifds";
  write_dataset(path, sample_entries(), 7, R"({"hello":"world"})");
  return path;
}

std::vector<uint8_t> bytes_of(const std::string& path) { return read_file_bytes(path); }
void put_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// Expects DatasetReader(path) to throw an iflame::Error naming the file and containing `needle`.
void expect_reader_error(const std::string& path, const std::string& needle) {
  try {
    DatasetReader r(path);
    FAIL() << "no error for " << path << " (expected '" << needle << "')";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(DatasetFormat, RoundTripKeepsEveryField) {
  const std::string path = write_sample(test::temp_dir());
  const std::vector<DatasetEntry> want = sample_entries();
  DatasetReader r(path);
  EXPECT_EQ(r.version(), kDatasetVersion);
  EXPECT_EQ(r.bits(), 7);
  EXPECT_EQ(r.tokenizer_config().bos(), 130);
  ASSERT_EQ(r.size(), want.size());
  EXPECT_EQ(r.num_train(), 2u);
  EXPECT_EQ(r.num_val(), 1u);
  EXPECT_EQ(r.meta_json(), R"({"hello":"world"})");
  EXPECT_EQ(r.file_size() % 8, 0u);
  EXPECT_EQ(r.file_size(), fs::file_size(path));
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    const DatasetMesh m = r[i];
    EXPECT_EQ(m.name, want[i].name);
    EXPECT_EQ(m.group, want[i].group);
    EXPECT_EQ(m.source, want[i].source);
    EXPECT_EQ(m.split, want[i].split);
    EXPECT_EQ(m.input_faces, want[i].input_faces);
    ASSERT_EQ(m.num_vertices * 3, want[i].vertices.size());
    ASSERT_EQ(m.num_triangles * 3, want[i].triangles.size());
    ASSERT_EQ(m.num_faces * 9, want[i].tokens.size());
    EXPECT_EQ(std::vector<float>(m.vertices, m.vertices + m.num_vertices * 3), want[i].vertices);
    EXPECT_EQ(std::vector<int32_t>(m.triangles, m.triangles + m.num_triangles * 3), want[i].triangles);
    EXPECT_EQ(std::vector<uint16_t>(m.tokens, m.tokens + m.num_tokens()), want[i].tokens);
    // Memory-mapped arrays are 8-byte aligned (the file is mapped at a page boundary).
    if (m.num_vertices) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m.vertices) % 8, 0u);
    }
    if (m.num_triangles) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m.triangles) % 8, 0u);
    }
    if (m.num_faces) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(m.tokens) % 8, 0u);
    }
  }
  EXPECT_EQ(r.indices(Split::kVal), std::vector<size_t>{1});
  EXPECT_EQ(r.indices(Split::kTrain), (std::vector<size_t>{0, 2}));
  EXPECT_NO_THROW(r.verify());
  EXPECT_THROW(r.at(3), std::out_of_range);

  // Helpers: float64 mesh and the training sequence.
  const Mesh mesh = r[0].to_mesh();
  ASSERT_EQ(mesh.vertices.size(), 4u);
  EXPECT_EQ(mesh.vertices[3][2], 0.25);
  EXPECT_EQ(mesh.faces[1], (Tri{0, 2, 3}));
  const std::vector<int64_t> seq = r[1].sequence(r.tokenizer_config(), 5);
  ASSERT_EQ(seq.size(), 45u);
  EXPECT_EQ(seq[0], 130);
  EXPECT_EQ(seq[9], 1);
  EXPECT_EQ(seq[18], 131);
  EXPECT_EQ(seq[44], 129);
}

TEST(DatasetFormat, EmptyDatasetIsValid) {
  const std::string path = test::temp_dir() + "/empty.ifds";
  write_dataset(path, {}, 7, "{}");
  DatasetReader r(path);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.file_size(), fs::file_size(path));
}

TEST(DatasetFormat, WriteIsAtomicAndReplacesOldFile) {
  const std::string dir = test::temp_dir();
  const std::string path = write_sample(dir);
  write_dataset(path, {}, 7, "{}");  // overwrite
  EXPECT_EQ(DatasetReader(path).size(), 0u);
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "sample.ifds");  // no temp left
}

TEST(DatasetFormat, MoveKeepsTheMapping) {
  const std::string path = write_sample(test::temp_dir());
  DatasetReader a(path);
  DatasetReader b(std::move(a));
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].source, "megaglest");
  DatasetReader c(path);
  c = std::move(b);
  EXPECT_EQ(c[1].name, "x/odd name with spaces/ünïcode.obj");
}

TEST(DatasetFormat, RejectsWrongMagic) {
  const std::string path = write_sample(test::temp_dir());
  auto b = bytes_of(path);
  b[0] = 'X';
  put_bytes(path, b);
  expect_reader_error(path, "wrong magic");
  put_bytes(path, {});
  expect_reader_error(path, "wrong magic");
  put_bytes(path, {'I', 'F', 'L'});
  expect_reader_error(path, "wrong magic");
}

TEST(DatasetFormat, RejectsNewerVersion) {
  const std::string path = write_sample(test::temp_dir());
  auto b = bytes_of(path);
  b[8] = uint8_t(kDatasetVersion + 1);
  put_bytes(path, b);
  expect_reader_error(path, "newer than this build reads");
}

TEST(DatasetFormat, RejectsTruncatedFile) {
  const std::string path = write_sample(test::temp_dir());
  const auto b = bytes_of(path);
  for (size_t keep : {b.size() - 1, b.size() / 2, size_t(200), size_t(127), size_t(12)}) {
    SCOPED_TRACE(keep);
    put_bytes(path, std::vector<uint8_t>(b.begin(), b.begin() + std::ptrdiff_t(keep)));
    expect_reader_error(path, "truncated");
  }
}

TEST(DatasetFormat, RejectsOffsetsOutOfRange) {
  const std::string path = write_sample(test::temp_dir());
  const auto good = bytes_of(path);
  // Record 1's vertices offset (index at 128, record 80 bytes, field at +24) past the end.
  auto b = good;
  const size_t field = 128 + 80 + 24;
  const uint64_t far = 1ull << 40;
  std::memcpy(&b[field], &far, 8);
  put_bytes(path, b);
  expect_reader_error(path, "out of range");
  // A vertex count too large for the file.
  b = good;
  const uint32_t many = 0x40000000u;
  std::memcpy(&b[128 + 60], &many, 4);
  put_bytes(path, b);
  expect_reader_error(path, "out of range");
  // A mesh count larger than the index.
  b = good;
  const uint64_t meshes = 1000;
  std::memcpy(&b[32], &meshes, 8);
  put_bytes(path, b);
  expect_reader_error(path, "corrupt dataset");
  // A bad split byte.
  b = good;
  b[128 + 76] = 7;
  put_bytes(path, b);
  expect_reader_error(path, "split value");
}

// Opening checks every index, token and coordinate: a file whose layout is fine but whose
// contents would make the trainer index out of bounds is refused before anything reads it.
TEST(DatasetFormat, OpeningCatchesBadIndicesTokensAndCoordinates) {
  const std::string path = test::temp_dir() + "/bad.ifds";
  auto entries = sample_entries();
  entries[0].triangles[4] = 9;  // only 4 vertices
  write_dataset(path, entries, 7, "{}");
  try {
    DatasetReader r(path);
    FAIL() << "opened a dataset with an out-of-range triangle index";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("triangle index 9"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  entries = sample_entries();
  entries[0].triangles[0] = -1;
  write_dataset(path, entries, 7, "{}");
  EXPECT_THROW(DatasetReader{path}, Error);
  entries = sample_entries();
  entries[1].tokens[3] = 129;  // > 2^7
  write_dataset(path, entries, 7, "{}");
  EXPECT_THROW(DatasetReader{path}, Error);
  entries = sample_entries();
  entries[1].vertices[2] = std::numeric_limits<float>::quiet_NaN();
  write_dataset(path, entries, 7, "{}");
  EXPECT_THROW(DatasetReader{path}, Error);
  write_dataset(path, sample_entries(), 7, "{}");
  EXPECT_NO_THROW(DatasetReader(path).verify());
}

TEST(DatasetFormat, MissingFileIsAClearError) {
  const std::string path = test::temp_dir() + "/nope.ifds";
  expect_reader_error(path, "cannot open dataset");
}

}  // namespace
}  // namespace iflame
