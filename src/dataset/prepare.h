// `iflame prepare`: folders (or lists) of mesh files -> one dataset file (dataset/format.h)
// and a JSON report. Steps:
//   1. collect  walk directories recursively, read .txt/.lst lists, take mesh files as given;
//               keep files is_mesh_path accepts (listed files are kept whatever their
//               extension); sort by path; the same file reached twice is taken once.
//   2. process  in parallel: load (assimp formats in a child process, see isolated_load.h), rotate Z-up -> Y-up under --z-up roots, canonicalize,
//               filter by canonical face count; keep the normalized float geometry and the
//               canonical face rows.
//   3. dedup    exact duplicates (identical face rows): the first in path order is kept.
//               Then, with near_dup > 0, near-duplicates (dataset/near_duplicates.h): surface
//               clouds compared pairwise by Chamfer distance above the sampling floor; greedily,
//               a mesh is kept unless a kept mesh with more faces (ties: earlier path) is that close.
//   4. split    train/val by object group, from a stable hash of the group key.
//   5. write    the dataset (atomically), then the report.
// A file that cannot be used is skipped with a reason, never fatal.
//
// Names, groups and sources. Every input root gets a label: the name of its directory
// (made unique with "~2", "~3", ... when two different roots share one). A mesh's name is
// "label/path-inside-the-root". Its group key (--split-by):
//   dir          the folder holding the file ("label/synset/model_id/models" for ShapeNet, a
//                unit's folder for game data). A file directly inside its root is its own
//                group, except that flattened names there ("mg__techs__unit__model.obj", as
//                tools that flatten folders write them) count their "__"-separated parts as
//                folders.
//   file         the file itself (every mesh its own group).
//   stem-prefix  the folder plus the file stem cut at the first '_', '-', ' ' or digit,
//                lower-cased ("archmage_attack", "Archmage2" -> "archmage"): pose, LOD and
//                colour variants of one object stay together (0 A.D., MegaGlest, SuperTuxKart).
//                A stem that starts with such a character is kept whole.
// Its source: for a file directly inside its root, the part of the file name before the first
// "__" when there is one ("mg__x.obj" -> "mg"); otherwise the root's label without the "~N"
// suffix.
// Split: val when fmix64(FNV-1a-64(group key)) / 2^64 < val_fraction, else train (stable
// across platforms, runs and file sets: a group's split never depends on the other files).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "dataset/format.h"

namespace iflame {

enum class SplitBy { kDir, kFile, kStemPrefix };
const char* split_by_name(SplitBy by);  // "dir", "file", "stem-prefix"
// Parses "dir", "file" or "stem-prefix"; throws iflame::Error otherwise.
SplitBy parse_split_by(const std::string& text);

// Why a file was not kept (names as written in the report).
enum class SkipReason { kNone, kUnreadable, kZeroSize, kTooFewFaces, kTooManyFaces, kDuplicate, kNearDuplicate };
inline constexpr SkipReason kSkipReasons[] = {SkipReason::kUnreadable, SkipReason::kZeroSize, SkipReason::kTooFewFaces,
                                              SkipReason::kTooManyFaces, SkipReason::kDuplicate,
                                              SkipReason::kNearDuplicate};
const char* skip_reason_name(SkipReason reason);  // "unreadable", "zero_size", "too_few_faces", ...

struct PrepareOptions {
  std::vector<std::string> inputs;  // directories, .txt/.lst lists, mesh files
  std::vector<std::string> z_up;    // meshes under these directories are rotated Z-up -> Y-up
  std::string out;                  // the dataset file
  std::string report;               // "" = out + ".report.json"
  int64_t max_faces = 800;          // canonical faces (after quantization)
  int64_t min_faces = 1;
  double val_fraction = 0.05;
  int bits = 7;
  int jobs = 0;  // 0 = hardware threads
  SplitBy split_by = SplitBy::kDir;
  int progress = -1;  // progress bar: -1 when stderr is a terminal, 0 never, 1 always
  // Formats read by assimp are loaded in reader processes (dataset/isolated_load.h) that may
  // take this long per file; a crash or a timeout skips the file as unreadable.
  bool isolate_assimp = true;
  double reader_timeout_s = 60;
  // Near-duplicate removal (0 = off): how far above the pair's sampling floor the Chamfer
  // distance (eval's definition, squared, both directions) may be for two meshes to count as
  // copies, and the surface points per mesh.
  double near_dup = 0;
  double near_dup_relative = 0.4;  // and as a share of the pair's floor (near_duplicates.h)
  int64_t near_dup_points = 512;
};

// One file found by collect_inputs.
struct InputFile {
  std::string path;    // to open: the input as given joined with the path inside it
  std::string name;    // "label/path-inside-root"
  std::string source;  // see above
  size_t input = 0;    // index into PrepareOptions::inputs
  bool z_up = false;
};

struct CollectedInputs {
  std::vector<InputFile> files;          // sorted by path, each file once
  std::vector<nlohmann::json> inputs;    // per input: {"input", "kind", "files"}
  std::vector<std::string> warnings;     // unreadable folders, duplicate listings, ...
};
// Step 1. Throws iflame::Error for an input that does not exist.
CollectedInputs collect_inputs(const std::vector<std::string>& inputs, const std::vector<std::string>& z_up);

// The group key of a mesh name ("label/...") under a split rule (see above).
std::string group_key(const std::string& name, SplitBy by);
// "archmage_attack" -> "archmage", "Tree01" -> "tree", "01_x" -> "01_x".
std::string stem_prefix(const std::string& stem);
uint64_t fnv1a64(std::string_view bytes);
uint64_t fmix64(uint64_t h);  // MurmurHash3's finalizer
Split split_for_group(const std::string& group, double val_fraction);

// Rotates a Z-up mesh to Y-up: (x, y, z) -> (x, z, -y) (a proper rotation; winding is kept).
void rotate_z_up_to_y_up(Mesh& mesh);

struct PrepareResult {
  size_t found = 0, kept = 0, train = 0, val = 0, skipped = 0;
  double seconds = 0;
  std::string dataset_path, report_path;
  std::string summary;  // the one-line summary the CLI prints
  nlohmann::json report;
};

// Runs all steps and writes options.out and the report. Throws iflame::Error for bad options,
// missing inputs, no mesh file found, or a failed write; never for a bad mesh.
PrepareResult prepare_dataset(const PrepareOptions& options);

}  // namespace iflame
