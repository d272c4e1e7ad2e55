// The prepared-dataset file (`.ifds`, written by `iflame prepare`): one file holding every kept
// mesh twice over, as normalized float geometry (training augments it, then quantizes, as the
// reference does) and as canonical face rows (validation and teacher forcing need no
// recompute). Little-endian, memory-mappable, written atomically (temp file + rename).
//
//   offset            size          what
//   0                 128           header (DatasetHeader below)
//   index_offset      80 x N        one fixed-size record per mesh (DatasetRecord below)
//   meta_offset       meta_size     JSON text: the options `prepare` ran with (no NUL)
//   ...               ...           per mesh, each blob 8-byte aligned, zero padding between:
//                                     strings   name\0 group\0 source\0 (UTF-8)
//                                     vertices  float32 [V][3]  normalized, input axes (x, y, z)
//                                     triangles int32   [T][3]  indices into vertices
//                                     tokens    uint16  [F][9]  canonical face rows (no BOS/EOS)
//   file_size                       end (a multiple of 8)
//
// Header (all integers little-endian):
//   0 magic "IFLMDSET" | 8 u32 version | 12 u32 header_size (128) | 16 u32 record_size (80)
//   20 u32 bits | 24 u32 tokens_per_face (9) | 28 u32 flags (0) | 32 u64 num_meshes
//   40 u64 num_train | 48 u64 num_val | 56 u64 index_offset | 64 u64 meta_offset
//   72 u64 meta_size | 80 u64 data_offset (first mesh blob) | 88 u64 file_size | 96..127 zero
// Record:
//   0 u64 name_offset | 8 u64 group_offset | 16 u64 source_offset | 24 u64 vertices_offset
//   32 u64 triangles_offset | 40 u64 tokens_offset | 48 u32 name_len | 52 u32 group_len
//   56 u32 source_len | 60 u32 num_vertices | 64 u32 num_triangles | 68 u32 num_faces
//   72 u32 input_faces | 76 u8 split (0 train, 1 val) | 77..79 zero
// String lengths exclude the NUL that follows each string.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/mesh.h"
#include "tokenizer/tokenizer.h"

namespace iflame {

inline constexpr char kDatasetMagic[8] = {'I', 'F', 'L', 'M', 'D', 'S', 'E', 'T'};
inline constexpr uint32_t kDatasetVersion = 1;
inline constexpr uint32_t kDatasetHeaderSize = 128;
inline constexpr uint32_t kDatasetRecordSize = 80;

enum class Split : uint8_t { kTrain = 0, kVal = 1 };
const char* split_name(Split split);  // "train", "val"

// One mesh as the writer takes it.
struct DatasetEntry {
  std::string name;    // relative path, unique in the dataset ("megaglest/techs/.../archmage.g3d")
  std::string group;   // object group key; a group never straddles the split
  std::string source;  // where it came from ("megaglest", "0ad", ...)
  Split split = Split::kTrain;
  uint32_t input_faces = 0;        // triangles the reader produced, before anything was dropped
  std::vector<float> vertices;     // [V * 3], normalize_mesh output
  std::vector<int32_t> triangles;  // [T * 3], faces degenerate in float dropped
  std::vector<uint16_t> tokens;    // [F * 9], face_rows(canonicalize(mesh))
};

// Writes `entries` in the given order to PATH (temp file + rename). `bits` is the tokenizer's;
// `meta_json` is stored verbatim. Throws iflame::Error naming PATH on any failure.
void write_dataset(const std::string& path, const std::vector<DatasetEntry>& entries, int bits,
                   const std::string& meta_json);

// A view of one mesh inside a mapped dataset; valid while its DatasetReader lives.
struct DatasetMesh {
  std::string_view name, group, source;
  Split split = Split::kTrain;
  uint32_t input_faces = 0;
  const float* vertices = nullptr;  // [num_vertices * 3]
  uint32_t num_vertices = 0;
  const int32_t* triangles = nullptr;  // [num_triangles * 3]
  uint32_t num_triangles = 0;
  const uint16_t* tokens = nullptr;  // [num_faces * 9]
  uint32_t num_faces = 0;

  // The float geometry as a Mesh (float64), ready for augment_mesh / canonicalize_normalized.
  Mesh to_mesh() const;
  // The stored face rows as a training sequence: 9 x BOS, rows, 9 x EOS, PAD rows up to
  // `pad_to_rows` rows (0 = none); the same as encode_sequence on the canonical mesh.
  std::vector<int64_t> sequence(const TokenizerConfig& config, size_t pad_to_rows = 0) const;
  size_t num_tokens() const { return size_t(num_faces) * kTokensPerFace; }
};

// Memory-maps a dataset read-only. The constructor checks the header and every record (magic,
// version, sizes, offsets and lengths inside the file, NUL-terminated strings, split values)
// and then every triangle index, token value and vertex coordinate (verify()), and throws
// iflame::Error naming the file and mesh on the first problem: nothing later indexes with an
// unchecked value. The full check costs one pass over the file (about 40 ms for the 4,829-mesh
// corpus, docs/reliability.md).
class DatasetReader {
 public:
  explicit DatasetReader(const std::string& path);
  ~DatasetReader();
  DatasetReader(DatasetReader&& other) noexcept;
  DatasetReader& operator=(DatasetReader&& other) noexcept;
  DatasetReader(const DatasetReader&) = delete;
  DatasetReader& operator=(const DatasetReader&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const { return num_meshes_; }
  uint32_t version() const { return version_; }
  int bits() const { return bits_; }
  TokenizerConfig tokenizer_config() const;
  size_t num_train() const { return num_train_; }
  size_t num_val() const { return num_val_; }
  std::string_view meta_json() const;
  size_t file_size() const { return size_; }

  DatasetMesh operator[](size_t i) const;  // no bounds check beyond an assert
  DatasetMesh at(size_t i) const;          // throws std::out_of_range
  // Indices of the meshes in one split, in file order.
  std::vector<size_t> indices(Split split) const;
  // Full content check (triangle indices < num_vertices, tokens <= 2^bits, finite vertices).
  void verify() const;

 private:
  void close();
  void validate();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  int bits_ = 0;
  size_t num_meshes_ = 0, num_train_ = 0, num_val_ = 0;
  uint64_t index_offset_ = 0, meta_offset_ = 0, meta_size_ = 0;
};

}  // namespace iflame
